"""Stage 1 command line: ``python -m purls_pl pretrain fit $(python -m purls_pl configs <split> --stage backbone)``.

Trains a skeleton backbone with cross-entropy on the run's seen classes (train-partition samples only),
exports its final weights for PURLS, and (final protocol) tests it on the seen classes' test samples for
the record. Nothing is selected on test-protocol samples; ``data.holdout`` watches a held-out share of
the training protocol instead (by subject where the dataset records subjects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from purls_pl.data.skeletons import preprocessing_record
from purls_pl.models.classifier import BackboneClassifier, ExportBackbone
from purls_pl.train.cli import (
    CLI_OPTIONS,
    add_final_run_args,
    checkpoint_defaults,
    guard_trainer,
    name_runs,
    resolve_data_derived,
    run_final_test,
)
from purls_pl.train.datamodule import PretrainDataModule
from purls_pl.train.ranges import check_ranges
from purls_pl.train.resumable import ExactResume

#: Stage 1's validation metric: accuracy on the held-out share of the training protocol.
HOLDOUT_TOP1 = "val/seen_top1"


class PretrainCLI(LightningCLI):
    """LightningCLI for stage-1 backbone pre-training."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        check_ranges(config)
        resolve_data_derived(config)
        checkpoint_defaults(config, HOLDOUT_TOP1, validates=(config.data.get("holdout") or 0) > 0)
        name_runs(config, prefix="backbones/")

    def before_fit(self) -> None:
        """Hand the export the stage-1 data's preprocessing record (it stores the record whole)."""
        record = preprocessing_record(self.datamodule.source, tuple(self.datamodule.load().data.shape))
        for callback in self.trainer.callbacks:
            if isinstance(callback, ExportBackbone):
                callback.preprocessing = record

    def after_fit(self) -> None:
        run_final_test(self)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, resuming exactly (:class:`ExactResume`), with :func:`guard_trainer`."""
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(ExactResume())
        guard_trainer(trainer)
        return trainer

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.seen_classes", "model.seen_classes", apply_on="instantiate")
        parser.link_arguments("data.input_format", "model.input_format", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.add_lightning_class_args(ExportBackbone, "export")
        add_final_run_args(
            parser,
            HOLDOUT_TOP1,
            "After a final fit, test the backbone on the seen classes' test samples (recorded in the export).",
        )


def main(args: Sequence[str] | None = None) -> PretrainCLI:
    """Stage 1 (``python -m purls_pl pretrain ...``) on ``args`` (default: the command line)."""
    return PretrainCLI(BackboneClassifier, PretrainDataModule, args=None if args is None else list(args), **CLI_OPTIONS)
