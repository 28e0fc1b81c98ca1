"""Kinetics-skeleton (st-gcn): OpenPose 2-D poses of Kinetics-400 clips, raw json or processed arrays.

Raw layout (``kinetics-skeleton.zip`` from the st-gcn repository, https://github.com/yysijie/st-gcn,
``tools/get_models.sh`` / the Google Drive and BaiduYun links in its README)::

    <root>/kinetics_train/<clip>.json   <root>/kinetics_train_label.json
    <root>/kinetics_val/<clip>.json     <root>/kinetics_val_label.json

(a flat ``<root>/<clip>.json`` + ``<root>/kinetics_val_label.json`` folder also works). A clip json is
``{"data": [{"frame_index": i, "skeleton": [{"pose": [x0, y0, x1, y1, ...], "score": [s0, ...]}, ...]}, ...],
"label": ..., "label_index": ...}`` with 18 OpenPose joints and x, y normalised to [0, 1]; a label
json maps ``clip_id -> {"has_skeleton", "label", "label_index"}``.

:func:`read_kinetics_clip` follows st-gcn's ``feeder_kinetics``: up to ``num_person_in`` (5) people
per frame are read, each frame's people are ranked by their summed joint score and the best
``max_persons`` (2) kept (OpenPose does not track identities, so the ranking is per frame);
channels are (x, y, score); x, y are shifted by -0.5 and zeroed where the score is 0.
Clips whose label entry says ``has_skeleton: false`` are skipped, as st-gcn does.
Kinetics-200 is classes 0..199 of Kinetics-400.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from purls_pl.data.cache import (
    SourceBase,
    allocate,
    array_shape,
    fill_processed,
    find_stgcn_files,
    iter_array_rows,
    load_label_pickle,
    missing_root_error,
    pick_evenly,
)
from purls_pl.data.preprocess import check_temporal, preprocess_sequence
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import class_names

__all__ = ["KineticsProcessedSource", "KineticsSource", "read_kinetics_clip"]

NUM_JOINTS = 18
_READER_VERSION = 1
_SPLITS = {"train": "train", "val": "test"}
HOW_TO_GET = (
    "Download kinetics-skeleton.zip as linked from the st-gcn README (https://github.com/yysijie/st-gcn) and "
    "unzip it into <root>, giving kinetics_train/, kinetics_val/ and their *_label.json files."
)


def _check_dataset(dataset: str) -> int:
    if dataset not in ("kinetics400", "kinetics200"):
        raise ValueError(f"dataset must be 'kinetics400' or 'kinetics200', got {dataset!r}")
    return 400 if dataset == "kinetics400" else 200


def read_kinetics_clip(
    path: str | Path, max_frames: int = 300, num_person_in: int = 5, max_persons: int = 2
) -> tuple[np.ndarray, int]:
    """Read one st-gcn Kinetics json clip and keep each frame's best ``max_persons`` people.

    Args:
        path: The clip's ``.json``.
        max_frames: Frames kept (``frame_index`` beyond it is dropped); st-gcn uses 300.
        num_person_in: People read per frame, in file order, before ranking (st-gcn: 5).
        max_persons: People kept per frame after ranking by summed joint score (st-gcn: 2).

    Returns:
        Raw ``(max_persons, max_frames, 18, 3)`` float32 (x, y, score; not yet normalised) and the
        clip's ``label_index`` from the file (-1 if absent).
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text())
        frames = info["data"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not an st-gcn Kinetics clip json ({err}); expected an object with a 'data' list "
            "of {frame_index, skeleton}; re-extract it from kinetics-skeleton.zip"
        ) from None
    raw = np.zeros((num_person_in, max_frames, NUM_JOINTS, 3), dtype=np.float32)
    if not all(isinstance(f, dict) and isinstance(f.get("frame_index"), int) for f in frames):
        raise ValueError(
            f"{path}: every entry of 'data' needs an integer 'frame_index' and a 'skeleton' list; "
            "re-extract the clip from kinetics-skeleton.zip"
        )
    base = 0 if any(f["frame_index"] == 0 for f in frames) else 1
    for frame in frames:
        t = frame["frame_index"] - base
        if not 0 <= t < max_frames:
            continue
        for m, person in enumerate(frame.get("skeleton", [])[:num_person_in]):
            pose, score = person.get("pose", []), person.get("score", [])
            if len(pose) != 2 * NUM_JOINTS or len(score) != NUM_JOINTS:
                raise ValueError(
                    f"{path}: frame_index {frame['frame_index']}, person {m}: 'pose' has {len(pose)} "
                    f"values and 'score' {len(score)}; expected {2 * NUM_JOINTS} and {NUM_JOINTS} "
                    "(18 OpenPose joints); regenerate the clip with the st-gcn OpenPose pipeline"
                )
            raw[m, t, :, 0] = pose[0::2]
            raw[m, t, :, 1] = pose[1::2]
            raw[m, t, :, 2] = score
    order = np.argsort(-raw[..., 2].sum(axis=2), axis=0, kind="stable")  # (P, T): per-frame ranking
    ranked = np.take_along_axis(raw, order[:, :, None, None], axis=0)
    out = np.zeros((max_persons, max_frames, NUM_JOINTS, 3), dtype=np.float32)
    keep = min(max_persons, num_person_in)
    out[:keep] = ranked[:keep]
    return out, int(info.get("label_index", -1))


class KineticsSource(SourceBase):
    """Kinetics-skeleton from the st-gcn json clips.

    Args:
        root: Folder with ``kinetics_train/`` + ``kinetics_train_label.json`` and/or ``kinetics_val/`` +
            ``kinetics_val_label.json`` (or a flat folder of clip jsons next to ``kinetics_val_label.json``).
        dataset: ``"kinetics400"`` or ``"kinetics200"`` (classes 0..199 only).
        split: ``"train"``, ``"val"`` or ``"both"``; train -> partition ``"train"``, val -> ``"test"``.
        num_frames: Frames per sample (st-gcn: 300).
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` to ``num_frames``.
        max_persons: People kept per frame (st-gcn: 2).
        num_person_in: People read per frame before ranking (st-gcn: 5).
        normalize: st-gcn centralization (x, y - 0.5, zero where score is 0).
        center: Also subtract the first frame's neck (layout ``openpose18`` center) from x, y.
        max_samples: Read only this many clips, evenly spaced over the sorted list (quick runs).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the processed arrays there.
    """

    layout = "openpose18"

    def __init__(
        self,
        root: str,
        dataset: str = "kinetics400",
        split: str = "both",
        num_frames: int = 300,
        temporal: str = "pad",
        max_persons: int = 2,
        num_person_in: int = 5,
        normalize: bool = True,
        center: bool = False,
        max_samples: int | None = None,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        self.num_classes = _check_dataset(dataset)
        if split not in ("train", "val", "both"):
            raise ValueError(f"split must be 'train', 'val' or 'both', got {split!r}")
        check_temporal(temporal)
        self.root, self.dataset, self.split, self.num_frames, self.temporal = root, dataset, split, num_frames, temporal
        self.max_persons, self.num_person_in, self.normalize, self.center = (
            max_persons,
            num_person_in,
            normalize,
            center,
        )
        self.max_samples, self.cache_dir, self.cache = max_samples, cache_dir, cache

    def _clips(self) -> tuple[list[tuple[Path, str, int]], list[Path]]:
        """``[(clip json, partition, label)]`` and the label files read."""
        root = Path(self.root).expanduser()
        expected = "kinetics_{train,val}/ clip folders with kinetics_{train,val}_label.json"
        if not root.is_dir():
            raise missing_root_error(root, "Kinetics-skeleton", expected, HOW_TO_GET)
        clips: list[tuple[Path, str, int]] = []
        label_files: list[Path] = []
        splits = list(_SPLITS) if self.split == "both" else [self.split]
        for split in splits:
            label_file = root / f"kinetics_{split}_label.json"
            folder = root / f"kinetics_{split}"
            if not folder.is_dir():
                folder = root
            files = [p for p in sorted(folder.glob("*.json")) if not p.name.endswith("_label.json")]
            if not label_file.is_file() or not files:
                continue
            label_files.append(label_file)
            labels = json.loads(label_file.read_text())
            for p in files:
                entry = labels.get(p.stem)
                if entry is None:
                    raise ValueError(
                        f"{label_file}: no entry for clip {p.stem!r} ({p}); use the label file that "
                        "came with the clips or remove the clip"
                    )
                if entry.get("has_skeleton", True) and int(entry["label_index"]) < self.num_classes:
                    clips.append((p, _SPLITS[split], int(entry["label_index"])))
        if not label_files:
            raise missing_root_error(root, "Kinetics-skeleton", expected, HOW_TO_GET, empty=True)
        return pick_evenly(clips, self.max_samples), label_files

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the clips: data ``(N, max_persons, num_frames, 18, 3)``."""
        clips, label_files = self._clips()
        params = {
            "reader": f"{self.dataset}-json-{self.split}",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_persons": self.max_persons,
            "num_person_in": self.num_person_in,
            "normalize": self.normalize,
            "center": self.center,
            "max_samples": self.max_samples,
        }
        return self._cached(params, [c[0] for c in clips] + label_files, lambda: self._build(clips))

    def _build(self, clips: list[tuple[Path, str, int]]) -> SkeletonSet:
        data = allocate((len(clips), self.max_persons, self.num_frames, NUM_JOINTS, 3))
        lengths = np.zeros(len(clips), np.int64)
        mismatched = []
        for i, (path, _, label) in enumerate(clips):
            raw, file_label = read_kinetics_clip(path, max(300, self.num_frames), self.num_person_in, self.max_persons)
            if file_label not in (-1, label):
                mismatched.append(path.stem)
            data[i], lengths[i] = preprocess_sequence(
                raw,
                self.layout,
                self.num_frames,
                self.temporal,  # type: ignore[arg-type]
                center=self.center,
                normalize_kinetics=self.normalize,
            )
        if mismatched:
            warnings.warn(
                f"{len(mismatched)} clip(s) disagree with the label file on label_index; the label file "
                f"wins: {', '.join(mismatched[:5])}",
                stacklevel=3,
            )
        return SkeletonSet(
            data=data,
            labels=np.array([c[2] for c in clips], np.int64),
            sample_ids=[c[0].stem for c in clips],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array([c[1] for c in clips], dtype="<U5"),
            lengths=lengths,
        )


class KineticsProcessedSource(SourceBase):
    """Kinetics-skeleton from st-gcn's processed ``{train,val}_data.npy`` ``(N, 3, 300, 18, 2)`` + ``_label.pkl``.

    The arrays are taken as already normalised (st-gcn's ``kinetics_gendata.py`` output). train ->
    partition ``"train"``, val -> ``"test"``; either split may be absent.

    Args:
        root: Folder holding ``train_data.npy``, ``train_label.pkl``, ``val_data.npy``, ``val_label.pkl``.
        dataset: ``"kinetics400"`` or ``"kinetics200"`` (keeps classes 0..199 only).
        num_frames: Refit every sequence to this many frames; ``None`` keeps the stored 300.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` (with ``num_frames``).
        max_samples: Keep only this many samples, evenly spaced (quick runs).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the converted arrays there (memory-mapped afterwards).
    """

    layout = "openpose18"

    def __init__(
        self,
        root: str,
        dataset: str = "kinetics400",
        num_frames: int | None = None,
        temporal: str = "pad",
        max_samples: int | None = None,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        self.num_classes = _check_dataset(dataset)
        check_temporal(temporal)
        self.root, self.dataset, self.num_frames, self.temporal = root, dataset, num_frames, temporal
        self.max_samples, self.cache_dir, self.cache = max_samples, cache_dir, cache

    def load(self) -> SkeletonSet:
        """Convert (or take from the cache) the arrays: data ``(N, 2, T, 18, 3)``."""
        root = Path(self.root).expanduser()
        expected = "train_data.npy + train_label.pkl and/or val_data.npy + val_label.pkl (st-gcn kinetics_gendata.py)"
        if not root.is_dir():
            raise missing_root_error(root, "processed Kinetics-skeleton", expected, HOW_TO_GET)
        parts = [(s, f) for s in _SPLITS if (f := find_stgcn_files([root], s, ("{split}_data.npy",)))]
        if not parts:
            raise missing_root_error(root, "processed Kinetics-skeleton", expected, HOW_TO_GET, empty=True)
        params = {
            "reader": f"{self.dataset}-stgcn",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_samples": self.max_samples,
        }
        return self._cached(params, [p for _, f in parts for p in f], lambda: self._build(parts))

    def _build(self, parts: list[tuple[str, tuple[Path, Path]]]) -> SkeletonSet:
        ids: list[str] = []
        labels: list[int] = []
        partition: list[str] = []
        readers = []
        tail = (0, 0, 0, 0)
        for split, (data_path, label_path) in parts:
            shape = array_shape(data_path)
            if len(shape) != 5 or shape[1] != 3 or shape[3] != NUM_JOINTS:
                raise ValueError(
                    f"{data_path}: shape {shape}; expected (N, 3, T, 18, M) from st-gcn kinetics_gendata.py"
                )
            names, lab = load_label_pickle(label_path)
            if len(names) != shape[0]:
                raise ValueError(
                    f"{label_path}: {len(names)} labels for {shape[0]} samples in {data_path}; "
                    "regenerate the two files together"
                )
            ids += [Path(n).stem for n in names]
            labels += lab
            partition += [_SPLITS[split]] * shape[0]
            readers.append((iter_array_rows(data_path), lambda a: a.transpose(0, 4, 2, 3, 1)))
            if tail[0] and tail != (shape[4], shape[2], NUM_JOINTS, 3):
                raise ValueError(f"{data_path}: shape {shape} differs from the other split's; regenerate both")
            tail = (shape[4], shape[2], NUM_JOINTS, 3)
        bad = sorted({x for x in labels if not 0 <= x < 400})
        if bad:
            raise ValueError(f"{parts[0][1][1]}: labels {bad[:5]} outside 0..399; not a Kinetics-400 label file")
        wanted = [i for i, x in enumerate(labels) if x < self.num_classes]
        select = np.asarray(pick_evenly(wanted, self.max_samples), dtype=np.int64)
        data, lengths = fill_processed(readers, len(ids), select, tail, self.num_frames, self.temporal)
        return SkeletonSet(
            data=data,
            labels=np.array(labels, np.int64)[select],
            sample_ids=[ids[i] for i in select],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array(partition, dtype="<U5")[select],
            lengths=lengths,
        )
