"""Stage 1 command line: ``python -m purls_pl.pretrain fit --config experiments/backbones/<split>.yaml``.

Trains a skeleton backbone with cross-entropy on the split's seen classes (seen-train samples only),
selects the epoch with the best seen-test accuracy, and exports the backbone for PURLS.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from purls_pl.checkpoint_io import use_atomic_checkpoint_io
from purls_pl.cli import TRAINER_DEFAULTS, name_runs
from purls_pl.commands import exit_on_user_error
from purls_pl.data.datamodule import PretrainDataModule
from purls_pl.data.splits import get_split
from purls_pl.models.classifier import BackboneClassifier, ExportBackbone


def _seen(split: str) -> list[int]:
    return list(get_split(split).seen)


class PretrainCLI(LightningCLI):
    """LightningCLI for stage-1 backbone pre-training."""

    def before_instantiate_classes(self) -> None:
        name_runs(self.config[self.subcommand], prefix="backbones/")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, writing checkpoints atomically (temp file, then rename)."""
        trainer = super().instantiate_trainer(**kwargs)
        use_atomic_checkpoint_io(trainer)
        return trainer

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.split", "model.seen_classes", compute_fn=_seen)
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


def main(args: Sequence[str] | None = None) -> PretrainCLI | object:
    """Entry point of ``python -m purls_pl.pretrain`` (and ``python -m purls_pl pretrain``)."""
    if args is None:
        return exit_on_user_error(lambda: main(sys.argv[1:]))
    return PretrainCLI(
        BackboneClassifier,
        PretrainDataModule,
        args=list(args),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        trainer_defaults=TRAINER_DEFAULTS,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
