"""SMIE (Zhou et al., ACM MM 2023): zero-shot recognition by mutual-information estimation and maximisation.

A critic ``T_ω`` scores how well a skeleton feature ``v`` (the frozen backbone's node features, mean-pooled:
``(n,)``) goes with a class's text ``t`` (one field's embedding, L2-normalised: ``(m,)``). It is the
official code's MLP on the concatenation ``[LN(v); t]`` (LN: a layer norm without affine parameters),
written with its first layer split into a skeleton-side and a text-side projection (the same function, and
``B·K`` pairs cost ``B + K`` projections)::

    T_ω(v, t) = w₃ᵀ relu(W₂ relu(P_v LN(v) + P_t t + b₁) + b₂) + b₃          (hidden: official 1024, 512)

The Jensen-Shannon MI estimate (Deep InfoMax) over a batch of seen-class samples paired with their classes'
text, the negatives pairing each text with another sample's feature (the batch rolled by one, ``v'_i =
v_{i+1}``, as in the official code), is, with ``sp`` the softplus::

    Î(v; t) = E_P[-sp(-T_ω(v, t))] - E_{P×P}[sp(T_ω(v', t))]                (Eq. JSD)
    L_MI    = -Î(v; t)

The temporal constraint asks the estimate to grow as more of the sequence is observed: ``v̂`` pools only
some of the frame-level features (``nodes.unflatten(1, (L', J))``), and with ``β`` the margin::

    L_TC = max(0, β - (Î(v; t) - Î(v̂; t)))
         = max(0, β - (E_P[-sp(-T_ω(v, t))] - E_P[-sp(-T_ω(v̂, t))]))       (the negatives' term is shared)
    L    = L_MI + λ·L_TC                                                  (λ = 0.5, β = 0.1)

Scoring: a skeleton's score for candidate ``k`` is the critic's positive-pair term ``-sp(-T_ω(v, t_k)) =
log σ(T_ω(v, t_k))``; each candidate is scored alone, so the zero-shot scores are the unseen columns.

The defaults follow the official code (github YujieOuO/SMIE: ``model.py``: ``MI``, ``GlobalDiscriminator``,
``motion_att_temp_mask2``; ``procedure.py``: the losses and the schedule; ``config.py``: margin 0.1, batch
128, 100 epochs, Adam with lr 1e-5): the critic's depth, the layer norm, the L2-normalised text, λ = 0.5 and
β = 0.1, and the partial view: of ``T`` frames drop the ``r·T`` of largest motion (``|f_{t+1} - f_t|² +
|f_{t-1} - f_t|²``), then ``r·T`` of the rest at random (``r`` = 15/50 = 0.3: 20 of 50 frames observed).

Differences from the paper, on purpose:

* the skeleton feature is this project's frozen stage-1 feature, and the partial view masks the frames of
  its frame-level output (``L'`` frames after the backbone's strides) rather than re-encoding a masked
  skeleton (stage 2 reads cached features); ``partial="prefix"`` observes the first frames instead;
* the schedule is per step, a linear warm-up over the first ``warmup`` fraction of training from ``lr/steps``
  (the official per-epoch warm-up starts at 0, a lost first epoch) then a cosine to 0, and the learning
  rate is sized for ~20 epochs of ~1000 samples (1e-3; the official 1e-5 is for 100 epochs of NTU);
* the critic's hidden widths are halved by default (512, 256; ``hidden=[1024, 512]`` is the official one):
  20 epochs of ~1000 NW-UCLA samples take ~3 s on one shared CPU core with them, ~14 s with the official's;
* text embeddings are this project's (CLIP or MiniLM of the descriptions), not Sentence-BERT's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import SkeletonLayout
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.method import LinkedClassText, ZeroShotMethod
from purls_pl.models.pooled import refuse_pooled
from purls_pl.text.fields import FIELDS, GLOBAL


class Critic(nn.Module):
    """``T_ω``: ``(B, n)`` skeleton features and ``(K, m)`` texts to ``(B, K)`` critic values (every pair),
    or, with ``paired=True`` and ``B == K``, ``(B,)`` the values of row-aligned pairs."""

    def __init__(self, n: int, m: int, hidden: tuple[int, int]) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n, elementwise_affine=False)
        self.skeleton = nn.Linear(n, hidden[0])  # P_v (and b₁)
        self.text = nn.Linear(m, hidden[0], bias=False)  # P_t
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Linear(hidden[1], 1))

    def forward(self, v: Tensor, t: Tensor, paired: bool = False) -> Tensor:
        a, b = self.skeleton(self.norm(v)), self.text(t)
        h = a + b if paired else a[:, None] + b[None]
        return self.head(h).squeeze(-1)


def positive_term(values: Tensor) -> Tensor:
    """``E_P[-sp(-T)]`` of the critic's values on matched pairs ``(B,)``."""
    return -F.softplus(-values).mean()


def jsd_mi(positive: Tensor, negative: Tensor) -> Tensor:
    """``()`` the Jensen-Shannon MI estimate ``E_P[-sp(-T)] - E_{P×P}[sp(T)]`` from the critic's values on
    matched ``(B,)`` and mismatched ``(B',)`` pairs."""
    return positive_term(positive) - F.softplus(negative).mean()


def temporal_margin(full: Tensor, partial: Tensor, margin: float) -> Tensor:
    """``()`` ``max(0, β - (Î(v; t) - Î(v̂; t)))`` from the critic's values ``(B,)`` on the whole sequences'
    and the partial views' pairs with their text (the negatives' term cancels)."""
    return (margin - (positive_term(full) - positive_term(partial))).clamp_min(0)


def observed_frames(frames: Tensor, ratio: float, mode: str, generator: torch.Generator | None = None) -> Tensor:
    """``(B, L')`` 0/1 weights of the frames a partial view observes, of frame features ``(B, L', n)``.

    ``motion`` (the official code's mask): drop the ``r·L'`` frames of largest motion, then ``r·L'`` of the
    rest at random; ``prefix``: the first ``L' - 2·r·L'`` frames. At least one frame is observed."""
    b, length = frames.shape[:2]
    drop = min(round(ratio * length), (length - 1) // 2)
    keep = length - 2 * drop
    weights = torch.zeros(b, length, device=frames.device)
    if mode == "prefix":
        weights[:, :keep] = 1
        return weights
    step = frames[:, 1:] - frames[:, :-1]  # (B, L'-1, n)
    motion = frames.new_zeros(b, length)
    motion[:, :-1] += step.pow(2).mean(-1)  # to the next frame
    motion[:, 1:] += step.pow(2).mean(-1)  # to the previous frame
    calm = motion.topk(length - drop, dim=1, largest=False).indices  # (B, L' - drop)
    order = torch.rand(calm.shape, generator=generator).to(frames.device).argsort(dim=1)
    return weights.scatter(1, calm.gather(1, order[:, :keep]), 1.0)


class Smie(ZeroShotMethod):
    """SMIE: a JSD mutual-information critic of pooled skeleton features and class text, with the temporal
    constraint (module docstring).

    Args:
        class_text: The classes and their text (linked from the datamodule).
        layout: The skeleton layout (linked from the datamodule); its joints split nodes into frames.
        backbone: The frozen stage-1 encoder; its node features are mean-pooled to ``(n,)``.
        field: The description field whose embedding is a class's text (``global``: the whole description).
        hidden: The critic's two hidden widths (official: 1024, 512; halved for the CPU budget).
        temporal_weight: λ, the weight of the temporal constraint (official: 0.5; 0 turns it off).
        margin: β, its margin (official: 0.1).
        mask_ratio: ``r``, the share of frames each of the partial view's two masks drops (official: 15/50).
        partial: Which frames a partial view observes: ``motion`` (official) or ``prefix``.
        lr: Adam learning rate (official: 1e-5 over 100 NTU epochs; sized here for ~20 small epochs).
        weight_decay: Adam weight decay (official: 0).
        warmup: Fraction of training the learning rate warms up over (official: 15 of 100 epochs).
        cosine: Anneal it to 0 after the warm-up by a cosine (official: yes).
    """

    #: ``select``'s search: the learning rate around the default, and the temporal constraint's margin β.
    default_search: ClassVar[dict[str, list[Any]]] = {
        "model.lr": [0.0003, 0.001, 0.003],
        "model.margin": [0.1, 0.3],
    }

    def __init__(
        self,
        class_text: LinkedClassText,
        layout: str | SkeletonLayout,
        backbone: FrozenBackbone,
        field: str = GLOBAL,
        hidden: tuple[int, int] = (512, 256),
        temporal_weight: float = 0.5,
        margin: float = 0.1,
        mask_ratio: float = 0.3,
        partial: Literal["motion", "prefix"] = "motion",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup: float = 0.15,
        cosine: bool = True,
    ) -> None:
        super().__init__(class_text, layout, backbone)
        if field not in FIELDS:
            raise ValueError(f"model.field must be one of {list(FIELDS)}, got {field!r}")
        if partial not in ("motion", "prefix"):
            raise ValueError(f"model.partial must be 'motion' or 'prefix', got {partial!r}")
        if temporal_weight > 0:
            refuse_pooled(
                backbone,
                f"SMIE's temporal constraint (model.temporal_weight={temporal_weight}) compares the full sequence "
                "with a partial one, frame by frame",
                "set --model.temporal_weight=0 (the mutual-information critic alone)",
            )
        self.save_hyperparameters(ignore=["class_text", "backbone", "layout"])
        text = F.normalize(class_text.embeddings[:, FIELDS.index(field)].float(), dim=-1)
        self.register_buffer("seen_text", text[list(self.seen)].clone(), persistent=False)
        self.register_buffer("candidate_text", text[list(self.candidates)].clone(), persistent=False)
        self.critic = Critic(backbone.out_channels, text.shape[-1], (int(hidden[0]), int(hidden[1])))

    # ------------------------------------------------------------------ what recognize asks
    @property
    def text_fields(self) -> tuple[int, ...]:
        return (FIELDS.index(self.hparams.field),)

    @property
    def text_dim(self) -> int:
        return int(self.seen_text.shape[-1])

    def frames(self, nodes: Tensor) -> Tensor:
        """``(B, L', n)`` frame features: node features ``(B, L'·J, n)`` (time-major) averaged over joints."""
        return nodes.float().unflatten(1, (-1, self.layout.num_joints)).mean(dim=2)

    # ------------------------------------------------------------------ training
    def losses(self, nodes: Tensor, text: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The loss terms for node features ``(B, S, n)`` paired with their classes' text ``(B, m)``."""
        hp = self.hparams
        frames = self.frames(nodes)  # (B, L', n)
        full = frames.mean(dim=1)
        seen = observed_frames(frames, hp.mask_ratio, hp.partial, generator)
        partial = (seen[..., None] * frames).sum(1) / seen.sum(1, keepdim=True)
        positive = self.critic(full, text, paired=True)
        negative = self.critic(full.roll(-1, dims=0), text, paired=True)  # (v_{i+1}, t_i)
        terms = {"mi": -jsd_mi(positive, negative)}
        terms["temporal"] = temporal_margin(positive, self.critic(partial, text, paired=True), hp.margin)
        terms["loss"] = terms["mi"] + hp.temporal_weight * terms["temporal"]
        return terms

    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self.seen_targets(batch.y)
        terms = self.losses(self.node_features(batch.x, batch.index), self.seen_text[targets])
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(targets))
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=len(targets),
        )
        return terms["loss"]

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        if self._trainer is None or (not hp.cosine and not hp.warmup):
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup * total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not hp.cosine:
                return 1.0
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ scoring
    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, K)`` ``log σ(T_ω(v, t_k))`` of node features ``(B, S, n)`` against candidates with text
        ``(K, m)`` (or ``(K, 1, m)``, the method's field), L2-normalised here as in training."""
        text = candidates[:, -1] if candidates.dim() == 3 else candidates
        text = F.normalize(text.float(), dim=-1)
        return -F.softplus(-self.critic(nodes.float().mean(dim=1), text))

    def evaluate(self, batch: SkeletonBatch) -> ZeroShotScores:
        scores = self.score(self.node_features(batch.x, batch.index), self.candidate_text)
        return ZeroShotScores(scores, scores[:, self.zsl_columns], batch.y)

    def full_class_text(self) -> Tensor:
        """``(K, len(FIELDS), m)``: the seen and candidate classes' text in the method's field, zeros elsewhere."""
        text = torch.zeros(len(self.class_names), len(FIELDS), self.text_dim)
        column = FIELDS.index(self.hparams.field)
        text[list(self.seen), column] = self.seen_text.detach().cpu()
        text[list(self.candidates), column] = self.candidate_text.detach().cpu()
        return text
