"""Generated 2-D people for the video tests: COCO-17 pixel motions with known classes, as pose-estimator JSON.

A person facing the camera (its left on the image's right) in a 640 x 480 frame performs ``squat`` (the body
above the ankles sinks and rises, knees out), ``wave`` (the right hand raised, swinging sideways), ``jumping
jacks`` (arms up over the head and legs apart, and back), ``punch`` (the right fist thrown sideways) or ``clap``
(both hands meet before the chest).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["squat", "wave", "jumping jacks", "punch", "clap"]
#: COCO-17 rest pose in pixels (nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee,
#: l/r ankle); the person's left is the image's right.
REST = np.array(
    [
        [320, 100],
        [328, 92],
        [312, 92],
        [335, 98],
        [305, 98],
        [350, 140],
        [290, 140],
        [360, 190],
        [280, 190],
        [365, 235],
        [275, 235],
        [340, 240],
        [300, 240],
        [342, 310],
        [298, 310],
        [344, 380],
        [296, 380],
    ],
    np.float64,
)


def motion(name: str, frames: int, rng: np.random.Generator, period: float = 30.0) -> np.ndarray:
    """``(frames, 17, 3)`` COCO-17 ``[x, y, score]`` of one person doing ``name`` (random size, place, phase)."""
    t = np.arange(frames)[:, None]
    phase = 2 * np.pi * (t / (period * rng.uniform(0.9, 1.1)) + rng.uniform(0, 1))
    up = (1 - np.cos(phase)) / 2  # 0 -> 1 -> 0 each period
    xy = np.repeat(REST[None], frames, axis=0)
    if name == "squat":
        xy[:, :13, 1] += 70 * up
        xy[:, 13, 0] += 25 * up[:, 0]
        xy[:, 14, 0] -= 25 * up[:, 0]
        xy[:, 13:15, 1] += 20 * up
    elif name == "wave":
        xy[:, 8] = [265, 115]
        xy[:, 10, 0] = 255 + 30 * np.sin(phase[:, 0])
        xy[:, 10, 1] = 65
    elif name == "jumping jacks":
        for elbow, wrist, side in ((7, 9, 1), (8, 10, -1)):
            xy[:, elbow, 0] += side * 40 * up[:, 0]
            xy[:, elbow, 1] -= 90 * up[:, 0]
            xy[:, wrist, 0] += side * 30 * up[:, 0]
            xy[:, wrist, 1] -= 190 * up[:, 0]
        xy[:, 15, 0] += 45 * up[:, 0]
        xy[:, 16, 0] -= 45 * up[:, 0]
        xy[:, 13, 0] += 22 * up[:, 0]
        xy[:, 14, 0] -= 22 * up[:, 0]
    elif name == "punch":
        xy[:, 8, 0] -= 40 * up[:, 0]
        xy[:, 8, 1] -= 40 * up[:, 0]
        xy[:, 10, 0] -= 110 * up[:, 0]
        xy[:, 10, 1] -= 90 * up[:, 0]
    elif name == "clap":
        for elbow, wrist, side in ((7, 9, 1), (8, 10, -1)):
            xy[:, elbow, 0] += side * 10
            xy[:, elbow, 1] -= 25
            xy[:, wrist, 0] = 320 + side * (8 + 50 * (1 - up[:, 0]))
            xy[:, wrist, 1] = 165
    else:
        raise ValueError(name)
    centre = np.array([320.0, 240.0])
    xy = (xy - centre) * rng.uniform(0.85, 1.15) + centre + rng.uniform(-60, 60, 2)
    xy += rng.normal(0, 1.5, xy.shape)
    score = rng.uniform(0.8, 1.0, (frames, 17, 1))
    return np.concatenate([xy, score], axis=-1).astype(np.float32)


def mmpose_json(path: Path, persons: list[np.ndarray], starts: list[int] | None = None) -> Path:
    """Write MMPose predictions of ``persons`` (each ``(T_i, 17, 3)``, starting at frame ``starts[i]``)."""
    starts = starts or [0] * len(persons)
    length = max(s + len(p) for s, p in zip(starts, persons))
    frames = []
    for t in range(length):
        instances = []
        for s, person in zip(starts, persons):
            if s <= t < s + len(person):
                kp = person[t - s]
                lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
                instances.append(
                    {
                        "keypoints": kp[:, :2].round(2).tolist(),
                        "keypoint_scores": kp[:, 2].round(3).tolist(),
                        "bbox": [[*lo.round(1).tolist(), *hi.round(1).tolist()]],
                        "bbox_score": 0.95,
                    }
                )
        frames.append({"frame_id": t, "instances": instances})
    path.write_text(json.dumps(frames))
    return path
