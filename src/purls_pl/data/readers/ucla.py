"""NW-UCLA Multiview Action3D skeletons in the common ``all_sqe`` json form.

Each ``<root>/aAA_sSS_eEE_vVV.json`` is ``{"file_name": "aAA_sSS_eEE_vVV", "skeletons": [[[x, y, z] x 20] x T]}``
(Kinect v1, 20 joints, one person). Actions a01-a06, a08, a09, a11, a12 are classes 0-9 in that
order (a07 and a10 do not exist); the standard protocol trains on views 1-2 and tests on view 3.

Sequences of any length >= 1 are kept, including the real single-frame one. A broken file
(truncated json, a joint count other than 20, NaN/inf, 0 frames, a name that is no NW-UCLA sample
name) raises an error naming it, or with ``on_error="skip"`` is left out and listed in one report
(see :mod:`purls_pl.data.readers._base`). ``num_workers`` parses in parallel processes.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import numpy as np

from purls_pl.data.cache import allocate
from purls_pl.data.catalog import class_names
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton, class_path
from purls_pl.data.readers._base import (
    Conversion,
    SampleError,
    SkippedSample,
    SourceBase,
    check_values,
    collect_converted,
    convert_files,
    json_keys,
    missing_root_error,
    pick_evenly,
    reject,
)
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["UCLA_ACTIONS", "UCLASource", "parse_ucla_name", "read_ucla_file"]

#: Action number -> class index.
UCLA_ACTIONS: dict[int, int] = {a: i for i, a in enumerate((1, 2, 3, 4, 5, 6, 8, 9, 11, 12))}
UCLA_TRAIN_VIEWS: tuple[int, ...] = (1, 2)
_NAME = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)$")
_READER_VERSION = 2  # 2: skipped files recorded in the manifest
FIX_FILE = "re-extract the file from the all_sqe archive or remove it"
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
    """One ``all_sqe`` json -> ``(1, T, 20, 3)`` float32 (``T >= 1``), exactly as written.

    Raises:
        SampleError: (a ``ValueError``) naming the file, what is wrong and the fix: not json /
            truncated, no ``skeletons`` field, 0 frames, a joint count other than 20, NaN/inf, or a
            ``file_name`` that differs from the file's name.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_bytes())
        seq = np.asarray(info["skeletons"], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as err:
        raise SampleError(
            path,
            f"cannot read field 'skeletons' ({type(err).__name__}: {err}); expected "
            "{'file_name': ..., 'skeletons': [[[x, y, z] x 20] x T]}",
            FIX_FILE,
        ) from None
    if seq.size == 0:
        raise SampleError(path, "'skeletons' holds 0 frames (an empty sequence)", FIX_FILE)
    if seq.ndim != 3 or seq.shape[1:] != (20, 3):
        raise SampleError(path, f"'skeletons' has shape {seq.shape}; expected (T >= 1, 20 joints, 3)", FIX_FILE)
    check_values(path, seq, "'skeletons'", FIX_FILE)
    if info.get("file_name", path.stem) != path.stem:
        raise SampleError(
            path,
            f"field 'file_name' is {info['file_name']!r} but the file is named {path.stem!r}",
            "rename the file to match its content",
        )
    return seq[None]


def _process_ucla(path: Path, *, preprocessing: Preprocessing) -> tuple[np.ndarray, int, int]:
    """One file -> ``((1, num_frames, 20, 3), valid frames, raw frame count)``."""
    raw = UCLASource.read_file(path, preprocessing)
    return (*preprocessing.apply(raw), raw.data.shape[1])


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
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    dataset = "nw-ucla"
    suffixes = (".json",)
    file_format = "NW-UCLA all_sqe .json (a 'skeletons' list)"

    def __init__(
        self,
        root: str,
        num_frames: int = 52,
        temporal: str = "resample",
        center: bool = True,
        align: bool = False,
        conversion: Conversion | None = None,
    ) -> None:
        check_temporal(temporal)
        self.root, self.num_frames, self.temporal, self.center, self.align = root, num_frames, temporal, center, align
        self.conversion = Conversion.of(conversion)

    @property
    def preprocessing(self) -> Preprocessing:
        """Center (optionally align) each sequence, then fit it to ``num_frames``."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            center=self.center,
            align=self.align,
            num_persons=1,
            channels=3,
            reader=class_path(UCLASource),
        )

    @classmethod
    def can_read(cls, path: Path) -> bool:
        """A ``.json`` file holding an object with a ``skeletons`` list."""
        return path.suffix.lower() in cls.suffixes and "skeletons" in json_keys(path)

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One ``all_sqe`` json as written (:func:`read_ucla_file`)."""
        return RawSkeleton(read_ucla_file(path), str(path), "kinect20", fix=FIX_FILE)

    def _files(self) -> tuple[list[tuple[Path, dict[str, int]]], list[SkippedSample]]:
        """The files with their parsed names, and those left out for a bad name."""
        root = Path(self.root).expanduser()
        expected = "aAA_sSS_eEE_vVV.json files (NW-UCLA all_sqe)"
        if not root.is_dir():
            raise missing_root_error(root, "NW-UCLA", expected, HOW_TO_GET)
        files = sorted(root.glob("a*_s*_e*_v*.json")) or sorted(root.glob("*/a*_s*_e*_v*.json"))
        if not files:
            raise missing_root_error(root, "NW-UCLA", expected, HOW_TO_GET, empty=True)
        named: list[tuple[Path, dict[str, int]]] = []
        skipped: list[SkippedSample] = []
        for f in files:
            try:
                named.append((f, parse_ucla_name(f.name)))
            except ValueError as err:
                problem = str(err).removeprefix(f"{f.name!r}: ").removeprefix(f"{f.name!r} ").split("; rename")[0]
                reject(self.on_error, skipped, f, problem, "rename or remove the file")
        return pick_evenly(named, self.max_samples), skipped

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the set: data ``(N, 1, num_frames, 20, 3)``."""
        files, skipped = self._files()
        params = {
            "reader": "nw-ucla-json",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "center": self.center,
            "align": self.align,
            "max_samples": self.max_samples,
        }
        return self._cached(params, [f for f, _ in files], lambda found: self._build(files, found), skipped)

    def _build(self, files: list[tuple[Path, dict[str, int]]], skipped: list[SkippedSample]) -> SkeletonSet:
        work = partial(_process_ucla, preprocessing=self.preprocessing)
        data = allocate((len(files), 1, self.num_frames, 20, 3))
        converted = convert_files(
            work,
            [f for f, _ in files],
            on_error=self.on_error,
            skipped=skipped,
            num_workers=self.num_workers,
            desc="nw-ucla",
        )
        kept, extras = collect_converted(converted, data, str(self.root), len(files), skipped)
        lengths, raw_frames = zip(*extras, strict=True)
        names = [files[i][1] for i in kept]
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array([n["label"] for n in names], np.int64),
            sample_ids=[files[i][0].stem for i in kept],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array(["train" if n["view"] in UCLA_TRAIN_VIEWS else "test" for n in names], dtype="<U5"),
            lengths=np.array(lengths, np.int64),
            meta={
                "raw_frames": np.array(raw_frames, np.int64),
                **{k: np.array([n[k] for n in names], np.int64) for k in ("action", "subject", "episode", "view")},
            },
        )
