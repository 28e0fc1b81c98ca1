"""Shared preprocessing: temporal fitting, centering, alignment, 2-D normalisations, the Preprocessing record."""

from __future__ import annotations

import numpy as np
import pytest

from purls_pl.data.layouts import NTU25
from purls_pl.data.preprocess import (
    align_sequence,
    center_sequence,
    fit_length,
    normalize_2d,
    valid_length,
)
from purls_pl.data.preprocessing import Preprocessing


def _seq(length: int = 5, persons: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(persons, length, 25, 3)).astype(np.float32) + 1.0


def test_pad_loop_resample_lengths() -> None:
    seq = _seq(5)
    out, n = fit_length(seq, 12, "pad")
    assert out.shape == (2, 12, 25, 3) and n == 5
    np.testing.assert_array_equal(out[:, :5], seq)
    assert not out[:, 5:].any()
    out, n = fit_length(seq, 12, "loop")
    assert n == 5
    np.testing.assert_array_equal(out[:, 5:10], seq)
    np.testing.assert_array_equal(out[:, 10:], seq[:, :2])
    out, n = fit_length(seq, 9, "resample")
    assert n == 9
    np.testing.assert_allclose(out[:, ::2], seq, rtol=1e-6)  # 5 -> 9 frames keeps the originals at even steps
    np.testing.assert_allclose(out[:, 1], (seq[:, 0] + seq[:, 1]) / 2, rtol=1e-5)
    for mode in ("pad", "loop"):
        out, n = fit_length(seq, 3, mode)
        assert n == 3
        np.testing.assert_array_equal(out, seq[:, :3])
    out, n = fit_length(_seq(1), 4, "resample")
    np.testing.assert_array_equal(out[:, 3], out[:, 0])
    with pytest.raises(ValueError, match="temporal mode"):
        fit_length(seq, 4, "stretch")  # type: ignore[arg-type]


def test_centering_puts_center_joint_at_origin() -> None:
    seq = _seq(6)
    seq[1, :, :, :] += 5.0
    seq[:, 0] = 0  # an empty first frame: the first *valid* frame is used
    out = center_sequence(seq, 20)
    np.testing.assert_allclose(out[0, 1, 20], 0, atol=1e-6)
    np.testing.assert_allclose(out[1] - out[0], (seq[1] - seq[0])[None][0], atol=1e-5)  # relative position kept
    assert not out[:, 0].any()
    per = center_sequence(seq, 20, per_person=True)
    np.testing.assert_allclose(per[:, 1, 20], 0, atol=1e-6)
    seq[1] = 0
    assert not center_sequence(seq, 20)[1].any()  # a missing person stays zero


def test_alignment_axes() -> None:
    out = align_sequence(center_sequence(_seq(4, seed=3), 0), z_bone=(0, 1), x_bone=(8, 4))
    shoulders = out[0, 0, 4] - out[0, 0, 8]
    np.testing.assert_allclose(shoulders[1:], 0, atol=1e-5)
    assert shoulders[0] > 0
    z_only = align_sequence(_seq(4, seed=3), z_bone=(0, 1), x_bone=(0, 0))
    spine = z_only[0, 0, 1] - z_only[0, 0, 0]
    np.testing.assert_allclose(spine[:2], 0, atol=1e-5)
    seq = _seq(4)
    np.testing.assert_allclose(np.linalg.norm(align_sequence(seq), axis=-1), np.linalg.norm(seq, axis=-1), rtol=1e-5)


def test_kinetics_normalisation_and_pipeline() -> None:
    seq = np.random.default_rng(0).random((2, 8, 18, 3)).astype(np.float32)
    seq[0, 2, 3, 2] = 0
    out = normalize_2d(seq)
    assert out[0, 2, 3, 0] == 0 and out[0, 2, 3, 1] == 0
    np.testing.assert_allclose(out[0, 1, :, :2], seq[0, 1, :, :2] - 0.5)
    np.testing.assert_array_equal(out[..., 2], seq[..., 2])
    padded = np.concatenate([seq, np.zeros((2, 4, 18, 3), np.float32)], axis=1)
    assert valid_length(padded) == 8
    res, n = Preprocessing("openpose18", 20, "pad", normalization="stgcn").apply(padded)
    assert res.shape == (2, 20, 18, 3) and n == 8
    res, n = Preprocessing("ntu25", 10, "loop", center=True, align=True).apply(_seq(7))
    assert n == 7 and res.shape == (2, 10, 25, 3)
    np.testing.assert_allclose(res[0, 0, NTU25.center], 0, atol=1e-5)


def test_empty_frames_anywhere_are_dropped_only_when_asked():
    seq = np.ones((1, 6, 25, 3), np.float32) * np.arange(1, 7, dtype=np.float32)[None, :, None, None]
    seq[:, [0, 3]] = 0.0  # empty first and middle frames
    kept, length = Preprocessing("ntu25", 6, "pad").apply(seq)
    assert length == 6 and (kept[0, [0, 3]] == 0).all()
    ends, length = Preprocessing("ntu25", 6, "pad", empty_frames="ends").apply(seq)
    assert length == 5 and ends[0, :5, 0, 0].tolist() == [2, 3, 0, 5, 6] and (ends[0, 5:] == 0).all()
    dropped, length = Preprocessing("ntu25", 6, "pad", empty_frames="all").apply(seq)
    assert length == 4 and dropped[0, :4, 0, 0].tolist() == [2, 3, 5, 6] and (dropped[0, 4:] == 0).all()
