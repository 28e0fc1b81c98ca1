"""Stage 1: supervised pre-training of a skeleton backbone on the seen classes only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor, nn

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.skeletons import SkeletonFormat
from purls_pl.models.backbones import NodeEncoder, NodeEncoderFactory
from purls_pl.models.features import export_backbone, load_backbone


class BackboneClassifier(LightningModule):
    """Backbone + global average pooling + linear head over the seen classes.

    Args:
        backbone: The skeleton encoder class and its own arguments (``class_path`` + ``init_args``, e.g.
            channels and strides); the layout, channels and persons come from the data. An encoder
            instance is taken as it is.
        seen_classes: Dataset class ids of the seen classes (linked from the datamodule).
        input_format: Layout, persons, channels and frames of the data (linked from the datamodule).
        class_names: The dataset's class names (linked from the datamodule; recorded in the export).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        label_smoothing: Cross-entropy label smoothing.
        dropout: Dropout before the linear head.
    """

    def __init__(
        self,
        backbone: NodeEncoderFactory | NodeEncoder,
        seen_classes: list[int],
        input_format: SkeletonFormat | None = None,
        class_names: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "input_format", "class_names"])
        if not isinstance(backbone, nn.Module):
            if input_format is None:
                raise ValueError("BackboneClassifier needs input_format to build its backbone from a class")
            backbone = backbone(input_format.layout, input_format.channels, input_format.num_persons)
        self.backbone = backbone
        self.class_names = list(class_names or [])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.out_channels, len(seen_classes)))
        position = torch.full((max(seen_classes) + 1,), -1, dtype=torch.long)
        position[seen_classes] = torch.arange(len(seen_classes))
        self.register_buffer("seen_position", position, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, M, T, J, C)`` -> logits ``(N, K_seen)``."""
        return self.head(self.backbone(x).mean(dim=(2, 3)))

    def _targets(self, y: Tensor) -> Tensor:
        pos = self.seen_position[y.clamp(max=len(self.seen_position) - 1)]
        if bool((pos < 0).any()) or bool((y >= len(self.seen_position)).any()):
            raise RuntimeError("stage-1 batch contains a class outside the seen set")
        return pos

    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self._targets(batch.y)
        logits = self(batch.x)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)
        acc = (logits.argmax(-1) == targets).float().mean()
        self.log_dict({"train/loss": loss, "train/top1": acc}, prog_bar=True, batch_size=len(targets))
        return loss

    def _eval(self, batch: SkeletonBatch, split: str) -> None:
        targets = self._targets(batch.y)
        logits = self(batch.x)
        acc = (logits.argmax(-1) == targets).float().mean()
        self.log(f"{split}/seen_top1", acc, prog_bar=True, batch_size=len(targets), sync_dist=True)

    def validation_step(self, batch: SkeletonBatch, batch_idx: int) -> None:
        self._eval(batch, "val")

    def test_step(self, batch: SkeletonBatch, batch_idx: int) -> None:
        self._eval(batch, "test")

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        epochs = max(1, self.trainer.max_epochs or 1)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)}


class ExportBackbone(Callback):
    """Write the backbone's final weights as a frozen-ready export when fitting ends.

    The export records the classes it was trained on (``seen_classes`` ids and ``seen_class_names``), so
    PURLS refuses it for a run whose seen classes do not include them, and the stage-1 accuracies that
    were measured: on the held-out training-protocol samples (``holdout_top1``, when a holdout is set)
    and, after a test, on the seen classes' test samples (``seen_test_top1``). Nothing selects the
    exported epoch: stage 1 never chooses on test-protocol samples. It stores the stage-1 data's
    preprocessing record whole (``preprocess``, :meth:`purls_pl.data.preprocessing.Preprocessing.to_mapping`)
    when the command sets :attr:`preprocessing`.

    Args:
        path: Where the export goes, e.g. ``lightning_logs/backbones/demo_15_5/seed0.pt``
            (``auto``: that path for the run's split and seed); ``make train`` skips stage 1 when it
            exists.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        #: How the training samples were prepared (the record the pretrain command passes in).
        self.preprocessing: dict[str, Any] | None = None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        meta: dict[str, Any] = {"epochs": trainer.current_epoch, "global_step": trainer.global_step}
        meta["seen_classes"] = list(pl_module.hparams.seen_classes)
        if pl_module.class_names:
            meta["seen_class_names"] = [pl_module.class_names[c] for c in pl_module.hparams.seen_classes]
        if self.preprocessing is not None:
            meta["preprocess"] = dict(self.preprocessing)
        holdout = trainer.callback_metrics.get("val/seen_top1")
        if holdout is not None:
            meta["holdout_top1"] = float(holdout)
        export_backbone(pl_module.backbone, self.path, meta)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Add the seen classes' test accuracy to the export's record (the backbone is unchanged)."""
        accuracy = trainer.callback_metrics.get("test/seen_top1")
        if not trainer.is_global_zero or accuracy is None or not Path(self.path).is_file():
            return
        backbone, meta = load_backbone(self.path)
        export_backbone(backbone, self.path, {**meta, "seen_test_top1": float(accuracy)})
