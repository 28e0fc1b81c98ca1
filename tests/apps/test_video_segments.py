"""Windows, smoothing and segments on synthetic score sequences (no model)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from purls_pl.apps.video_segments import segments, sliding_windows, smooth_scores, window_cores


def test_windows_cover_every_frame_with_a_last_one_at_the_end():
    assert sliding_windows(100, 32, 8) == [(s, s + 32) for s in range(0, 69, 8)] + [(68, 100)]
    assert sliding_windows(96, 32, 16) == [(0, 32), (16, 48), (32, 64), (48, 80), (64, 96)]
    assert sliding_windows(20, 32, 8) == [(0, 20)]  # shorter than a window: one window of all of it
    with pytest.raises(ValueError, match="stride must be >= 1"):
        sliding_windows(100, 32, 0)
    with pytest.raises(ValueError, match="no frames"):
        sliding_windows(0, 32, 8)


def test_cores_tile_the_frames_without_overlap():
    windows = sliding_windows(100, 32, 8)
    cores = window_cores(windows)
    assert cores[0][0] == 0 and cores[-1][1] == 100
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cores))
    assert cores[0] == (0, 20) and cores[1] == (20, 28)  # centres 16, 24, 32: midway 20 and 28
    centres = [(a + b) / 2 for a, b in windows]
    for (lo, hi), c in zip(cores[1:-1], centres[1:-1]):
        assert lo <= c < hi


def test_smoothing_is_a_centred_mean_over_valid_windows():
    scores = np.array([[0.0], [3.0], [6.0], [9.0], [100.0]])
    valid = np.array([True, True, True, True, False])
    out = smooth_scores(scores, 3, valid)
    np.testing.assert_allclose(out[:, 0], [1.5, 3.0, 6.0, 7.5, 100.0])  # the invalid one neither used nor changed
    np.testing.assert_array_equal(smooth_scores(scores, 1), scores)
    with pytest.raises(ValueError, match=">= 1 window"):
        smooth_scores(scores, 0)


def test_segments_join_runs_of_the_same_best_class_and_report_their_mean_score():
    windows = sliding_windows(60, 20, 10)  # (0,20) (10,30) (20,40) (30,50) (40,60)
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.6], [0.1, 0.5]])
    found = segments(scores, windows, ["squat", "wave"], fps=10.0)
    assert [(s.label, s.start, s.end, s.windows) for s in found] == [("squat", 0, 25, 2), ("wave", 25, 60, 3)]
    assert found[0].score == pytest.approx(0.85) and found[1].score == pytest.approx(0.6)
    assert (found[1].start_s, found[1].end_s) == (2.5, 6.0)


def test_invalid_windows_and_the_threshold_split_segments():
    windows = sliding_windows(60, 20, 10)
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.9, 0.0], [0.2, 0.3], [0.9, 0.1]])
    valid = np.array([True, True, False, True, True])
    found = segments(scores, windows, ["squat", "wave"], 10.0, valid=valid, threshold=0.5)
    # window 2 shows nobody, window 3's best (0.3) is below the threshold: two squat segments around a gap
    assert [(s.label, s.start, s.end) for s in found] == [("squat", 0, 25), ("squat", 45, 60)]
    flicker = segments(scores, windows, ["squat", "wave"], 10.0, valid=valid, min_windows=2)
    assert [(s.label, s.windows) for s in flicker] == [("squat", 2)]
    with pytest.raises(ValueError, match="5 windows x 3 classes"):
        segments(scores, windows, ["a", "b", "c"], 10.0)
