"""The α-weighted sum of per-field symmetric contrastive losses (paper Eq. 3-4).

For every active description field i and sample b with class y_b::

    L_i = ½ · CE_o( V_i·F_i^o / τ_i , y_b )        skeleton → text, over the seen classes o
        + ½ · CE_w( V_i^w·F_i^{y_b} / τ_i , b )     text → skeleton, over the samples w in the batch

V and F are unit vectors, so the products are cosine similarities. In the text → skeleton term,
other samples of the same class are not negatives: they are left out of the denominator (with a
batch of distinct classes this is exactly Eq. 3). Each term has its own learnable temperature
(stored as ``log(1/τ)``, clamped to τ >= 0.01 as in CLIP).

Weights α (Eq. 4):

* ``uniform`` — α_i = 1/D for the D active fields;
* ``learnable`` — homoscedastic-uncertainty weighting (Kendall et al., CVPR 2018):
  ``L = Σ_i (exp(-s_i)·L_i + s_i) / D`` with learnable s_i (initialised to 0, i.e. uniform).
  The ``+ s_i`` term keeps a weight from collapsing to zero (a plain learnable α would be driven to
  0 or to a single term); the optimum is α_i ∝ 1/L_i. The logged ``alpha_<field>`` is
  ``exp(-s_i) / D``.

Distributed training (Lightning DDP, ``world_size > 1``): with ``distributed=True`` (default) V and the
targets are all-gathered along the batch axis with gradients (:mod:`purls_pl.models.distributed`)
before the loss, so both terms run over the *global* batch: the text -> skeleton term sees the
negatives of every process and the skeleton -> text term is averaged over all samples. Every process
computes the same global loss, and DDP's gradient averaging then gives exactly the gradient of one
process on the concatenated batch (``tests/models/test_distributed_loss.py``). In a single process
nothing is gathered and the computation is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from purls_pl.models.distributed import Gather, default_gather

AlphaMode = Literal["uniform", "learnable"]


def symmetric_contrastive_loss(
    skeleton: Tensor, class_text: Tensor, targets: Tensor, logit_scale: Tensor | float
) -> Tensor:
    """Eq. 3 for one field.

    Args:
        skeleton: ``(B, m)`` unit visual embeddings V_i, or ``(B, K, m)`` with one embedding per
            candidate class (text-conditioned partitioning queried with each class's description; then
            the similarity with class o uses the representation queried by o).
        class_text: ``(K, m)`` unit text embeddings F_i of the K seen classes.
        targets: ``(B,)`` class positions in ``0..K-1``.
        logit_scale: 1/τ.

    Returns:
        Scalar loss, averaged over the batch.
    """
    if skeleton.dim() == 3:
        sims = (skeleton * class_text.unsqueeze(0)).sum(-1)  # (B, K): V(b, o) · F_o
    else:
        sims = skeleton @ class_text.T  # (B, K)
    skel_to_text = F.cross_entropy(sims * logit_scale, targets)
    # text -> skeleton: for the text of sample b's class, score every sample w of the batch.
    text_to_skel_logits = (sims[:, targets].T * logit_scale).float()  # (B_text, B_skel)
    same_class = targets[:, None] == targets[None, :]
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    text_to_skel_logits = text_to_skel_logits.masked_fill(same_class & ~eye, float("-inf"))
    text_to_skel = F.cross_entropy(text_to_skel_logits, torch.arange(len(targets), device=targets.device))
    return 0.5 * skel_to_text + 0.5 * text_to_skel


class PartAwareContrastiveLoss(nn.Module):
    """Σ_i α_i · L_i over the active description fields, returning every term by name.

    Args:
        fields: Names of the active fields, in the order of the representation axis.
        alpha: ``uniform`` or ``learnable`` (see the module docstring).
        temperature_init: Initial τ of every term.
        learn_temperature: Whether τ is learned.
        distributed: Under torch.distributed with more than one process, gather V and the targets
            of every process (with gradients) so the loss runs over the global batch.
    """

    def __init__(
        self,
        fields: Sequence[str],
        alpha: AlphaMode = "learnable",
        temperature_init: float = 0.07,
        learn_temperature: bool = True,
        distributed: bool = True,
    ) -> None:
        super().__init__()
        if alpha not in ("uniform", "learnable"):
            raise ValueError(f"alpha must be 'uniform' or 'learnable', got {alpha!r}")
        self.fields = tuple(fields)
        self.alpha_mode = alpha
        self.distributed = distributed
        init = torch.full((len(self.fields),), math.log(1.0 / temperature_init))
        self.log_scale = nn.Parameter(init, requires_grad=learn_temperature)
        self.log_var = nn.Parameter(torch.zeros(len(self.fields)), requires_grad=alpha == "learnable")

    def logit_scale(self) -> Tensor:
        """1/τ per field, ``(D,)``, clamped to at most 100."""
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def alphas(self) -> Tensor:
        """α per field, ``(D,)``."""
        d = len(self.fields)
        if self.alpha_mode == "uniform":
            return torch.full((d,), 1.0 / d, device=self.log_var.device)
        return torch.exp(-self.log_var) / d

    def forward(
        self, skeleton: Tensor, class_text: Tensor, targets: Tensor, gather: Gather | None = None
    ) -> dict[str, Tensor]:
        """Args:
            skeleton: ``(B, D, m)`` unit embeddings V, one per active field (this process's shard), or
                ``(B, K, D, m)``, one per seen class and field (class-conditioned representations).
            class_text: ``(K, D, m)`` unit embeddings F of the seen classes.
            targets: ``(B,)`` positions in ``0..K-1``.
            gather: ``(B, ...) -> (B_global, ...)`` along the batch axis, with gradients; default
                :func:`~purls_pl.models.distributed.gather_with_grad` when ``distributed`` and
                torch.distributed runs more than one process, else none.

        Returns:
            ``{"loss": total, "loss_<field>": L_i, "alpha_<field>": α_i, "temperature_<field>": τ_i}``,
            over the global batch when gathered (the same value in every process).
        """
        if gather is None and self.distributed:
            gather = default_gather()
        if gather is not None:
            skeleton, targets = gather(skeleton), gather(targets)
        scales = self.logit_scale()
        alphas = self.alphas()
        out: dict[str, Tensor] = {}
        total = skeleton.new_zeros((), dtype=torch.float32)
        for i, name in enumerate(self.fields):
            term = symmetric_contrastive_loss(skeleton[..., i, :].float(), class_text[:, i].float(), targets, scales[i])
            total = total + alphas[i] * term
            out[f"loss_{name}"] = term.detach()
            out[f"alpha_{name}"] = alphas[i].detach()
            out[f"temperature_{name}"] = (1.0 / scales[i]).detach()
        if self.alpha_mode == "learnable":
            total = total + self.log_var.sum() / len(self.fields)
        out["loss"] = total
        return out
