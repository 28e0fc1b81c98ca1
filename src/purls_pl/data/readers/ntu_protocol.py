"""NTU RGB+D sample names and evaluation protocols, shared by the raw and the processed readers.

A sample ``SsssCcccPpppRrrrAaaa`` is setup ``sss``, camera ``ccc``, performer ``ppp``, replication
``rrr``, action ``aaa`` (all 1-based). Protocols (which samples are ``"train"`` / ``"test"``):

* ``xsub`` (cross-subject): the performers in :data:`NTU60_TRAIN_SUBJECTS` (NTU-60, 20 of 40) or
  :data:`NTU120_TRAIN_SUBJECTS` (NTU-120, 53 of 106) train, the others test;
* ``xview`` (cross-view, NTU-60): cameras 2 and 3 train, camera 1 tests;
* ``xset`` (cross-setup, NTU-120): even setup ids train, odd ones test;
* ``all``: every sample train (for splits evaluated with ``unseen_from="all"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HOW_TO_GET_RAW",
    "NTU60_TRAIN_SUBJECTS",
    "NTU120_TRAIN_SUBJECTS",
    "PROTOCOLS",
    "XVIEW_TRAIN_CAMERAS",
    "NTUSampleName",
    "check_dataset_protocol",
    "ntu_partition",
]

#: Cross-subject training performers (Shahroudy et al. CVPR 2016; the other 20 are test).
NTU60_TRAIN_SUBJECTS: tuple[int, ...] = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
#: NTU-120 cross-subject training performers (Liu et al. TPAMI 2019), 53 of 106.
NTU120_TRAIN_SUBJECTS: tuple[int, ...] = (
    *NTU60_TRAIN_SUBJECTS,
    *(45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93),
    *(94, 95, 97, 98, 100, 103),
)
#: Cross-view: cameras 2 and 3 train, camera 1 tests. Cross-setup: even setup ids train.
XVIEW_TRAIN_CAMERAS: tuple[int, ...] = (2, 3)
PROTOCOLS = {
    "xsub": "xsub",
    "csub": "xsub",
    "cs": "xsub",
    "xview": "xview",
    "cv": "xview",
    "xset": "xset",
    "cset": "xset",
    "all": "all",
}
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
HOW_TO_GET_RAW = (
    "Request 'NTU RGB+D' (and '120') from the ROSE lab, https://rose1.ntu.edu.sg/dataset/actionRecognition/, "
    "then unzip nturgbd_skeletons_s001_to_s017.zip (NTU-60; add nturgbd_skeletons_s018_to_s032.zip for NTU-120) "
    "so the .skeleton files lie in <root> or one folder below it."
)


@dataclass(frozen=True)
class NTUSampleName:
    """The fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (all 1-based)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class index (``action - 1``)."""
        return self.action - 1

    @classmethod
    def parse(cls, name: str) -> NTUSampleName:
        """Parse a name or path such as ``S001C002P003R002A013.skeleton``."""
        m = _NAME.search(Path(name).name)
        if m is None:
            raise ValueError(
                f"{name!r} is not an NTU sample name; expected SsssCcccPpppRrrrAaaa (e.g. "
                "S001C002P003R002A013.skeleton); rename the file or remove it from the folder"
            )
        return cls(*(int(g) for g in m.groups()))


def ntu_partition(name: NTUSampleName, dataset: str, protocol: str) -> str:
    """``"train"`` or ``"test"`` for ``protocol`` ``xsub`` / ``xview`` / ``xset`` / ``all`` (every sample train)."""
    protocol = PROTOCOLS[protocol]
    if protocol == "xsub":
        train = name.subject in (NTU60_TRAIN_SUBJECTS if dataset == "ntu60" else NTU120_TRAIN_SUBJECTS)
    elif protocol == "xview":
        train = name.camera in XVIEW_TRAIN_CAMERAS
    elif protocol == "xset":
        train = name.setup % 2 == 0
    else:
        train = True
    return "train" if train else "test"


def check_dataset_protocol(dataset: str, protocol: str) -> str:
    """Validate ``dataset`` / ``protocol`` and return the canonical protocol name."""
    if dataset not in ("ntu60", "ntu120"):
        raise ValueError(f"dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(set(PROTOCOLS.values()))}, got {protocol!r}")
    return PROTOCOLS[protocol]
