"""Training-time skeleton augmentation (applied per sample by the training loaders only).

Random rotation about each axis, isotropic scaling and shear are the usual augmentations for
cross-view generalisation (e.g. NW-UCLA trains on views 1-2 and tests on view 3); temporal
cropping resamples a random window back to T frames. Zero-padded frames and absent persons stay
zero.
"""

from __future__ import annotations

import math

import numpy as np


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """``(3,)`` angles in radians about x, y, z -> ``(3, 3)`` rotation ``R = Rz · Ry · Rx``."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class SkeletonAugment:
    """Random geometric and temporal augmentation of one sample ``(M, T, J, C)``.

    Args:
        rotate_degrees: Maximum absolute rotation about each of x, y, z (uniform); for 2-D data
            (Kinetics) only the in-plane rotation is used.
        scale: Maximum relative isotropic scaling (``0.1`` = ×U(0.9, 1.1)).
        shear: Maximum shear coefficient (uniform in ``[-shear, shear]`` off the diagonal).
        crop: Minimum fraction of the valid frames kept by a random temporal crop, resampled back
            to T (``1.0`` disables cropping).
        coords: How many leading channels are coordinates (3 for x, y, z; 2 for OpenPose x, y
            with a confidence channel).
    """

    def __init__(
        self,
        rotate_degrees: float = 0.0,
        scale: float = 0.0,
        shear: float = 0.0,
        crop: float = 1.0,
        coords: int = 3,
    ) -> None:
        if not 0.0 < crop <= 1.0:
            raise ValueError(f"crop must be in (0, 1], got {crop}")
        self.rotate = math.radians(rotate_degrees)
        self.scale = scale
        self.shear = shear
        self.crop = crop
        self.coords = coords

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment ``x (M, T, J, C)``; returns a new array (the input, possibly a read-only memmap, is untouched)."""
        x = np.array(x, dtype=np.float32, copy=True)
        if self.crop < 1.0:
            x = self._crop(x, rng)
        c = self.coords
        matrix = np.eye(c)
        if self.rotate:
            angles = rng.uniform(-self.rotate, self.rotate, size=3)
            if c == 2:
                angles[:2] = 0.0
            matrix = rotation_matrix(angles)[:c, :c] @ matrix
        if self.shear:
            sh = np.eye(c) + rng.uniform(-self.shear, self.shear, size=(c, c)) * (1 - np.eye(c))
            matrix = sh @ matrix
        if self.scale:
            matrix = matrix * rng.uniform(1 - self.scale, 1 + self.scale)
        present = np.abs(x[..., :c]).sum(-1, keepdims=True) > 0
        x[..., :c] = np.where(present, x[..., :c] @ matrix.T.astype(np.float32), 0.0)
        return x

    def _crop(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        frames = x.shape[1]
        valid = int(np.flatnonzero(np.abs(x).reshape(x.shape[0], frames, -1).sum((0, 2)) > 0).max(initial=-1)) + 1
        if valid < 2:
            return x
        keep = max(2, round(valid * rng.uniform(self.crop, 1.0)))
        start = int(rng.integers(0, valid - keep + 1))
        src = np.linspace(start, start + keep - 1, frames)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, frames - 1)
        w = (src - lo)[None, :, None, None].astype(np.float32)
        return x[:, lo] * (1 - w) + x[:, hi] * w
