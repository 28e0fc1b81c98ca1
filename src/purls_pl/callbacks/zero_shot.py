"""Zero-shot evaluation on the unseen classes, as a Lightning callback.

The module's ``validation_step`` / ``test_step`` return ``{"scores": (B, K_unseen), "targets": (B,)}``;
this callback accumulates them in torchmetrics (synchronised across processes) and logs

* ``<stage>/zsl_top1`` — top-1 accuracy over samples (the paper's metric),
* ``<stage>/zsl_top5`` — top-5 accuracy over samples,
* ``<stage>/zsl_mean_class`` — top-1 accuracy averaged over classes,

for ``stage`` in ``val`` and ``test``. After testing, the final values are also written to
``<log_dir>/results.json`` for runners and report tables, with the test confusion matrix over the
unseen classes (``confusion``: rows = true class, columns = predicted, in ``unseen_classes`` order)
and each unseen class's accuracy (``per_class``: name -> top-1, ``null`` for a class without test
samples); ``confusion.png`` is saved beside it and logged to the loggers (with matplotlib).

Other callbacks add their own keys to the same file with :func:`update_results`.

Under DDP every process scores its own shard of the evaluation set; the metric states are summed over
the processes by torchmetrics when computed, and the padding rows that even out the shards (flagged
``batch["valid"] == False`` by :func:`purls_pl.data.resumable.eval_loader`) are skipped, so the logged
values and ``results.json`` (written by rank 0) equal a single process over all samples.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

log = logging.getLogger(__name__)


def results_path(trainer: Trainer) -> Path:
    """The run's results file: ``<log_dir>/<ZeroShotEvaluation.results_file>`` (default ``results.json``)."""
    name = next((cb.results_file for cb in trainer.callbacks if isinstance(cb, ZeroShotEvaluation)), "results.json")
    return Path(trainer.log_dir or trainer.default_root_dir) / name


def update_results(path: str | Path, record: dict[str, Any]) -> None:
    """Merge ``record`` into the JSON object in ``path`` (created if absent), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**current, **record}, indent=1) + "\n")
    tmp.replace(path)


class MeanClassAccuracy(Metric):
    """Top-1 accuracy averaged over the classes that occur among the targets.

    (torchmetrics' macro accuracy also averages in classes that were only ever *predicted*, which
    is not the per-class accuracy zero-shot papers report.)

    Args:
        num_classes: Number of candidate classes.
    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.add_state("correct", default=torch.zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(num_classes), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        hit = (scores.argmax(dim=-1) == targets).float()
        self.correct.index_add_(0, targets, hit)
        self.total.index_add_(0, targets, torch.ones_like(hit))

    def compute(self) -> Tensor:
        present = self.total > 0
        return (self.correct[present] / self.total[present]).mean()


def zsl_metrics(num_classes: int) -> MetricCollection:
    """The zero-shot metric set for ``num_classes`` candidates (states synchronise across processes)."""
    return MetricCollection(
        {
            "zsl_top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "zsl_top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "zsl_mean_class": MeanClassAccuracy(num_classes),
        }
    )


class ZeroShotEvaluation(Callback):
    """Accumulate zero-shot scores over an epoch and log top-1/top-5/mean-class accuracy.

    Args:
        results_file: File name (inside the logger's directory) for the final test metrics.
        figures: After testing, save the unseen classes' confusion matrix as ``confusion.png``
            beside the results and log it to the loggers (skipped in ``fast_dev_run`` or without
            matplotlib).
    """

    def __init__(self, results_file: str = "results.json", figures: bool = True) -> None:
        self.results_file = results_file
        self.figures = figures
        self.confusion: MulticlassConfusionMatrix | None = None
        self.metrics: dict[str, MetricCollection] = {}
        self.last: dict[str, dict[str, float]] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        num_classes = len(pl_module.unseen)
        for split in ("val", "test"):
            self.metrics[split] = zsl_metrics(num_classes).to(pl_module.device)
        self.confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)

    def _update(self, split: str, pl_module: LightningModule, outputs: Any, batch: Any = None) -> None:
        if not isinstance(outputs, dict) or "scores" not in outputs:
            raise TypeError("ZeroShotEvaluation expects the module's eval steps to return {'scores', 'targets'}")
        scores, targets = outputs["scores"], outputs["targets"]
        valid = batch.get("valid") if isinstance(batch, dict) else None
        if valid is not None:  # DDP padding rows (purls_pl.data.resumable.eval_loader) are not counted
            valid = valid.to(scores.device, torch.bool)
            scores, targets = scores[valid], targets[valid]
        metrics = self.metrics[split].to(pl_module.device)
        metrics.update(scores.float(), targets)
        if split == "test" and self.confusion is not None:
            self.confusion = self.confusion.to(pl_module.device)
            self.confusion.update(scores.argmax(dim=-1), targets)

    def _log(self, split: str, pl_module: LightningModule) -> None:
        values = {f"{split}/{k}": v for k, v in self.metrics[split].compute().items()}
        self.metrics[split].reset()
        # Values are already reduced across processes by torchmetrics.
        pl_module.log_dict(values, prog_bar=split == "val", sync_dist=False, rank_zero_only=False)
        self.last[split] = {k: float(v) for k, v in values.items()}

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("val", pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            self.metrics["val"].reset()
            return
        self._log("val", pl_module)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("test", pl_module, outputs, batch)

    def _per_class(self, pl_module: LightningModule) -> dict[str, Any]:
        """``{"per_class": {unseen class name: top-1 or None}, "confusion": K_u x K_u counts}`` of the test."""
        if self.confusion is None:
            return {}
        confusion = self.confusion.compute().long().cpu()  # synchronised across processes
        self.confusion.reset()
        totals = confusion.sum(dim=1)
        names = [pl_module.class_names[i] for i in pl_module.unseen]
        per_class = {
            name: (float(confusion[i, i] / totals[i]) if totals[i] > 0 else None) for i, name in enumerate(names)
        }
        return {"per_class": per_class, "confusion": confusion.tolist()}

    def _confusion_figure(self, trainer: Trainer, record: dict[str, Any], directory: Path) -> None:
        """Save ``confusion.png`` in ``directory`` (beside the results) and log it to the loggers."""
        if not self.figures or trainer.fast_dev_run or "confusion" not in record:
            return
        try:
            from purls_pl import plots
        except ImportError as err:  # pragma: no cover - matplotlib is in the `plots` extra
            log.info("no confusion figure: %s", err)
            return
        fig = plots.confusion_figure(record["confusion"], record["unseen_classes"])
        plots.log_figure(fig, "test/confusion", trainer.loggers, directory / "confusion.png", step=trainer.global_step)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log("test", pl_module)
        per_class = self._per_class(pl_module)
        # Every process asks: under DDP ``trainer.log_dir`` is a broadcast (a collective).
        directory = Path(trainer.log_dir or trainer.default_root_dir)
        if trainer.is_global_zero:
            path = directory / self.results_file
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                **self.last["test"],
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "num_unseen_classes": len(pl_module.unseen),
                "unseen_classes": [pl_module.class_names[i] for i in pl_module.unseen],
                **per_class,
            }
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=1) + "\n")
            tmp.replace(path)
            self._confusion_figure(trainer, record, directory)

    def state_dict(self) -> dict[str, Any]:
        return {}
