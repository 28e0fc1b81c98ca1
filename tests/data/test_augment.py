import numpy as np
import pytest

from purls_pl.data.augment import SkeletonAugment, rotation_matrix


def _sample(frames=10, valid=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, frames, 5, 3)).astype(np.float32)
    x[:, valid:] = 0
    x[1] = 0  # absent second person
    return x


def test_rotation_preserves_bone_lengths_and_zeros():
    x = _sample()
    out = SkeletonAugment(rotate_degrees=30)(x, np.random.default_rng(1))
    np.testing.assert_allclose(np.linalg.norm(out[0, :8], axis=-1), np.linalg.norm(x[0, :8], axis=-1), rtol=1e-5)
    assert not out[1].any() and not out[0, 8:].any()
    assert not np.allclose(out, x)


def test_scale_range_and_input_untouched():
    x = _sample()
    before = x.copy()
    out = SkeletonAugment(scale=0.2)(x, np.random.default_rng(2))
    ratio = np.linalg.norm(out[0, :8], axis=-1) / np.linalg.norm(x[0, :8], axis=-1)
    assert np.allclose(ratio, ratio.flat[0]) and 0.8 <= ratio.flat[0] <= 1.2
    np.testing.assert_array_equal(x, before)


def test_two_d_rotation_keeps_the_score_channel():
    x = _sample()
    out = SkeletonAugment(rotate_degrees=45, coords=2)(x, np.random.default_rng(3))
    np.testing.assert_array_equal(out[..., 2], x[..., 2])
    np.testing.assert_allclose(
        np.linalg.norm(out[0, :8, :, :2], axis=-1), np.linalg.norm(x[0, :8, :, :2], axis=-1), rtol=1e-5
    )


def test_crop_resamples_to_the_same_length():
    x = _sample(frames=10, valid=10)
    out = SkeletonAugment(crop=0.5)(x, np.random.default_rng(4))
    assert out.shape == x.shape
    with pytest.raises(ValueError):
        SkeletonAugment(crop=0.0)


def test_rotation_matrix_is_orthonormal():
    r = rotation_matrix(np.array([0.3, -0.2, 1.0]))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
