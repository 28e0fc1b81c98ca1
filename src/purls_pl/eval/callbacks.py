"""Zero-shot and generalised zero-shot evaluation, as Lightning callbacks.

The module's ``validation_step`` / ``test_step`` return :class:`~purls_pl.eval.outputs.ZeroShotScores`:
every sample scored against every candidate class (``pl_module.candidates``, dataset class ids) and
against the zero-shot classes alone, with its dataset label. Both callbacks read only that output, the
batch's ``valid`` flags and the module's class lists (:class:`~purls_pl.eval.outputs.ScoredClasses`).

:class:`ZeroShotEvaluation` keeps the rows of zero-shot-class samples (``pl_module.unseen``) and the
columns of those classes, accumulates them in torchmetrics (synchronised across processes) and logs
``<stage>/zsl_top1`` (the paper's metric), ``<stage>/zsl_top5`` and ``<stage>/zsl_mean_class`` for
``stage`` in ``val`` and ``test``. After testing it writes ``<log_dir>/results.json`` (the metrics, the
confusion matrix over the unseen classes, rows = true class, and each class's accuracy) with
``"complete": false``, draws ``confusion.png``, and marks the file complete at the test's teardown, after
every other callback has added its part (:func:`purls_pl.eval.results.mark_complete`).

:class:`GeneralizedZeroShotEvaluation` keeps every test row and column (seen- and unseen-class samples
against all classes, when the datamodule's ``gzsl`` adds the seen classes' test samples) and logs
``test/gzsl_seen``, ``test/gzsl_unseen`` and ``test/gzsl_h`` at the calibration γ, with the complete
calibrated-stacking curve and AUSUC under ``results.json["gzsl"]`` and ``gzsl_curve.png``.

Under DDP every process scores its own shard; padding rows that even out the shards (flagged
``batch.valid == False`` by :func:`purls_pl.train.resumable.eval_loader`) are dropped, torchmetrics
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

from purls_pl.data.batch import SkeletonBatch
from purls_pl.eval import figures
from purls_pl.eval.gzsl import ausuc, gzsl_accuracies, gzsl_curve, gzsl_sweep
from purls_pl.eval.metrics import (
    COMPLETE,
    FIELD_TOP1,
    GZSL_H,
    GZSL_SEEN,
    GZSL_UNSEEN,
    TEST,
    VAL,
    VAL_CURVE_FILE,
    FieldAccuracy,
    key,
    zsl_metrics,
)
from purls_pl.eval.outputs import ScoredClasses, ZeroShotScores
from purls_pl.eval.results import FAST_DEV_RUN, mark_complete, results_path, update_results
from purls_pl.storage import atomic_write_json

log = logging.getLogger(__name__)


def positions(classes: tuple[int, ...], num_classes: int, device: torch.device) -> Tensor:
    """``(num_classes,)`` lookup: a class id's position in ``classes``, -1 for other classes."""
    table = torch.full((num_classes,), -1, dtype=torch.long, device=device)
    table[list(classes)] = torch.arange(len(classes), device=device)
    return table


def _checked(outputs: Any) -> ZeroShotScores:
    """The step output, refused with the fix when a module returns anything else."""
    if not isinstance(outputs, ZeroShotScores):
        raise TypeError(
            f"the evaluation callbacks expect validation_step/test_step to return ZeroShotScores "
            f"(purls_pl.eval.outputs), got {type(outputs).__name__}"
        )
    return outputs


def _valid(scores: Tensor, batch: SkeletonBatch) -> Tensor:
    """``scores``' rows without the DDP padding rows (``batch.valid``)."""
    return scores[batch.valid_rows().to(scores.device)]


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

    Validation metrics are also kept per epoch (every ``val/…`` value the callbacks logged) and written
    to ``<log_dir>/val_curve.json`` when the fit ends: model selection reads its epoch count there. The
    test writes ``results.json`` with the metrics, the confusion matrix over the unseen classes, each
    class's accuracy and every test sample's label and prediction (``samples``: dataset class ids, for
    intervals over test samples).

    Args:
        figures: After testing, save the unseen classes' confusion matrix as ``confusion.png``
            beside the results and log it to the loggers (skipped in ``fast_dev_run`` or without
            matplotlib).
    """

    def __init__(self, figures: bool = True) -> None:
        self.figures = figures
        self.metrics: dict[str, MetricCollection] = {}
        self.last: dict[str, dict[str, float]] = {}
        self.history: list[dict[str, float]] = []
        self._rows: Tensor | None = None
        self._samples: list[Tensor] = []
        self.field_metrics: dict[str, FieldAccuracy] = {}
        self._written: Path | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        method: ScoredClasses = pl_module  # type: ignore[assignment]
        for split in (VAL, TEST):
            self.metrics[split] = zsl_metrics(len(method.unseen)).to(pl_module.device)
            self.field_metrics[split] = FieldAccuracy(len(method.fields)).to(pl_module.device)
        self._rows = positions(method.unseen, len(method.class_names), pl_module.device)
        if stage == "fit":
            self.history = []

    def _update(self, split: str, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch) -> None:
        out = _checked(outputs)
        assert self._rows is not None, "setup() not called"
        labels = _valid(out.labels, batch)
        targets = self._rows.to(labels.device)[labels]
        keep = targets >= 0  # samples of the zero-shot classes
        scores = _valid(out.zsl_scores, batch)  # against the zero-shot classes alone
        if split == TEST:  # every row (padding flagged -1), so every process gathers as many
            flags = batch.valid_rows().to(out.labels.device)
            label = torch.full_like(out.labels, -1)
            label[flags] = labels
            prediction = torch.full_like(label, -1)
            unseen = torch.tensor(pl_module.unseen, device=label.device)
            prediction[flags] = unseen[scores.argmax(dim=-1)]
            self._samples.append(torch.stack([label, prediction], dim=1))
        if not bool(keep.any()):
            return
        self.metrics[split] = self.metrics[split].to(pl_module.device)
        self.metrics[split].update(scores[keep].float(), targets[keep])
        if out.field_scores is not None:  # (B, K_u, D): each field's own ranking of the zero-shot classes
            fields = _valid(out.field_scores, batch)
            self.field_metrics[split] = self.field_metrics[split].to(pl_module.device)
            self.field_metrics[split].update(fields[keep].float(), targets[keep])

    def _log(self, split: str, pl_module: LightningModule) -> None:
        values = {key(split, k): v for k, v in self.metrics[split].compute().items()}
        fields = pl_module.fields
        if len(fields) > 1:  # the same on every process (compute() synchronises)
            per_field = self.field_metrics[split].compute()
            values |= {key(split, f"{FIELD_TOP1}_{f}"): per_field[i] for i, f in enumerate(fields)}
        self._reset(split)
        # Values are already reduced across processes by torchmetrics.
        pl_module.log_dict(values, prog_bar=split == VAL, sync_dist=False, rank_zero_only=False)
        self.last[split] = {k: float(v) for k, v in values.items()}

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch, batch_idx: int, *_: int
    ) -> None:
        self._update(VAL, pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            self._reset(VAL)
            return
        self._log(VAL, pl_module)

    def _reset(self, split: str) -> None:
        """Forget ``split``'s batches: the zero-shot and the per-field counts together."""
        self.metrics[split].reset()
        self.field_metrics[split].reset()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Keep this epoch's ``val/…`` values (logged by every callback by now)."""
        if trainer.sanity_checking:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{VAL}/")}
        self.history.append({"epochs": trainer.current_epoch + 1, "step": trainer.global_step, **values})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        path = results_path(trainer).with_name(VAL_CURVE_FILE)  # every process: log_dir is a collective
        if self.history and trainer.is_global_zero:
            atomic_write_json(path, self.history)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._samples = []
        self._written = None

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch, batch_idx: int, *_: int
    ) -> None:
        self._update(TEST, pl_module, outputs, batch)

    def tested_samples(self, trainer: Trainer, pl_module: LightningModule) -> Tensor:
        """``(N, 2)`` ``[label, prediction]`` (dataset class ids) of every zero-shot test sample, from every
        process."""
        rows = torch.cat(self._samples) if self._samples else torch.zeros(0, 2, dtype=torch.long)
        self._samples = []
        if trainer.world_size > 1:
            rows = pl_module.all_gather(rows).flatten(0, 1)
        rows = rows.cpu()
        return rows[torch.isin(rows[:, 0], torch.tensor(pl_module.unseen))]

    @staticmethod
    def per_class(samples: Tensor, unseen: tuple[int, ...], class_names: tuple[str, ...]) -> dict[str, Any]:
        """``{"per_class": {unseen class name: top-1 or None}, "confusion": K_u x K_u counts}`` (rows: true
        class, columns: predicted, in ``unseen`` order) of ``(N, 2)`` ``[label, prediction]`` rows."""
        index = {c: i for i, c in enumerate(unseen)}
        confusion = torch.zeros(len(unseen), len(unseen), dtype=torch.long)
        for label, prediction in samples.tolist():
            confusion[index[label], index[prediction]] += 1
        totals = confusion.sum(dim=1)
        per_class = {
            class_names[c]: (float(confusion[i, i] / totals[i]) if totals[i] > 0 else None)
            for i, c in enumerate(unseen)
        }
        return {"per_class": per_class, "confusion": confusion.tolist()}

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(TEST, pl_module)
        samples = self.tested_samples(trainer, pl_module)
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
            "num_test_samples": len(samples),
            **self.per_class(samples, pl_module.unseen, pl_module.class_names),
            "samples": {"label": samples[:, 0].tolist(), "prediction": samples[:, 1].tolist()},
            **({FAST_DEV_RUN: True} if trainer.fast_dev_run else {}),
            COMPLETE: False,  # until teardown: every output of this test is written
        }
        path.unlink(missing_ok=True)  # a fresh record for this test
        update_results(path, record)
        self._written = path
        if self.figures:
            draw = lambda: figures.confusion_figure(record["confusion"], unseen)  # noqa: E731
            _save_figure(trainer, draw, "test/confusion", path.parent / "confusion.png")

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Mark this test's ``results.json`` complete: Lightning tears down only after every hook succeeded
        (the GZSL part, the figures and the provenance are written by then)."""
        if stage == TEST and self._written is not None:
            mark_complete(self._written)
        self._written = None

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
    """Score seen- and zero-shot-class samples against all classes (generalised zero-shot).

    Runs when the module's candidates include the seen classes (the datamodule's ``gzsl``, default on).
    In validation (a selection run: validation classes and held-out seen-class samples of the training
    protocol) it chooses the calibration γ with the highest harmonic mean H and logs it as
    ``val/gzsl_gamma`` with ``val/gzsl_h`` at it; the selection carries that γ to the final run. In the
    test it reports ``test/gzsl_seen``, ``test/gzsl_unseen`` and ``test/gzsl_h`` at the configured γ
    (never one chosen on the test samples), with the complete calibrated-stacking curve and AUSUC —
    threshold-free figures — under ``results.json["gzsl"]``.

    Args:
        gamma: Calibrated-stacking γ of the test's headline figures (0: the plain argmax); a selection
            run's ``val/gzsl_gamma``.
        calibration: Extra γ values whose accuracies are recorded in ``results.json`` (default: none;
            the complete curve is always kept).
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

    def _start(self) -> None:
        self._scores, self._labels = [], []

    def _collect(self, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch) -> None:
        if not self.active(pl_module):
            return
        out = _checked(outputs)
        scores, labels = out.scores, out.labels
        valid = batch.valid_rows().to(labels.device)
        # Padding rows are kept (flagged by label -1) so every process gathers equally many rows.
        self._scores.append(scores.detach().float())
        self._labels.append(torch.where(valid, labels, torch.full_like(labels, -1)))

    def _gathered(self, trainer: Trainer, pl_module: LightningModule) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(N, K)`` scores, ``(N,)`` target positions among the candidates and the ``(K,)`` seen mask of
        every process's rows, padding dropped; ``None`` when nothing was collected."""
        if not self._scores or trainer.sanity_checking:
            return None
        scores, labels = torch.cat(self._scores), torch.cat(self._labels)
        self._start()
        if trainer.world_size > 1:  # every process gathers every row (equal counts: padded shards)
            scores = pl_module.all_gather(scores).flatten(0, 1)
            labels = pl_module.all_gather(labels).flatten(0, 1)
        keep = labels >= 0
        scores, labels = scores[keep].cpu(), labels[keep].cpu()
        targets = positions(pl_module.candidates, len(pl_module.class_names), torch.device("cpu"))[labels]
        seen_mask = torch.isin(torch.tensor(pl_module.candidates), torch.tensor(pl_module.seen))
        return scores, targets, seen_mask

    def evaluate(self, scores: Tensor, targets: Tensor, seen_mask: Tensor) -> dict[str, Any]:
        """The ``results.json["gzsl"]`` record of a score matrix ``(N, K)`` with target positions ``(N,)``."""
        at = gzsl_accuracies(scores, targets, seen_mask, self.gamma, self.per_class)
        full = gzsl_curve(scores, targets, seen_mask, None, self.per_class)
        record: dict[str, Any] = {
            "gamma": self.gamma,
            **{k: _finite(v) for k, v in at.items()},
            "ausuc": _finite(ausuc(full["seen"], full["unseen"])),
            "curve": _thin(full, self.curve_points),
            "per_class": self.per_class,
            "num_samples": len(targets),
            "num_seen_samples": int(seen_mask[targets].sum()),
            "num_seen_classes": int(seen_mask.sum()),
            "num_unseen_classes": int((~seen_mask).sum()),
        }
        if self.calibration is not None:
            swept = gzsl_curve(
                scores, targets, seen_mask, torch.tensor(self.calibration, dtype=torch.float64), self.per_class
            )
            record["sweep"] = {k: [_finite(v) for v in swept[k].tolist()] for k in ("gamma", "seen", "unseen", "h")}
        return record

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start()

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch, batch_idx: int, *_: int
    ) -> None:
        self._collect(pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Choose γ on the validation data: the highest H (of equal ones, the γ closest to 0)."""
        gathered = self._gathered(trainer, pl_module)
        if gathered is None:
            return
        best = gzsl_sweep(*gathered, per_class=self.per_class)["best"]
        values = {key(VAL, GZSL_H): best["h"], key(VAL, "gzsl_gamma"): best["gamma"]}  # type: ignore[index]
        values = {k: math.nan if v is None or math.isnan(v) else float(v) for k, v in values.items()}
        pl_module.log_dict(values, sync_dist=False, rank_zero_only=False)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start()
        self.result = None

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: SkeletonBatch, batch_idx: int, *_: int
    ) -> None:
        self._collect(pl_module, outputs, batch)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        gathered = self._gathered(trainer, pl_module)
        if gathered is None:
            return
        self.result = self.evaluate(*gathered)
        names = ((GZSL_SEEN, "seen"), (GZSL_UNSEEN, "unseen"), (GZSL_H, "h"))
        values = {key(TEST, k): (math.nan if self.result[r] is None else float(self.result[r])) for k, r in names}
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
