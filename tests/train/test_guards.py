"""A run whose loss turns NaN stops at once, with a message, and writes nothing as if it had finished."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from purls_pl.train.guards import FiniteLoss, NonFiniteLoss


class Diverging(LightningModule):
    """Its loss is finite for two steps, then NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def training_step(self, batch, batch_idx):
        loss = (self.w * batch[0]).mean()
        return loss * float("nan") if self.global_step >= 2 else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_first_non_finite_loss_stops_training(tmp_path):
    trainer = Trainer(
        max_epochs=3,
        callbacks=[FiniteLoss()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    data = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=2)
    with pytest.raises(NonFiniteLoss, match=r"training loss is nan at epoch 0, step 3 \(batch 2\).*--model\.lr"):
        trainer.fit(Diverging(), data)
    assert trainer.global_step == 3  # stopped at the step that diverged, not at the end
