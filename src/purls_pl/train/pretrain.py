"""Stage 1 command line: ``python -m purls_pl pretrain fit --config experiments/backbone.yaml --data.split=<split>``.

Trains a skeleton backbone with cross-entropy on the split's seen classes (seen-train samples only),
selects the epoch with the best seen-test accuracy, and exports the backbone for PURLS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from purls_pl.models.classifier import BackboneClassifier, ExportBackbone
from purls_pl.train.checkpoint_io import use_atomic_checkpoint_io
from purls_pl.train.cli import CLI_OPTIONS, name_runs, resolve_data_derived
from purls_pl.train.datamodule import PretrainDataModule
from purls_pl.train.resumable import ExactResume


class PretrainCLI(LightningCLI):
    """LightningCLI for stage-1 backbone pre-training."""

    def before_instantiate_classes(self) -> None:
        resolve_data_derived(self.config[self.subcommand])
        name_runs(self.config[self.subcommand], prefix="backbones/")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, writing checkpoints atomically (temp file, then rename)."""
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(ExactResume())
        use_atomic_checkpoint_io(trainer)
        return trainer

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.seen_classes", "model.seen_classes", apply_on="instantiate")
        parser.link_arguments("data.input_format", "model.input_format", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.add_lightning_class_args(ExportBackbone, "export")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/seen_top1",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )


def main(args: Sequence[str] | None = None) -> PretrainCLI:
    """Stage 1 (``python -m purls_pl pretrain ...``) on ``args`` (default: the command line)."""
    return PretrainCLI(BackboneClassifier, PretrainDataModule, args=None if args is None else list(args), **CLI_OPTIONS)
