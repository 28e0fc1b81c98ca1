"""The dataset catalog: one card per dataset, the only place its facts are written down.

A :class:`DatasetCard` says what a dataset *is*: its classes (stored in ``class_names.json``, or the
first ``k`` of a parent dataset's: NTU-60 = NTU-120[:60], Kinetics-200 = Kinetics-400[:200]), its
skeleton layout, the reader that parses its raw files and where the experiments expect them, the
sample-level train/test protocols that reader offers, and the description set shipped for it.
Splits (:mod:`purls_pl.data.splits`), readers, the datamodule and the experiment files all look
these facts up here.

A custom dataset (:class:`~purls_pl.data.readers.CustomSource`) carries its facts in its own folder
(``classes.txt``, ``layout.json``) and needs no card.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from purls_pl.data.demo.programs import DEMO_CLASS_NAMES
from purls_pl.data.layouts import NTU25

__all__ = ["DatasetCard", "card", "cards", "class_names", "known_datasets"]


@dataclass(frozen=True)
class DatasetCard:
    """What the project knows about one dataset.

    Args:
        key: Dataset key used by splits and configs, e.g. ``"ntu120"``.
        title: Human-readable name.
        layout: Skeleton layout of its samples (:mod:`purls_pl.data.layouts`).
        reader: Class path of the reader of its raw files.
        root: Where the experiment files expect the raw files (relative to the repository).
        protocols: The reader's sample-level train/test protocols, name -> what trains and what tests;
            the first is the default.
        descriptions: File of its description set in ``descriptions/`` (``None``: none shipped).
        parent: Dataset whose first :attr:`num_classes` classes are this one's.
        num_classes: Class count when :attr:`parent` is set.
    """

    key: str
    title: str
    layout: str
    reader: str
    root: str
    protocols: Mapping[str, str] = field(default_factory=dict)
    descriptions: str | None = None
    parent: str | None = None
    num_classes: int | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label names in class-index order."""
        return tuple(class_names(self.key))


_READERS = "purls_pl.data.readers"
_NTU_XSUB = "the cross-subject training performers train, the others test"
_CARDS: tuple[DatasetCard, ...] = (
    DatasetCard(
        "ntu120",
        "NTU RGB+D 120",
        "ntu25",
        f"{_READERS}.NTUSkeletonSource",
        "data/ntu/nturgb+d_skeletons",
        {"xsub": _NTU_XSUB, "xset": "even setup ids train, odd ones test"},
        "ntu120.json",
    ),
    DatasetCard(
        "ntu60",
        "NTU RGB+D 60",
        "ntu25",
        f"{_READERS}.NTUSkeletonSource",
        "data/ntu/nturgb+d_skeletons",
        {"xsub": _NTU_XSUB, "xview": "cameras 2 and 3 train, camera 1 tests"},
        "ntu120.json",
        parent="ntu120",
        num_classes=60,
    ),
    DatasetCard(
        "kinetics400",
        "Kinetics-400 skeletons",
        "openpose18",
        f"{_READERS}.KineticsSource",
        "data/kinetics",
        {"standard": "kinetics_train clips train, kinetics_val clips test"},
        "kinetics400.json",
    ),
    DatasetCard(
        "kinetics200",
        "Kinetics-200 skeletons",
        "openpose18",
        f"{_READERS}.KineticsSource",
        "data/kinetics",
        {"standard": "kinetics_train clips train, kinetics_val clips test"},
        "kinetics400.json",
        parent="kinetics400",
        num_classes=200,
    ),
    DatasetCard(
        "nw-ucla",
        "Northwestern-UCLA Multiview Action3D",
        "kinect20",
        f"{_READERS}.UCLASource",
        "data/nw-ucla/all_sqe",
        {"standard": "views 1 and 2 train, view 3 tests"},
        "nw-ucla.json",
    ),
    DatasetCard(
        "penn-action",
        "Penn Action",
        "penn13",
        f"{_READERS}.PennActionSource",
        "data/penn-action/labels",
        {"standard": "the dataset's own split: files with train = 1 train (1258), train = -1 test (1068)"},
        "penn-action.json",
    ),
    DatasetCard(
        "demo",
        "Embedded procedural demo",
        NTU25.name,
        "purls_pl.data.demo.DemoSource",
        "",
        {"standard": "a stratified share of each class tests (test_fraction)"},
        None,
    ),
)


@cache
def _stored_class_names() -> dict[str, list[str]]:
    raw = json.loads(resources.files("purls_pl.data").joinpath("class_names.json").read_text())
    return {k: v for k, v in raw.items() if isinstance(v, list)}


def cards() -> dict[str, DatasetCard]:
    """Every dataset card by key."""
    return {c.key: c for c in _CARDS}


def known_datasets() -> list[str]:
    """Keys of the catalogued datasets."""
    return sorted(cards())


def card(dataset: str) -> DatasetCard:
    """The card of ``dataset``.

    Raises:
        KeyError: naming the known datasets (and the closest), and how to use a dataset of your own.
    """
    found = cards().get(dataset)
    if found is None:
        close = difflib.get_close_matches(dataset, known_datasets(), n=2, cutoff=0.6)
        raise KeyError(
            f"unknown dataset {dataset!r}{f' (did you mean {close}?)' if close else ''}; known: "
            f"{', '.join(known_datasets())}. A dataset of your own is read with purls_pl.data.readers.CustomSource, "
            "whose folder holds its classes (classes.txt) and layout (layout.json)"
        )
    return found


def class_names(dataset: str) -> list[str]:
    """Label names in class-index order of a catalogued dataset (``ntu120``, ``kinetics400``, ...)."""
    entry = card(dataset)
    if entry.key == "demo":
        return list(DEMO_CLASS_NAMES)
    if entry.parent is not None:
        return class_names(entry.parent)[: entry.num_classes]
    return list(_stored_class_names()[entry.key])
