"""A tracked person's 2-D landmarks -> the skeleton a checkpoint reads, prepared as its training data were.

Every pose front end (:mod:`.mediapipe_pose` on a video, :func:`pose_track_from_json` on pose-estimator JSON)
gives one :class:`PoseTrack`: ``(T, 17, 3)`` COCO-17 ``[x, y, score]`` in pixels, a missing joint all zero.
:func:`to_layout` maps it onto a registered layout, and :func:`window_raw` cuts a window of it into the
:class:`~purls_pl.data.preprocessing.RawSkeleton` the checkpoint's recorded
:class:`~purls_pl.data.preprocessing.Preprocessing` prepares (its ``apply``: the reader's own steps, so the
normalisation is the training data's, read from the checkpoint):

``coco17``
    the joints as they are (the layout of ``import-poses`` / :class:`~purls_pl.data.readers.CustomSource` and
    pyskl's HRNet annotations); channels ``[x, y, score]`` (or ``[x, y]`` for a 2-channel model).
``penn13``
    Penn Action's 13 joints: the head is the mean of the visible face points (nose, eyes, ears; Penn's
    annotators marked the head, not the nose), the other 12 are COCO's shoulders ... ankles in Penn's order
    (:data:`COCO17_TO_PENN13`). Channels ``[x, y, visibility]`` (1 for a joint seen, as
    :func:`~purls_pl.data.readers.penn.penn_raw` writes them); the person box of each frame is the extent of
    its visible joints enlarged :data:`PENN_BOX_MARGIN` times about its centre, which is how the published
    Penn Action boxes relate to their joints (median ratio 1.200, centres offset 0.0 over 20,760 frames of
    466 clips), so the reader's ``"box"`` normalisation sees the same frame of reference.

A joint scored below ``min_score`` is missing (all zero), as in :mod:`purls_pl.data.pose_json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from purls_pl.data.errors import SampleError
from purls_pl.data.layouts import get_layout
from purls_pl.data.pose_json import read_pose_video
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton

__all__ = [
    "COCO17_TO_PENN13",
    "MAPPED_LAYOUTS",
    "PENN_BOX_MARGIN",
    "PoseTrack",
    "check_mappable",
    "joint_boxes",
    "pose_track_from_json",
    "to_layout",
    "window_raw",
]

#: penn13 joints 1..12 (shoulders ... ankles) are COCO-17 joints 5..16 (both lists left before right).
COCO17_TO_PENN13: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
#: COCO-17's face points (nose, eyes, ears), whose visible mean is Penn Action's head.
FACE: tuple[int, ...] = (0, 1, 2, 3, 4)
#: Penn Action's person box is its joints' extent times this, about the same centre (measured, module docstring).
PENN_BOX_MARGIN = 1.2
#: The layouts a 2-D pose front end maps onto.
MAPPED_LAYOUTS: tuple[str, ...] = ("coco17", "penn13")


@dataclass(frozen=True)
class PoseTrack:
    """One person through a video.

    Attributes:
        keypoints: ``(T, 17, 3)`` float32 COCO-17 ``[x, y, score]`` in pixels; a missing joint (or a frame
            without the person) all zero.
        fps: Frames per second of the video (for times in the outputs).
        image_size: ``(H, W)`` of the frames, when known (``normalization="image"`` needs it).
        source: The video or pose file, for messages.
        detector: What estimated the poses (``"mediapipe"``, ``"mmpose"``, ``"openpose"``, ...).
    """

    keypoints: np.ndarray
    fps: float
    image_size: tuple[float, float] | None
    source: str
    detector: str

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    def shown(self) -> np.ndarray:
        """``(T,)`` bool: the frames where the person has at least one joint."""
        return self.keypoints[..., 2].max(axis=1) > 0


def check_mappable(layout: str, checkpoint: str | Path) -> None:
    """Refuse a checkpoint whose layout no 2-D pose front end maps onto, naming the checkpoint and the fix."""
    if layout not in MAPPED_LAYOUTS:
        lay = get_layout(layout)
        raise SampleError(
            checkpoint,
            f"the model reads layout {layout!r} ({lay.num_joints} joints), onto which 2-D pose landmarks (COCO-17, "
            f"MediaPipe) cannot be mapped; video input maps onto {list(MAPPED_LAYOUTS)} only",
            "use a checkpoint trained on 2-D data of layout penn13 (Penn Action, `make video-demo` trains one) or "
            "coco17 (import-poses / a pyskl HRNet set)",
        )


def to_layout(keypoints: np.ndarray, layout: str, min_score: float = 0.3) -> np.ndarray:
    """COCO-17 ``[x, y, score]`` ``(T, 17, 3)`` -> ``(T, J, 3)`` of ``layout`` ``[x, y, score]``, joints below
    ``min_score`` all zero.

    ``penn13``'s head is the mean of the visible face points (score: their best); see the module docstring.
    """
    kp = np.asarray(keypoints, np.float32).copy()
    if kp.ndim != 3 or kp.shape[1:] != (17, 3):
        raise ValueError(f"keypoints must be (T, 17, 3) COCO-17 [x, y, score], got {kp.shape}")
    kp[kp[..., 2] < min_score] = 0.0
    if layout == "coco17":
        return kp
    if layout != "penn13":
        raise ValueError(f"no mapping from COCO-17 onto layout {layout!r}; mapped: {list(MAPPED_LAYOUTS)}")
    out = np.zeros((kp.shape[0], 13, 3), np.float32)
    face = kp[:, FACE]
    seen = face[..., 2] > 0
    count = seen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        head = (face[..., :2] * seen[..., None]).sum(axis=1) / count[:, None]
    has = count > 0
    out[has, 0, :2] = head[has]
    out[has, 0, 2] = face[has, :, 2].max(axis=1)
    out[:, 1:] = kp[:, list(COCO17_TO_PENN13)]
    return out


def joint_boxes(joints: np.ndarray, margin: float = PENN_BOX_MARGIN) -> np.ndarray:
    """``(T, 4)`` person boxes ``x1, y1, x2, y2`` of ``(T, J, >=3)`` joints: each frame's visible joints' extent
    enlarged ``margin`` times about its centre; a frame without joints gets the zero box (no box)."""
    out = np.zeros((joints.shape[0], 4))
    for t, frame in enumerate(joints):
        pts = frame[frame[:, 2] > 0, :2].astype(np.float64)
        if len(pts):
            lo, hi = pts.min(0), pts.max(0)
            centre, half = (lo + hi) / 2, (hi - lo) / 2 * margin
            out[t] = [*(centre - half), *(centre + half)]
    return out


def window_raw(
    track: PoseTrack, preprocessing: Preprocessing, start: int, stop: int, min_score: float = 0.3
) -> RawSkeleton:
    """Frames ``[start, stop)`` of ``track`` as the raw sample of ``preprocessing``'s layout and channels.

    ``penn13``: ``[x, y, visibility]`` with the joints' boxes (:func:`joint_boxes`); ``coco17``: ``[x, y, score]``
    (``[x, y]`` when the model has 2 channels; with ``visibility`` the flag replaces the score). The image size is
    the track's. ``preprocessing.apply`` then does what the checkpoint's reader did.
    """
    joints = to_layout(track.keypoints[start:stop], preprocessing.layout, min_score)
    boxes = None
    if preprocessing.layout == "penn13" or preprocessing.visibility:
        present = joints[..., 2] > 0
        joints[..., 2] = present
        joints[~present] = 0.0
    if preprocessing.layout == "penn13":
        boxes = joint_boxes(joints)
    if preprocessing.channels == 2:
        joints = joints[..., :2]
    return RawSkeleton(
        joints.astype(np.float64)[None],
        f"{track.source} frames {start}-{stop - 1}",
        preprocessing.layout,
        boxes=boxes,
        image_size=track.image_size,
        fix="check the pose estimates of these frames",
    )


def pose_track_from_json(
    path: str | Path,
    fps: float = 30.0,
    image_size: tuple[float, float] | None = None,
    min_score: float = 0.3,
    iou_threshold: float = 0.3,
) -> PoseTrack:
    """The most persistent person of pose-estimator JSON (MMPose, OpenPose; :mod:`purls_pl.data.pose_json`,
    persons tracked by box IoU) as a :class:`PoseTrack`.

    Raises:
        SampleError: as :func:`~purls_pl.data.pose_json.read_pose_video` (no JSON, unknown format, nobody in it).
    """
    video = read_pose_video(path, max_persons=1, min_score=min_score, iou_threshold=iou_threshold)
    return PoseTrack(video.data[0], float(fps), image_size, str(path), video.format)


def frames_shown(track: PoseTrack, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """``(W,)`` the share of each window's frames ``[start, stop)`` that show the person."""
    shown = track.shown()
    return np.array([shown[a:b].mean() if b > a else 0.0 for a, b in windows])
