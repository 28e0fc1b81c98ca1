"""The array steps of preprocessing, from one raw sequence ``(M, L, J, C)`` to the per-sample block.

:meth:`purls_pl.data.preprocessing.Preprocessing.apply` runs them, in this order, for every reader and for
``recognize`` (so a file is prepared the same way in both):

1. trimming of empty frames (:func:`valid_length`: trailing ones always);
2. a 2-D normalisation: :func:`normalize_2d` (the st-gcn Kinetics feeder: x, y - 0.5, zeroed where the
   joint's score is 0; the score channel kept) or :func:`normalize_to_frame` with the frame of reference
   of the person boxes (:func:`box_frame`) or of the image (:func:`image_frame`);
3. :func:`center_sequence` — subtract the layout's center joint of the first valid frame
   (of the main person, from every person, as CTR-GCN / SGN's NTU ``seq_translation``; or of each
   person separately with ``per_person=True``). All-zero joints (missing persons / frames) stay zero.
4. :func:`align_sequence` — optional rotation making the first frame's hip->spine bone parallel to
   +z and its right->left shoulder bone parallel to +x (2s-AGCN / Shift-GCN ``pre_normalization``).
5. :func:`fit_length` — a fixed frame count: ``"pad"`` (crop, or zero-pad after the sequence),
   ``"loop"`` (crop, or repeat the sequence to fill) or ``"resample"`` (uniform linear interpolation).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "TEMPORAL_MODES",
    "align_sequence",
    "box_frame",
    "center_sequence",
    "check_temporal",
    "fit_length",
    "image_frame",
    "normalize_2d",
    "normalize_to_frame",
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


def box_frame(boxes: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The frame of reference of a clip's person boxes: ``(centre (2,), scale)``, or ``None`` without a box.

    The centre is that of the union of the boxes of positive width and height, the scale the median over
    them of ``max(width, height)`` (the person's size, robust to poses that fold the body and to a few odd
    boxes).

    Args:
        boxes: ``(K, 4)`` x1, y1, x2, y2 per frame, in the units of the joints' coordinates.
    """
    x1, y1, x2, y2 = np.asarray(boxes).T
    ok = (x2 > x1) & (y2 > y1)
    if not ok.any():
        return None
    size = np.maximum(x2 - x1, y2 - y1)
    centre = np.array([(x1[ok].min() + x2[ok].max()) / 2, (y1[ok].min() + y2[ok].max()) / 2])
    return centre, float(np.median(size[ok]))


def image_frame(image_size: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The frame of reference of an image ``(H, W)``: ``(its centre (x, y), its larger side)``."""
    h, w = image_size
    return np.array([w / 2, h / 2]), max(h, w)


def normalize_to_frame(seq: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """``x, y -> (x, y - centre) / scale`` for present joints; missing (all-zero) joints stay exactly zero.

    Computed in the input's dtype (float64 pixel coordinates keep their precision until the result is cast).

    Args:
        seq: ``(M, T, J, C)``, channels x, y first.
        centre: ``(2,)`` the origin, in the coordinates' units.
        scale: The unit length, in the coordinates' units.

    Returns:
        ``(M, T, J, C)`` copy; the other channels (a visibility or score) unchanged.
    """
    out = np.array(seq, copy=True)
    present = np.abs(out).sum(axis=-1) > 0
    out[..., :2] = (out[..., :2] - centre) / scale
    out[~present] = 0.0
    return out
