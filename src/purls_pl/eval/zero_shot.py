"""Zero-shot scoring as pure functions (paper Eq. 5-6), shared by evaluation, recognition and plots.

Two scorings of candidates y for a sample x, both "higher is better":

* ``cosine``: ``cos(V^y, F_y)``, the similarity of the global skeleton embedding with candidate y's
  global text. ``V^y`` is one embedding for every candidate, or, with a text-conditioned (adaptive)
  partitioner, the representation queried by y's own description.
* ``eq5``: ``-L_test(x, y)`` of paper Eq. 5, ``log softmax_o(V^y·F_o / τ)`` at ``o = y``, the
  denominator running over every candidate o, with the global field's learned temperature τ.

When V does not depend on the candidate both rank the candidates alike (the softmax denominator is
shared), so Eq. 6's argmin of Eq. 5 is the argmax of cosine. With a text-conditioned partitioner each
candidate has its own denominator, and the two can disagree.

How training and inference differ: training (Eq. 3) queries the partitioner with the sample's own
class's descriptions (``queries="true_class"``) and contrasts one V against every seen class's text,
while inference, not knowing the class, queries with each candidate in turn. ``queries="candidates"``
trains the way inference scores.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Scoring = Literal["cosine", "eq5"]


def zero_shot_scores(
    skeleton: Tensor, class_text: Tensor, scoring: Scoring = "cosine", logit_scale: Tensor | float = 1.0
) -> Tensor:
    """Scores of candidate classes by their global text (module docstring).

    Args:
        skeleton: ``(B, m)`` one embedding per sample, or ``(B, K, m)`` one per sample and
            candidate (text-conditioned partitioning queries each candidate's own description).
        class_text: ``(K, m)`` global text embeddings of the K candidate classes.
        scoring: ``cosine`` or ``eq5``.
        logit_scale: ``1/τ`` of the global field (``eq5`` only).

    Returns:
        ``(B, K)`` scores; the prediction (Eq. 6) is their argmax.
    """
    skeleton = F.normalize(skeleton.float(), dim=-1)
    class_text = F.normalize(class_text.float(), dim=-1)
    k = class_text.shape[0]
    if skeleton.dim() == 2:
        sims = skeleton @ class_text.T  # (B, K): V·F_o, the same V for every candidate
        if scoring == "cosine":
            return sims
        logits = sims * logit_scale
        return logits - logits.logsumexp(dim=-1, keepdim=True)
    if skeleton.dim() != 3 or skeleton.shape[1] != k:
        raise ValueError(f"skeleton must be (B, m) or (B, K={k}, m), got {tuple(skeleton.shape)}")
    if scoring == "cosine":
        return (skeleton * class_text.unsqueeze(0)).sum(-1)
    logits = (skeleton @ class_text.T) * logit_scale  # (B, K_y, K_o): V^y·F_o / τ
    own = logits.diagonal(dim1=1, dim2=2)  # (B, K): V^y·F_y / τ
    return own - logits.logsumexp(dim=-1)


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


def field_similarities(skeleton: Tensor, class_text: Tensor) -> Tensor:
    """Cosine of each candidate's per-field skeleton embedding with its own text, field by field.

    Args:
        skeleton: ``(B, K, D, m)`` embeddings ``V_f^y`` (queried by candidate y's field-f description).
        class_text: ``(K, D, m)`` the candidates' text ``F_{y,f}``.

    Returns:
        ``(B, K, D)`` similarities ``cos(V_f^y, F_{y,f})``.
    """
    if skeleton.dim() != 4 or skeleton.shape[1:3] != class_text.shape[:2]:
        raise ValueError(f"skeleton {tuple(skeleton.shape)} must be (B, K, D, m) for text {tuple(class_text.shape)}")
    return (F.normalize(skeleton.float(), dim=-1) * F.normalize(class_text.float(), dim=-1).unsqueeze(0)).sum(-1)


def with_local_fields(
    global_scores: Tensor,
    local_sims: Tensor,
    weight: float,
    scoring: Scoring = "cosine",
    logit_scale: Tensor | float = 1.0,
) -> Tensor:
    """Candidate scores that also use the local fields (body parts, phases): ``(1 - λ)·S + λ·S_local``.

    ``S`` are the global scores (``cosine`` or ``eq5``); ``S_local`` is the mean local similarity
    ``mean_f cos(V_f^y, F_{y,f})`` under ``cosine`` and its log-softmax over the candidates (at the
    global temperature) under ``eq5``, so both terms are log-probabilities and the sum is a product of
    experts. ``λ = 0`` is the paper's inference (global only).

    Args:
        global_scores: ``(B, K)``.
        local_sims: ``(B, K, D_local)`` per-field similarities of the local fields.
        weight: ``λ`` in ``[0, 1]``.
        scoring: ``cosine`` or ``eq5`` (as ``global_scores`` were made).
        logit_scale: ``1/τ`` of the global field (``eq5`` only).
    """
    if local_sims.shape[-1] == 0:
        return global_scores
    return mix_scores(global_scores, local_sims.mean(dim=-1), weight, scoring, logit_scale)


def mix_scores(
    scores: Tensor, sims: Tensor, weight: float, scoring: Scoring = "cosine", logit_scale: Tensor | float = 1.0
) -> Tensor:
    """``(1 - w)·S + w·S_other``: candidate scores with a second opinion mixed in (the local fields' mean,
    :func:`with_local_fields`, or the label field, ``model.label_field``).

    ``S_other`` is the cosine ``sims`` itself under ``cosine`` and its log-softmax over the candidates (at
    ``logit_scale``) under ``eq5``, so both terms are log-probabilities and the sum is a product of
    experts. ``w = 0`` returns ``scores``.

    Args:
        scores: ``(B, K)``.
        sims: ``(B, K)`` cosine similarities of the second opinion.
        weight: ``w`` in ``[0, 1]``.
        scoring: ``cosine`` or ``eq5`` (as ``scores`` were made).
        logit_scale: ``1/τ`` of the second opinion (``eq5`` only).
    """
    if weight == 0:
        return scores
    other = (sims * logit_scale).log_softmax(dim=-1) if scoring == "eq5" else sims
    return (1.0 - weight) * scores + weight * other
