"""Zero-shot and generalised zero-shot evaluation, as Lightning callbacks.

The module's ``validation_step`` / ``test_step`` return ``{"scores": (B, K), "labels": (B,)}``: every
sample scored against every candidate class (``pl_module.candidates``, dataset class ids), with its
dataset label. Both callbacks read only that output and the module's public class lists
(``class_names``, ``seen``, ``unseen``, ``candidates``).

:class:`ZeroShotEvaluation` keeps the rows of zero-shot-class samples (``pl_module.unseen``) and the
columns of those classes, accumulates them in torchmetrics (synchronised across processes) and logs
``<stage>/zsl_top1`` (the paper's metric), ``<stage>/zsl_top5`` and ``<stage>/zsl_mean_class`` for
``stage`` in ``val`` and ``test``. After testing it writes ``<log_dir>/results.json`` (the metrics, the
confusion matrix over the unseen classes, rows = true class, and each class's accuracy) and draws
``confusion.png``.

:class:`GeneralizedZeroShotEvaluation` keeps every test row and column (seen- and unseen-class samples
against all classes, when the datamodule's ``gzsl`` adds the seen classes' test samples) and logs
``test/gzsl_seen``, ``test/gzsl_unseen`` and ``test/gzsl_h`` at the calibration γ, with the complete
calibrated-stacking curve and AUSUC under ``results.json["gzsl"]`` and ``gzsl_curve.png``.

Under DDP every process scores its own shard; padding rows that even out the shards (flagged
``batch["valid"] == False`` by :func:`purls_pl.train.resumable.eval_loader`) are dropped, torchmetrics
sums the metric states, and the GZSL scores are all-gathered, so every figure equals one process over
all samples.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix

from purls_pl.eval import figures
from purls_pl.eval.gzsl import gzsl_accuracies, gzsl_curve, gzsl_sweep
from purls_pl.eval.metrics import GZSL_H, GZSL_SEEN, GZSL_UNSEEN, TEST, VAL, key, zsl_metrics
from purls_pl.eval.results import results_path, update_results

log = logging.getLogger(__name__)


def positions(classes: tuple[int, ...], num_classes: int, device: torch.device) -> Tensor:
    """``(num_classes,)`` lookup: a class id's position in ``classes``, -1 for other classes."""
    table = torch.full((num_classes,), -1, dtype=torch.long, device=device)
    table[list(classes)] = torch.arange(len(classes), device=device)
    return table


def _valid_rows(outputs: Any, batch: Any) -> tuple[Tensor, Tensor]:
    """The step's ``scores`` and ``labels`` without the DDP padding rows."""
    if not isinstance(outputs, dict) or "scores" not in outputs or "labels" not in outputs:
        raise TypeError("the evaluation callbacks expect eval steps to return {'scores', 'labels'}")
    scores, labels = outputs["scores"], outputs["labels"]
    valid = batch.get("valid") if isinstance(batch, dict) else None
    if valid is not None:
        valid = valid.to(scores.device, torch.bool)
        scores, labels = scores[valid], labels[valid]
    return scores, labels


def _save_figure(trainer: Trainer, draw: Any, tag: str, path: Path) -> None:
    """Draw a figure (matplotlib, the ``plots`` extra), save it to ``path`` and log it; skipped without
    matplotlib and in ``fast_dev_run``."""
    if trainer.fast_dev_run:
        return
    try:
        fig = draw()
    except ImportError as err:  # pragma: no cover - matplotlib is in the `plots` extra
        log.info("no %s figure: %s", tag, err)
        return
    figures.log_figure(fig, tag, trainer.loggers, path, step=trainer.global_step)


class ZeroShotEvaluation(Callback):
    """Accumulate zero-shot scores over an epoch and log top-1/top-5/mean-class accuracy.

    Args:
        figures: After testing, save the unseen classes' confusion matrix as ``confusion.png``
            beside the results and log it to the loggers (skipped in ``fast_dev_run`` or without
            matplotlib).
    """

    def __init__(self, figures: bool = True) -> None:
        self.figures = figures
        self.confusion: MulticlassConfusionMatrix | None = None
        self.metrics: dict[str, MetricCollection] = {}
        self.last: dict[str, dict[str, float]] = {}
        self._rows: Tensor | None = None
        self._columns: Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        num_classes = len(pl_module.unseen)
        for split in (VAL, TEST):
            self.metrics[split] = zsl_metrics(num_classes).to(pl_module.device)
        self.confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)
        self._rows = positions(pl_module.unseen, len(pl_module.class_names), pl_module.device)
        candidates = positions(pl_module.candidates, len(pl_module.class_names), pl_module.device)
        self._columns = candidates[list(pl_module.unseen)]

    def _update(self, split: str, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        scores, labels = _valid_rows(outputs, batch)
        assert self._rows is not None and self._columns is not None, "setup() not called"
        targets = self._rows.to(labels.device)[labels]
        keep = targets >= 0  # samples of the zero-shot classes
        if not bool(keep.any()):
            return
        scores = scores[keep][:, self._columns.to(scores.device)].float()
        targets = targets[keep]
        self.metrics[split] = self.metrics[split].to(pl_module.device)
        self.metrics[split].update(scores, targets)
        if split == TEST and self.confusion is not None:
            self.confusion = self.confusion.to(pl_module.device)
            self.confusion.update(scores.argmax(dim=-1), targets)

    def _log(self, split: str, pl_module: LightningModule) -> None:
        values = {key(split, k): v for k, v in self.metrics[split].compute().items()}
        self.metrics[split].reset()
        # Values are already reduced across processes by torchmetrics.
        pl_module.log_dict(values, prog_bar=split == VAL, sync_dist=False, rank_zero_only=False)
        self.last[split] = {k: float(v) for k, v in values.items()}

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: int
    ) -> None:
        self._update(VAL, pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            self.metrics[VAL].reset()
            return
        self._log(VAL, pl_module)

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: int
    ) -> None:
        self._update(TEST, pl_module, outputs, batch)

    def per_class(self, pl_module: LightningModule) -> dict[str, Any]:
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

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(TEST, pl_module)
        per_class = self.per_class(pl_module)
        path = results_path(trainer)  # in every process: under DDP trainer.log_dir is a collective
        if not trainer.is_global_zero:
            return
        unseen = [pl_module.class_names[i] for i in pl_module.unseen]
        record = {
            **self.last[TEST],
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "num_unseen_classes": len(unseen),
            "unseen_classes": unseen,
            **per_class,
        }
        path.unlink(missing_ok=True)  # a fresh record for this test
        update_results(path, record)
        if self.figures and "confusion" in record:
            draw = lambda: figures.confusion_figure(record["confusion"], unseen)  # noqa: E731
            _save_figure(trainer, draw, "test/confusion", path.parent / "confusion.png")

    def state_dict(self) -> dict[str, Any]:
        return {}


def _finite(value: float) -> float | None:
    """JSON-safe: NaN (an empty group) becomes ``None``."""
    return None if math.isnan(value) else float(value)


def _thin(curve: dict[str, Tensor], points: int) -> dict[str, list[float | None]]:
    """At most ``points`` evenly spaced entries of the curve, both ends kept."""
    n = len(curve["gamma"])
    idx = torch.linspace(0, n - 1, min(n, max(2, points))).round().long().unique()
    return {k: [_finite(v) for v in curve[k][idx].tolist()] for k in ("gamma", "seen", "unseen", "h")}


class GeneralizedZeroShotEvaluation(Callback):
    """Score seen- and unseen-class test samples against all classes (generalised zero-shot).

    Runs when the module's candidates include the seen classes (the datamodule's ``gzsl``, default on).

    Args:
        gamma: Calibrated-stacking γ of the headline ``test/gzsl_seen``, ``test/gzsl_unseen``,
            ``test/gzsl_h`` (0: the plain argmax).
        calibration: The γ values of the sweep recorded in ``results.json``; default (``null``) every
            change point of the exact curve. ``best`` (the γ with the highest H) is chosen on the test
            samples themselves: an oracle bound for analysis, never a result.
        per_class: Average accuracy over the classes of each group (the usual GZSL protocol)
            instead of over its samples.
        curve_points: Points of the complete curve kept in ``results.json``.
        figures: Save ``gzsl_curve.png`` beside the results and log it (not in ``fast_dev_run``).
    """

    def __init__(
        self,
        gamma: float = 0.0,
        calibration: list[float] | None = None,
        per_class: bool = True,
        curve_points: int = 101,
        figures: bool = True,
    ) -> None:
        self.gamma = gamma
        self.calibration = calibration
        self.per_class = per_class
        self.curve_points = curve_points
        self.figures = figures
        self.result: dict[str, Any] | None = None
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []

    @staticmethod
    def active(pl_module: LightningModule) -> bool:
        """Whether the module scores the seen classes too (else there is nothing to evaluate)."""
        return bool(set(pl_module.candidates) - set(pl_module.unseen))

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._scores, self._labels, self.result = [], [], None

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: int
    ) -> None:
        if not self.active(pl_module):
            return
        scores, labels = outputs["scores"], outputs["labels"]
        valid = batch.get("valid") if isinstance(batch, dict) else None
        valid = torch.ones_like(labels, dtype=torch.bool) if valid is None else valid.to(labels.device, torch.bool)
        # Padding rows are kept (flagged by label -1) so every process gathers equally many rows.
        self._scores.append(scores.detach().float())
        self._labels.append(torch.where(valid, labels, torch.full_like(labels, -1)))

    def evaluate(self, scores: Tensor, targets: Tensor, seen_mask: Tensor) -> dict[str, Any]:
        """The ``results.json["gzsl"]`` record of a score matrix ``(N, K)`` with target positions ``(N,)``."""
        at = gzsl_accuracies(scores, targets, seen_mask, self.gamma, self.per_class)
        sweep = gzsl_sweep(scores, targets, seen_mask, self.calibration, self.per_class)
        swept = {k: [_finite(v) for v in sweep[k]] for k in ("gamma", "seen", "unseen", "h")}
        best = {k: _finite(v) for k, v in sweep["best"].items()}  # type: ignore[union-attr]
        return {
            "gamma": self.gamma,
            **{k: _finite(v) for k, v in at.items()},
            "best": best,
            "ausuc": _finite(float(sweep["ausuc"])),  # type: ignore[arg-type]
            "sweep": swept if self.calibration is not None else None,
            "curve": _thin(gzsl_curve(scores, targets, seen_mask, None, self.per_class), self.curve_points),
            "per_class": self.per_class,
            "num_samples": len(targets),
            "num_seen_samples": int(seen_mask[targets].sum()),
            "num_seen_classes": int(seen_mask.sum()),
            "num_unseen_classes": int((~seen_mask).sum()),
        }

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._scores or trainer.sanity_checking:
            return
        scores, labels = torch.cat(self._scores), torch.cat(self._labels)
        self._scores, self._labels = [], []
        if trainer.world_size > 1:  # every process gathers every row (equal counts: padded shards)
            scores = pl_module.all_gather(scores).flatten(0, 1)
            labels = pl_module.all_gather(labels).flatten(0, 1)
        keep = labels >= 0
        scores, labels = scores[keep].cpu(), labels[keep].cpu()
        candidates = torch.tensor(pl_module.candidates)
        targets = positions(pl_module.candidates, len(pl_module.class_names), torch.device("cpu"))[labels]
        seen_mask = torch.isin(candidates, torch.tensor(pl_module.seen))
        self.result = self.evaluate(scores, targets, seen_mask)
        values = {
            key(TEST, k): self.result[r] for k, r in ((GZSL_SEEN, "seen"), (GZSL_UNSEEN, "unseen"), (GZSL_H, "h"))
        }
        values = {k: (math.nan if v is None else float(v)) for k, v in values.items()}
        pl_module.log_dict(values, sync_dist=False, rank_zero_only=False)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write ``results.json["gzsl"]`` (after ZeroShotEvaluation wrote the file) and the figure."""
        if self.result is None:
            return
        path = results_path(trainer)  # in every process: under DDP trainer.log_dir is a collective
        if not trainer.is_global_zero:
            return
        update_results(path, {"gzsl": self.result})
        if self.figures:
            result = self.result
            draw = lambda: figures.gzsl_curve_figure(result)  # noqa: E731
            _save_figure(trainer, draw, "test/gzsl_curve", path.parent / "gzsl_curve.png")
