"""MediaPipe's pose landmarker on a video -> a :class:`~purls_pl.video.landmarks.PoseTrack` (offline).

The legacy ``mp.solutions.pose`` of ``mediapipe==0.10.21`` (pinned by the ``video`` extra) runs with the
models its wheel ships, ``mediapipe/modules/pose_detection/pose_detection.tflite`` and
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` (``model_complexity=1``); later releases fetch
their models at run time, which an offline machine cannot. :func:`check_models` names a missing file.

MediaPipe finds one person per frame and follows that person from frame to frame itself (its landmarks of
one frame seed the next one's region of interest; it re-detects when it loses them), so the track is the
person it follows. Its 33 landmarks map onto COCO-17 (:data:`MEDIAPIPE_TO_COCO17`: nose, eyes, ears,
shoulders, elbows, wrists, hips, knees, ankles; both left = the person's left, as COCO's); each joint's score
is the landmark's ``visibility`` (the likelihood that it is in the frame and not occluded), and coordinates
are pixels (MediaPipe's normalised x times the width, y times the height).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from purls_pl.data.errors import SampleError
from purls_pl.progress import Progress
from purls_pl.video.frames import EXTRA, iter_frames, open_video, require
from purls_pl.video.landmarks import PoseTrack

__all__ = ["MEDIAPIPE_TO_COCO17", "MODEL_FILES", "PoseEstimator", "check_models", "estimate_video"]

#: COCO-17 joint ``i`` is MediaPipe pose landmark ``MEDIAPIPE_TO_COCO17[i]`` (0 nose, 2 left eye, 5 right eye,
#: 7 left ear, 8 right ear, 11/12 shoulders, 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles).
MEDIAPIPE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
#: The model files ``mp.solutions.pose`` with ``model_complexity=1`` loads, inside the ``mediapipe`` package.
MODEL_FILES: tuple[str, ...] = (
    "modules/pose_detection/pose_detection.tflite",
    "modules/pose_landmark/pose_landmark_full.tflite",
)


def check_models() -> Path:
    """The installed ``mediapipe`` package folder, once every :data:`MODEL_FILES` entry is in it.

    Raises:
        ImportError: mediapipe is not installed (the message says how to install the extra).
        FileNotFoundError: a model file is missing, naming it and the pinned release that ships it.
    """
    mp = require("mediapipe", "pose estimation on a video")
    root = Path(mp.__file__).parent
    for name in MODEL_FILES:
        if not (root / name).is_file():
            raise FileNotFoundError(
                f"{root / name}: MediaPipe's pose model is missing from the installed mediapipe "
                f"{getattr(mp, '__version__', '?')} (releases after 0.10.21 download it at run time, which this "
                f"offline path does not); install the pinned release: {EXTRA} (mediapipe==0.10.21)"
            )
    if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "pose"):
        raise ImportError(f"mediapipe {getattr(mp, '__version__', '?')} has no legacy mp.solutions.pose; {EXTRA}")
    return root


class PoseEstimator:
    """MediaPipe pose on consecutive frames of one video (use as a context manager, or call :meth:`close`).

    Args:
        min_detection_confidence: MediaPipe's person detector threshold.
        min_tracking_confidence: Below it MediaPipe re-detects the person instead of tracking the landmarks.
        static_image_mode: Detect anew in every frame (unrelated images) instead of tracking (a video).
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        static_image_mode: bool = False,
    ) -> None:
        check_models()
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=1,
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """``(17, 3)`` float32 COCO-17 ``[x, y, visibility]`` in pixels of one ``(H, W, 3)`` uint8 RGB frame;
        all zero when MediaPipe finds nobody."""
        h, w = frame.shape[:2]
        result = self._pose.process(np.ascontiguousarray(frame))
        out = np.zeros((17, 3), np.float32)
        if result.pose_landmarks is None:
            return out
        marks = result.pose_landmarks.landmark
        for i, k in enumerate(MEDIAPIPE_TO_COCO17):
            out[i] = (marks[k].x * w, marks[k].y * h, marks[k].visibility)
        return out

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def estimate_frames(frames: Iterable[np.ndarray], total: int, desc: str, **options: float) -> np.ndarray:
    """``(T, 17, 3)`` COCO-17 landmarks of ``frames`` (RGB uint8), with progress lines (``total`` frames expected)."""
    rows = []
    with PoseEstimator(**options) as estimate, Progress(total, desc, unit="frame") as progress:  # type: ignore[arg-type]
        for frame in frames:
            rows.append(estimate(frame))
            progress.total = max(progress.total, len(rows))
            progress.update()
    return np.stack(rows) if rows else np.zeros((0, 17, 3), np.float32)


def estimate_video(
    path: str | Path,
    max_frames: int | None = None,
    min_detection_confidence: float = 0.5,
    on_time: Callable[[float, int], None] | None = None,
) -> PoseTrack:
    """Decode ``path`` and estimate one person's pose in every frame: its :class:`PoseTrack` (fps and frame size
    from the video). Progress lines give frames/s and the time left; ``on_time(seconds, frames)`` gets the wall
    time of decoding plus estimation.

    Raises:
        SampleError: the file is no decodable video (:func:`~purls_pl.video.frames.open_video`), or MediaPipe
            finds nobody in any of its frames.
        ImportError / FileNotFoundError: mediapipe or its model files are missing (:func:`check_models`).
    """
    check_models()
    cap, info = open_video(path)
    cap.release()
    total = info.frames if max_frames is None else min(info.frames or max_frames, max_frames)
    start = time.perf_counter()
    keypoints = estimate_frames(
        iter_frames(path, max_frames),
        total,
        f"{Path(path).name}: decoding + pose estimation",
        min_detection_confidence=min_detection_confidence,
    )
    if on_time is not None:
        on_time(time.perf_counter() - start, len(keypoints))
    if not len(keypoints) or not (keypoints[..., 2] > 0).any():
        raise SampleError(
            path,
            f"MediaPipe's pose landmarker found no person in any of its {len(keypoints)} frames",
            "give a video in which one person is visible (whole or upper body, not too small in the frame), or "
            "lower --min-detection-confidence",
        )
    return PoseTrack(keypoints, info.fps, (float(info.size[0]), float(info.size[1])), str(path), "mediapipe")
