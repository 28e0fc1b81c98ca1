"""Zero-shot scoring as pure functions (paper Eq. 5-6), shared by evaluation, recognition and plots."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def zero_shot_scores(skeleton: Tensor, class_text: Tensor) -> Tensor:
    """Cosine similarity of global skeleton embeddings with candidate classes' global text.

    Args:
        skeleton: ``(B, m)`` one embedding per sample, or ``(B, K, m)`` one per sample and
            candidate (text-conditioned partitioning queries each candidate's own description).
        class_text: ``(K, m)`` global text embeddings of the K candidate classes.

    Returns:
        ``(B, K)`` scores; the prediction (Eq. 6) is their argmax, since with a shared temperature
        the lowest Eq. 5 loss is the highest similarity.
    """
    skeleton = F.normalize(skeleton.float(), dim=-1)
    class_text = F.normalize(class_text.float(), dim=-1)
    if skeleton.dim() == 2:
        return skeleton @ class_text.T
    if skeleton.dim() == 3 and skeleton.shape[1] == class_text.shape[0]:
        return (skeleton * class_text.unsqueeze(0)).sum(-1)
    raise ValueError(f"skeleton must be (B, m) or (B, K={class_text.shape[0]}, m), got {tuple(skeleton.shape)}")


def predict_classes(scores: Tensor, candidates: Tensor | None = None) -> Tensor:
    """Argmax over candidates; with ``candidates`` (``(K,)`` class ids) return ids, not positions."""
    best = scores.argmax(dim=-1)
    return best if candidates is None else candidates.to(best.device)[best]


def topk_accuracy(scores: Tensor, targets: Tensor, k: int = 1) -> float:
    """Fraction of samples whose target position is among the ``k`` highest scores."""
    k = min(k, scores.shape[-1])
    hits = (scores.topk(k, dim=-1).indices == targets[:, None]).any(dim=-1)
    return hits.float().mean().item()


def mean_class_accuracy(scores: Tensor, targets: Tensor) -> float:
    """Top-1 accuracy averaged over the classes present in ``targets``."""
    pred = scores.argmax(dim=-1)
    accs = [(pred[targets == c] == c).float().mean() for c in targets.unique()]
    return torch.stack(accs).mean().item()
