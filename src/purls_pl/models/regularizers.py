"""Training-time regularisers against memorising the few seen classes (pure functions; identity at 0)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def text_noise(text: Tensor, sigma: float) -> Tensor:
    """Text-space augmentation: ``text`` ``(..., m)`` plus Gaussian noise of relative size ``sigma``
    (``|noise| ≈ sigma·|text|``), renormalised to unit length; ``sigma = 0`` returns ``text``."""
    if sigma == 0:
        return text
    noise = torch.randn_like(text) * (sigma / text.shape[-1] ** 0.5)
    return F.normalize(text + noise * text.norm(dim=-1, keepdim=True), dim=-1)


def drop_nodes(nodes: Tensor, p: float) -> Tensor:
    """Feature dropout over whole nodes: ``nodes`` ``(B, S, n)`` with a share ``p`` of the ``S`` nodes
    zeroed per sample and the rest scaled by ``1 / (1 - p)``; ``p = 0`` returns ``nodes``."""
    if p == 0:
        return nodes
    keep = torch.rand(nodes.shape[:2], device=nodes.device) >= p
    return nodes * keep.unsqueeze(-1).to(nodes.dtype) / (1.0 - p)
