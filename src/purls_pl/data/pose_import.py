"""A folder of pose-estimator JSON (MMPose, OpenPose) -> the custom dataset :class:`CustomSource` reads (``coco17``).

Source folder::

    <src>/
      index.csv          # sample_id,label,split (as the custom format's, see purls_pl.data.readers.custom)
      classes.txt        # optional: one class name per line, in class-index order
      <sample_id>.json   # MMPose / RTMPose predictions, or the MMPose demo's file, ...
      <sample_id>/       # ... or OpenPose's folder of <video>_<12 digits>_keypoints.json frames

Output folder (:func:`import_poses`): ``<sample_id>.npy`` ``(max_persons, T, 17, 3)`` float32 COCO-17
``[x, y, score]`` per sample (:func:`purls_pl.data.pose_json.read_pose_video`), ``index.csv``, ``classes.txt``,
``layout.json`` (the registered ``coco17``) and ``import.json`` (what was read, with which settings). The
output is built in a hidden folder beside the destination and moved there only when every sample converted:
an error leaves nothing behind, and an existing destination is never replaced unless ``overwrite`` is set
and it is a folder this function wrote (it holds ``import.json``).

Command line: ``python -m purls_pl import-poses SRC DST [--max-persons 2] [--min-score 0.3]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from purls_pl.data.errors import SampleError, SampleMissingError
from purls_pl.data.layouts import get_layout
from purls_pl.data.pose_json import read_pose_video
from purls_pl.data.readers._base import OnError, SkippedSample, check_on_error, format_skipped, reject
from purls_pl.data.readers.custom import read_custom_index

__all__ = ["MARKER", "import_poses", "main"]

#: The file that marks a folder as written by :func:`import_poses` (and records how).
MARKER = "import.json"
_FORMAT = 1


def _video_path(src: Path, sample_id: str) -> Path:
    """``src/<sample_id>.json`` or the folder ``src/<sample_id>/``; a :class:`SampleMissingError` when neither."""
    for candidate in (src / f"{sample_id}.json", src / sample_id):
        if candidate.exists():
            return candidate
    raise SampleMissingError(
        src / f"{sample_id}.json",
        f"(or the folder {src / sample_id}) does not exist, but index.csv lists sample {sample_id!r}",
        "add the video's pose file (MMPose .json) or OpenPose folder, or remove its row from index.csv",
    )


def _check_destination(dst: Path, overwrite: bool) -> None:
    """Refuse a destination holding anything, unless ``overwrite`` and it is one this module wrote."""
    if not dst.exists() or (dst.is_dir() and not any(dst.iterdir())):
        return
    if not dst.is_dir():
        raise FileExistsError(f"{dst} exists and is not a folder; choose another destination")
    if not overwrite:
        raise FileExistsError(
            f"{dst} exists and is not empty; choose a new destination folder (or, to replace an earlier "
            "import-poses output, pass overwrite=True / --overwrite)"
        )
    if not (dst / MARKER).is_file():
        raise FileExistsError(
            f"{dst} was not written by import-poses (it has no {MARKER}); it is never replaced. Choose a new "
            "destination folder, or move it aside yourself"
        )


def import_poses(
    src: str | Path,
    dst: str | Path,
    *,
    max_persons: int = 2,
    min_score: float = 0.3,
    iou_threshold: float = 0.3,
    on_error: OnError = "raise",
    overwrite: bool = False,
) -> tuple[Path, list[SkippedSample]]:
    """Convert ``src`` (per-video pose JSON + ``index.csv`` [+ ``classes.txt``]) into a custom dataset at ``dst``.

    Args:
        src: The source folder (see the module docstring).
        dst: The output folder; it must not exist or be empty (see ``overwrite``).
        max_persons: Person slots ``M`` of each ``(M, T, 17, 3)`` sample (the most persistent tracks).
        min_score: Joints scored below it are missing (zero).
        iou_threshold: Least box IoU that links a detection to a track.
        on_error: ``"raise"``: the first bad video stops the conversion (nothing is written);
            ``"skip"``: bad videos are left out and returned.
        overwrite: Replace ``dst`` when it holds an earlier output of this function (never another folder).

    Returns:
        ``(dst, skipped)``: the folder (``CustomSource(dst)`` reads it) and the videos left out.

    Raises:
        SampleError: a bad video (the file, the field and the fix), with ``on_error="raise"``.
        FileExistsError: ``dst`` holds something this function may not replace.
        ValueError: a bad ``index.csv`` / ``classes.txt``, or no video could be converted.
    """
    check_on_error(on_error)
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not (src / "index.csv").is_file():
        raise FileNotFoundError(
            f"{src / 'index.csv'} does not exist; the source folder needs index.csv (sample_id,label,split), "
            "optional classes.txt, and one pose file or OpenPose folder per sample_id"
        )
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst} is the source folder; write the dataset to another folder")
    _check_destination(dst, overwrite)
    skipped: list[SkippedSample] = []
    rows = read_custom_index(src / "index.csv", on_error, skipped)
    classes_file = src / "classes.txt"
    if classes_file.is_file():
        classes = [c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()]
        for sid, label, _ in rows:
            if label not in classes:
                problem = f"sample {sid!r}: label {label!r} is not in {classes_file}"
                reject(on_error, skipped, src / "index.csv", problem, "add the class to classes.txt or fix the label")
        rows = [r for r in rows if r[1] in classes]
    else:
        classes = sorted({label for _, label, _ in rows})
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        kept, formats = _convert(src, tmp, rows, max_persons, min_score, iou_threshold, on_error, skipped)
        if not kept:
            raise ValueError(f"{src}: no video could be converted:\n{format_skipped(skipped)}")
        with open(tmp / "index.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["sample_id", "label", "split"])
            w.writerows(kept)
        (tmp / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
        (tmp / "layout.json").write_text(json.dumps(get_layout("coco17").to_mapping(), indent=1))
        record = {
            "format": _FORMAT,
            "source": str(src.resolve()),
            "max_persons": max_persons,
            "min_score": min_score,
            "iou_threshold": iou_threshold,
            "channels": ["x", "y", "score"],
            "formats": formats,
            "skipped": [s.as_dict() for s in skipped],
        }
        (tmp / MARKER).write_text(json.dumps(record, indent=1))
        if dst.exists():  # empty, or an earlier import (checked above)
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst, skipped


def _convert(
    src: Path,
    out: Path,
    rows: list[tuple[str, str, str]],
    max_persons: int,
    min_score: float,
    iou_threshold: float,
    on_error: OnError,
    skipped: list[SkippedSample],
) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Write ``out/<sample_id>.npy`` per row; returns the converted rows and each one's format."""
    kept: list[tuple[str, str, str]] = []
    formats: dict[str, str] = {}
    for sid, label, split in rows:
        try:
            video = read_pose_video(_video_path(src, sid), max_persons, min_score, iou_threshold)
        except SampleError as err:
            reject(on_error, skipped, err.path, err.problem, err.fix, isinstance(err, FileNotFoundError))
            continue
        np.save(out / f"{sid}.npy", video.data)
        kept.append((sid, label, split))
        formats[sid] = video.format
    return kept, formats


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl import-poses SRC DST``: pose-estimator JSON -> a custom dataset (layout ``coco17``)."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl import-poses",
        description="Convert a folder of per-video pose-estimator JSON (MMPose / RTMPose predictions or demo "
        "files, OpenPose BODY_25 / COCO-18 frame folders) plus index.csv and classes.txt into a custom dataset "
        "(one (M, T, 17, 3) .npy per sample, layout coco17) that purls_pl.data.readers.CustomSource reads.",
    )
    parser.add_argument("src", help="folder with index.csv, classes.txt and <sample_id>.json or <sample_id>/")
    parser.add_argument("dst", help="new output folder (must not exist, or be empty)")
    parser.add_argument("--max-persons", type=int, default=2, help="person slots per sample (default 2)")
    parser.add_argument("--min-score", type=float, default=0.3, help="joints scored below are missing (default 0.3)")
    parser.add_argument("--iou-threshold", type=float, default=0.3, help="least IoU linking a box to a track")
    parser.add_argument("--skip-bad", action="store_true", help="leave bad videos out (listed) instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if an earlier import-poses wrote it")
    args = parser.parse_args(argv)
    dst, skipped = import_poses(
        args.src,
        args.dst,
        max_persons=args.max_persons,
        min_score=args.min_score,
        iou_threshold=args.iou_threshold,
        on_error="skip" if args.skip_bad else "raise",
        overwrite=args.overwrite,
    )
    rows = sum(1 for _ in open(dst / "index.csv", encoding="utf-8")) - 1
    print(f"wrote {rows} samples (layout coco17) to {dst}")
    if skipped:
        print(f"skipped {len(skipped)}:\n{format_skipped(skipped)}")
