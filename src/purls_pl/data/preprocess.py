"""Shared preprocessing from one raw sequence to the standard per-sample ``(M, T, J, C)`` block.

Readers call :func:`preprocess_sequence` on each sample and stack the results into
``SkeletonSet.data`` ``(N, M, T, J, C)``. The steps, in order:

1. :func:`center_sequence` — subtract the layout's center joint of the first valid frame
   (of the main person, from every person, as CTR-GCN / SGN's NTU ``seq_translation``; or of each
   person separately with ``per_person=True``). All-zero joints (missing persons / frames) stay zero.
2. :func:`align_sequence` — optional rotation making the first frame's hip->spine bone parallel to
   +z and its right->left shoulder bone parallel to +x (2s-AGCN / Shift-GCN ``pre_normalization``).
3. :func:`fit_length` — a fixed frame count: ``"pad"`` (crop, or zero-pad after the sequence),
   ``"loop"`` (crop, or repeat the sequence to fill) or ``"resample"`` (uniform linear interpolation).

Kinetics' 2-D OpenPose data instead goes through :func:`normalize_2d` (st-gcn feeder: x, y - 0.5,
zeroed where the joint's score is 0; the score channel kept).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from purls_pl.data.layouts import SkeletonLayout, get_layout

__all__ = [
    "TEMPORAL_MODES",
    "align_sequence",
    "center_sequence",
    "check_temporal",
    "fit_length",
    "normalize_2d",
    "preprocess_sequence",
    "preprocessing_record",
    "valid_length",
]

TemporalMode = Literal["pad", "loop", "resample"]
TEMPORAL_MODES: tuple[str, ...] = ("pad", "loop", "resample")


def check_temporal(mode: str) -> str:
    """``mode`` if it is one of :data:`TEMPORAL_MODES`, else a ``ValueError`` listing them."""
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode {mode!r} is not one of {list(TEMPORAL_MODES)}")
    return mode


def valid_length(seq: np.ndarray) -> int:
    """Frames up to and including the last one where any person has a non-zero joint.

    Args:
        seq: ``(M, T, J, C)``.
    """
    nonzero = np.flatnonzero(np.abs(seq).sum(axis=(0, 2, 3)) > 0)
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def fit_length(seq: np.ndarray, num_frames: int, mode: TemporalMode = "pad") -> tuple[np.ndarray, int]:
    """Crop / pad / loop / resample ``seq`` to exactly ``num_frames`` frames.

    Args:
        seq: ``(M, L, J, C)``, its ``L`` frames all belonging to the sequence (no trailing padding).
        num_frames: Target ``T``.
        mode: ``"pad"`` zero-pads after the sequence (Shift-GCN), ``"loop"`` repeats it to fill
            (SGN-style padding with repetition), ``"resample"`` linearly interpolates ``L`` frames to
            ``T`` (any ``L`` >= 1). ``"pad"`` and ``"loop"`` keep the first ``T`` frames of a longer one.

    Returns:
        ``(M, T, J, C)`` float32 and the number of valid frames (``min(L, T)``; ``T`` for resample).
    """
    check_temporal(mode)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    m, length, j, c = seq.shape
    out = np.zeros((m, num_frames, j, c), dtype=np.float32)
    if length == 0:
        return out, 0
    if mode == "resample":
        pos = np.linspace(0.0, length - 1, num_frames)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, length - 1)
        w = (pos - lo).astype(np.float32)[None, :, None, None]
        out[:] = seq[:, lo] * (1.0 - w) + seq[:, hi] * w
        return out, num_frames
    keep = min(length, num_frames)
    if mode == "pad":
        out[:, :keep] = seq[:, :keep]
    else:
        out[:] = seq[:, np.arange(num_frames) % keep]
    return out, keep


def _first_valid_frame(person: np.ndarray) -> int | None:
    """Index of the first frame of ``person`` ``(T, J, C)`` with a non-zero joint."""
    nz = np.flatnonzero(np.abs(person).sum(axis=(1, 2)) > 0)
    return int(nz[0]) if nz.size else None


def center_sequence(seq: np.ndarray, center_joint: int, *, per_person: bool = False, dims: int = 3) -> np.ndarray:
    """Subtract the center joint of the first valid frame; missing (all-zero) joints stay zero.

    Args:
        seq: ``(M, T, J, C)``.
        center_joint: 0-based joint index (a layout's ``center``).
        per_person: Each person relative to its own first frame; default: every person relative
            to the main person (index 0), which keeps the persons' relative positions.
        dims: How many leading channels are coordinates (the rest, e.g. a score, is untouched).

    Returns:
        ``(M, T, J, C)`` float32 copy.
    """
    out = np.array(seq, dtype=np.float32, copy=True)
    present = np.abs(out[..., :dims]).sum(axis=-1, keepdims=True) > 0  # (M, T, J, 1)
    origin: np.ndarray | None = None
    for m in range(out.shape[0]):
        if per_person or origin is None:
            first = _first_valid_frame(out[m, ..., :dims])
            if first is None:
                continue
            origin = out[m, first, center_joint, :dims].copy()
        out[m, ..., :dims] -= origin
    out[..., :dims] *= present
    return out


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation matrix ``(3, 3)`` by ``angle`` about ``axis``."""
    norm = np.linalg.norm(axis)
    if norm < 1e-8 or abs(angle) < 1e-8:
        return np.eye(3)
    a = axis / norm
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _align_bone(out: np.ndarray, present: np.ndarray, joints: tuple[int, int], target: np.ndarray) -> None:
    first = _first_valid_frame(out[0])
    if first is None:
        return
    bone = out[0, first, joints[1]] - out[0, first, joints[0]]
    if np.linalg.norm(bone) < 1e-8:
        return
    cos = np.clip(bone @ target / np.linalg.norm(bone), -1.0, 1.0)
    rot = _rotation(np.cross(bone, target), float(np.arccos(cos)))
    out[:] = (out @ rot.T.astype(np.float32)) * present


def align_sequence(
    seq: np.ndarray,
    z_bone: tuple[int, int] = (0, 1),
    x_bone: tuple[int, int] = (8, 4),
) -> np.ndarray:
    """Rotate so the main person's first-frame ``z_bone`` points along +z, then ``x_bone`` along +x.

    As 2s-AGCN / Shift-GCN's NTU ``pre_normalization``: bone ``(a, b)`` is the vector joint a -> b;
    the defaults are NTU's hip (0) -> spine (1) and right shoulder (8) -> left shoulder (4).
    Usually applied after :func:`center_sequence`.

    Args:
        seq: ``(M, T, J, 3)``.

    Returns:
        ``(M, T, J, 3)`` float32 copy; all-zero joints stay zero.
    """
    if seq.shape[-1] != 3:
        raise ValueError(f"align_sequence needs 3-D coordinates, got C={seq.shape[-1]}")
    out = np.array(seq, dtype=np.float32, copy=True)
    present = np.abs(out).sum(axis=-1, keepdims=True) > 0
    _align_bone(out, present, z_bone, np.array([0.0, 0.0, 1.0]))
    _align_bone(out, present, x_bone, np.array([1.0, 0.0, 0.0]))
    return out


def normalize_2d(seq: np.ndarray, offset: float = 0.5) -> np.ndarray:
    """st-gcn's Kinetics centralization: ``x, y -= offset``; x, y zeroed where the score is 0.

    Args:
        seq: ``(M, T, J, 3)`` with channels (x, y, score), x and y in [0, 1].

    Returns:
        ``(M, T, J, 3)`` float32 copy, score channel unchanged.
    """
    out = np.array(seq, dtype=np.float32, copy=True)
    out[..., :2] -= offset
    out[..., :2] *= out[..., 2:3] != 0
    return out


def preprocess_sequence(
    seq: np.ndarray,
    layout: str | SkeletonLayout,
    num_frames: int,
    temporal: TemporalMode = "pad",
    *,
    center: bool = True,
    center_joint: int | None = None,
    per_person: bool = False,
    align: bool = False,
    normalize_kinetics: bool = False,
    drop_empty_frames: bool = False,
) -> tuple[np.ndarray, int]:
    """Center (or Kinetics-normalize), optionally align, then fit to ``num_frames``.

    Missing data are zeros: a joint whose coordinates are all zero is missing (centering, alignment
    and augmentation keep it zero, and the backbones see zeros there), and a frame in which every joint
    of every person is zero is empty. Trailing empty frames are always dropped; with
    ``drop_empty_frames`` every empty frame is (a detector that lost the person for a while), so
    resampling and padding use only frames that show someone.

    Args:
        seq: ``(M, L, J, C)`` one sample, trailing empty frames allowed (they are dropped first).
        layout: Layout (or its name) supplying the center joint and, for ``align``, the axes.
        num_frames: Target ``T``.
        temporal: See :func:`fit_length`.
        center: Apply :func:`center_sequence` (on the first ``min(C, 3)`` channels, or 2 with
            ``normalize_kinetics``).
        center_joint: Override the layout's center joint.
        per_person: See :func:`center_sequence`.
        align: Apply :func:`align_sequence` with the layout's ``align_axes`` (3-D layouts only).
        normalize_kinetics: Apply :func:`normalize_2d` first (channels x, y, score).
        drop_empty_frames: Drop empty frames anywhere in the sequence, not only at its end.

    Returns:
        ``(M, T, J, C)`` float32 and the number of valid frames.
    """
    lay = get_layout(layout)
    seq = np.asarray(seq, dtype=np.float32)
    seq = seq[:, : valid_length(seq)]
    if drop_empty_frames:
        seq = seq[:, np.abs(seq).sum(axis=(0, 2, 3)) > 0]
    if normalize_kinetics:
        seq = normalize_2d(seq)
    if center:
        dims = 2 if normalize_kinetics else min(seq.shape[-1], 3)
        seq = center_sequence(
            seq, lay.center if center_joint is None else center_joint, per_person=per_person, dims=dims
        )
    if align:
        if lay.align_axes is None:
            raise ValueError(
                f"layout {lay.name!r} has no alignment axes; give it align_axes (its layout.json: "
                '"align_axes": [[hip, spine], [right_shoulder, left_shoulder]]) or set align=False'
            )
        z_bone, x_bone = lay.align_axes
        seq = align_sequence(seq, z_bone, x_bone)
    return fit_length(seq, num_frames, temporal)


def preprocessing_record(source: Any, data_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """How one raw file must be preprocessed to look like the data of ``source`` (checkpoints keep this,
    so open-vocabulary recognition can prepare a new file the same way).

    Readers keep their settings as attributes of these names (``num_frames``, ``temporal``, ``center``,
    ``align``, ``per_person``, ``normalize``, ``num_person_in``, ``max_persons``, ``drop_empty_frames``); a
    source that reads already-processed arrays states the raw preprocessing they are assumed to have had in
    a class attribute ``assumed_preprocessing`` (the record is then marked ``approximate``). Sources without
    such attributes (the demo, random data) did no centering.

    Args:
        source: The skeleton source.
        data_shape: ``(N, M, T, J, C)`` of its loaded set, which fixes T, M and C.
    """
    assumed: dict[str, Any] = dict(getattr(source, "assumed_preprocessing", {}))
    record: dict[str, Any] = {
        "layout": source.layout,
        "num_frames": getattr(source, "num_frames", None),
        "temporal": getattr(source, "temporal", "resample"),
        "center": bool(getattr(source, "center", False)),
        "align": bool(getattr(source, "align", False)),
        "per_person": bool(getattr(source, "per_person", False)),
        "normalize_kinetics": bool(getattr(source, "normalize", False)),
        "num_person_in": int(getattr(source, "num_person_in", 5)),
        "num_persons": getattr(source, "max_persons", None) or getattr(source, "num_persons", None),
        "channels": getattr(source, "channels", None),
        "drop_empty_frames": bool(getattr(source, "drop_empty_frames", False)),
        "approximate": bool(assumed),
        **assumed,
    }
    if data_shape is not None:
        record["num_persons"], record["num_frames"], record["channels"] = data_shape[1], data_shape[2], data_shape[4]
    return record
