"""Decoding a video file into RGB frames with OpenCV (the ``video`` extra), with errors naming the file and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.errors import SampleError, SampleMissingError

__all__ = ["MissingExtraError", "VideoInfo", "iter_frames", "open_video", "require"]

EXTRA = 'pip install "purls-pl[video]"'


class MissingExtraError(ImportError, ValueError):
    """A package of the ``video`` extra is not installed (a user error: the command says how to install it)."""


def require(module: str, what: str) -> Any:
    """Import ``module`` of the ``video`` extra, or raise a :class:`MissingExtraError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{what} needs the package {module!r}, which is not installed ({err}); install the video extra: {EXTRA} "
            "(or give pose-estimator JSON instead of a video: MMPose / OpenPose output)"
        ) from None


@dataclass(frozen=True)
class VideoInfo:
    """A video's ``frames`` (as its container states them; 0 when unknown), ``fps`` and ``(height, width)``."""

    path: str
    frames: int
    fps: float
    size: tuple[int, int]


def open_video(path: str | Path) -> tuple[Any, VideoInfo]:
    """An open ``cv2.VideoCapture`` of ``path`` and its :class:`VideoInfo`.

    Raises:
        SampleMissingError: the file does not exist.
        SampleError: OpenCV cannot decode it (not a video, truncated, an unsupported codec) or it has no frame.
    """
    path = Path(path)
    if not path.is_file():
        raise SampleMissingError(path, "video file does not exist", "check the path")
    cv2 = require("cv2", "reading a video")
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened()
    if ok:
        ok, first = cap.read()
    if not ok:
        cap.release()
        raise SampleError(
            path,
            "is not a video OpenCV can decode (not a video file, truncated, or a codec this OpenCV build lacks)",
            "give an MP4 (H.264), AVI or MOV file; re-encode it with `ffmpeg -i IN -c:v libx264 OUT.mp4`, or give "
            "pose-estimator JSON of the video instead",
        )
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    info = VideoInfo(str(path), max(frames, 0), fps if fps > 0 else 30.0, (int(first.shape[0]), int(first.shape[1])))
    return cap, info


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of ``path`` as ``(H, W, 3)`` uint8 RGB arrays, in order (at most ``max_frames``)."""
    cv2 = require("cv2", "reading a video")
    cap, _ = open_video(path)
    try:
        count = 0
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
