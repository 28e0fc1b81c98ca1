"""Zero-shot split registry: which classes are seen (trained on) and unseen (evaluated on).

Built-in splits:

* the paper's splits (``ntu60_55_5`` ... ``kinetics400_280_120``, ``nw-ucla_8_2``, ``nw-ucla_5_5``),
  from ``splits.json``, which stores each split's unseen classes (the seen classes are always the
  rest of the dataset's classes; class lists in :mod:`purls_pl.data.catalog`);
* this project's ``penn-action_10_5`` (also in ``splits.json``): Penn Action's five racket, bat and club
  sports unseen, a deliberately hard split (rationale in :mod:`purls_pl.data.readers.penn`);
* the embedded demo's ``demo_15_5`` (its unseen classes are new combinations of the seen classes'
  movements, :mod:`purls_pl.data.demo.programs`).

Your own splits:

* :meth:`ZeroShotSplit.from_names` (unseen class *names*, checked against the dataset's class list
  with close-match suggestions) and :meth:`ZeroShotSplit.from_indices`, then :func:`register_split`
  to use it by name;
* a seeded random split, :func:`random_split`, named ``<dataset>_random<K>_seed<S>`` (``K`` unseen
  classes). :func:`get_split` builds such a name on the fly, so a config may say
  ``split: ntu120_random24_seed0`` without any code. The choice depends only on the dataset's class
  count, ``K`` and ``S`` (a SHA-256 ranking, stable across Python / numpy versions).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from purls_pl.data.catalog import class_names, known_datasets
from purls_pl.data.demo.programs import UNSEEN_DEFAULT

__all__ = [
    "SplitSpec",
    "ValidationSpec",
    "ZeroShotSplit",
    "available_splits",
    "builtin_splits",
    "classes_without_samples",
    "get_split",
    "random_split",
    "random_split_name",
    "register_split",
    "resolve_split",
    "selection_name",
    "split_name",
    "split_value",
]

#: The embedded demo's split (15 seen, 5 unseen classes).
DEMO_SPLIT = "demo_15_5"
_RANDOM = re.compile(r"^(?P<dataset>.+)_random(?P<k>\d+)_seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class SplitSpec:
    """A zero-shot split written in a config instead of registered in code (``data.split`` takes a
    registered name or one of these). Give exactly one of ``unseen``, ``unseen_indices``, ``random_unseen``.

    Args:
        unseen: Unseen class names, exactly as in the dataset's class list (e.g. its ``classes.txt``).
        unseen_indices: Unseen class indices (0-based).
        random_unseen: ``K``: a seeded random split with K unseen classes (:func:`random_split`).
        seed: The random split's seed.
        name: The split's name (runs and backbones are filed under it); default
            ``<dataset>_<#seen>_<#unseen>`` for names and indices, ``<dataset>_random<K>_seed<S>`` for random.
    """

    unseen: list[str] | None = None
    unseen_indices: list[int] | None = None
    random_unseen: int | None = None
    seed: int = 0
    name: str | None = None


def split_name(spec: str | SplitSpec | dict, dataset: str | None) -> str:
    """The name a split is filed under, known before any data is read: a name as it is; a spec's ``name``,
    else ``<dataset>_random<K>_seed<S>`` for a random one, else ``<dataset>_unseen<N>-<hash of the classes>``."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        spec = SplitSpec(**spec)
    if spec.name:
        return spec.name
    if spec.random_unseen is not None:
        return random_split_name(str(dataset), spec.random_unseen, spec.seed)
    classes = sorted(map(str, spec.unseen or spec.unseen_indices or []))
    digest = hashlib.sha256(json.dumps(classes).encode()).hexdigest()[:6]
    return f"{dataset}_unseen{len(classes)}-{digest}"


def resolve_split(spec: str | SplitSpec | dict, dataset: str, classes: Sequence[str] | None = None) -> ZeroShotSplit:
    """The split a config names: a registered (or random) name, or a :class:`SplitSpec`.

    Args:
        spec: ``data.split``.
        dataset: The source's dataset key (a catalogued one, or a custom dataset's name).
        classes: The source's class list (needed for a dataset the catalog does not know).

    Raises:
        KeyError / ValueError: naming ``data.split``, the offending names and the class list's size.
    """
    if isinstance(spec, dict):
        spec = SplitSpec(**spec)
    if isinstance(spec, str):
        if spec in available_splits() or dataset in known_datasets():
            return get_split(spec)
        m = _RANDOM.match(spec)
        if m is None or m["dataset"] != dataset:
            raise KeyError(
                f"data.split {spec!r} is not a split of the custom dataset {dataset!r}: name one as "
                f"{dataset}_random<K>_seed<S>, or give its unseen classes (data.split.unseen: [names]) in the config"
            )
        return random_split(dataset, int(m["k"]), int(m["seed"]), classes=classes)
    given = [k for k in ("unseen", "unseen_indices", "random_unseen") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise ValueError(
            f"data.split needs exactly one of unseen, unseen_indices, random_unseen; got {given or 'none'}"
        )
    names = list(classes) if classes is not None else class_names(dataset)
    name = split_name(spec, dataset)
    if spec.random_unseen is not None:
        return register_split(replace(random_split(dataset, spec.random_unseen, spec.seed, classes=names), name=name))
    if spec.unseen is not None:
        picked = ZeroShotSplit.from_names("data.split.unseen", dataset, spec.unseen, names).unseen
    else:
        picked = tuple(int(c) for c in spec.unseen_indices or ())
    return register_split(ZeroShotSplit(name, dataset, len(names), picked))


#: How validation classes are carved from a split's seen classes: ``"auto"``, a count, class names, or
#: ``"none"`` (see :meth:`ZeroShotSplit.validation_classes`).
ValidationSpec = str | int | list[str]


@dataclass(frozen=True)
class ZeroShotSplit:
    """The unseen classes of one dataset; every other class is seen.

    Args:
        name: Split key, e.g. ``"ntu120_96_24"``.
        dataset: Dataset key of the class list, e.g. ``"ntu120"``.
        num_classes: Size of the dataset's full class list.
        unseen: Class indices only ever evaluated (sorted, distinct, at least one).
        excluded: Classes the split never touches, neither seen nor unseen (a selection split holds
            back the real unseen classes this way, :meth:`selection`).
    """

    name: str
    dataset: str
    num_classes: int
    unseen: tuple[int, ...]
    excluded: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        out = [c for c in (*self.unseen, *self.excluded) if not 0 <= c < self.num_classes]
        if out:
            raise ValueError(f"split {self.name!r}: classes {out} are outside 0..{self.num_classes - 1}")
        if len(set(self.unseen)) != len(self.unseen):
            raise ValueError(f"split {self.name!r}: a class is listed twice")
        if set(self.unseen) & set(self.excluded):
            raise ValueError(
                f"split {self.name!r}: classes {sorted(set(self.unseen) & set(self.excluded))} are "
                "both unseen and excluded"
            )
        object.__setattr__(self, "unseen", tuple(sorted(int(c) for c in self.unseen)))
        object.__setattr__(self, "excluded", tuple(sorted(int(c) for c in self.excluded)))
        if not self.unseen or not self.seen:
            raise ValueError(
                f"split {self.name!r}: {len(self.unseen)} unseen of {self.num_classes} classes; a zero-shot split "
                "needs at least one unseen and one seen class"
            )

    @property
    def seen(self) -> tuple[int, ...]:
        """Class indices available in training: every class that is neither unseen nor excluded."""
        held = set(self.unseen) | set(self.excluded)
        return tuple(c for c in range(self.num_classes) if c not in held)

    def validation_classes(
        self, spec: ValidationSpec = "auto", fold: int = 0, classes: Sequence[str] | None = None
    ) -> tuple[int, ...]:
        """Validation classes carved from the seen classes, for model selection.

        The seen classes are ranked by ``sha256(f"{name}:val:{class}")`` (stable everywhere); fold ``k``
        takes the ``k``-th block of ``v`` classes of that ranking (wrapping around), so folds are
        disjoint while ``(k + 1)·v`` seen classes last: class-level cross-validation.

        Args:
            spec: ``"auto"`` — ``v = max(2, min(#unseen, #seen // 4))``: as many as the split has unseen
                classes, but at most a quarter of the seen ones, and at least 2 (a zero-shot choice needs
                two candidates); an int — that many; a list — these class names (``fold`` must be 0);
                ``"none"`` — no validation classes.
            fold: Which block of the ranking.
            classes: The class list, to resolve names (default: the dataset's catalogued list).

        Raises:
            ValueError: when fewer than 2 seen classes would be left to train on, or ``spec`` is invalid.
        """
        if spec == "none":
            return ()
        seen = self.seen
        if isinstance(spec, list | tuple):
            if fold:
                raise ValueError(f"split {self.name!r}: validation classes given by name have one fold, not {fold}")
            names = list(classes) if classes is not None else class_names(self.dataset)
            picked = ZeroShotSplit.from_names(f"{self.name}-val", self.dataset, spec, names).unseen
            foreign = [names[c] for c in picked if c not in seen]
            if foreign:
                raise ValueError(f"split {self.name!r}: validation classes {foreign} are not seen classes of the split")
            chosen = picked
        else:
            if spec == "auto":
                count = max(2, min(len(self.unseen), len(seen) // 4))
            elif isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
                count = int(spec)
            else:
                raise ValueError(f"validation classes must be 'auto', 'none', a count or a list of names, got {spec!r}")
            if count < 1:
                raise ValueError(f"split {self.name!r}: a validation set needs at least 1 class, got {count}")
            if fold < 0:
                raise ValueError(f"validation fold must be >= 0, got {fold}")
            rank = sorted(seen, key=lambda c: hashlib.sha256(f"{self.name}:val:{c}".encode()).hexdigest())
            chosen = tuple(sorted(rank[(fold * count + i) % len(rank)] for i in range(min(count, len(rank)))))
        if len(seen) - len(chosen) < 2:
            raise ValueError(
                f"split {self.name!r}: {len(chosen)} validation classes leave {len(seen) - len(chosen)} of its "
                f"{len(seen)} seen classes to train on; choose fewer (data.val_classes=<count>)"
            )
        return chosen

    def selection(
        self, spec: ValidationSpec = "auto", fold: int = 0, classes: Sequence[str] | None = None
    ) -> ZeroShotSplit:
        """The split that model selection runs on: the validation classes play the unseen classes, the
        other seen classes are trained on, and this split's unseen classes are excluded altogether.
        Named ``<name>-val<fold>``."""
        val = self.validation_classes(spec, fold, classes)
        if not val:
            raise ValueError(f"split {self.name!r}: model selection needs validation classes (val_classes='none')")
        return ZeroShotSplit(
            selection_name(self.name, fold), self.dataset, self.num_classes, val, tuple({*self.unseen, *self.excluded})
        )

    def random_fold(self, seed: int) -> ZeroShotSplit:
        """A random class fold beside this split: the seeded random split of its dataset with as many unseen
        classes (:func:`random_split`, ``<dataset>_random<K>_seed<seed>``), registered by name."""
        return random_split(self.dataset, len(self.unseen), seed, num_classes=self.num_classes)

    @classmethod
    def from_indices(cls, name: str, dataset: str, unseen: Iterable[int], num_classes: int = 0) -> ZeroShotSplit:
        """A split from class indices (every other class is seen).

        Args:
            name: The split's key (used by :func:`register_split` / ``split:`` in configs).
            dataset: Dataset key; its catalogued class list fixes ``num_classes`` unless that is given.
            unseen: Unseen class indices (0-based).
            num_classes: Class count, for a dataset without a catalogued class list (0 = look it up).
        """
        n = num_classes or len(class_names(dataset))
        return cls(name, dataset, n, tuple(int(c) for c in unseen))

    @classmethod
    def from_names(
        cls, name: str, dataset: str, unseen_names: Iterable[str], classes: Sequence[str] | None = None
    ) -> ZeroShotSplit:
        """A split whose unseen classes are given by name (every other class is seen).

        Args:
            name: The split's key.
            dataset: Dataset key (``ntu120``, ``kinetics400``, ``nw-ucla``, ...).
            unseen_names: Class names exactly as in the dataset's class list.
            classes: The class list, for a custom dataset (default: :func:`class_names` of ``dataset``).

        Raises:
            KeyError: listing every unknown name with its closest class names.
        """
        names = list(classes) if classes is not None else class_names(dataset)
        index = {c: i for i, c in enumerate(names)}
        wanted = list(unseen_names)
        unknown = [u for u in wanted if u not in index]
        if unknown:
            hints = "; ".join(
                f"{u!r} (close: {', '.join(map(repr, difflib.get_close_matches(u, names, n=3, cutoff=0.5))) or 'none'})"
                for u in unknown
            )
            raise KeyError(
                f"split {name!r}: {len(unknown)} unseen class name(s) are not classes of {dataset!r}: {hints}. "
                f"Use the names of class_names({dataset!r}) exactly"
            )
        return cls.from_indices(name, dataset, [index[u] for u in wanted], num_classes=len(names))


def split_value(split: ZeroShotSplit) -> str | dict:
    """The ``data.split`` value that gives ``split`` in any process: its name when a fresh process resolves
    that name alone (a built-in split, or ``<dataset>_random<K>_seed<S>`` of its own dataset), else its
    unseen classes by index with its name (a split written in a recipe or registered in code), every
    :class:`SplitSpec` field given so that it replaces, not merges with, a recipe's ``data.split``."""
    m = _RANDOM.match(split.name)
    if split.name in _builtin() or (m is not None and m["dataset"] == split.dataset):
        return split.name
    return {"unseen": None, "unseen_indices": list(split.unseen), "random_unseen": None, "seed": 0, "name": split.name}


def selection_name(split: str, fold: int) -> str:
    """``<split>-val<fold>``: the name of a split's selection split (:meth:`ZeroShotSplit.selection`)."""
    return f"{split}-val{fold}"


_EXTRA: dict[str, ZeroShotSplit] = {}


@cache
def _builtin() -> dict[str, ZeroShotSplit]:
    """The paper's splits (``splits.json``) and the demo's."""
    raw = json.loads(resources.files("purls_pl.data").joinpath("splits.json").read_text())["splits"]
    splits = {name: ZeroShotSplit.from_indices(name, s["dataset"], s["unseen"]) for name, s in raw.items()}
    splits[DEMO_SPLIT] = ZeroShotSplit.from_indices(DEMO_SPLIT, "demo", UNSEEN_DEFAULT)
    return splits


def register_split(split: ZeroShotSplit) -> ZeroShotSplit:
    """Make ``split`` available by name (``split: <name>`` in configs)."""
    _EXTRA[split.name] = split
    return split


def builtin_splits() -> list[str]:
    """The paper's splits and the demo's (each dataset has a reader and experiment files)."""
    return sorted(_builtin())


def available_splits() -> list[str]:
    """Every split :func:`get_split` knows by name now: built-in and registered (random ones once built)."""
    return sorted({**_builtin(), **_EXTRA})


def random_split_name(dataset: str, num_unseen: int, seed: int) -> str:
    """``<dataset>_random<K>_seed<S>``, the name :func:`random_split` registers."""
    return f"{dataset}_random{num_unseen}_seed{seed}"


def random_split(
    dataset: str, num_unseen: int, seed: int = 0, classes: Sequence[str] | None = None, num_classes: int = 0
) -> ZeroShotSplit:
    """A seeded random split of ``dataset`` with ``num_unseen`` unseen classes, registered by name.

    The unseen classes are the ``num_unseen`` indices with the smallest
    ``sha256(f"{dataset}:{seed}:{index}")``; the same arguments give the same split everywhere.

    Args:
        dataset: Dataset key (its class list fixes the class count).
        num_unseen: ``K``, between 1 and the class count - 1.
        seed: ``S``.
        classes: The class list, for a custom dataset (default: :func:`class_names` of ``dataset``).
        num_classes: The class count instead of ``classes`` (0: from ``classes`` or the catalog).

    Returns:
        The split, also registered as :func:`random_split_name` ``(dataset, num_unseen, seed)``.
    """
    n = len(classes) if classes is not None else num_classes or len(class_names(dataset))
    if not 1 <= num_unseen < n:
        raise ValueError(f"num_unseen must lie in 1..{n - 1} for {dataset!r} ({n} classes), got {num_unseen}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rank = sorted(range(n), key=lambda c: hashlib.sha256(f"{dataset}:{seed}:{c}".encode()).hexdigest())
    name = random_split_name(dataset, num_unseen, seed)
    return register_split(ZeroShotSplit.from_indices(name, dataset, sorted(rank[:num_unseen]), num_classes=n))


def get_split(name: str) -> ZeroShotSplit:
    """Look a split up by name, e.g. ``get_split("ntu120_96_24")``.

    ``<dataset>_random<K>_seed<S>`` (e.g. ``ntu120_random24_seed0``) builds :func:`random_split` on the fly.

    Raises:
        KeyError: for an unknown name, listing the available ones (and the closest).
    """
    if name in _EXTRA:
        return _EXTRA[name]
    splits = {**_builtin(), **_EXTRA}
    if name in splits:
        return splits[name]
    m = _RANDOM.match(name)
    if m and m["dataset"] in known_datasets():
        return random_split(m["dataset"], int(m["k"]), int(m["seed"]))
    close = difflib.get_close_matches(name, list(splits), n=3, cutoff=0.6)
    raise KeyError(
        f"unknown zero-shot split {name!r}{f' (did you mean {close}?)' if close else ''}; available: "
        f"{', '.join(sorted(splits))}; or a random split <dataset>_random<K>_seed<S> (e.g. ntu120_random24_seed0), "
        "or register your own with purls_pl.data.splits.register_split"
    )


def classes_without_samples(
    split: ZeroShotSplit, labels: Sequence[int], partition: Sequence[str], unseen_from: str = "test"
) -> dict[str, tuple[int, ...]]:
    """Classes of ``split`` that a dataset leaves empty, per sample set.

    Args:
        split: The split.
        labels: ``(N,)`` class index per sample.
        partition: ``(N,)`` ``"train"`` / ``"test"`` per sample.
        unseen_from: ``"test"`` or ``"all"``, as in the datamodules.

    Returns:
        ``{"seen_train": seen classes with no train sample, "unseen_test": unseen classes with no
        evaluated sample}``; both empty when every class is covered (a ``max_samples`` subset or a
        partial download may leave classes out, which silently shrinks training or evaluation).
    """
    have_train = {int(c) for c, p in zip(labels, partition, strict=True) if p == "train"}
    have_eval = {int(c) for c, p in zip(labels, partition, strict=True) if unseen_from == "all" or p == "test"}
    return {
        "seen_train": tuple(c for c in split.seen if c not in have_train),
        "unseen_test": tuple(c for c in split.unseen if c not in have_eval),
    }
