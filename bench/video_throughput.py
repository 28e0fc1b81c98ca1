"""recognize-video throughput: frames/s of decoding + pose estimation, windows/s of recognition.

    .venv-video/bin/python bench/video_throughput.py --checkpoint CKPT [--frames 300] [--threads 2] [--json out.json]

* **decode + pose**: the offline demo clip (:mod:`purls_pl.video.demo_clip`, scikit-image's cameraman moved by
  affine transforms, 360 x 360 at 30 fps) is written once, then decoded by OpenCV and run through MediaPipe's
  pose landmarker (``model_complexity=1``, tracking mode) frame by frame, as ``recognize-video`` does; frames/s
  over ``--frames`` frames (decoding alone is measured too).
* **recognition**: every window of that clip's pose track (the checkpoint's frame count long, a quarter of it
  apart) prepared by the checkpoint's recorded preprocessing and scored against ``--classes`` by its method, as
  ``recognize_video`` does after the poses; windows/s (the candidates' text is embedded once, outside the timing).

Torch runs on ``--threads`` threads (default 2, the machines' cores); MediaPipe's XNNPACK delegate picks its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a penn13 or coco17 checkpoint")
    parser.add_argument("--classes", default="squat, jumping jacks, jump rope, bowling, tennis serve, golf swing")
    parser.add_argument("--descriptions", default="descriptions/penn-action.json")
    parser.add_argument("--frames", type=int, default=300, help="frames of the clip (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="recognition passes timed (best kept)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("PURLS_PROGRESS_SECONDS", "1e9")

    from purls_pl.apps.recognize import _load, candidate_inputs, checkpoint_record, score_prepared
    from purls_pl.apps.video_segments import sliding_windows
    from purls_pl.data.readers import recorded_preprocessing
    from purls_pl.video.demo_clip import write_clip
    from purls_pl.video.frames import iter_frames
    from purls_pl.video.landmarks import window_raw
    from purls_pl.video.mediapipe_pose import estimate_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "camera.mp4", frames=args.frames)
        start = time.perf_counter()
        decoded = sum(1 for _ in iter_frames(clip))
        decode_s = time.perf_counter() - start
        timing: list[tuple[float, int]] = []
        track = estimate_video(clip, on_time=lambda s, n: timing.append((s, n)))
    pose_s, frames = timing[0]

    module = _load(args.checkpoint, "cpu")
    spec = checkpoint_record(module)
    prep = recorded_preprocessing(spec["preprocess"], spec.get("source"))
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    text, labels = candidate_inputs(module, classes, args.descriptions if Path(args.descriptions).is_file() else None)
    length = prep.num_frames or 32
    windows = sliding_windows(track.num_frames, length, max(1, length // 4))
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        blocks = np.stack([prep.apply(window_raw(track, prep, a, b))[0] for a, b in windows])
        score_prepared(module, torch.from_numpy(blocks), text, labels)
        best = min(best, time.perf_counter() - start)
    out = {
        "machine": f"{platform.machine()}, nproc {os.cpu_count()}, torch threads {args.threads}",
        "clip": f"{frames} frames, 360 x 360",
        "decode_frames_per_s": round(decoded / decode_s, 1),
        "decode_pose_frames_per_s": round(frames / pose_s, 1),
        "windows": len(windows),
        "window_frames": length,
        "classes": len(classes),
        "method": spec.get("method"),
        "recognition_windows_per_s": round(len(windows) / best, 1),
    }
    for key, value in out.items():
        print(f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
