"""Skeleton-Cache (Zhu et al., NeurIPS 2025): a training-free test-time cache over node features, as an add-on
to any method's scores.

Evaluation becomes retrieval over a non-parametric cache filled from the test stream itself. Every sample is
described by ``D = 8`` structured descriptors, each a mean of its frozen node features ``(L', J, n)``: one per
body part (the layout's ``head``, ``hands``, ``torso``, ``legs`` joints, all frames), one per phase (the
first, middle and last third of the frames, all joints) and the global mean, in
:data:`~purls_pl.text.fields.FIELDS` order (:func:`structured_descriptors`). For a sample with base scores
``φ̂`` ``(C,)`` over the candidate classes, in stream order:

``a_d(j) = exp(-β·(1 - cos(q_d, k_d(j))))``     affinity of descriptor ``d`` to cache entry ``j``  (Eq. 6)
``o_d = Σ_j a_d(j)·y_j``                         descriptor-wise cache logits ``(C,)``, ``y_j`` one-hot (Eq. 7-8)
``s = w(ĉ)·O``                                   fused with the class weights of ``ĉ = argmax φ̂`` (Eq. 9-11)
``φ = φ̂ + α·s``                                  the adapted scores (Eq. 12)

then the sample enters the block of its adapted prediction ``argmax φ`` (``capacity`` entries per class; when
full, it replaces the entry of highest posterior entropy if its own entropy is lower: Eq. 5), and also the
runner-up's block when the top two posteriors are within ``hedge_margin`` and there are fewer classes than
``capacity`` (the official code's hedge). ``w(c)`` ``(D,)`` gives the global descriptor ``γ`` and the
four parts and three phases ``(1 - γ)`` shared by a per-class distribution, then sums to 1.

Differences from the paper, on purpose:

* the base scores are standardised per sample (mean 0, standard deviation 1 over the candidates:
  :func:`standardised`) before the cache adds to them. The paper adds to its backbones' logits; this
  project's methods score with cosines (PURLS, range ~0.5) or log-probabilities, and on raw cosines every
  posterior is near uniform, so every sample entered two blocks (the hedge) and the cache logits, up to
  ``capacity``, swamped the scores: a first version without this step collapsed PURLS' predictions onto
  the classes cached first (see the README's note on the methods table);
* under generalised zero-shot evaluation the zero-shot scores' cache is fed the samples the zero-shot metric
  scores, those of the zero-shot classes (the ZSL test set of the protocol, a stream of its own), and the
  candidates' cache every sample;

* the per-class part and phase weights come from an LLM in the paper. Here ``prior="uniform"`` spreads them
  evenly and ``prior="text"`` derives them from this project's own descriptions: a class's part (phase)
  weights are a softmax, at temperature 0.1, of the cosine between that field's description embedding and
  the class's global one (the fields its whole description leans on). ``select`` chooses between them, and
  ``α``, ``β`` and ``γ``, on validation classes; the official code picks ``α`` and ``β`` by accuracy on the
  unseen test classes and re-scores the stream a second time with the full cache, which is not done here;
* descriptors average this project's stage-1 node features (pooled frames), not the paper's backbones'.

The cache reads each evaluated sample once, in loader order, and never its label: the transductive
test-time setting of the paper. ``recognize`` scores single clips without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from purls_pl.data.layouts import BODY_PARTS, SkeletonLayout
from purls_pl.text.fields import FIELDS, GLOBAL_INDEX, PHASE_FIELDS

__all__ = ["CacheSettings", "SkeletonCache", "StreamCache", "class_weights", "structured_descriptors"]

#: Temperature of the text prior's softmax over a class's part (phase) fields.
TEXT_PRIOR_TEMPERATURE = 0.1


@dataclass(frozen=True)
class CacheSettings:
    """The ``test_time_cache`` options of a stage-2 run (Skeleton-Cache; module docstring).

    Attributes:
        enabled: Adapt every evaluated batch's scores with the cache (validation and test).
        capacity: Entries per class block (official code: 8).
        alpha: Weight α of the cache logits added to the method's scores (official grid: 0.5-5).
        beta: Sharpness β of the affinity (official grid: 3-9).
        gamma: Share γ of the global descriptor in the fusion weights, in [0, 1] (the rest: parts and phases).
        prior: Per-class part and phase weights: ``uniform``, or ``text`` (from the class's field descriptions).
        hedge_margin: A sample also enters its runner-up's block when their posteriors differ by less.
    """

    enabled: bool = False
    capacity: int = 8
    alpha: float = 1.0
    beta: float = 5.0
    gamma: float = 0.5
    prior: Literal["uniform", "text"] = "uniform"
    hedge_margin: float = 0.5

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.alpha < 0 or self.beta < 0 or not 0.0 <= self.gamma <= 1.0:
            raise ValueError(
                "test_time_cache: capacity must be >= 1, alpha and beta >= 0 and gamma in [0, 1]; got "
                f"capacity={self.capacity}, alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}"
            )
        if self.prior not in ("uniform", "text"):
            raise ValueError(f"test_time_cache.prior must be 'uniform' or 'text', got {self.prior!r}")


def structured_descriptors(nodes: Tensor, layout: SkeletonLayout) -> Tensor:
    """``(B, D = len(FIELDS), n)`` descriptors of node features ``(B, S = L'·J, n)`` (time-major): the four body
    parts, the three phases (thirds of the ``L'`` frames; a phase of an ``L' < 3`` grid repeats a frame) and the
    global mean."""
    b, s, n = nodes.shape
    grid = nodes.reshape(b, s // layout.num_joints, layout.num_joints, n)
    frames = grid.shape[1]
    parts = [grid[:, :, list(layout.parts[p])].mean(dim=(1, 2)) for p in BODY_PARTS]
    starts = [min(round(frames * i / len(PHASE_FIELDS)), frames - 1) for i in range(len(PHASE_FIELDS))]
    ends = [max(end, start + 1) for start, end in zip(starts, [*starts[1:], frames], strict=True)]
    phases = [grid[:, a:b].mean(dim=(1, 2)) for a, b in zip(starts, ends, strict=True)]
    return torch.stack([*parts, *phases, grid.mean(dim=(1, 2))], dim=1)


def class_weights(gamma: float, prior: str, text: Tensor | None = None) -> Tensor:
    """``(C, D)`` fusion weights ``w(c)`` of ``C`` classes (rows sum to 1): ``γ`` for the global descriptor and
    ``1 - γ`` times a distribution over the parts and one over the phases (``uniform``, or ``text``: softmax of
    each field's cosine to the global description, from ``text`` ``(C, D, m)``)."""
    if prior == "text":
        if text is None:
            raise ValueError("test_time_cache.prior='text' needs the classes' field descriptions")
        cos = F.cosine_similarity(text, text[:, GLOBAL_INDEX : GLOBAL_INDEX + 1], dim=-1)  # (C, D)
        parts = (cos[:, : len(BODY_PARTS)] / TEXT_PRIOR_TEMPERATURE).softmax(-1)
        phases = (cos[:, len(BODY_PARTS) : GLOBAL_INDEX] / TEXT_PRIOR_TEMPERATURE).softmax(-1)
    else:
        c = 1 if text is None else len(text)
        parts = torch.full((c, len(BODY_PARTS)), 1.0 / len(BODY_PARTS))
        phases = torch.full((c, len(PHASE_FIELDS)), 1.0 / len(PHASE_FIELDS))
    weights = torch.cat([(1 - gamma) * parts, (1 - gamma) * phases, torch.full_like(parts[:, :1], gamma)], -1)
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


def standardised(scores: Tensor) -> Tensor:
    """``(B, C)`` each row of a method's scores ``(B, C)`` shifted and scaled to mean 0 and standard deviation 1
    over its classes: the logits ``φ̂`` the cache adds to, on one scale whatever the method scores with (cosines,
    log-probabilities), so that ``α``, the posteriors' entropies and the hedge margin mean the same for every
    method (a single class: zeros)."""
    if scores.shape[-1] < 2:
        return torch.zeros_like(scores)
    return (scores - scores.mean(-1, keepdim=True)) / scores.std(-1, keepdim=True).clamp_min(1e-6)


class StreamCache:
    """The cache of one candidate set over one evaluation stream: ``capacity`` descriptor entries per class.

    Args:
        weights: ``(C, D)`` fusion weights of the candidate classes (:func:`class_weights`).
        settings: α, β, the capacity and the hedge margin.
    """

    def __init__(self, weights: Tensor, settings: CacheSettings) -> None:
        self.weights = weights.float()
        self.settings = settings
        self.keys: Tensor | None = None  # (C, capacity, D, n) unit descriptors, allocated on first insert
        self.entropy = torch.full((len(weights), settings.capacity), float("inf"))
        self.filled = torch.zeros(len(weights), settings.capacity, dtype=torch.bool)

    @property
    def num_classes(self) -> int:
        return len(self.weights)

    def occupancy(self) -> list[int]:
        """Entries held per class block."""
        return self.filled.sum(-1).tolist()

    def cache_logits(self, query: Tensor) -> Tensor:
        """``(D, C)`` descriptor-wise cache logits ``o_d`` of one sample's unit descriptors ``(D, n)``."""
        if self.keys is None:
            return torch.zeros(len(query), self.num_classes)
        cos = torch.einsum("dn,cjdn->dcj", query, self.keys)
        affinity = torch.exp(-self.settings.beta * (1.0 - cos)) * self.filled
        return affinity.sum(-1)

    def insert(self, query: Tensor, cls: int, entropy: float) -> None:
        """Put a sample in class ``cls``'s block: an empty slot, else the highest-entropy entry it improves on."""
        if self.keys is None:
            self.keys = torch.zeros(self.num_classes, self.settings.capacity, *query.shape)
        free = (~self.filled[cls]).nonzero()
        slot = int(free[0]) if len(free) else int(self.entropy[cls].argmax())
        if len(free) or entropy < float(self.entropy[cls, slot]):
            self.keys[cls, slot], self.entropy[cls, slot], self.filled[cls, slot] = query, entropy, True

    def adapt(self, scores: Tensor, descriptors: Tensor) -> Tensor:
        """``(B, C)`` adapted scores of base scores ``(B, C)`` (as logits: :func:`standardised`) and descriptors
        ``(B, D, n)``, the samples taken in order (each sees the cache its predecessors left) and then added to it."""
        out = torch.empty(scores.shape, dtype=torch.float32)
        queries = F.normalize(descriptors.detach().float().cpu(), dim=-1)
        base = standardised(scores.detach().float().cpu())
        hedge = self.num_classes < self.settings.capacity and self.num_classes > 1
        for i in range(len(base)):
            fused = self.weights[int(base[i].argmax())] @ self.cache_logits(queries[i])  # (C,)
            out[i] = base[i] + self.settings.alpha * fused
            posterior = out[i].softmax(-1)
            entropy = float(-(posterior * posterior.clamp_min(1e-12).log()).sum())
            top = posterior.topk(min(2, self.num_classes))
            self.insert(queries[i], int(top.indices[0]), entropy)
            if hedge and float(top.values[0] - top.values[1]) < self.settings.hedge_margin:
                self.insert(queries[i], int(top.indices[1]), entropy)
        return out.to(device=scores.device, dtype=scores.dtype)


class SkeletonCache:
    """Skeleton-Cache over a method's evaluation: one :class:`StreamCache` per candidate set, reset per epoch.

    Args:
        settings: The run's ``test_time_cache`` options.
        layout: The node grid's skeleton layout (its body parts).
        text: ``(K, D, m)`` every class's field descriptions, by class id (the ``text`` prior reads them).
    """

    def __init__(self, settings: CacheSettings, layout: SkeletonLayout, text: Tensor | None = None) -> None:
        if len(FIELDS) != len(BODY_PARTS) + len(PHASE_FIELDS) + 1:
            raise AssertionError("descriptor slots follow FIELDS: parts, phases, global")
        if not layout.has_parts:
            raise ValueError(
                f"Skeleton-Cache (--test_time_cache.enabled=true) describes each sample by body parts and phases, "
                f"but layout {layout.name!r} has no joints or frames (released pooled features): run without it"
            )
        self.settings, self.layout = settings, layout
        self.text = None if text is None else text.detach().float().cpu()
        self.streams: dict[tuple[int, ...], StreamCache] = {}

    def reset(self) -> None:
        """Empty every cache (a new evaluation stream begins)."""
        self.streams = {}

    def stream(self, classes: tuple[int, ...]) -> StreamCache:
        """The cache of candidate classes ``classes`` (dataset ids, in score-column order)."""
        if classes not in self.streams:
            text = None if self.text is None else self.text[list(classes)]
            if text is None and self.settings.prior == "uniform":
                weights = class_weights(self.settings.gamma, "uniform").expand(len(classes), -1)
            else:
                weights = class_weights(self.settings.gamma, self.settings.prior, text)
            self.streams[classes] = StreamCache(weights, self.settings)
        return self.streams[classes]

    def adapt(self, scores: Tensor, classes: tuple[int, ...], nodes: Tensor) -> Tensor:
        """``(B, C)`` scores over ``classes`` adapted with node features ``(B, S, n)`` (:meth:`StreamCache.adapt`)."""
        return self.stream(classes).adapt(scores, structured_descriptors(nodes.float(), self.layout))
