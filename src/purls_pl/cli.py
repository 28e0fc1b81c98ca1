"""Command line: ``python -m purls_pl {fit,validate,test,predict} --config experiments/<split>.yaml``.

Values the datamodule derives (the classes' description embeddings with the seen/unseen split, the
skeleton layout) are linked into the model when both are instantiated, so no config repeats them.
``fit`` ends with a test of the final weights on the unseen classes; the metrics land in
``<log_dir>/results.json``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from purls_pl.callbacks.zero_shot import ZeroShotEvaluation
from purls_pl.data.datamodule import ZeroShotDataModule
from purls_pl.models.purls_module import PurlsModule

MONITOR = "val/zsl_top1"
#: Trainer defaults of every experiment (a config or flag overrides any of them).
TRAINER_DEFAULTS: dict = {
    "deterministic": "warn",
    "log_every_n_steps": 10,
    "num_sanity_val_steps": 0,
    "enable_model_summary": False,
}


# Expected with a frozen backbone inside the module, and a Lightning-internal deprecation.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def name_runs(config: Namespace, prefix: str = "") -> None:
    """Give runs without an explicit logger a TensorBoard logger named after the experiment file:
    ``lightning_logs/<prefix><config stem>/version_<k>/`` (checkpoints, config, results inside)."""
    trainer = config.trainer
    if trainer.logger not in (None, True):
        return
    configs = [c for c in (config.get("config") or []) if c is not None]
    name = Path(str(configs[-1])).stem if configs else config.data.split
    trainer.logger = Namespace(
        class_path="pytorch_lightning.loggers.TensorBoardLogger",
        init_args=Namespace(save_dir=trainer.default_root_dir or "lightning_logs", name=prefix + name),
    )


class PurlsCLI(LightningCLI):
    """LightningCLI for PURLS with argument links and zero-shot evaluation always attached."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.class_text", "model.class_text", apply_on="instantiate")
        parser.link_arguments("data.layout", "model.layout", apply_on="instantiate")
        parser.add_lightning_class_args(ZeroShotEvaluation, "zero_shot")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": MONITOR,
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="After fit, test the final weights on the unseen classes and write results.json.",
        )

    def before_instantiate_classes(self) -> None:
        name_runs(self.config[self.subcommand])

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit", True):
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)


def main(args: Sequence[str] | None = None) -> PurlsCLI:
    """Run the PURLS LightningCLI (``fit``/``validate``/``test``/``predict``) on ``args``.

    The command-line entry point is :func:`purls_pl.commands.main`, which also dispatches the other
    commands (``pretrain``, ``report``, ``describe`` ...).
    """
    return PurlsCLI(
        PurlsModule,
        ZeroShotDataModule,
        args=None if args is None else list(args),
        save_config_kwargs={"overwrite": True},
        trainer_defaults=TRAINER_DEFAULTS,
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":  # pragma: no cover
    from purls_pl.commands import main as dispatch

    dispatch()
