"""The PURLS LightningModule: a thin wiring of injected components.

``skeletons -> frozen backbone -> node features G (B, S, n) -> partitioner -> R (B, D, n)
-> f_skel -> V (B, D, m) -> α-weighted contrastive loss against the seen classes' text F``.

Zero-shot scores (Eq. 5-6) compare the global V with the candidate classes' global text. With a
text-conditioned (adaptive) partitioner the global query is each candidate's own description, so no
label information is used at test time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import SkeletonLayout
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.eval.zero_shot import Scoring, field_similarities, mix_scores, with_local_fields, zero_shot_scores
from purls_pl.models.checkpoint import partitioner_from_spec, partitioner_spec, uses_labels
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.label_field import LabelField
from purls_pl.models.losses import AlphaMode, PartAwareContrastiveLoss
from purls_pl.models.method import LeakageError, LinkedClassText, ZeroShotMethod
from purls_pl.models.partition import AdaptivePartitioner, GlobalPartitioner, Partitioner, PartitionerFactory
from purls_pl.models.pooled import refuse_pooled
from purls_pl.models.projector import SkeletonProjector
from purls_pl.models.regularizers import drop_nodes, text_noise
from purls_pl.text.fields import FIELDS

__all__ = ["CandidateScores", "LeakageError", "PurlsModule"]


@dataclass(frozen=True)
class CandidateScores:
    """PURLS' scores of candidates and their parts (for scoring a subset of the candidates).

    Attributes:
        scores: ``(B, K)`` the scores (``scoring``, ``label_fusion``, ``field_weight``, ``label_field``).
        global_scores: ``(B, K)`` the global field's alone.
        fields: ``(B, K, D)`` per-field similarities when the partitioner has local fields, else ``None``.
        label: ``(B, K)`` the label field's similarities under ``label_field``, else ``None``.
    """

    scores: Tensor
    global_scores: Tensor
    fields: Tensor | None
    label: Tensor | None


class PurlsModule(ZeroShotMethod):
    """PURLS: part-aware alignment of skeleton and description embeddings.

    Args:
        class_text: Description embeddings of the dataset's classes and the seen/unseen split
            (linked from the datamodule; not set in configs).
        layout: Skeleton layout of the node grid (linked from the datamodule).
        backbone: The frozen skeleton encoder producing node features.
        partitioner: Partitioner class and its own arguments (``adaptive``, ``static``, ``global``);
            the module supplies text_dim, node_dim and layout.
        proj_hidden: Hidden width of f_skel.
        proj_dropout: Dropout in f_skel.
        alpha: ``uniform`` (α_i = 1/D) or ``learnable`` (uncertainty weighting; see losses).
        temperature_init: Initial contrastive temperature τ of every term.
        learn_temperature: Learn τ per term.
        lr: Adam learning rate (paper: 1e-4).
        weight_decay: AdamW weight decay.
        warmup_epochs: Linear warm-up epochs before cosine decay (0 = constant learning rate after warm-up).
        cosine: Cosine-decay the learning rate to 0 over ``trainer.max_epochs``.
        global_negatives: Under DDP, compute the loss over the global batch (V and targets gathered from
            every process with gradients), as one process would on the concatenated batch; ``False``
            keeps each process's negatives local.
        queries: Which descriptions query a text-conditioned (adaptive) partitioner in training.
            ``true_class`` (default, paper Eq. 3): the sample's own class's descriptions.
            ``candidates``: every seen class's own descriptions, so the similarity with class o is
            computed from the representation queried by o — exactly how zero-shot inference scores
            candidates, so the query cannot carry the label (costs K_seen times more attention). On
            NW-UCLA 8/2 it trained less stably than ``true_class``. No effect on static/global.
        scoring: How candidates are scored (:mod:`purls_pl.eval.zero_shot`): ``cosine`` of the global
            embedding with each candidate's global text, or ``eq5``, paper Eq. 5 exactly (a softmax over
            the candidates with the learned global temperature; with an adaptive partitioner each
            candidate's own representation has its own denominator).
        label_fusion: ``β`` in ``[0, 1]``: at inference, each candidate is scored against
            ``normalize((1 - β)·F_global + β·L)``, its global description fused with its label's own
            embedding ``L`` (the adaptive partitioner is still queried with the description). Training
            is unchanged; ``0`` scores the description alone.
        field_weight: ``λ`` in ``[0, 1]``: at inference, each candidate's score also uses the local fields
            (body parts, phases), ``(1 - λ)·S_global + λ·S_local`` (:func:`~purls_pl.eval.zero_shot.
            with_local_fields`), so the phases' temporal order and the parts reach the prediction; ``0`` =
            the paper's global-only inference.
        text_noise: Text-space augmentation: each training step perturbs the seen classes' text (loss
            targets and queries) by Gaussian noise of this relative size, renormalised; ``0`` = off.
        node_dropout: Feature dropout: each training step zeroes this share of the backbone's nodes
            (rescaling the rest), so no single joint-frame carries the class; ``0`` = off.
        label_field: ``μ`` in ``[0, 1]``: the class label as a field of its own
            (:mod:`purls_pl.models.label_field`): mean-pooled nodes with their own head are trained against
            the seen labels' embeddings, and each candidate's score becomes ``(1 - μ)·S + μ·S_label``;
            ``0`` = off (no label head).
    """

    def __init__(
        self,
        class_text: LinkedClassText,
        layout: str | SkeletonLayout,
        backbone: FrozenBackbone,
        partitioner: PartitionerFactory = AdaptivePartitioner,
        proj_hidden: int = 512,
        proj_dropout: float = 0.1,
        alpha: AlphaMode = "learnable",
        temperature_init: float = 0.07,
        learn_temperature: bool = True,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_epochs: int = 0,
        cosine: bool = False,
        global_negatives: bool = True,
        queries: Literal["true_class", "candidates"] = "true_class",
        scoring: Scoring = "cosine",
        label_fusion: float = 0.0,
        field_weight: float = 0.0,
        text_noise: float = 0.0,
        node_dropout: float = 0.0,
        label_field: float = 0.0,
    ) -> None:
        super().__init__(class_text, layout, backbone)
        if scoring not in ("cosine", "eq5"):
            raise ValueError(f"model.scoring must be 'cosine' or 'eq5', got {scoring!r}")
        if not all(0.0 <= w <= 1.0 for w in (label_fusion, field_weight, label_field)) or not 0 <= node_dropout < 1:
            raise ValueError(
                "model.label_fusion, model.field_weight, model.label_field must lie in [0, 1], "
                "model.node_dropout in [0, 1)"
            )
        if text_noise < 0:
            raise ValueError(f"model.text_noise must be >= 0, got {text_noise}")
        for name, weight in (("label_fusion", label_fusion), ("label_field", label_field)):
            if weight > 0 and class_text.labels is None:
                raise ValueError(f"model.{name} needs the labels' embeddings (ClassText.labels) from the datamodule")
        self.save_hyperparameters(ignore=["class_text", "backbone", "layout"])
        self.partitioner: Partitioner = partitioner(class_text.embed_dim, backbone.out_channels, layout)
        if not isinstance(self.partitioner, GlobalPartitioner):
            refuse_pooled(
                backbone,
                f"model.partitioner {type(self.partitioner).__name__} divides the node features into body parts and "
                "phases",
                "use the Global baseline (--config experiments/global.yaml: GlobalPartitioner) or a method on "
                "pooled features (CADA-VAE, SA-DVAE, TDSM)",
            )
        self.fields = self.partitioner.fields
        fields_idx = torch.tensor(self.partitioner.field_index)
        # Only the seen classes' text is ever visible to the training loss.
        self.register_buffer(
            "seen_text", class_text.embeddings[list(self.seen)][:, fields_idx].clone(), persistent=False
        )
        # Evaluation queries with every candidate's descriptions and scores against its global one (fused with
        # its label's embedding under label_fusion) and, under field_weight, its local ones.
        candidate_fields = class_text.embeddings[list(self.candidates)][:, fields_idx].clone()
        self.register_buffer("candidate_fields", candidate_fields, persistent=False)
        self.register_buffer("candidate_text", candidate_fields[:, -1].clone(), persistent=False)
        labels = class_text.labels if class_text.labels is not None else torch.zeros_like(class_text.embeddings[:, 0])
        self.register_buffer("class_labels", labels.clone(), persistent=False)
        self.register_buffer("seen_labels", labels[list(self.seen)].clone(), persistent=False)
        self.projector = SkeletonProjector(backbone.out_channels, class_text.embed_dim, proj_hidden, proj_dropout)
        self.criterion = PartAwareContrastiveLoss(
            self.fields, alpha, temperature_init, learn_temperature, distributed=global_negatives
        )
        self.label_head: LabelField | None = None
        if label_field > 0:  # created last: the other parameters initialise as without it
            head = SkeletonProjector(backbone.out_channels, class_text.embed_dim, proj_hidden, proj_dropout)
            self.label_head = LabelField(head, temperature_init, learn_temperature, global_negatives)

    # ------------------------------------------------------------------ what recognize asks
    @property
    def text_fields(self) -> tuple[int, ...]:
        """The partitioner's active fields (global last)."""
        return tuple(self.partitioner.field_index)

    @property
    def text_dim(self) -> int:
        return int(self.seen_text.shape[-1])

    @property
    def uses_label_embeddings(self) -> bool:
        return uses_labels(self.hparams)

    # ------------------------------------------------------------------ forward pieces
    def forward(self, nodes: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """``nodes (B, S, n)``, ``text (B, D, m)`` -> ``V (B, D, m)`` unit vectors and attention ``(B, D, S)``."""
        reps, attn = self.partitioner(nodes, text)
        return self.projector(reps), attn

    def global_embedding(self, nodes: Tensor, candidates: Tensor) -> Tensor:
        """Global V for zero-shot scoring: ``(B, K, m)`` if text-conditioned, else ``(B, m)``."""
        reps = self.partitioner.global_representation(nodes, candidates)
        v = self.projector(reps)
        return v if self.partitioner.text_conditioned else v[:, 0]

    def fused(self, candidates: Tensor, labels: Tensor | None) -> Tensor:
        """What candidates are scored against: ``normalize((1 - β) F + β L)`` with ``β = label_fusion``."""
        beta = self.hparams.label_fusion
        if beta == 0:
            return candidates
        if labels is None:
            raise ValueError("label_fusion needs the candidates' label embeddings")
        return F.normalize((1.0 - beta) * candidates + beta * labels.to(candidates), dim=-1)

    def field_embeddings(self, nodes: Tensor, fields_text: Tensor) -> Tensor:
        """``V_f^y`` ``(B, K, D, m)`` of every candidate y and active field f, queried by ``fields_text``
        ``(K, D, m)`` (a static partitioner gives every candidate the same V)."""
        b, (k, d, m) = nodes.shape[0], fields_text.shape
        if self.partitioner.text_conditioned:
            v, _ = self(nodes, fields_text.reshape(1, k * d, m).expand(b, -1, -1))
            return v.view(b, k, d, m)
        v, _ = self(nodes, fields_text[:1].expand(b, -1, -1))
        return v.unsqueeze(1).expand(b, k, d, m)

    def candidate_scores(self, nodes: Tensor, fields_text: Tensor, labels: Tensor | None = None) -> CandidateScores:
        """Scores of candidates with active-field text ``fields_text`` ``(K, D, m)`` (global last) and label
        embeddings ``labels`` ``(K, m)`` (``label_fusion``, ``label_field``), with their parts."""
        target = self.fused(fields_text[:, -1], labels)
        fields = None
        if len(self.fields) == 1:
            global_scores = self.scores_of(self.global_embedding(nodes, fields_text[:, -1]), target)
        else:
            v = self.field_embeddings(nodes, fields_text)
            fields = field_similarities(v, fields_text)
            own = v[:, :, -1] if self.partitioner.text_conditioned else v[:, 0, -1]
            global_scores = self.scores_of(own, target)
        label = self.label_similarities(nodes, labels) if self.label_head is not None else None
        return CandidateScores(self.combine(global_scores, fields, label), global_scores, fields, label)

    def label_similarities(self, nodes: Tensor, labels: Tensor | None) -> Tensor:
        """``(B, K)`` the label field's cosine with candidates' label embeddings ``(K, m)``."""
        if self.label_head is None or labels is None:
            raise ValueError("model.label_field needs a label head and the candidates' label embeddings")
        return self.label_head.similarities(nodes, labels)

    def combine(self, global_scores: Tensor, fields: Tensor | None = None, label: Tensor | None = None) -> Tensor:
        """``(1 - λ)·S_global + λ·S_local`` of global scores ``(B, K)`` and per-field similarities ``(B, K, D)``,
        then ``(1 - μ)·S + μ·S_label`` with the label field's similarities ``(B, K)`` (each when given)."""
        hp, scale = self.hparams, self.criterion.logit_scale()[-1]
        scores = global_scores
        if fields is not None:
            scores = with_local_fields(scores, fields[..., :-1], hp.field_weight, hp.scoring, scale)
        if label is not None:  # only a label head gives label similarities
            scores = mix_scores(scores, label, hp.label_field, hp.scoring, self.label_head.logit_scale())
        return scores

    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """Zero-shot scores ``(B, K)`` of candidates with text ``(K, m)`` (their global field) or ``(K, D, m)``
        (the active fields, global last; ``field_weight`` needs them); ``labels`` ``(K, m)``: their label
        embeddings (``label_fusion``, ``label_field``)."""
        if candidates.dim() == 2:
            if self.hparams.field_weight > 0:
                raise ValueError("model.field_weight needs every active field's text of the candidates")
            scores = self.scores_of(self.global_embedding(nodes, candidates), self.fused(candidates, labels))
            label = self.label_similarities(nodes, labels) if self.label_head is not None else None
            return self.combine(scores, None, label)
        return self.candidate_scores(nodes, candidates, labels).scores

    def scores_of(self, v: Tensor, candidates: Tensor) -> Tensor:
        """Scores ``(B, K)`` of global embeddings ``v`` (``(B, m)`` or ``(B, K, m)``) against ``(K, m)`` text."""
        scale = self.criterion.logit_scale()[-1]  # the global field's 1/τ (global is the last field)
        return zero_shot_scores(v, candidates, self.hparams.scoring, scale)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self.seen_targets(batch.y)
        nodes = drop_nodes(self.node_features(batch.x, batch.index), self.hparams.node_dropout)
        text = text_noise(self.seen_text, self.hparams.text_noise)
        if self.partitioner.text_conditioned and self.hparams.queries == "candidates":
            k, d, m = text.shape
            v, _ = self(nodes, text.reshape(1, k * d, m).expand(len(targets), -1, -1))
            v = v.view(len(targets), k, d, m)  # (B, K_seen, D, m): V queried by every seen class
        else:
            v, _ = self(nodes, text[targets])  # (B, D, m): V queried by the true class
        terms = self.criterion(v, text, targets)
        if self.label_head is not None:
            label_terms = self.label_head.loss(nodes, self.seen_labels, targets)
            terms = {**terms, **label_terms, "loss": terms["loss"] + label_terms["loss"]}
        size = len(targets)
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=size)
        self.log_dict(
            {f"train/{k}": val for k, val in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=size,
        )
        return terms["loss"]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, batch: SkeletonBatch) -> ZeroShotScores:
        """Scores of the batch's samples against the candidates, for the evaluation callbacks (with ``eq5``
        the zero-shot scores' softmax runs over the zero-shot classes alone, as Eq. 5's Y_uc)."""
        nodes = self.node_features(batch.x, batch.index)
        out = self.candidate_scores(nodes, self.candidate_fields, self.class_labels[list(self.candidates)])
        if not self.gzsl:
            return ZeroShotScores(out.scores, out.scores, batch.y, out.fields)
        columns = self.zsl_columns
        fields, label = (None if t is None else t[:, columns] for t in (out.fields, out.label))
        zsl = self.combine(self._zsl_global(nodes, out, columns), fields, label)
        return ZeroShotScores(out.scores, zsl, batch.y, fields)

    def _zsl_global(self, nodes: Tensor, out: CandidateScores, columns: list[int]) -> Tensor:
        """Global scores against the zero-shot classes alone (``eq5``'s softmax runs over them)."""
        if self.hparams.scoring == "cosine":
            return out.global_scores[:, columns]
        target = self.fused(self.candidate_text, self.class_labels[list(self.candidates)])[columns]
        v = self.global_embedding(nodes, self.candidate_text)
        return self.scores_of(v[:, columns] if v.dim() == 3 else v, target)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not self.hparams.cosine and not self.hparams.warmup_epochs:
            return opt
        total = max(1, self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = self.hparams.warmup_epochs * steps_per_epoch

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not self.hparams.cosine:
                return 1.0
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + torch.cos(torch.tensor(progress * torch.pi))).item()

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ self-contained checkpoints
    def full_class_text(self) -> Tensor:
        """``(K, len(FIELDS), m)`` text holding what the module was built with: the seen classes' and the
        candidates' active fields (zeros elsewhere)."""
        seen_text = self.seen_text.detach().cpu()
        text = torch.zeros(len(self.class_names), len(FIELDS), seen_text.shape[-1], dtype=seen_text.dtype)
        fields = list(self.partitioner.field_index)
        for row, cls in enumerate(self.seen):
            text[cls, fields] = seen_text[row]
        for row, cls in enumerate(self.candidates):
            text[cls, fields] = self.candidate_fields[row].detach().cpu()
        return text

    def spec_extra(self) -> dict[str, Any]:
        """PURLS' own checkpoint entries: its partitioner, and the label embeddings when it scores with them."""
        labels = self.class_labels.detach().cpu() if uses_labels(self.hparams) else None
        return {"partitioner": partitioner_spec(self.partitioner), "class_labels": labels}

    @classmethod
    def init_args_from_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        """The partitioner factory of a checkpoint's record (:meth:`spec_extra`)."""
        return {"partitioner": partitioner_from_spec(spec["partitioner"])}
