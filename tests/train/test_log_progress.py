"""Progress lines when the output is not a terminal: step/total, time left, samples/s and the loss."""

from __future__ import annotations

import io
import re

import torch
from pytorch_lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from purls_pl.train.log_progress import LogProgress, use_log_progress, wants_lines


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lines_carry_the_step_the_time_left_the_rate_and_the_loss(tmp_path):
    stream = io.StringIO()
    trainer = Trainer(
        max_epochs=2,
        callbacks=[LogProgress(interval=0, stream=stream)],
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.ones(12, 2)), batch_size=4))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * 3 + 2  # a line per step (interval 0) and one per epoch
    assert re.fullmatch(
        r"epoch 1/2 2/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(step/s|s/step)\], \d+ samples/s train/loss=[\d.e-]+", lines[1]
    )
    assert re.fullmatch(r"epoch 2/2 done 3/3 \[.*\], \d+ samples/s, run left 00:00 train/loss=[\d.e-]+", lines[-1])


def test_the_bar_is_replaced_only_when_the_output_is_not_a_terminal(monkeypatch, tmp_path):
    monkeypatch.setenv("PURLS_PROGRESS", "lines")
    trainer = Trainer(logger=False, default_root_dir=tmp_path)
    use_log_progress(trainer)
    assert isinstance(trainer.progress_bar_callback, LogProgress)
    monkeypatch.setenv("PURLS_PROGRESS", "bar")
    assert not wants_lines()
    monkeypatch.delenv("PURLS_PROGRESS")
    assert wants_lines(io.StringIO()) and not wants_lines(type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    silent = Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    use_log_progress(silent)
    assert silent.progress_bar_callback is None
