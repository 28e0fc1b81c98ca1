"""Kinetics-skeleton (st-gcn): OpenPose 2-D poses of Kinetics-400 clips, from the raw json clips.

Raw layout (``kinetics-skeleton.zip`` from the st-gcn repository, https://github.com/yysijie/st-gcn,
``tools/get_models.sh`` / the Google Drive and BaiduYun links in its README)::

    <root>/kinetics_train/<clip>.json   <root>/kinetics_train_label.json
    <root>/kinetics_val/<clip>.json     <root>/kinetics_val_label.json

(a flat ``<root>/<clip>.json`` + ``<root>/kinetics_val_label.json`` folder also works). A clip json is
``{"data": [{"frame_index": i, "skeleton": [{"pose": [x0, y0, x1, y1, ...], "score": [s0, ...]}, ...]}, ...],
"label": ..., "label_index": ...}`` with 18 OpenPose joints and x, y normalised to [0, 1]; a label
json maps ``clip_id -> {"has_skeleton", "label", "label_index"}``.

:func:`parse_kinetics_clip` returns the file's frames and people as written; :func:`read_kinetics_clip`
follows st-gcn's ``feeder_kinetics``: up to ``num_person_in`` (5) people per frame are read, each
frame's people are ranked by their summed joint score and the best ``max_persons`` (2) kept (OpenPose
does not track identities, so the ranking is per frame); channels are (x, y, score); x, y are shifted
by -0.5 and zeroed where the score is 0. Clips whose label entry says ``has_skeleton: false`` are
left out, as st-gcn does. Kinetics-200 is classes 0..199 of Kinetics-400.

A broken clip (truncated json, a frame without its ``skeleton`` list, a pose without 18 joints, NaN/inf
values, no frame or no person) or a
clip missing from the label file raises an error naming it, or with ``on_error="skip"`` is left out
and listed in one report (see :mod:`purls_pl.data.readers._base`). The processed arrays are read by
:class:`~purls_pl.data.readers.kinetics_processed.KineticsProcessedSource`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from purls_pl.data.cache import ResidentRows, allocate
from purls_pl.data.catalog import class_names
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton, class_path
from purls_pl.data.readers._base import (
    Conversion,
    SampleError,
    SkippedSample,
    SourceBase,
    convert_files,
    format_skipped,
    json_keys,
    missing_root_error,
    pick_evenly,
    reject,
)
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["KineticsFrame", "KineticsSource", "check_kinetics_dataset", "parse_kinetics_clip", "read_kinetics_clip"]

NUM_JOINTS = 18
_READER_VERSION = 3  # 2: skipped files recorded in the manifest; 3: a frame without 'skeleton' is refused
_SPLITS = {"train": "train", "val": "test"}
FIX_CLIP = "re-extract the clip from kinetics-skeleton.zip or remove it"
HOW_TO_GET = (
    "Download kinetics-skeleton.zip as linked from the st-gcn README (https://github.com/yysijie/st-gcn) and "
    "unzip it into <root>, giving kinetics_train/, kinetics_val/ and their *_label.json files."
)


def check_kinetics_dataset(dataset: str) -> int:
    """Number of classes of ``"kinetics400"`` (400) or ``"kinetics200"`` (200); else a ``ValueError``."""
    if dataset not in ("kinetics400", "kinetics200"):
        raise ValueError(f"dataset must be 'kinetics400' or 'kinetics200', got {dataset!r}")
    return 400 if dataset == "kinetics400" else 200


@dataclass(frozen=True)
class KineticsFrame:
    """One entry of a clip's ``data`` list, as written.

    Attributes:
        frame_index: The file's ``frame_index`` (1-based in st-gcn's files).
        poses: ``(P, 18, 2)`` float32 x, y of the ``P`` people in file order.
        scores: ``(P, 18)`` float32 OpenPose confidences.
    """

    frame_index: int
    poses: np.ndarray
    scores: np.ndarray


def parse_kinetics_clip(path: str | Path) -> tuple[list[KineticsFrame], int]:
    """Parse one st-gcn Kinetics json clip exactly as written (no ranking, no normalisation).

    Returns:
        The frames in file order and the clip's ``label_index`` (-1 if absent).

    Raises:
        SampleError: (a ``ValueError``) naming the file, the place and the fix: not json / truncated,
            no ``data`` list or an empty one, a frame without an integer ``frame_index`` or without a
            ``skeleton`` list (``[]`` is a frame with nobody), a person whose ``pose`` / ``score`` do not
            hold 2 x 18 / 18 numbers, NaN/inf values.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_bytes())
        frames = info["data"]
        if not isinstance(frames, list):
            raise TypeError(f"'data' is a {type(frames).__name__}, not a list")
    except (ValueError, KeyError, TypeError) as err:
        raise SampleError(
            path,
            f"not an st-gcn Kinetics clip json ({type(err).__name__}: {err}); expected an object with a 'data' "
            "list of {frame_index, skeleton}",
            FIX_CLIP,
        ) from None
    if not frames:
        raise SampleError(path, "'data' is empty (0 frames)", FIX_CLIP)
    out = []
    for n, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int):
            raise SampleError(path, f"entry {n} of 'data' has no integer 'frame_index'", FIX_CLIP)
        people = frame.get("skeleton")
        if not isinstance(people, list):
            state = "has no 'skeleton' key" if "skeleton" not in frame else f"has a {type(people).__name__} 'skeleton'"
            raise SampleError(
                path,
                f"entry {n} of 'data' (frame_index {frame['frame_index']}) {state}; expected a list of people "
                "({pose, score}), [] for a frame without anyone",
                FIX_CLIP,
            )
        poses = np.zeros((len(people), NUM_JOINTS, 2), np.float32)
        scores = np.zeros((len(people), NUM_JOINTS), np.float32)
        for m, person in enumerate(people):
            where = f"frame_index {frame['frame_index']}, person {m}"
            try:
                pose = np.asarray(person.get("pose", []), dtype=np.float32)
                score = np.asarray(person.get("score", []), dtype=np.float32)
            except (AttributeError, TypeError, ValueError) as err:
                raise SampleError(
                    path, f"{where}: 'pose' / 'score' are not lists of numbers ({err})", FIX_CLIP
                ) from None
            if pose.shape != (2 * NUM_JOINTS,) or score.shape != (NUM_JOINTS,):
                raise SampleError(
                    path,
                    f"{where}: 'pose' has {pose.size} values and 'score' {score.size}; expected {2 * NUM_JOINTS} "
                    f"and {NUM_JOINTS} (18 OpenPose joints)",
                    "regenerate the clip with the st-gcn OpenPose pipeline, or remove it",
                )
            if not (np.isfinite(pose).all() and np.isfinite(score).all()):
                raise SampleError(path, f"{where}: 'pose' or 'score' holds NaN/inf", FIX_CLIP)
            poses[m], scores[m] = pose.reshape(NUM_JOINTS, 2), score
        out.append(KineticsFrame(frame["frame_index"], poses, scores))
    label = info.get("label_index", -1)
    return out, int(label) if isinstance(label, int) else -1


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
    frames, label = parse_kinetics_clip(path)
    raw = np.zeros((num_person_in, max_frames, NUM_JOINTS, 3), dtype=np.float32)
    base = 0 if any(f.frame_index == 0 for f in frames) else 1
    for frame in frames:
        t = frame.frame_index - base
        if not 0 <= t < max_frames:
            continue
        p = min(num_person_in, len(frame.poses))
        raw[:p, t, :, :2] = frame.poses[:p]
        raw[:p, t, :, 2] = frame.scores[:p]
    order = np.argsort(-raw[..., 2].sum(axis=2), axis=0, kind="stable")  # (P, T): per-frame ranking
    ranked = np.take_along_axis(raw, order[:, :, None, None], axis=0)
    out = np.zeros((max_persons, max_frames, NUM_JOINTS, 3), dtype=np.float32)
    keep = min(max_persons, num_person_in)
    out[:keep] = ranked[:keep]
    return out, label


def _read_clip(path: Path, preprocessing: Preprocessing) -> tuple[RawSkeleton, int]:
    """One clip as :class:`RawSkeleton` (``num_persons`` best people per frame, at least 300 frames) and its
    ``label_index`` in the file."""
    frames = max(300, preprocessing.num_frames or 300)
    data, label = read_kinetics_clip(path, frames, preprocessing.num_person_in, preprocessing.num_persons or 2)
    return RawSkeleton(data, str(path), "openpose18", fix=FIX_CLIP), label


def _process_clip(path: Path, *, preprocessing: Preprocessing) -> tuple[np.ndarray, int, int]:
    """One clip -> ``((max_persons, num_frames, 18, 3), valid frames, label_index in the file)``."""
    raw, file_label = _read_clip(path, preprocessing)
    seq, length = preprocessing.apply(raw)
    if length == 0:
        raise SampleError(
            path,
            "no person in any frame (an empty sequence)",
            "mark it has_skeleton: false in the label file or remove the clip",
        )
    return seq, length, file_label


class KineticsSource(SourceBase):
    """Kinetics-skeleton from the st-gcn json clips.

    Args:
        root: Folder with ``kinetics_train/`` + ``kinetics_train_label.json`` and/or ``kinetics_val/`` +
            ``kinetics_val_label.json`` (or a flat folder of clip jsons next to ``kinetics_val_label.json``).
        dataset: ``"kinetics400"`` or ``"kinetics200"`` (classes 0..199 only).
            ``None``: ``"kinetics400"``; the CLI takes it from the split.
        split: ``"train"``, ``"val"`` or ``"both"``; train -> partition ``"train"``, val -> ``"test"``.
        num_frames: Frames per sample (st-gcn: 300).
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` to ``num_frames``.
        max_persons: People kept per frame (st-gcn: 2).
        num_person_in: People read per frame before ranking (st-gcn: 5).
        normalize: st-gcn centralization (x, y - 0.5, zero where score is 0).
        center: Also subtract the first frame's neck (layout ``openpose18`` center) from x, y.
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    suffixes = (".json",)
    file_format = "Kinetics-skeleton st-gcn clip .json (a 'data' list)"

    def __init__(
        self,
        root: str,
        dataset: str | None = None,
        split: str = "both",
        num_frames: int = 300,
        temporal: str = "pad",
        max_persons: int = 2,
        num_person_in: int = 5,
        normalize: bool = True,
        center: bool = False,
        conversion: Conversion | None = None,
    ) -> None:
        dataset = dataset or "kinetics400"
        self.num_classes = check_kinetics_dataset(dataset)
        if split not in ("train", "val", "both"):
            raise ValueError(f"split must be 'train', 'val' or 'both', got {split!r}")
        check_temporal(temporal)
        self.root, self.dataset, self.split, self.num_frames, self.temporal = root, dataset, split, num_frames, temporal
        self.conversion = Conversion.of(conversion)
        self.max_persons, self.num_person_in, self.normalize = max_persons, num_person_in, normalize
        self.center = center

    @property
    def preprocessing(self) -> Preprocessing:
        """st-gcn's normalisation (optionally centering on the neck), then the fit to ``num_frames``."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            normalization="stgcn" if self.normalize else "none",
            center=self.center,
            num_persons=self.max_persons,
            num_person_in=self.num_person_in,
            channels=3,
            reader=class_path(KineticsSource),
        )

    @classmethod
    def can_read(cls, path: Path) -> bool:
        """A ``.json`` file holding an object with a ``data`` list (an st-gcn clip, not a label file)."""
        return path.suffix.lower() in cls.suffixes and "data" in json_keys(path)

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One st-gcn clip json: the best ``num_persons`` of ``num_person_in`` people per frame."""
        return _read_clip(Path(path), preprocessing)[0]

    def _clips(self) -> tuple[list[tuple[Path, str, int]], list[Path], list[SkippedSample]]:
        """``[(clip json, partition, label)]``, the label files read, and clips left out as bad."""
        root = Path(self.root).expanduser()
        expected = "kinetics_{train,val}/ clip folders with kinetics_{train,val}_label.json"
        if not root.is_dir():
            raise missing_root_error(root, "Kinetics-skeleton", expected, HOW_TO_GET)
        clips: list[tuple[Path, str, int]] = []
        label_files: list[Path] = []
        skipped: list[SkippedSample] = []
        for split in list(_SPLITS) if self.split == "both" else [self.split]:
            label_file = root / f"kinetics_{split}_label.json"
            folder = root / f"kinetics_{split}"
            own_folder = folder.is_dir()
            folder = folder if own_folder else root
            files = [p for p in sorted(folder.glob("*.json")) if not p.name.endswith("_label.json")]
            if not files:
                continue
            if not label_file.is_file():
                if own_folder:
                    raise FileNotFoundError(
                        f"{label_file} does not exist but {folder} holds {len(files)} clips; put the label file "
                        f"from kinetics-skeleton.zip there. {HOW_TO_GET}"
                    )
                continue
            label_files.append(label_file)
            try:
                labels = json.loads(label_file.read_bytes())
            except ValueError as err:
                raise ValueError(
                    f"{label_file}: not valid json ({err}); re-extract it from kinetics-skeleton.zip"
                ) from None
            for p in files:
                entry = labels.get(p.stem)
                label = entry.get("label_index") if isinstance(entry, dict) else None
                if entry is None:
                    reject(
                        self.on_error,
                        skipped,
                        p,
                        f"clip {p.stem!r} has no entry in {label_file.name}",
                        "use the label file that came with the clips or remove the clip",
                    )
                elif not isinstance(label, int) or not 0 <= label < 400:
                    reject(
                        self.on_error,
                        skipped,
                        p,
                        f"{label_file.name} gives label_index {label!r}, not 0..399",
                        "fix the entry or use the label file that came with the clips",
                    )
                elif entry.get("has_skeleton", True) and label < self.num_classes:
                    clips.append((p, _SPLITS[split], label))
        if not label_files:
            raise missing_root_error(root, "Kinetics-skeleton", expected, HOW_TO_GET, empty=True)
        return pick_evenly(clips, self.max_samples), label_files, skipped

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the clips: data ``(N, max_persons, num_frames, 18, 3)``."""
        clips, label_files, skipped = self._clips()
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
        sources = [c[0] for c in clips] + label_files
        return self._cached(params, sources, lambda found: self._build(clips, found), skipped)

    def _build(self, clips: list[tuple[Path, str, int]], skipped: list[SkippedSample]) -> SkeletonSet:
        work = partial(_process_clip, preprocessing=self.preprocessing)
        data = allocate((len(clips), self.max_persons, self.num_frames, NUM_JOINTS, 3))
        resident = ResidentRows(data)
        kept: list[int] = []
        lengths: list[int] = []
        mismatched = []
        paths = [c[0] for c in clips]
        converted = convert_files(
            work, paths, on_error=self.on_error, skipped=skipped, num_workers=self.num_workers, desc=self.dataset
        )
        for i, (seq, length, file_label) in converted:
            data[len(kept)] = seq
            kept.append(i)
            lengths.append(length)
            resident.written(len(kept))
            if file_label not in (-1, clips[i][2]):
                mismatched.append(clips[i][0].stem)
        if not kept:
            raise ValueError(f"{self.root}: none of the {len(clips)} clips could be used:\n{format_skipped(skipped)}")
        if mismatched:
            warnings.warn(
                f"{len(mismatched)} clip(s) disagree with the label file on label_index; the label file "
                f"wins: {', '.join(mismatched[:5])}",
                stacklevel=3,
            )
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array([clips[i][2] for i in kept], np.int64),
            sample_ids=[clips[i][0].stem for i in kept],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array([clips[i][1] for i in kept], dtype="<U5"),
            lengths=np.array(lengths, np.int64),
        )
