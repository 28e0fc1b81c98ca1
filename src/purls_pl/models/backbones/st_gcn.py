"""ST-GCN in pure PyTorch.

Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018 (reference code: github.com/yysijie/st-gcn, ``net/st_gcn.py``).

Shapes: the encoder takes ``x (N, M, T, J, C)`` and returns node features ``(N, n, L', J)`` with
the ``M`` persons averaged, ``n = channels[-1]`` and ``L' = ceil(T / prod(strides))``. Inside,
feature maps are ``(N*M, C, T, J)``.

Each layer is a spatial graph convolution over the ``K`` partition subsets of
:func:`~purls_pl.models.backbones.graph.build_adjacency` (``x_out = sum_k W_k x A_k``), multiplied
element-wise by a learnable edge-importance mask, then BN, ReLU, a ``(kernel, 1)`` temporal
convolution with the layer's stride, BN, dropout, a residual and ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from purls_pl.models.backbones.base import NodeEncoder
from purls_pl.models.backbones.graph import build_adjacency

DEFAULT_CHANNELS: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
DEFAULT_STRIDES: tuple[int, ...] = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


class GraphConv(nn.Module):
    """Spatial graph convolution over ``K`` adjacency subsets.

    ``x (B, C_in, T, J)``, ``a (K, J, J)`` -> ``(B, C_out, T, J)`` with
    ``out[b, c, t, w] = sum_{k, v} (W_k x)[b, c, t, v] * a[k, v, w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int) -> None:
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        x = self.conv(x)
        b, kc, t, j = x.shape
        x = x.view(b, self.num_subsets, kc // self.num_subsets, t, j)
        return torch.einsum("bkctv,kvw->bctw", x, a.to(x.dtype)).contiguous()


class STGCNBlock(nn.Module):
    """One ST-GCN layer: ``(B, C_in, T, J)``, ``a (K, J, J)`` -> ``(B, C_out, ceil(T/stride), J)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_subsets: int,
        stride: int = 1,
        temporal_kernel_size: int = 9,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if temporal_kernel_size % 2 != 1:
            raise ValueError(f"temporal_kernel_size must be odd, got {temporal_kernel_size}")
        pad = (temporal_kernel_size - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel_size, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        )
        self.identity = residual and in_channels == out_channels and stride == 1
        self.residual: nn.Module | None = None
        if residual and not self.identity:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x, a))
        if self.identity:
            y = y + x
        elif self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class STGCN(NodeEncoder):
    """ST-GCN node encoder: ``x (N, M, T, J, C) -> (N, channels[-1], ceil(T / prod(strides)), J)``.

    The defaults are the reference 10-layer model; the first layer has no residual and no dropout,
    as in the reference code.

    Args:
        layout: Skeleton layout name (see ``purls_pl.data.layouts``); fixes ``J`` and the graph.
        in_channels: ``C``, coordinates per joint.
        num_persons: ``M`` expected. As in the reference code the input BatchNorm is over the
            ``J*C`` features and shared by the persons, so other ``M`` also work.
        channels: Output width of each layer; the last one is ``out_channels``.
        strides: Temporal stride of each layer (same length as ``channels``).
        dropout: Dropout after each temporal convolution except the first layer's.
        strategy: Graph partition: ``"spatial"`` (root / centripetal / centrifugal, the paper's
            best), ``"distance"`` or ``"uniform"``.
        max_hop: Neighbourhood radius in bones.
        edge_importance_weighting: Learn a per-layer ``(K, J, J)`` mask multiplying the adjacency.
        temporal_kernel_size: Temporal convolution length (odd).
        legacy_center_distance: Partition with the reference code's truncated distance to the center
            (see :func:`~purls_pl.models.backbones.graph.build_adjacency`).
    """

    def __init__(
        self,
        layout: str = "ntu25",
        in_channels: int = 3,
        num_persons: int = 2,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        strides: Sequence[int] = DEFAULT_STRIDES,
        dropout: float = 0.0,
        strategy: Literal["uniform", "distance", "spatial"] = "spatial",
        max_hop: int = 1,
        edge_importance_weighting: bool = True,
        temporal_kernel_size: int = 9,
        legacy_center_distance: bool = False,
    ) -> None:
        super().__init__()
        channels, strides = self._init_stages(layout, in_channels, num_persons, channels, strides)
        a = build_adjacency(self.layout, strategy, max_hop, legacy_center_distance=legacy_center_distance)
        self.register_buffer("A", a)
        k, j = a.shape[0], a.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * j)
        self.layers = nn.ModuleList(
            STGCNBlock(
                in_channels if i == 0 else channels[i - 1],
                c_out,
                k,
                stride,
                temporal_kernel_size,
                dropout=dropout if i > 0 else 0.0,
                residual=i > 0,
            )
            for i, (c_out, stride) in enumerate(zip(channels, strides, strict=True))
        )
        self.edge_importance: nn.ParameterList | None = None
        if edge_importance_weighting:
            self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones_like(a)) for _ in self.layers)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x (N, M, T, J, C)`` into person-averaged node features ``(N, n, L', J)``."""
        self.check_input(x)
        n, m, t, j, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"STGCN was built for in_channels={self.in_channels}, got x of shape {tuple(x.shape)}")
        x = self.data_bn(x.permute(0, 1, 3, 4, 2).reshape(n * m, j * c, t))
        x = x.view(n * m, j, c, t).permute(0, 2, 3, 1).contiguous()  # (N*M, C, T, J)
        for i, layer in enumerate(self.layers):
            a = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = layer(x, a)
        return x.view(n, m, *x.shape[1:]).mean(dim=1)
