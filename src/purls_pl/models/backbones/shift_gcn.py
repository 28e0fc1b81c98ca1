"""Shift-GCN in pure PyTorch.

Cheng, Zhang, He, Chen, Cheng and Lu, "Skeleton-Based Action Recognition with Shift Graph
Convolutional Network", CVPR 2020 (reference code: github.com/kchengiva/Shift-GCN). This is the
backbone PURLS uses.

Shapes: the encoder takes ``x (N, M, T, J, C)`` and returns node features ``(N, n, L', J)`` with
the ``M`` persons averaged, ``n = channels[-1]`` and ``L' = ceil(T / prod(strides))``. Inside,
feature maps are ``(N*M, C, T, J)``.

* Spatial (non-local) shift graph convolution: with the ``(J, C)`` features of one frame
  flattened to ``J*C``, *shift-in* lets channel ``c`` of joint ``j`` take the value of channel
  ``c`` of joint ``(j + c) mod J``; a learnable feature mask ``tanh(m) + 1`` and a point-wise
  linear layer follow, then *shift-out* (joint ``j`` takes from ``(j - c) mod J``), a BatchNorm over
  the ``J*C`` features and a residual. Both shifts are index permutations of the flattened axis.
* Temporal shift convolution: BN, shift-in, 1x1 conv, ReLU, shift-out (with the stride), BN. The
  *adaptive* shift learns one real-valued offset per channel and samples every frame with linear
  interpolation (zeros outside the sequence), as the reference CUDA kernel does; here it is a
  pure-torch gather. The *fixed* shift splits the channels into ``temporal_kernel_size`` groups
  shifted by ``-u..u`` whole frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from purls_pl.models.backbones.base import NodeEncoder
from purls_pl.models.backbones.shift_ops import (
    AdaptiveTemporalShift,
    FixedTemporalShift,
    shift_index,
    spatial_shift,
)

DEFAULT_CHANNELS: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
DEFAULT_STRIDES: tuple[int, ...] = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


# --------------------------------------------------------------------------- blocks


class ShiftSpatialConv(nn.Module):
    """Spatial shift graph convolution: ``(B, C_in, T, J) -> (B, C_out, T, J)``."""

    def __init__(self, in_channels: int, out_channels: int, num_joints: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.linear_weight = nn.Parameter(
            torch.empty(in_channels, out_channels).normal_(0, (1.0 / out_channels) ** 0.5)
        )
        self.linear_bias = nn.Parameter(torch.zeros(out_channels))
        self.feature_mask = nn.Parameter(torch.zeros(1, num_joints, in_channels))
        self.bn = nn.BatchNorm1d(num_joints * out_channels)
        self.relu = nn.ReLU()
        self.down: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            _conv_init(self.down[0])
        self.register_buffer("shift_in_index", shift_index(num_joints, in_channels, +1), persistent=False)
        self.register_buffer("shift_out_index", shift_index(num_joints, out_channels, -1), persistent=False)
        self.register_buffer("shift_in_inverse", self.shift_in_index.argsort(), persistent=False)
        self.register_buffer("shift_out_inverse", self.shift_out_index.argsort(), persistent=False)

    def forward(self, x0: Tensor) -> Tensor:
        b, c, t, j = x0.shape
        x = x0.permute(0, 2, 3, 1).reshape(b * t, j, c)
        x = spatial_shift(x, self.shift_in_index, self.shift_in_inverse)
        x = x * (torch.tanh(self.feature_mask) + 1)
        x = torch.einsum("bjc,cd->bjd", x, self.linear_weight) + self.linear_bias
        x = spatial_shift(x, self.shift_out_index, self.shift_out_inverse)
        x = self.bn(x.reshape(b * t, j * self.out_channels))
        x = x.view(b, t, j, self.out_channels).permute(0, 3, 1, 2)
        return self.relu(x + self.down(x0))


class ShiftTemporalConv(nn.Module):
    """Temporal shift convolution: ``(B, C, T, J) -> (B, C, ceil(T/stride), J)``."""

    def __init__(
        self,
        channels: int,
        stride: int = 1,
        mode: Literal["adaptive", "fixed"] = "adaptive",
        kernel_size: int = 9,
        init_scale: float = 1.0,
        sign_grad: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shift_in: nn.Module
        self.shift_out: nn.Module
        if mode == "adaptive":
            self.shift_in = AdaptiveTemporalShift(channels, 1, init_scale, sign_grad)
            self.shift_out = AdaptiveTemporalShift(channels, stride, init_scale, sign_grad)
        elif mode == "fixed":
            self.shift_in = FixedTemporalShift(channels, 1, kernel_size)
            self.shift_out = FixedTemporalShift(channels, stride, kernel_size)
        else:
            raise ValueError(f"unknown temporal shift mode {mode!r}; choose 'adaptive' or 'fixed'")
        self.temporal_linear = nn.Conv2d(channels, channels, 1)
        nn.init.kaiming_normal_(self.temporal_linear.weight, mode="fan_out")

    def forward(self, x: Tensor) -> Tensor:
        x = self.shift_in(self.bn(x))
        x = self.drop(self.relu(self.temporal_linear(x)))
        return self.bn2(self.shift_out(x))


class TemporalConvBN(nn.Module):
    """``(kernel, 1)`` temporal convolution + BN (residual path): ``(B, C_in, T, J) -> (B, C_out, T', J)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), (stride, 1), (pad, 0))
        self.bn = nn.BatchNorm2d(out_channels)
        _conv_init(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class ShiftGCNUnit(nn.Module):
    """One Shift-GCN layer (spatial shift conv -> temporal shift conv, plus residual, ReLU).

    ``(B, C_in, T, J) -> (B, C_out, ceil(T/stride), J)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_joints: int,
        stride: int = 1,
        residual: bool = True,
        mode: Literal["adaptive", "fixed"] = "adaptive",
        kernel_size: int = 9,
        init_scale: float = 1.0,
        sign_grad: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.gcn1 = ShiftSpatialConv(in_channels, out_channels, num_joints)
        self.tcn1 = ShiftTemporalConv(out_channels, stride, mode, kernel_size, init_scale, sign_grad, dropout)
        self.relu = nn.ReLU()
        self.residual: nn.Module | None = None
        self.identity = residual and in_channels == out_channels and stride == 1
        if residual and not self.identity:
            self.residual = TemporalConvBN(in_channels, out_channels, 1, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.identity:
            y = y + x
        elif self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


def _conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


# --------------------------------------------------------------------------- model


class ShiftGCN(NodeEncoder):
    """Shift-GCN node encoder: ``x (N, M, T, J, C) -> (N, channels[-1], ceil(T / prod(strides)), J)``.

    The defaults are the reference 10-layer model (PURLS' backbone); the first layer has no
    residual, as in the reference code.

    Args:
        layout: Skeleton layout name (see ``purls_pl.data.layouts``); fixes ``J``.
        in_channels: ``C``, coordinates per joint (3 for x, y, z; 2 or 3 for 2-D poses with scores).
        num_persons: ``M``; the input BatchNorm normalises each of the ``M*J*C`` features
            separately, so inputs must have exactly this many persons (pad missing ones with zeros).
        channels: Output width of each layer; the last one is ``out_channels``.
        strides: Temporal stride of each layer (same length as ``channels``).
        dropout: Dropout in each temporal block after the first layer (0 disables it).
        temporal_shift_mode: ``"adaptive"`` (learnable fractional shifts, the paper's best) or
            ``"fixed"`` (integer shifts ``-u..u`` over channel groups).
        temporal_kernel_size: Receptive field of the ``"fixed"`` shift (``2u + 1`` frames).
        shift_init_scale: Initial adaptive shifts are uniform in ``[-scale, scale]`` frames.
        sign_shift_grad: Use the reference CUDA backward's ``0.01 * sign(grad)`` for the adaptive
            shifts (``False``: exact gradient).
        checkpoint_layers: Keep only each layer's input for the backward pass and recompute the layer's
            activations there (``torch.utils.checkpoint``); ``bench/scale.py`` measures what it saves (2 CPU
            cores, NTU shapes, a batch of 8: peak memory 12.3 -> 5.0 GB, steps ~15 % slower). Outputs, gradients
            and BatchNorm statistics are those of the plain model (the recompute does not update the running
            statistics a second time); the weights do not depend on it.
    """

    def __init__(
        self,
        layout: str = "ntu25",
        in_channels: int = 3,
        num_persons: int = 2,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        strides: Sequence[int] = DEFAULT_STRIDES,
        dropout: float = 0.0,
        temporal_shift_mode: Literal["adaptive", "fixed"] = "adaptive",
        temporal_kernel_size: int = 9,
        shift_init_scale: float = 1.0,
        sign_shift_grad: bool = True,
        checkpoint_layers: bool = False,
    ) -> None:
        super().__init__()
        self.checkpoint_layers = checkpoint_layers
        channels, strides = self._init_stages(layout, in_channels, num_persons, channels, strides)
        j = self.layout.num_joints
        self.data_bn = nn.BatchNorm1d(num_persons * j * in_channels)
        layers = []
        for i, (c_out, stride) in enumerate(zip(channels, strides, strict=True)):
            c_in = in_channels if i == 0 else channels[i - 1]
            layers.append(
                ShiftGCNUnit(
                    c_in,
                    c_out,
                    j,
                    stride,
                    residual=i > 0,
                    mode=temporal_shift_mode,
                    kernel_size=temporal_kernel_size,
                    init_scale=shift_init_scale,
                    sign_grad=sign_shift_grad,
                    dropout=dropout if i > 0 else 0.0,
                )
            )
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x (N, M, T, J, C)`` into person-averaged node features ``(N, n, L', J)``."""
        self.check_input(x)
        n, m, t, j, c = x.shape
        if m != self.num_persons or c != self.in_channels:
            raise ValueError(
                f"ShiftGCN was built for num_persons={self.num_persons}, in_channels={self.in_channels} "
                f"but got x of shape {tuple(x.shape)} (N, M, T, J, C)"
            )
        x = self.data_bn(x.permute(0, 1, 3, 4, 2).reshape(n, m * j * c, t))
        x = x.view(n, m, j, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, j)
        recompute = self.checkpoint_layers and torch.is_grad_enabled() and self.training
        for layer in self.layers:
            if recompute:
                x = checkpoint(layer, x, use_reentrant=False, context_fn=lambda lay=layer: _recompute_context(lay))
            else:
                x = layer(x)
        return x.view(n, m, *x.shape[1:]).mean(dim=1)


def _recompute_context(layer: nn.Module) -> tuple[Any, Any]:
    """``checkpoint``'s (forward, recompute) contexts: the recompute leaves BatchNorm's running statistics
    as the forward pass left them (it normalises with the batch statistics all the same)."""
    return nullcontext(), _frozen_bn_statistics(layer)


@contextmanager
def _frozen_bn_statistics(module: nn.Module) -> Iterator[None]:
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [(m, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def convert_official_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a reference Shift-GCN checkpoint (``model.shift_gcn.Model``) for :class:`ShiftGCN`.

    ``l{i}.`` becomes ``layers.{i-1}.``; the classifier ``fc``, the spatial shift indices and the
    never-trained joint-axis offsets ``xpos`` are dropped. Load the result with ``strict=True``.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("fc.") or key.endswith(("gcn1.shift_in", "gcn1.shift_out", ".xpos")):
            continue
        if key.startswith("l") and key[1:].split(".", 1)[0].isdigit():
            idx, rest = key[1:].split(".", 1)
            key = f"layers.{int(idx) - 1}.{rest}"
        key = key.replace("gcn1.Linear_weight", "gcn1.linear_weight").replace("gcn1.Feature_Mask", "gcn1.feature_mask")
        if key.endswith("gcn1.Linear_bias"):
            key, value = key.replace("Linear_bias", "linear_bias"), value.reshape(-1)
        out[key.replace(".ypos", ".shift")] = value
    return out
