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
from dataclasses import dataclass
from functools import cache
from importlib import resources

from purls_pl.data.catalog import class_names, known_datasets
from purls_pl.data.demo.programs import UNSEEN_DEFAULT

__all__ = [
    "ZeroShotSplit",
    "available_splits",
    "builtin_splits",
    "classes_without_samples",
    "get_split",
    "random_split",
    "random_split_name",
    "register_split",
]

#: The embedded demo's split (15 seen, 5 unseen classes).
DEMO_SPLIT = "demo_15_5"
_RANDOM = re.compile(r"^(?P<dataset>.+)_random(?P<k>\d+)_seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class ZeroShotSplit:
    """The unseen classes of one dataset; every other class is seen.

    Args:
        name: Split key, e.g. ``"ntu120_96_24"``.
        dataset: Dataset key of the class list, e.g. ``"ntu120"``.
        num_classes: Size of the dataset's full class list.
        unseen: Class indices only ever evaluated (sorted, distinct, at least one, not all).
    """

    name: str
    dataset: str
    num_classes: int
    unseen: tuple[int, ...]

    def __post_init__(self) -> None:
        out = [c for c in self.unseen if not 0 <= c < self.num_classes]
        if out:
            raise ValueError(f"split {self.name!r}: classes {out} are outside 0..{self.num_classes - 1}")
        if len(set(self.unseen)) != len(self.unseen):
            raise ValueError(f"split {self.name!r}: a class is listed twice")
        if not self.unseen or len(self.unseen) >= self.num_classes:
            raise ValueError(
                f"split {self.name!r}: {len(self.unseen)} unseen of {self.num_classes} classes; a zero-shot split "
                "needs at least one unseen and one seen class"
            )
        object.__setattr__(self, "unseen", tuple(sorted(int(c) for c in self.unseen)))

    @property
    def seen(self) -> tuple[int, ...]:
        """Class indices available in training: every class that is not unseen."""
        unseen = set(self.unseen)
        return tuple(c for c in range(self.num_classes) if c not in unseen)

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


def random_split(dataset: str, num_unseen: int, seed: int = 0, classes: Sequence[str] | None = None) -> ZeroShotSplit:
    """A seeded random split of ``dataset`` with ``num_unseen`` unseen classes, registered by name.

    The unseen classes are the ``num_unseen`` indices with the smallest
    ``sha256(f"{dataset}:{seed}:{index}")``; the same arguments give the same split everywhere.

    Args:
        dataset: Dataset key (its class list fixes the class count).
        num_unseen: ``K``, between 1 and the class count - 1.
        seed: ``S``.
        classes: The class list, for a custom dataset (default: :func:`class_names` of ``dataset``).

    Returns:
        The split, also registered as :func:`random_split_name` ``(dataset, num_unseen, seed)``.
    """
    n = len(classes) if classes is not None else len(class_names(dataset))
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
