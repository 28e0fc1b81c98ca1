"""Pose-estimator JSON of one video -> ``(M, T, 17, 3)`` COCO-17 ``[x, y, score]``, persons tracked by box IoU.

Formats, told apart by their content (never by the file name):

``mmpose``
    the ``mmpose`` inferencer's ``predictions`` of a video: a JSON list of frames
    ``[{"frame_id": 0, "instances": [{"keypoints": [[x, y], ... 17], "keypoint_scores": [... 17],
    "bbox": [[x1, y1, x2, y2]], "bbox_score": 0.9}, ...]}, ...]`` (``bbox`` also flat ``[x1, y1, x2, y2]``;
    ``bbox`` and ``bbox_score`` optional). COCO-17 keypoints (RTMPose / HRNet body models).
``mmpose-demo``
    the file MMPose's demo scripts write with ``--save-predictions``:
    ``{"meta_info": {...}, "instance_info": [<the frames above>]}``.
``openpose``
    OpenPose's ``--write_json`` output: a folder per video with one ``<video>_<12 digits>_keypoints.json``
    per frame, ``{"version": 1.3, "people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...]}, ...]}``;
    BODY_25 (25 joints) or COCO (18 joints), mapped onto COCO-17 with :data:`BODY25_TO_COCO17` /
    :data:`COCO18_TO_COCO17`. Frames are ordered by the number in the file name (else by name).

The index maps follow OpenPose's keypoint order (``doc/02_output.md``, "Keypoint Ordering in C++/Python":
``POSE_BODY_25_BODY_PARTS`` and ``POSE_COCO_BODY_PARTS`` of ``src/openpose/pose/poseParameters.cpp``):
BODY_25 is Nose, Neck, RShoulder, RElbow, RWrist, LShoulder, LElbow, LWrist, MidHip, RHip, RKnee, RAnkle,
LHip, LKnee, LAnkle, REye, LEye, REar, LEar, then six foot points; COCO-18 is the same without MidHip and
the feet (RHip = 8 ... LEar = 17). COCO-17 is COCO's order (:data:`purls_pl.data.layouts.COCO17`).

Joints scored below ``min_score`` become missing, the project's way: all three channels zero (an all-zero
joint is missing, :mod:`purls_pl.data.readers.custom`); a frame with nobody is all zero (the custom reader
drops such frames). Every problem raises :class:`~purls_pl.data.errors.SampleError` naming the file, the
field and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from purls_pl.data.errors import SampleError

__all__ = [
    "BODY25_TO_COCO17",
    "COCO18_TO_COCO17",
    "Detection",
    "PoseVideo",
    "box_iou",
    "read_pose_frames",
    "read_pose_video",
    "track_persons",
]

NUM_JOINTS = 17
#: COCO-17 joint ``i`` is OpenPose BODY_25 joint ``BODY25_TO_COCO17[i]`` (nose, l/r eye, l/r ear, l/r shoulder,
#: l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle; OpenPose: 0 Nose, 16 LEye, 15 REye, 18 LEar, 17 REar, ...).
BODY25_TO_COCO17: tuple[int, ...] = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
#: COCO-17 joint ``i`` is OpenPose COCO-18 joint ``COCO18_TO_COCO17[i]`` (no MidHip: the hips are 11 / 8).
COCO18_TO_COCO17: tuple[int, ...] = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
_OPENPOSE_MAPS = {25: ("BODY_25", BODY25_TO_COCO17), 18: ("COCO-18", COCO18_TO_COCO17)}
EXPECTED = (
    "an MMPose predictions list [{'frame_id': 0, 'instances': [{'keypoints': [[x, y], ...], 'keypoint_scores': "
    "[...]}]}], an MMPose demo file {'meta_info': {...}, 'instance_info': [...]}, or an OpenPose frame "
    "{'people': [{'pose_keypoints_2d': [x, y, c, ...]}]} (one file per frame, in a folder per video)"
)
_FRAME_NUMBER = re.compile(r"_(\d+)_keypoints\.json$")


@dataclass(frozen=True)
class Detection:
    """One detected person in one frame.

    Attributes:
        keypoints: ``(17, 3)`` float32 COCO-17 ``[x, y, score]``; joints below ``min_score`` all zero.
        box: ``(4,)`` float64 ``[x1, y1, x2, y2]``: the file's box, else the visible joints' extent.
    """

    keypoints: np.ndarray
    box: np.ndarray


class PoseVideo(NamedTuple):
    """A read video: ``data`` ``(max_persons, T, 17, 3)`` float32, its ``format`` and how many ``tracks`` it held."""

    data: np.ndarray
    format: str
    tracks: int


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SampleError(path, f"is not UTF-8 text ({err.reason})", "give the JSON file the estimator wrote") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        cut = " (the file ends early: truncated or still being written?)" if err.pos >= len(text.rstrip()) else ""
        raise SampleError(
            path,
            f"is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}{cut}",
            "re-run the pose estimator on this video (or re-copy the file) so that it is complete",
        ) from None


def detect_format(content: Any, path: str | Path) -> str:
    """``"mmpose"``, ``"mmpose-demo"`` or ``"openpose"`` from a parsed file; else a :class:`SampleError`."""
    if isinstance(content, dict) and "instance_info" in content:
        return "mmpose-demo"
    if isinstance(content, dict) and "people" in content:
        return "openpose"
    if isinstance(content, list) and all(isinstance(f, dict) and "instances" in f for f in content):
        return "mmpose"
    if isinstance(content, dict):
        found = f"an object with the keys {sorted(map(str, content))[:8]}"
    elif isinstance(content, list):
        bad = next(f for f in content if not (isinstance(f, dict) and "instances" in f))
        what = f"keys {sorted(map(str, bad))[:8]}" if isinstance(bad, dict) else type(bad).__name__
        found = f"a list whose item {content.index(bad)} has no 'instances' ({what})"
    else:
        found = f"a JSON {type(content).__name__}"
    raise SampleError(path, f"holds {found}; expected {EXPECTED}", "give the file the pose estimator wrote")


def _array(value: Any, path: Path, where: str, shape: tuple[int, ...], fix: str) -> np.ndarray:
    """``value`` as a float array of ``shape`` (``-1``: any), finite; else a :class:`SampleError` naming ``where``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SampleError(path, f"{where} is not a list of numbers ({str(value)[:60]})", fix) from None
    if arr.ndim != len(shape) or any(s not in (-1, n) for s, n in zip(shape, arr.shape)):
        want = " x ".join("N" if s == -1 else str(s) for s in shape)
        raise SampleError(path, f"{where} has shape {arr.shape}; expected {want}", fix)
    if not np.isfinite(arr).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise SampleError(
            path,
            f"{where} holds {arr[first]} at index {first} (NaN/inf coordinates)",
            "re-run the pose estimator, or write an undetected joint as 0, 0 with score 0",
        )
    return arr


def _detection(xy: np.ndarray, score: np.ndarray, box: np.ndarray | None, min_score: float) -> Detection | None:
    """A person from ``(17, 2)`` coordinates and ``(17,)`` scores; ``None`` when no joint reaches ``min_score``."""
    visible = score >= min_score
    if not visible.any():
        return None
    kp = np.zeros((NUM_JOINTS, 3), np.float32)
    kp[visible, :2], kp[visible, 2] = xy[visible], score[visible]
    if box is None:
        pts = xy[visible]
        box = np.concatenate([pts.min(0), pts.max(0)])
    return Detection(kp, box)


def _mmpose_frames(frames: list[Any], path: Path, field_name: str, min_score: float) -> list[list[Detection]]:
    """MMPose frames ``[{"frame_id", "instances"}]`` -> detections per frame (position ``frame_id``)."""
    fix = f"give COCO-17 keypoints (an RTMPose / HRNet body model on COCO's {NUM_JOINTS} joints), as MMPose writes them"
    by_id: dict[int, list[Detection]] = {}
    for pos, frame in enumerate(frames):
        where = f"{field_name}[{pos}]"
        if not isinstance(frame, dict) or not isinstance(frame.get("instances"), list):
            raise SampleError(
                path, f"{where} has no 'instances' list", f"each frame is {{'frame_id', 'instances'}}; {fix}"
            )
        fid = frame.get("frame_id", pos)
        if not isinstance(fid, int) or fid < 0 or fid in by_id:
            problem = "repeats" if fid in by_id else "is not a non-negative integer"
            raise SampleError(path, f"{where}.frame_id {fid!r} {problem}", "number the frames 0, 1, 2, ... once each")
        people = []
        for k, inst in enumerate(frame["instances"]):
            at = f"{where}.instances[{k}]"
            if not isinstance(inst, dict) or "keypoints" not in inst or "keypoint_scores" not in inst:
                raise SampleError(path, f"{at} lacks 'keypoints' or 'keypoint_scores'", fix)
            xy = _array(inst["keypoints"], path, f"{at}.keypoints", (-1, 2), fix)
            if len(xy) != NUM_JOINTS:
                raise SampleError(path, f"{at}.keypoints has {len(xy)} joints; expected COCO-17's {NUM_JOINTS}", fix)
            score = _array(inst["keypoint_scores"], path, f"{at}.keypoint_scores", (NUM_JOINTS,), fix)
            box = None
            if inst.get("bbox") is not None:
                box = _array(np.ravel(inst["bbox"]), path, f"{at}.bbox", (4,), "write bbox as [x1, y1, x2, y2]")
            det = _detection(xy, score, box, min_score)
            if det is not None:
                people.append(det)
        by_id[fid] = people
    length = max(by_id, default=-1) + 1
    return [by_id.get(t, []) for t in range(length)]


def _openpose_frame(content: dict[str, Any], path: Path, min_score: float) -> list[Detection]:
    """One OpenPose frame ``{"people": [{"pose_keypoints_2d": [...]}]}`` -> its COCO-17 detections."""
    if not isinstance(content["people"], list):
        raise SampleError(path, "'people' is not a list", "give the file OpenPose's --write_json wrote")
    people = []
    for k, person in enumerate(content["people"]):
        at = f"people[{k}].pose_keypoints_2d"
        fix = "run OpenPose with the BODY_25 or COCO (18-joint) body model and --write_json"
        if not isinstance(person, dict) or not isinstance(person.get("pose_keypoints_2d"), list):
            raise SampleError(path, f"{at} is missing (or not a list)", fix)
        flat = _array(person["pose_keypoints_2d"], path, at, (-1,), fix)
        joints, rest = divmod(len(flat), 3)
        if rest or joints not in _OPENPOSE_MAPS:
            raise SampleError(
                path, f"{at} holds {len(flat)} numbers; expected 25 x 3 (BODY_25) or 18 x 3 (COCO-18) x, y, c", fix
            )
        pts = flat.reshape(joints, 3)[list(_OPENPOSE_MAPS[joints][1])]
        det = _detection(pts[:, :2], pts[:, 2], None, min_score)
        if det is not None:
            people.append(det)
    return people


def _frame_order(path: Path) -> tuple[int, int, str]:
    found = _FRAME_NUMBER.search(path.name)
    return (0, int(found.group(1)), path.name) if found else (1, 0, path.name)


def read_pose_frames(path: str | Path, min_score: float = 0.3) -> tuple[str, list[list[Detection]]]:
    """The detections of one video, per frame: ``(format, [[Detection, ...] per frame])``.

    Args:
        path: An MMPose JSON file, or an OpenPose folder of per-frame JSON files (one OpenPose file: one frame).
        min_score: Joints scored below it are missing (zero); a person with no joint left is dropped.

    Raises:
        SampleError: the file (or a frame file) is no JSON, is of no known format (the message says what is
            expected), has keypoints of the wrong joint count or NaN/inf values; it names the file and field.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".json"), key=_frame_order)
        if not files:
            raise SampleError(path, "is a folder without .json files", "put OpenPose's per-frame JSON files in it")
        frames = []
        for file in files:
            content = _load_json(file)
            if detect_format(content, file) != "openpose":
                raise SampleError(
                    file,
                    "is not an OpenPose frame {'people': [...]}, unlike the folder's other files",
                    "one video per folder",
                )
            frames.append(_openpose_frame(content, file, min_score))
        return "openpose", frames
    if not path.is_file():
        raise SampleError(path, "does not exist", "give an MMPose .json file or an OpenPose folder of frames")
    content = _load_json(path)
    fmt = detect_format(content, path)
    if fmt == "openpose":
        return fmt, [_openpose_frame(content, path, min_score)]
    if fmt == "mmpose-demo":
        frames = content["instance_info"]
        if not isinstance(frames, list):
            raise SampleError(path, "'instance_info' is not a list of frames", "give the file MMPose's demo wrote")
        return fmt, _mmpose_frames(frames, path, "instance_info", min_score)
    return fmt, _mmpose_frames(content, path, "frames", min_score)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` ``(N, 4)`` and ``b`` ``(K, 4)`` ``[x1, y1, x2, y2]`` -> ``(N, K)``.

    Two identical zero-area boxes (one joint seen) have IoU 1, different ones 0."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]).clip(0) * (x[..., 3] - x[..., 1]).clip(0)  # noqa: E731
    union = area(a) + area(b) - inter
    same = np.all(a == b, axis=-1)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), same.astype(np.float64))


@dataclass
class _Track:
    start: int
    box: np.ndarray
    frames: dict[int, np.ndarray] = field(default_factory=dict)


def _link(frames: Sequence[Sequence[Detection]], iou_threshold: float) -> list[_Track]:
    """Every track of ``frames`` (greedy IoU matching, see :func:`track_persons`), in order of their start."""
    tracks: list[_Track] = []
    for t, dets in enumerate(frames):
        if not dets:
            continue
        free = set(range(len(dets)))
        if tracks:
            iou = box_iou(np.stack([tr.box for tr in tracks]), np.stack([d.box for d in dets]))
            order = sorted(zip(*np.nonzero(iou >= iou_threshold)), key=lambda ij: (-iou[ij], ij))
            used: set[int] = set()
            for i, j in order:
                if i in used or j not in free:
                    continue
                used.add(i)
                free.discard(j)
                tracks[i].frames[t], tracks[i].box = dets[j].keypoints, dets[j].box
        for j in sorted(free):
            tracks.append(_Track(t, dets[j].box, {t: dets[j].keypoints}))
    return tracks


def _stack(tracks: list[_Track], length: int, max_persons: int) -> np.ndarray:
    """The ``max_persons`` most persistent of ``tracks`` as ``(max_persons, length, 17, 3)`` float32."""
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    ranked = sorted(tracks, key=lambda tr: (-len(tr.frames), tr.start))[:max_persons]
    out = np.zeros((max_persons, length, NUM_JOINTS, 3), np.float32)
    for m, tr in enumerate(ranked):
        for t, kp in tr.frames.items():
            out[m, t] = kp
    return out


def track_persons(
    frames: Sequence[Sequence[Detection]], max_persons: int = 2, iou_threshold: float = 0.3
) -> np.ndarray:
    """Link detections into tracks and keep the ``max_persons`` most persistent: ``(max_persons, T, 17, 3)`` float32.

    Each frame, the pairs (track, detection) are matched greedily by the IoU of the detection's box with the
    track's last box, highest first, while it is at least ``iou_threshold``; each track and detection is used
    once. A detection left over starts a track; a track not matched waits (it may match later). Tracks are
    ranked by their number of frames (ties: the earlier one first); person slots beyond the tracks, and a track's
    frames without it, are zero.
    """
    return _stack(_link(frames, iou_threshold), len(frames), max_persons)


def read_pose_video(
    path: str | Path, max_persons: int = 2, min_score: float = 0.3, iou_threshold: float = 0.3
) -> PoseVideo:
    """One video's pose-estimator output as ``(max_persons, T, 17, 3)`` float32 COCO-17 ``[x, y, score]``.

    See :func:`read_pose_frames` (formats, ``min_score``) and :func:`track_persons` (tracking, ``max_persons``,
    ``iou_threshold``).

    Raises:
        SampleError: as :func:`read_pose_frames`, or no person (with a joint at ``min_score``) in any frame.
    """
    fmt, frames = read_pose_frames(path, min_score)
    if not any(frames):
        raise SampleError(
            path,
            f"{fmt} output with no detected person in any of its {len(frames)} frames (every 'instances' / 'people' "
            f"list empty, or no joint scored >= min_score {min_score})",
            "check that the video shows someone (lower the detector's threshold or min_score), or drop its row "
            "from index.csv",
        )
    tracks = _link(frames, iou_threshold)
    return PoseVideo(_stack(tracks, len(frames), max_persons), fmt, len(tracks))
