"""Sliding windows over a video, temporal smoothing of their scores, and the segments they add up to (pure).

A video of ``T`` frames is cut into windows ``[start, start + length)`` every ``stride`` frames
(:func:`sliding_windows`; the last one ends at the last frame, so every frame is covered). Each window is
scored against the named classes; :func:`smooth_scores` averages each window's scores with its neighbours'
(a centred moving average over ``smooth`` windows, shrinking at the ends), and :func:`segments` gives each
window its best class and joins runs of windows with the same best class into :class:`Segment` s.

A window stands for its *core*, the frames nearer to its centre than to a neighbour's (:func:`window_cores`),
so the segments of one video tile its covered frames without overlap. Windows marked invalid (too few frames
showing the person) end a segment and belong to none; so do windows whose best smoothed score is below
``threshold`` when one is given. :class:`VideoResult` holds all of it for one video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from purls_pl.video.landmarks import PoseTrack

__all__ = ["Segment", "VideoResult", "segments", "sliding_windows", "smooth_scores", "window_cores"]


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` where ``label`` is the best class, with its mean smoothed ``score`` there.

    ``start_s`` and ``end_s`` are the same in seconds; ``windows`` how many windows the segment joins.
    """

    start: int
    end: int
    label: str
    score: float
    start_s: float
    end_s: float
    windows: int

    def to_row(self) -> dict[str, object]:
        """The segment as a table row (CSV / JSON)."""
        row = asdict(self)
        row["score"] = round(self.score, 6)
        row["start_s"], row["end_s"] = round(self.start_s, 3), round(self.end_s, 3)
        return row


def sliding_windows(num_frames: int, length: int, stride: int) -> list[tuple[int, int]]:
    """Windows ``[(start, stop)]`` of ``length`` frames every ``stride`` frames over ``num_frames``.

    A video shorter than ``length`` is one window of all its frames; otherwise a last window ending at the
    last frame is added when the regular ones stop short of it.

    Raises:
        ValueError: ``length`` or ``stride`` below 1, or no frames.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got length {length}, stride {stride}")
    if num_frames < 1:
        raise ValueError("the video has no frames")
    if num_frames <= length:
        return [(0, num_frames)]
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    return [(s, s + length) for s in starts]


def window_cores(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The frames each window stands for: from midway between its centre and the previous window's to midway
    towards the next one's (the first from its start, the last to its stop), so the cores tile the frames."""
    centres = [(a + b) / 2 for a, b in windows]
    cores = []
    for i, (a, b) in enumerate(windows):
        lo = a if i == 0 else int(np.ceil((centres[i - 1] + centres[i]) / 2))
        hi = b if i == len(windows) - 1 else int(np.ceil((centres[i] + centres[i + 1]) / 2))
        cores.append((lo, max(lo, hi)))
    return cores


def smooth_scores(scores: np.ndarray, smooth: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Centred moving average of ``(W, K)`` window scores over ``smooth`` windows (1: unchanged).

    Only ``valid`` windows (``(W,)`` bool; default all) are averaged, and each only with valid neighbours;
    an invalid window keeps its own scores. Near the ends the average takes the windows there are.
    """
    scores = np.asarray(scores, np.float64)
    if smooth < 1:
        raise ValueError(f"smoothing must span >= 1 window, got {smooth}")
    valid = np.ones(len(scores), bool) if valid is None else np.asarray(valid, bool)
    out = scores.copy()
    half = smooth // 2
    for i in np.flatnonzero(valid):
        lo, hi = max(0, i - half), min(len(scores), i + smooth - half)
        keep = np.arange(lo, hi)[valid[lo:hi]]
        out[i] = scores[keep].mean(axis=0)
    return out


def segments(
    scores: np.ndarray,
    windows: Sequence[tuple[int, int]],
    classes: Sequence[str],
    fps: float,
    valid: np.ndarray | None = None,
    threshold: float | None = None,
    min_windows: int = 1,
) -> list[Segment]:
    """Runs of windows with the same best class of (smoothed) ``scores`` ``(W, K)``, as :class:`Segment` s.

    Args:
        scores: One row per window of ``windows``, one column per class of ``classes``.
        windows: ``[(start, stop)]`` frames of each window (:func:`sliding_windows`).
        classes: The class names, in column order.
        fps: Frames per second (for the times in seconds).
        valid: ``(W,)`` bool: windows that count (default all); an invalid one ends a segment.
        threshold: A window whose best score is below it belongs to no segment (``None``: every window counts).
        min_windows: Runs of fewer windows are left out (a flicker between two long segments).

    Returns:
        The segments in time order; a segment's ``start``/``end`` are its windows' cores' union.
    """
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(windows), len(classes)):
        raise ValueError(f"scores of shape {scores.shape} for {len(windows)} windows x {len(classes)} classes")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    valid = np.ones(len(windows), bool) if valid is None else np.asarray(valid, bool).copy()
    best = scores.argmax(axis=1) if len(classes) else np.zeros(len(windows), int)
    if threshold is not None:
        valid &= scores[np.arange(len(windows)), best] >= threshold
    cores = window_cores(windows)
    found: list[Segment] = []
    i = 0
    while i < len(windows):
        if not valid[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(windows) and valid[j + 1] and best[j + 1] == best[i]:
            j += 1
        if j - i + 1 >= min_windows:
            k = int(best[i])
            start, end = cores[i][0], cores[j][1]
            score = float(scores[i : j + 1, k].mean())
            found.append(Segment(start, end, classes[k], score, start / fps, end / fps, j - i + 1))
        i = j + 1
    return found


@dataclass
class VideoResult:
    """What :func:`recognize_video` found.

    Attributes:
        classes: The named classes, in score-column order.
        windows: ``[(start, stop)]`` frames of every window.
        scores: ``(W, K)`` smoothed scores (NaN rows: windows not scored, too few frames with the person).
        raw_scores: ``(W, K)`` the scores before smoothing.
        valid: ``(W,)`` bool: the windows scored.
        segments: Runs of windows with the same best class.
        track: The person's landmarks (COCO-17 pixels) the windows were cut from.
        layout: The checkpoint's layout.
        timing: Seconds and counts of the phases (``pose_seconds``, ``pose_frames``, ``score_seconds``, ...).
    """

    classes: list[str]
    windows: list[tuple[int, int]]
    scores: np.ndarray
    raw_scores: np.ndarray
    valid: np.ndarray
    segments: list[Segment]
    track: PoseTrack
    layout: str
    timing: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def top(self, frame: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best classes of the window whose centre is nearest ``frame`` among the scored ones."""
        if not self.valid.any():
            return []
        centres = np.array([(a + b) / 2 for a, b in self.windows])
        idx = np.flatnonzero(self.valid)
        w = idx[np.argmin(np.abs(centres[idx] - frame))]
        order = np.argsort(-self.scores[w])[:k]
        return [(self.classes[i], float(self.scores[w, i])) for i in order]
