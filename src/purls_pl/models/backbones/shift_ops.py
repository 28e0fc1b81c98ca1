"""Shift-GCN's shift operations in pure PyTorch: the spatial (non-local) shift as an index permutation of the
flattened ``(J*C)`` axis, and the temporal shift (integer or learnable fractional offsets per channel, sampled
with linear interpolation as the reference CUDA kernel does). :mod:`purls_pl.models.backbones.shift_gcn` builds
the layers from them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "AdaptiveTemporalShift",
    "FixedTemporalShift",
    "shift_index",
    "spatial_shift",
    "temporal_shift",
]


# --------------------------------------------------------------------------- spatial shift


def shift_index(num_joints: int, channels: int, direction: int) -> Tensor:
    """Permutation of the flattened ``(J*C)`` axis for the spatial shift.

    ``out[j*C + c] = in[((j + direction * c) mod J) * C + c]``: ``direction=+1`` is the reference
    code's *shift-in*, ``-1`` its *shift-out* (which undoes it).

    Returns:
        ``(J*C,)`` int64 index for ``index_select`` on the flattened axis.
    """
    j = torch.arange(num_joints)[:, None]
    c = torch.arange(channels)[None, :]
    return (((j + direction * c) % num_joints) * channels + c).reshape(-1)


class _Permute(torch.autograd.Function):
    """Gather along dim 1 by a permutation; the gradient is the gather by the inverse permutation
    (much cheaper on CPU than the scatter-add that ``index_select``'s generic backward uses)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(1, inverse), None, None


def spatial_shift(x: Tensor, index: Tensor, inverse: Tensor | None = None) -> Tensor:
    """Apply a :func:`shift_index` permutation to ``x (B, J, C)``; returns ``(B, J, C)``.

    ``inverse`` (``argsort(index)``) enables the fast backward; without it autograd's default is used.
    """
    b, j, c = x.shape
    flat = x.reshape(b, j * c)
    out = flat.index_select(1, index) if inverse is None else _Permute.apply(flat, index, inverse)
    return out.view(b, j, c)


# --------------------------------------------------------------------------- temporal shift


def temporal_shift(x: Tensor, shift: Tensor, stride: int = 1) -> Tensor:
    """Shift every channel along time by its own (possibly fractional) offset, then subsample.

    ``out[n, c, h, v] = x[n, c, h * stride + shift[c], v]``, linearly interpolated between the two
    neighbouring frames when ``shift[c]`` is fractional and zero outside ``0..T-1``.

    Args:
        x: ``(N, C, T, V)``.
        shift: ``(C,)`` offsets in frames; floating (differentiable) or integer.
        stride: Temporal subsampling.

    Returns:
        ``(N, C, ceil(T / stride), V)``, same dtype as ``x``.
    """
    c, t = x.shape[1], x.shape[2]
    t_out = -(-t // stride)
    frames = torch.arange(t_out, device=x.device) * stride  # (T',)
    chan = torch.arange(c, device=x.device)[:, None]  # (C, 1)
    shift = shift.to(x.device)
    if not shift.is_floating_point():
        idx = frames[None, :] + shift[:, None]  # (C, T')
        valid = ((idx >= 0) & (idx < t)).to(x.dtype)
        return _take_frames(x, chan, idx.clamp(0, t - 1)) * valid[None, :, :, None]
    base = torch.floor(shift)
    frac = shift - base  # in [0, 1); carries the gradient w.r.t. the shift
    idx0 = frames[None, :] + base.long()[:, None]  # (C, T')
    idx1 = idx0 + 1
    w0 = (1.0 - frac)[:, None] * ((idx0 >= 0) & (idx0 < t))
    w1 = frac[:, None] * ((idx1 >= 0) & (idx1 < t))
    out = _take_frames(x, chan, idx0.clamp(0, t - 1)) * w0.to(x.dtype)[None, :, :, None]
    return out + _take_frames(x, chan, idx1.clamp(0, t - 1)) * w1.to(x.dtype)[None, :, :, None]


def _take_frames(x: Tensor, chan: Tensor, frames: Tensor) -> Tensor:
    """``x[:, chan, frames]`` for ``x (N, C, T, V)`` and ``frames (C, T')`` as one ``index_select`` on the
    flattened (C·T) axis, whose backward (an index_add) is far cheaper on CPU than advanced indexing's."""
    n, c, t, v = x.shape
    flat = (chan * t + frames).reshape(-1)
    return x.reshape(n, c * t, v).index_select(1, flat).view(n, c, frames.shape[1], v)


class _SignGrad(torch.autograd.Function):
    """Identity whose gradient is replaced by ``0.01 * sign(grad)`` (``1e-4`` where it is zero).

    This is the reference CUDA backward's ``applyShiftConstraint`` for the learnable shifts.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, shift: Tensor) -> Tensor:
        return shift.view_as(shift)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        return torch.where(grad != 0, grad.sign() * 0.01, torch.full_like(grad, 1e-4))


class AdaptiveTemporalShift(nn.Module):
    """Learnable per-channel fractional temporal shift: ``(N, C, T, V) -> (N, C, ceil(T/stride), V)``.

    Args:
        channels: ``C``.
        stride: Temporal subsampling. As in the reference code, ``0.5`` is added to the offsets
            when ``stride > 1`` so each output frame interpolates between input frames.
        init_scale: Offsets start uniform in ``[-init_scale, init_scale]``.
        sign_grad: Replace the offsets' gradient by ``0.01 * sign`` as the reference CUDA backward
            does; ``False`` keeps the exact gradient.
    """

    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0, sign_grad: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.sign_grad = sign_grad
        self.shift = nn.Parameter(torch.empty(channels).uniform_(-init_scale, init_scale))

    def forward(self, x: Tensor) -> Tensor:
        shift = _SignGrad.apply(self.shift) if self.sign_grad and self.shift.requires_grad else self.shift
        if self.stride > 1:
            shift = shift + 0.5
        return temporal_shift(x, shift, self.stride)


class FixedTemporalShift(nn.Module):
    """Fixed integer temporal shift: ``(N, C, T, V) -> (N, C, ceil(T/stride), V)``.

    The channels are split into ``kernel_size`` near-equal consecutive groups shifted by
    ``-u, ..., u`` frames (``u = kernel_size // 2``), the "naive" temporal shift of the paper.
    """

    def __init__(self, channels: int, stride: int = 1, kernel_size: int = 9) -> None:
        super().__init__()
        self.stride = stride
        shift = torch.arange(channels) * kernel_size // channels - kernel_size // 2
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return temporal_shift(x, self.shift, self.stride)
