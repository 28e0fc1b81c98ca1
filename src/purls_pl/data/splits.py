"""Zero-shot split registry: which classes are seen (trained on) and unseen (evaluated on).

The paper's splits (``ntu60_55_5`` ... ``kinetics200_120_80``, ``nw-ucla_8_2``, ``nw-ucla_5_5``)
ship in ``splits.json``; the embedded demo registers its own. A user adds a split with
:func:`register_split` or passes explicit class lists to :class:`ZeroShotSplit`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class ZeroShotSplit:
    """Seen and unseen class indices of one dataset.

    Args:
        name: Split key, e.g. ``"ntu120_96_24"``.
        dataset: Dataset key of the class list, e.g. ``"ntu120"``.
        num_classes: Size of the dataset's full class list.
        seen: Class indices available in training.
        unseen: Class indices only ever evaluated.
    """

    name: str
    dataset: str
    num_classes: int
    seen: tuple[int, ...]
    unseen: tuple[int, ...]

    def __post_init__(self) -> None:
        overlap = sorted(set(self.seen) & set(self.unseen))
        if overlap:
            raise ValueError(f"split {self.name!r}: classes {overlap} are both seen and unseen")
        out = [c for c in (*self.seen, *self.unseen) if not 0 <= c < self.num_classes]
        if out:
            raise ValueError(f"split {self.name!r}: classes {out} are outside 0..{self.num_classes - 1}")
        if len(set(self.seen)) != len(self.seen) or len(set(self.unseen)) != len(self.unseen):
            raise ValueError(f"split {self.name!r}: a class is listed twice")


_EXTRA: dict[str, ZeroShotSplit] = {}


@cache
def _paper_splits() -> dict[str, ZeroShotSplit]:
    raw = json.loads(resources.files("purls_pl.data").joinpath("splits.json").read_text())["splits"]
    return {
        name: ZeroShotSplit(name, s["dataset"], int(s["num_classes"]), tuple(s["seen"]), tuple(s["unseen"]))
        for name, s in raw.items()
    }


def register_split(split: ZeroShotSplit) -> ZeroShotSplit:
    """Make ``split`` available by name (``split: <name>`` in configs)."""
    _EXTRA[split.name] = split
    return split


def available_splits() -> list[str]:
    return sorted({**_paper_splits(), **_EXTRA})


def get_split(name: str) -> ZeroShotSplit:
    """Look a split up by name, e.g. ``get_split("ntu120_96_24")``."""
    if name in _EXTRA:
        return _EXTRA[name]
    if name.startswith("demo"):
        import purls_pl.data.synthetic  # noqa: F401  (registers the demo splits)
    splits = {**_paper_splits(), **_EXTRA}
    if name not in splits:
        raise KeyError(f"unknown zero-shot split {name!r}; available: {', '.join(sorted(splits))}")
    return splits[name]


@cache
def _class_names() -> dict[str, list[str]]:
    return json.loads(resources.files("purls_pl.data").joinpath("class_names.json").read_text())


def class_names(dataset: str) -> list[str]:
    """Label names in class-index order for a known dataset (``ntu120``, ``kinetics400``, ...)."""
    if dataset == "demo":
        from purls_pl.data.synthetic import DEMO_CLASS_NAMES

        return list(DEMO_CLASS_NAMES)
    names = _class_names()
    if dataset not in names:
        raise KeyError(f"no class list for dataset {dataset!r}; known: {', '.join(sorted(names))}")
    return list(names[dataset])
