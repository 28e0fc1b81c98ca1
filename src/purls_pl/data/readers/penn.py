"""Penn Action (Zhang, Zhu and Derpanis, ICCV 2013): 2326 sports clips with 13 hand-annotated 2-D joints.

Each ``<root>/NNNN.mat`` (``scipy.io.loadmat``) holds one clip: ``action`` (e.g. ``'baseball_pitch'``),
``pose`` (camera view: front, back, left, right), ``x`` and ``y`` ``(T, 13)`` pixel coordinates,
``visibility`` ``(T, 13)`` (0 = not visible), ``train`` (+1 train / -1 test: the dataset's own 1258 / 1068
split, partition ``"train"`` / ``"test"``), ``bbox`` ``(T, 4)`` person boxes (x1, y1, x2, y2),
``dimensions`` (H, W, T) and ``nframes``. The joints are those of layout ``penn13``; the 15 actions map
to the human-readable class names of the catalog (``'bowl'`` -> ``"bowling"``, ``'pullup'`` ->
``"pull-up"``, ...; :data:`PENN_ACTIONS`).

Preprocessing, per clip (:func:`penn_raw`, then :class:`~purls_pl.data.preprocessing.Preprocessing`, which
checkpoints record so ``recognize`` prepares a new clip the same way):

* **Channels (x, y, visibility)**: C = 3 like every other dataset; a joint is present with visibility 1
  or missing as all zeros (the project's convention). A present joint that happens to sit at the origin
  stays distinguishable from a missing one by its visibility channel.
* **Invisible joints are missing**: the annotators' guessed coordinates of occluded joints are never
  used, neither as coordinates nor in the normalisation statistics. Leading and trailing frames with no
  visible joint are dropped; a frame in between with none stays an all-zero frame.
* **Normalisation** ``"box"`` (default): subtract the centre of the union of the clip's person boxes and
  divide by the median over frames of ``max(box width, box height)`` (the person's size, robust to
  poses that fold the body, such as a squat or a sit-up, and to a few odd boxes). Whatever the
  resolution, zoom or position of the person, a frame's visible joints then span about 0.83 and lie
  within ±1.32 (99 % within ±0.56; std 0.20 in x, 0.28 in y over the published clips), so a backbone
  trained on them transfers across clips.
  Axes are the image's (x right, y down). ``"image"``: subtract the image centre and divide by
  ``max(H, W)`` (keeps zoom and position, as st-gcn's Kinetics coordinates do).
* **Temporal fit** to ``num_frames`` (:func:`~purls_pl.data.preprocess.fit_length`) after normalising;
  with ``"resample"`` a resampled joint counts as visible only when every frame it is interpolated from
  shows it, so an occluded joint never pulls an interpolated one towards its guessed position or zero.

Clips whose ``visibility`` marks no joint in any frame carry no usable pose and are always left out
(``Skip``, listed in ``source.skipped`` with kind ``"excluded"``); in the published data that is clip
1516 (push-up, train), whose 68 frames repeat one static guessed pose, so the set holds 1257 train and
1068 test clips. Two published clips (1154, 1865) have one ``bbox`` row fewer than frames; the box
statistics are per clip, so they are read as they are. A broken file (not a readable .mat, a missing
field, ``x`` / ``y`` / ``visibility`` of other shapes than ``(T, 13)`` or disagreeing with ``nframes``,
NaN/inf, an unknown ``action``, a ``train`` flag other than +-1, 0 frames, no usable person box) raises a
:class:`~purls_pl.data.readers.SampleError` naming it, the field and the fix, or with
``on_error="skip"`` is left out and listed in one report (see :mod:`purls_pl.data.readers._base`).

Splits: ``penn-action_10_5`` holds out baseball pitch, baseball swing, golf swing, tennis forehand and
tennis serve. It is deliberately harder than a random choice: no unseen class shares a sport with a
seen one (baseball, golf and tennis are unseen entirely), so the backbone never learns a bat, club or
racket swing or an overhand throw; and the five unseen classes are one another's nearest neighbours (a
standing swing or throw driven by a twist of the trunk and a weight shift), so only text that tells an
overhead serve from a forehand, a pitch from a serve and a bat swing from a golf swing can separate
them. The nearest seen relatives are bowling (an underarm swing with a step) and strum guitar. Random 5-unseen folds
need no registration: ``penn-action_random5_seed0`` ... by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.cache import allocate
from purls_pl.data.catalog import class_names
from purls_pl.data.layouts import get_layout
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton, class_path
from purls_pl.data.readers._base import (
    Conversion,
    SampleError,
    Skip,
    SkippedSample,
    SourceBase,
    check_values,
    collect_converted,
    convert_files,
    missing_root_error,
    pick_evenly,
)
from purls_pl.data.skeletons import SkeletonSet

__all__ = [
    "NORMALIZATIONS",
    "PENN_ACTIONS",
    "PennActionSource",
    "PennClip",
    "penn_raw",
    "read_penn_file",
]

#: The ``action`` strings of the .mat files in class-index order (the catalog's "penn-action" names).
PENN_ACTIONS: tuple[str, ...] = (
    "baseball_pitch",
    "baseball_swing",
    "bench_press",
    "bowl",
    "clean_and_jerk",
    "golf_swing",
    "jump_rope",
    "jumping_jacks",
    "pullup",
    "pushup",
    "situp",
    "squat",
    "strum_guitar",
    "tennis_forehand",
    "tennis_serve",
)
NORMALIZATIONS: tuple[str, ...] = ("box", "image")
NUM_JOINTS = 13
FIELDS: tuple[str, ...] = ("action", "pose", "x", "y", "visibility", "train", "bbox", "dimensions", "nframes")
_READER_VERSION = 1
FIX_FILE = "restore the file from the Penn Action archive (Penn_Action.tar.gz, labels/) or remove it"
HOW_TO_GET = (
    "Download Penn_Action.tar.gz from the dataset page (http://dreamdragon.github.io/PennAction/) and unpack "
    "it so that the labels/NNNN.mat files lie in <root> (the frames are not needed)."
)


@dataclass(frozen=True)
class PennClip:
    """One Penn Action .mat file, checked, as written.

    Attributes:
        action: The file's ``action`` string (one of :data:`PENN_ACTIONS`).
        label: Class index of ``action``.
        pose: Camera view (``front``, ``back``, ``left``, ``right``).
        train: ``True`` for ``train = 1``, ``False`` for ``-1``.
        x: ``(T, 13)`` float64 pixel x.
        y: ``(T, 13)`` float64 pixel y.
        visible: ``(T, 13)`` bool.
        bbox: ``(K, 4)`` float64 person boxes x1, y1, x2, y2 (``K`` is ``T``, in two published files ``T - 1``).
        image_size: ``(H, W)`` in pixels.
    """

    action: str
    label: int
    pose: str
    train: bool
    x: np.ndarray
    y: np.ndarray
    visible: np.ndarray
    bbox: np.ndarray
    image_size: tuple[float, float]

    @property
    def num_frames(self) -> int:
        return int(self.x.shape[0])


def _text(path: Path, mat: Mapping[str, Any], key: str) -> str:
    value = np.asarray(mat[key])
    if value.dtype.kind != "U" or value.size != 1:
        raise SampleError(path, f"field {key!r} is {value.dtype} of shape {value.shape}, not one string", FIX_FILE)
    return str(value.reshape(-1)[0]).strip()


def _numbers(path: Path, mat: Mapping[str, Any], key: str) -> np.ndarray:
    value = np.asarray(mat[key])
    if value.dtype.kind not in "biuf":
        raise SampleError(path, f"field {key!r} holds {value.dtype} values, not numbers", FIX_FILE)
    return value.astype(np.float64)  # the files mix float64, uint8 and uint16 (arithmetic must not wrap)


def read_penn_file(path: str | Path) -> PennClip:
    """Read and check one Penn Action ``.mat`` file.

    Raises:
        SampleError: (a ``ValueError``) naming the file, the field and the fix: not a readable .mat file
            (truncated, another format), a missing field, ``x`` / ``y`` / ``visibility`` not all of shape
            ``(T, 13)`` or ``T`` other than ``nframes``, 0 frames, NaN/inf, an unknown ``action``, a
            ``train`` flag other than +1 / -1, ``bbox`` not ``(K, 4)`` with ``1 <= K <= T``, or
            ``dimensions`` not three numbers.
    """
    from scipy.io import loadmat  # imported here: only this reader needs scipy

    path = Path(path)
    try:
        mat = loadmat(path)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as err:  # scipy raises OSError, MatReadError, ValueError, IndexError ... for broken bytes
        raise SampleError(
            path, f"cannot be read as a MATLAB .mat file ({type(err).__name__}: {err}; truncated?)", FIX_FILE
        ) from None
    missing = [k for k in FIELDS if k not in mat]
    if missing:
        raise SampleError(path, f"fields {missing} are missing (a Penn Action label file has {list(FIELDS)})", FIX_FILE)
    action = _text(path, mat, "action")
    if action not in PENN_ACTIONS:
        raise SampleError(
            path,
            f"field 'action' is {action!r}, not a Penn Action class ({', '.join(PENN_ACTIONS)})",
            "correct the action name or remove the file",
        )
    x, y, vis = (_numbers(path, mat, k) for k in ("x", "y", "visibility"))
    if x.size == 0:
        raise SampleError(path, f"field 'x' holds 0 frames (shape {x.shape}; an empty sequence)", FIX_FILE)
    for key, value in (("x", x), ("y", y), ("visibility", vis)):
        if value.ndim != 2 or value.shape[1] != NUM_JOINTS or value.shape != x.shape:
            raise SampleError(
                path,
                f"field {key!r} has shape {value.shape}; expected (T, {NUM_JOINTS}) with T = {x.shape[0]}",
                FIX_FILE,
            )
    nframes = _numbers(path, mat, "nframes").reshape(-1)
    if nframes.size != 1 or nframes[0] != x.shape[0]:
        raise SampleError(path, f"field 'nframes' is {nframes.tolist()} but 'x' has {x.shape[0]} frames", FIX_FILE)
    check_values(
        path, np.stack([x, y, vis], axis=-1), "fields 'x', 'y', 'visibility' (as frame, joint, x/y/vis)", FIX_FILE
    )
    train = _numbers(path, mat, "train").reshape(-1)
    if train.size != 1 or train[0] not in (1, -1):
        raise SampleError(path, f"field 'train' is {train.tolist()}; expected 1 (train) or -1 (test)", FIX_FILE)
    bbox = _numbers(path, mat, "bbox")
    if bbox.ndim != 2 or bbox.shape[1] != 4 or not 1 <= bbox.shape[0] <= x.shape[0]:
        raise SampleError(path, f"field 'bbox' has shape {bbox.shape}; expected (T, 4) with T = {x.shape[0]}", FIX_FILE)
    check_values(path, bbox, "field 'bbox'", FIX_FILE)
    dims = _numbers(path, mat, "dimensions").reshape(-1)
    if dims.size != 3 or not np.isfinite(dims).all() or (dims[:2] <= 0).any():
        raise SampleError(path, f"field 'dimensions' is {dims.tolist()}; expected H, W, T in pixels", FIX_FILE)
    return PennClip(
        action=action,
        label=PENN_ACTIONS.index(action),
        pose=_text(path, mat, "pose"),
        train=bool(train[0] == 1),
        x=x,
        y=y,
        visible=vis > 0,
        bbox=bbox,
        image_size=(float(dims[0]), float(dims[1])),
    )


def penn_raw(clip: PennClip, path: str | Path = "") -> RawSkeleton:
    """One clip as :class:`~purls_pl.data.preprocessing.RawSkeleton`: ``(1, T, 13, 3)`` float64 pixel x, y and
    visibility 1 of the visible joints, the invisible ones all zero (their guessed positions never enter), with
    the clip's person boxes and image size for the normalisation."""
    data = np.stack([clip.x, clip.y, clip.visible.astype(np.float64)], axis=-1)
    data[~clip.visible] = 0.0
    return RawSkeleton(data[None], str(path), "penn13", boxes=clip.bbox, image_size=clip.image_size, fix=FIX_FILE)


def _process_penn(path: Path, *, preprocessing: Preprocessing) -> tuple[np.ndarray, int, int, int, bool, str] | Skip:
    """One file -> ``(block, valid frames, raw frames, label, train, pose)`` or a :class:`Skip`."""
    clip = read_penn_file(path)
    if not clip.visible.any():
        return Skip(f"'visibility' marks no joint visible in any of its {clip.num_frames} frames (no usable pose)")
    block, length = preprocessing.apply(penn_raw(clip, path))
    return block, length, clip.num_frames, clip.label, clip.train, clip.pose


class PennActionSource(SourceBase):
    """Penn Action from its ``labels/NNNN.mat`` files (one person, layout ``penn13``, 2-D).

    Data ``(N, 1, num_frames, 13, 3)``, channels (x, y, visibility) normalised as the module docstring
    says; partition from each file's ``train`` flag. ``lengths`` counts valid frames after the temporal
    fit; ``meta["raw_frames"]`` is each file's own frame count and ``meta["pose"]`` its camera view.

    Args:
        root: Folder holding the ``NNNN.mat`` files (directly or in ``labels/``).
        num_frames: Frames per sample (clips have 18-663 frames, median 56).
        temporal: ``"resample"`` (interpolate every clip to ``num_frames``), ``"pad"`` or ``"loop"``.
        normalization: ``"box"``: centre on the union of the clip's person boxes and divide by the person's
            median box size (visible joints within about +-1.3); ``"image"``: centre on the image and divide
            by its larger side.
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    dataset = "penn-action"
    suffixes = (".mat",)
    file_format = "Penn Action labels .mat"

    def __init__(
        self,
        root: str,
        num_frames: int = 32,
        temporal: str = "resample",
        normalization: str = "box",
        conversion: Conversion | None = None,
    ) -> None:
        check_temporal(temporal)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.root, self.num_frames, self.temporal, self.normalization = root, num_frames, temporal, normalization
        self.conversion = Conversion.of(conversion)

    @property
    def preprocessing(self) -> Preprocessing:
        """Frames with a visible joint, normalised by ``normalization``, fitted to ``num_frames`` keeping the
        visibility flags exact."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            empty_frames="ends",
            normalization=self.normalization,
            visibility=True,
            num_persons=1,
            channels=3,
            reader=class_path(PennActionSource),
        )

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One label ``.mat`` file (:func:`read_penn_file`, :func:`penn_raw`)."""
        return penn_raw(read_penn_file(path), path)

    def _files(self) -> list[Path]:
        root = Path(self.root).expanduser()
        expected = "NNNN.mat label files (Penn Action labels/)"
        if not root.is_dir():
            raise missing_root_error(root, "Penn Action", expected, HOW_TO_GET)
        files = sorted(root.glob("*.mat")) or sorted(root.glob("labels/*.mat"))
        if not files:
            raise missing_root_error(root, "Penn Action", expected, HOW_TO_GET, empty=True)
        return pick_evenly(files, self.max_samples)

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the set: data ``(N, 1, num_frames, 13, 3)``."""
        files = self._files()
        params = {
            "reader": "penn-action-mat",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "normalization": self.normalization,
            "max_samples": self.max_samples,
        }
        return self._cached(params, files, lambda found: self._build(files, found))

    def _build(self, files: list[Path], skipped: list[SkippedSample]) -> SkeletonSet:
        work = partial(_process_penn, preprocessing=self.preprocessing)
        data = allocate((len(files), 1, self.num_frames, get_layout(self.layout).num_joints, 3))
        converted = convert_files(
            work, files, on_error=self.on_error, skipped=skipped, num_workers=self.num_workers, desc=self.dataset
        )
        kept, rows = collect_converted(converted, data, str(self.root), len(files), skipped)
        lengths, raw_frames, labels, train, poses = zip(*rows, strict=True)
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array(labels, np.int64),
            sample_ids=[files[i].stem for i in kept],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.where(np.array(train), "train", "test").astype("<U5"),
            lengths=np.array(lengths, np.int64),
            meta={"raw_frames": np.array(raw_frames, np.int64), "pose": np.array(poses, dtype="<U8")},
        )
