"""Video in, actions out: when each named action happens in a video, zero-shot, with a trained checkpoint.

::

    purls-pl recognize-video clip.mp4 --checkpoint last.ckpt --classes "squat, jumping jacks, bowling"
    purls-pl recognize-video poses.json --checkpoint last.ckpt --classes-file actions.txt --render clip.gif
    # Python
    from purls_pl.apps.recognize_video import recognize_video
    result = recognize_video("clip.mp4", "last.ckpt", ["squat", "jumping jacks"])  # -> VideoResult

The input is a video file (decoded by OpenCV, one person's pose estimated per frame by MediaPipe; the ``video``
extra, :mod:`purls_pl.video.mediapipe_pose`) or pose-estimator JSON of a video (MMPose / RTMPose predictions,
the MMPose demo's file, or an OpenPose folder; :mod:`purls_pl.data.pose_json`, persons tracked by box IoU, the
most persistent kept), which needs no extra. The person's landmarks are mapped onto the checkpoint's layout
(``coco17`` or ``penn13``) and each window is prepared by the checkpoint's recorded preprocessing, as its
training clips were (:mod:`purls_pl.video.landmarks`).

Windows are the checkpoint's frame count long (``--window``), every quarter of that (``--stride``); a window in
which fewer than ``--min-shown`` of the frames show the person is not scored. Every window is scored against
the classes by the checkpoint's method (text: ``--descriptions`` file, generated when it is missing and
``OPENAI_API_KEY`` is set, else label-only; see :mod:`purls_pl.apps.recognize`), the scores are smoothed
over ``--smooth`` windows, and runs of windows with the same best class become segments
(:mod:`purls_pl.apps.video_segments`). Outputs, in ``--out`` (default ``<input name>-actions/``): the table
on stdout, ``segments.csv``, ``segments.json`` (segments, every window's scores, the settings) and
``timeline.png`` (classes x time); ``--render`` writes an MP4 or GIF with the skeleton and the top classes.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from purls_pl.apps.recognize import _load, candidate_inputs, checkpoint_record, score_prepared
from purls_pl.apps.video_segments import VideoResult, segments, sliding_windows, smooth_scores
from purls_pl.data.errors import SampleError, SampleMissingError
from purls_pl.data.readers import recorded_preprocessing
from purls_pl.progress import Progress
from purls_pl.video.landmarks import PoseTrack, check_mappable, frames_shown, pose_track_from_json, window_raw

log = logging.getLogger(__name__)

__all__ = ["VideoResult", "load_track", "main", "parse_classes", "recognize_video", "write_outputs"]


def parse_classes(classes: str | None, classes_file: str | Path | None) -> list[str]:
    """The action names of ``--classes "a, b"`` or ``--classes-file`` (one per line; ``#`` starts a comment),
    stripped, duplicates dropped; a ``ValueError`` naming the option or file when none is left."""
    if classes_file is not None:
        path = Path(classes_file)
        if not path.is_file():
            raise SampleError(path, "classes file does not exist", "give a text file with one action name per line")
        names = [line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
        where, fix = str(path), "write one action name per line"
    else:
        names = (classes or "").split(",")
        where, fix = "--classes", 'name the actions, comma-separated: --classes "squat, jumping jacks, bowling"'
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise ValueError(f"{where}: no action name given; {fix}")
    return names


def is_pose_json(path: Path) -> bool:
    """Pose-estimator output (a ``.json`` file, or a folder of them) rather than a video file."""
    return path.is_dir() or path.suffix.lower() == ".json"


def load_track(
    path: str | Path,
    fps: float | None = None,
    image_size: tuple[float, float] | None = None,
    min_score: float = 0.3,
    timing: dict[str, float] | None = None,
    min_detection_confidence: float = 0.5,
) -> PoseTrack:
    """The person of a video (MediaPipe, its detector at ``min_detection_confidence``) or of pose JSON (``fps``
    default 30; ``image_size`` ``(H, W)``)."""
    path = Path(path)
    if not path.exists():
        raise SampleMissingError(path, "does not exist", "give a video file or pose-estimator JSON (MMPose, OpenPose)")
    start = time.perf_counter()
    if is_pose_json(path):
        track = pose_track_from_json(path, fps or 30.0, image_size, min_score)
    else:
        from purls_pl.video.mediapipe_pose import estimate_video

        track = estimate_video(path, min_detection_confidence=min_detection_confidence)
        if fps:
            track = PoseTrack(track.keypoints, fps, track.image_size, track.source, track.detector)
    if timing is not None:
        timing["pose_seconds"], timing["pose_frames"] = time.perf_counter() - start, track.num_frames
    return track


@torch.no_grad()
def recognize_video(
    source: str | Path | PoseTrack,
    checkpoint: Any,
    classes: Sequence[str],
    descriptions: str | Path | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    smooth: int = 3,
    min_shown: float = 0.5,
    min_score: float = 0.3,
    threshold: float | None = None,
    min_windows: int = 1,
    fps: float | None = None,
    image_size: tuple[float, float] | None = None,
    min_detection_confidence: float = 0.5,
    device: str = "cpu",
    text_model: str | None = None,
    batch_size: int = 32,
) -> VideoResult:
    """Score every window of a video against ``classes`` and find the segments (module docstring).

    Args:
        source: A video file, pose-estimator JSON (file or OpenPose folder), or a :class:`PoseTrack`.
        checkpoint: A checkpoint path of any method whose layout is ``coco17`` or ``penn13``.
        classes: Action names, any.
        descriptions: A description file for the classes (:func:`purls_pl.apps.recognize.candidate_descriptions`).
        window: Frames per window (default: the checkpoint's ``num_frames``).
        stride: Frames between window starts (default: a quarter of ``window``).
        smooth: Windows in the moving average of scores (1: none).
        min_shown: Share of a window's frames that must show the person for it to be scored.
        min_score: Joints scored below it are missing.
        threshold: Windows whose best smoothed score is below it belong to no segment.
        min_windows: Segments of fewer windows are dropped.
        fps: Frames per second (default: the video's; 30 for JSON).
        image_size: ``(H, W)`` for JSON input under ``normalization="image"``.
        min_detection_confidence: MediaPipe's person detector threshold (video input).

    Raises:
        ValueError: no class; a checkpoint of an unmappable layout (:class:`SampleError` naming it); no window
            shows the person; as :func:`load_track`.
    """
    if not classes:
        raise ValueError("recognize-video needs at least one action name (--classes or --classes-file)")
    classes = list(classes)
    module = _load(checkpoint, device)
    spec = checkpoint_record(module)
    prep = recorded_preprocessing(spec["preprocess"], spec.get("source"))
    check_mappable(prep.layout, checkpoint if not hasattr(checkpoint, "checkpoint_spec") else "<model>")
    timing: dict[str, float] = {}
    track = (
        source
        if isinstance(source, PoseTrack)
        else load_track(source, fps, image_size, min_score, timing, min_detection_confidence)
    )
    length = window or prep.num_frames or 32
    stride = stride or max(1, length // 4)
    wins = sliding_windows(track.num_frames, length, stride)
    valid = frames_shown(track, wins) >= min_shown
    if not valid.any():
        raise SampleError(
            track.source,
            f"no window of {length} frames shows the person in {min_shown:.0%} of its frames "
            f"({int(track.shown().sum())} of {track.num_frames} frames show anyone)",
            "give a video in which a person is visible most of the time, or lower --min-shown",
        )
    text, labels = candidate_inputs(module, classes, descriptions, text_model)
    start = time.perf_counter()
    raw = np.full((len(wins), len(classes)), np.nan)
    todo = np.flatnonzero(valid)
    with Progress(len(todo), f"{Path(track.source).name}: scoring windows", unit="window") as progress:
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            blocks = [prep.apply(window_raw(track, prep, *wins[w], min_score=min_score))[0] for w in chunk]
            raw[chunk] = score_prepared(module, torch.from_numpy(np.stack(blocks)), text, labels, batch_size).numpy()
            progress.update(len(chunk))
    timing["score_seconds"], timing["windows"] = time.perf_counter() - start, len(todo)
    smoothed = smooth_scores(raw, smooth, valid)
    found = segments(smoothed, wins, classes, track.fps, valid, threshold, min_windows)
    settings = {
        "window": length,
        "stride": stride,
        "smooth": smooth,
        "min_shown": min_shown,
        "min_score": min_score,
        "threshold": threshold,
        "min_windows": min_windows,
        "fps": track.fps,
        "layout": prep.layout,
        "detector": track.detector,
        "method": spec.get("method"),
    }
    return VideoResult(classes, wins, smoothed, raw, valid, found, track, prep.layout, timing, settings)


# ------------------------------------------------------------------ outputs
def segment_table(result: VideoResult) -> str:
    """The segments as an aligned text table (start, end, class, score)."""
    if not result.segments:
        return "no segment (no scored window, or every best score below --threshold)"
    width = max(len("class"), *(len(s.label) for s in result.segments))
    lines = [f"{'start':>8}  {'end':>8}  {'class':<{width}}  {'score':>8}"]
    lines += [f"{s.start_s:>7.2f}s  {s.end_s:>7.2f}s  {s.label:<{width}}  {s.score:>+8.4f}" for s in result.segments]
    return "\n".join(lines)


def write_outputs(result: VideoResult, out: str | Path, figure: bool = True) -> dict[str, Path]:
    """``segments.csv``, ``segments.json`` and (``figure``, with matplotlib) ``timeline.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "segments.csv", "json": out / "segments.json"}
    rows = [s.to_row() for s in result.segments]
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["start", "end", "label", "score", "start_s", "end_s", "windows"])
        writer.writeheader()
        writer.writerows(rows)
    record = {
        "source": result.track.source,
        "frames": result.track.num_frames,
        "classes": result.classes,
        "settings": result.settings,
        "segments": rows,
        "windows": [
            {
                "start": a,
                "end": b,
                "scored": bool(v),
                "scores": [round(float(x), 6) for x in row] if v else None,
                "raw_scores": [round(float(x), 6) for x in raw] if v else None,
            }
            for (a, b), v, row, raw in zip(result.windows, result.valid, result.scores, result.raw_scores)
        ],
        "timing": {k: round(v, 4) for k, v in result.timing.items()},
    }
    paths["json"].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if figure:
        try:
            from purls_pl.apps.video_figures import timeline_figure

            paths["timeline"] = timeline_figure(result, out / "timeline.png")
        except ImportError as err:
            log.warning("no timeline figure: %s (install the plots extra: pip install 'purls-pl[plots]')", err)
    return paths


# ------------------------------------------------------------------ command
def _size(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--image-size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1920x1080") from None
    return (h, w)


def main(argv: Sequence[str] | None = None) -> VideoResult:
    """``purls-pl recognize-video VIDEO --checkpoint CKPT --classes "a, b, c"`` (module docstring)."""
    parser = argparse.ArgumentParser(
        prog="purls-pl recognize-video",
        description="When each named action happens in a video (or pose-estimator JSON of one), zero-shot.",
    )
    parser.add_argument("video", help="a video file (needs the video extra) or MMPose / OpenPose JSON of a video")
    parser.add_argument("--checkpoint", "--ckpt", required=True, help="a checkpoint of layout penn13 or coco17")
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help='comma-separated action names, e.g. "squat, jumping jacks"')
    names.add_argument("--classes-file", help="a text file with one action name per line")
    parser.add_argument("--descriptions", help="description JSON of the classes (generated if missing with a key)")
    parser.add_argument("--out", help="output folder (default: <input name>-actions)")
    parser.add_argument("--window", type=int, help="frames per window (default: the checkpoint's frame count)")
    parser.add_argument("--stride", type=int, help="frames between windows (default: a quarter window)")
    parser.add_argument("--smooth", type=int, default=3, help="windows averaged (default: %(default)s)")
    parser.add_argument("--min-shown", type=float, default=0.5, help="share of frames showing the person")
    parser.add_argument("--min-score", type=float, default=0.3, help="joint confidence below which it is missing")
    parser.add_argument("--threshold", type=float, help="best score a window needs to be in a segment")
    parser.add_argument("--min-windows", type=int, default=1, help="windows a segment needs (default: %(default)s)")
    parser.add_argument("--fps", type=float, help="frames per second (default: the video's; 30 for JSON)")
    parser.add_argument("--image-size", help="WIDTHxHEIGHT of the frames, for JSON input")
    parser.add_argument(
        "--min-detection-confidence", type=float, default=0.5, help="MediaPipe's person detector threshold"
    )
    parser.add_argument("--render", help="also write an MP4 or GIF with the skeleton and the top classes")
    parser.add_argument("--frames", help="the video of a JSON input, whose frames --render draws on")
    parser.add_argument("--text-model", help="override the checkpoint's text tower")
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    args = parser.parse_args(argv)
    classes = parse_classes(args.classes, args.classes_file)
    result = recognize_video(
        args.video,
        args.checkpoint,
        classes,
        args.descriptions,
        window=args.window,
        stride=args.stride,
        smooth=args.smooth,
        min_shown=args.min_shown,
        min_score=args.min_score,
        threshold=args.threshold,
        min_windows=args.min_windows,
        fps=args.fps,
        image_size=_size(args.image_size),
        min_detection_confidence=args.min_detection_confidence,
        device=args.device,
        text_model=args.text_model,
    )
    out = Path(args.out) if args.out else Path(f"{Path(args.video).stem}-actions")
    paths = write_outputs(result, out)
    if args.render:
        from purls_pl.apps.video_figures import render_video

        frames = args.frames or (None if is_pose_json(Path(args.video)) else args.video)
        paths["render"] = render_video(result, args.render, frames)
    print(segment_table(result))
    for kind, path in paths.items():
        print(f"{kind}: {path}", file=sys.stderr)
    return result
