"""The training wiring between the datamodule and the PURLS module, as callbacks the CLI attaches.

Data flow one way (readers -> cache -> datamodule -> module -> evaluation callbacks); the module never
reads ``trainer.datamodule``. What needs both sides happens here, through their public methods:

* :class:`PrepareFeatureCache` — in cached feature mode, extracts (rank 0) or opens the feature cache
  of the datamodule's skeletons before fitting or testing;
* :class:`RecordDataSpec` — adds the datamodule's ``checkpoint_record()`` (text tower, templates,
  source, preprocessing) to every checkpoint, so checkpoints are self-contained;
* :func:`attach_wiring` — adds both, and :class:`~purls_pl.train.resumable.ExactResume`, to a trainer;
* :class:`FinalCheckpoint` — Lightning's checkpoint callback, with ``last.ckpt`` always the final weights.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint

from purls_pl.models.checkpoint import SPEC_KEY
from purls_pl.models.method import ZeroShotMethod
from purls_pl.train.resumable import ExactResume


class PrepareFeatureCache(Callback):
    """In cached feature mode, build (rank 0, the others wait) or open the feature cache of the data."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if not isinstance(pl_module, ZeroShotMethod) or not pl_module.backbone.cache or datamodule is None:
            return
        skeletons = datamodule.load()
        if trainer.is_global_zero:
            pl_module.backbone.prepare(skeletons, pl_module.device)
        trainer.strategy.barrier("feature-cache")
        pl_module.backbone.prepare(skeletons, pl_module.device)


class RecordDataSpec(Callback):
    """Add the datamodule's ``checkpoint_record()`` to ``checkpoint["purls"]`` of every checkpoint."""

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        record = getattr(trainer.datamodule, "checkpoint_record", None)
        if record is not None:
            checkpoint[SPEC_KEY] = {**checkpoint.get(SPEC_KEY, {}), **record()}


def attach_wiring(trainer: Trainer) -> None:
    """Add :class:`PrepareFeatureCache`, :class:`RecordDataSpec` and :class:`ExactResume` to ``trainer``
    (each once)."""
    for callback in (PrepareFeatureCache(), RecordDataSpec(), ExactResume()):
        if not any(type(c) is type(callback) for c in trainer.callbacks):
            trainer.callbacks.append(callback)


class FinalCheckpoint(ModelCheckpoint):
    """Lightning's :class:`~pytorch_lightning.callbacks.ModelCheckpoint` whose ``last.ckpt`` is always the
    final weights.

    Lightning (2.6) rewrites ``last.ckpt`` only when a top-k checkpoint is saved in the same step, so a
    run whose monitored metric stopped improving ends with a ``last.ckpt`` from an earlier epoch, and a
    run that keeps no top-k checkpoint (a final run: ``save_top_k=0``) writes none until it ends, so a
    killed one has nothing to resume from. This callback writes ``last.ckpt`` at every epoch end (after
    validation when there is one) and once more when training ends. Any "best" checkpoint it keeps is
    chosen by ``monitor``, which the CLIs point at a validation-class metric (or none).
    """

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_of_this_step(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_of_this_step(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.save_last and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_of_this_step(self, trainer: Trainer) -> None:
        """``last.ckpt`` for the current step, unless Lightning just wrote one (or saving is off now:
        sanity check, ``fast_dev_run``, a validation outside ``fit``)."""
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
