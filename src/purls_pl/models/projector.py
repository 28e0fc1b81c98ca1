"""f_skel: the head that maps partitioned skeleton representations into text space."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SkeletonProjector(nn.Module):
    """f_skel: the 2-layer MLP shared by all description fields, ``(…, n) -> (…, m)`` unit vectors.

    Args:
        node_dim: n.
        text_dim: m.
        hidden: Hidden width (paper: 512).
        dropout: Dropout after the hidden activation.
    """

    def __init__(self, node_dim: int, text_dim: int, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(node_dim),
            nn.Linear(node_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, text_dim),
        )

    def forward(self, r: Tensor) -> Tensor:
        return F.normalize(self.net(r), dim=-1)
