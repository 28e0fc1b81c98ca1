"""The class label as a field of its own beside the descriptions (``model.label_field``).

PURLS aligns skeletons with descriptions only; a class's name, which alone makes the "Global (label-only
text)" baseline, is not one of its fields. :class:`LabelField` adds it: the mean of all node features
(the Global baseline's pooling) goes through its own f_skel head into text space and is trained with the
symmetric contrastive loss (its own learnable temperature) against the seen classes' label embeddings
``L`` ("A video of a person: <label>."). At inference each candidate's score mixes in its label score,
``(1 - μ)·S + μ·S_label`` (:func:`~purls_pl.eval.zero_shot.mix_scores`).

The head and the temperature are the field's own parameters, so under Adam the term's weight in the
training loss hardly matters; the loss adds it with weight 1 and μ acts at inference only.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from purls_pl.models.losses import PartAwareContrastiveLoss

LABEL = "label"


class LabelField(nn.Module):
    """The label field's head and loss.

    Args:
        projector: The field's own f_skel, ``(B, n) -> (B, m)`` unit vectors
            (:class:`~purls_pl.models.projector.SkeletonProjector`).
        temperature_init: Initial contrastive temperature τ.
        learn_temperature: Learn τ.
        distributed: Gather the global batch under DDP (as the description fields' loss does).
    """

    def __init__(
        self, projector: nn.Module, temperature_init: float, learn_temperature: bool, distributed: bool
    ) -> None:
        super().__init__()
        self.projector = projector
        self.criterion = PartAwareContrastiveLoss((LABEL,), "uniform", temperature_init, learn_temperature, distributed)

    def embed(self, nodes: Tensor) -> Tensor:
        """``nodes (B, S, n)`` -> ``(B, m)`` unit label-space embeddings of their mean."""
        return self.projector(nodes.mean(dim=1))

    def logit_scale(self) -> Tensor:
        """The field's ``1/τ`` (a scalar tensor)."""
        return self.criterion.logit_scale()[0]

    def loss(self, nodes: Tensor, seen_labels: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """``{"loss", "loss_label", "alpha_label", "temperature_label"}`` of ``nodes (B, S, n)`` against the
        seen classes' label embeddings ``(K_seen, m)`` with ``targets (B,)`` positions among them."""
        return self.criterion(self.embed(nodes).unsqueeze(1), seen_labels.unsqueeze(1), targets)

    def similarities(self, nodes: Tensor, labels: Tensor) -> Tensor:
        """``(B, K)`` cosine of each sample's label embedding with the candidates' labels ``(K, m)``."""
        return self.embed(nodes).float() @ F.normalize(labels.float(), dim=-1).T
