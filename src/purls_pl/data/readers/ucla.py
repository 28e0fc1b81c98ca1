"""NW-UCLA Multiview Action3D skeletons in the common ``all_sqe`` json form.

Each ``<root>/aAA_sSS_eEE_vVV.json`` is ``{"file_name": "aAA_sSS_eEE_vVV", "skeletons": [[[x, y, z] x 20] x T]}``
(Kinect v1, 20 joints, one person). Actions a01-a06, a08, a09, a11, a12 are classes 0-9 in that
order (a07 and a10 do not exist); the standard protocol trains on views 1-2 and tests on view 3.
Sequences of any length are kept, including single-frame ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from purls_pl.data.cache import SourceBase, allocate, missing_root_error, pick_evenly
from purls_pl.data.preprocess import check_temporal, preprocess_sequence
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import class_names

__all__ = ["UCLA_ACTIONS", "UCLASource", "parse_ucla_name", "read_ucla_file"]

#: Action number -> class index.
UCLA_ACTIONS: dict[int, int] = {a: i for i, a in enumerate((1, 2, 3, 4, 5, 6, 8, 9, 11, 12))}
UCLA_TRAIN_VIEWS: tuple[int, ...] = (1, 2)
_NAME = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)$")
_READER_VERSION = 1
HOW_TO_GET = (
    "Download the NW-UCLA skeletons in the 'all_sqe' json form (linked from the CTR-GCN README, "
    "https://github.com/Uason-Chen/CTR-GCN, 'NW-UCLA' section; original data: "
    "http://wangjiangb.github.io/my_data.html) and unzip so the aAA_sSS_eEE_vVV.json files lie in <root>."
)


def parse_ucla_name(name: str) -> dict[str, int]:
    """``"a01_s02_e03_v01"`` -> ``{"action": 1, "subject": 2, "episode": 3, "view": 1, "label": 0}``."""
    m = _NAME.match(Path(name).name.removesuffix(".json"))
    if m is None:
        raise ValueError(
            f"{name!r} is not an NW-UCLA sample name; expected aAA_sSS_eEE_vVV(.json), e.g. "
            "a01_s01_e00_v01.json; rename or remove the file"
        )
    action, subject, episode, view = (int(g) for g in m.groups())
    if action not in UCLA_ACTIONS:
        raise ValueError(f"{name!r}: action a{action:02d} is not an NW-UCLA action (a01-a06, a08, a09, a11, a12)")
    return {"action": action, "subject": subject, "episode": episode, "view": view, "label": UCLA_ACTIONS[action]}


def read_ucla_file(path: str | Path) -> np.ndarray:
    """One ``all_sqe`` json -> ``(1, T, 20, 3)`` float32."""
    path = Path(path)
    try:
        info = json.loads(path.read_text())
        seq = np.asarray(info["skeletons"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: cannot read field 'skeletons' ({err}); expected "
            "{'file_name': ..., 'skeletons': [[[x, y, z] x 20] x T]}; re-extract the file"
        ) from None
    if seq.ndim != 3 or seq.shape[1:] != (20, 3) or len(seq) == 0:
        raise ValueError(f"{path}: 'skeletons' has shape {seq.shape}; expected (T >= 1, 20, 3)")
    if info.get("file_name", path.stem) != path.stem:
        raise ValueError(
            f"{path}: field 'file_name' is {info['file_name']!r} but the file is named {path.stem!r}; "
            "rename the file to match its content"
        )
    return seq[None]


class UCLASource(SourceBase):
    """NW-UCLA from the ``all_sqe`` json files (one person, layout ``kinect20``).

    ``lengths`` counts valid frames after the temporal fit (``num_frames`` with ``"resample"``);
    ``meta["raw_frames"]`` keeps each file's own frame count.

    Args:
        root: Folder holding the ``aAA_sSS_eEE_vVV.json`` files (directly or in ``all_sqe/``).
        num_frames: Frames per sample (CTR-GCN samples 52 from each sequence).
        temporal: ``"resample"`` (interpolate every sequence to ``num_frames``), ``"pad"`` or ``"loop"``.
        center: Subtract the first frame's spine joint (layout center).
        align: Rotate hip->spine to +z and shoulders to +x (off by default for NW-UCLA).
        max_samples: Read only this many files, evenly spaced over the sorted list (quick runs).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the processed arrays there.
    """

    dataset = "nw-ucla"
    layout = "kinect20"

    def __init__(
        self,
        root: str,
        num_frames: int = 52,
        temporal: str = "resample",
        center: bool = True,
        align: bool = False,
        max_samples: int | None = None,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        check_temporal(temporal)
        self.root, self.num_frames, self.temporal, self.center, self.align = root, num_frames, temporal, center, align
        self.max_samples, self.cache_dir, self.cache = max_samples, cache_dir, cache

    def _files(self) -> list[Path]:
        root = Path(self.root).expanduser()
        expected = "aAA_sSS_eEE_vVV.json files (NW-UCLA all_sqe)"
        if not root.is_dir():
            raise missing_root_error(root, "NW-UCLA", expected, HOW_TO_GET)
        files = sorted(root.glob("a*_s*_e*_v*.json")) or sorted(root.glob("*/a*_s*_e*_v*.json"))
        if not files:
            raise missing_root_error(root, "NW-UCLA", expected, HOW_TO_GET, empty=True)
        return pick_evenly(files, self.max_samples)

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the set: data ``(N, 1, num_frames, 20, 3)``."""
        files = self._files()
        params = {
            "reader": "nw-ucla-json",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "center": self.center,
            "align": self.align,
            "max_samples": self.max_samples,
        }
        return self._cached(params, files, lambda: self._build(files))

    def _build(self, files: list[Path]) -> SkeletonSet:
        names = [parse_ucla_name(f.name) for f in files]
        data = allocate((len(files), 1, self.num_frames, 20, 3))
        lengths = np.zeros(len(files), np.int64)
        raw_frames = np.zeros(len(files), np.int64)
        for i, f in enumerate(files):
            seq = read_ucla_file(f)
            raw_frames[i] = seq.shape[1]
            data[i], lengths[i] = preprocess_sequence(
                seq,
                self.layout,
                self.num_frames,
                self.temporal,  # type: ignore[arg-type]
                center=self.center,
                align=self.align,
            )
        return SkeletonSet(
            data=data,
            labels=np.array([n["label"] for n in names], np.int64),
            sample_ids=[f.stem for f in files],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array(["train" if n["view"] in UCLA_TRAIN_VIEWS else "test" for n in names], dtype="<U5"),
            lengths=lengths,
            meta={
                "raw_frames": raw_frames,
                **{k: np.array([n[k] for n in names], np.int64) for k in ("action", "subject", "episode", "view")},
            },
        )
