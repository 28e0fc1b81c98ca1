"""Guards that stop a run which cannot produce a trustworthy result, before it writes one.

:class:`FiniteLoss` stops training at the first NaN or infinite training loss (corrupted weights or
data, a learning rate that diverges), so no ``results.json`` is ever written from a NaN run.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def _loss(outputs: Any) -> torch.Tensor | None:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class FiniteLoss(Callback):
    """Raise :class:`NonFiniteLoss` when a training step's loss is not finite (checked every step: one
    scalar comparison)."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = _loss(outputs)
        if loss is not None and not bool(torch.isfinite(loss.detach()).all()):
            raise NonFiniteLoss(
                f"training loss is {float(loss.detach().float().mean())} at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step} (batch {batch_idx}); the run was stopped and no results were written. "
                "Check the inputs (a corrupted backbone export or data cache is refused at load; NaN in your own "
                "arrays is not) and lower the learning rate (--model.lr)"
            )
