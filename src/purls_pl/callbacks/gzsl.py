"""Generalised zero-shot evaluation (GZSL) after ``test``, as a Lightning callback.

The paper's metric scores unseen-class samples against the unseen classes only. GZSL asks the harder
question: every test sample — of a seen class (``seen_test``) or an unseen one (``unseen_test``) —
is scored against ALL classes' global text, and accuracy is reported per group:

* ``gzsl/seen``, ``gzsl/unseen`` — accuracy on seen-class / unseen-class samples (mean per-class
  accuracy by default, the usual GZSL protocol), ``gzsl/h`` — their harmonic mean, at the
  configured calibration γ;
* calibrated stacking (Chao et al., 2016) subtracts γ from the seen classes' scores: sweeping γ
  traces the seen/unseen curve; ``gzsl/h_best`` at ``gzsl/gamma_best`` and ``gzsl/ausuc`` (area
  under that curve) summarise it.

``gzsl/h_best`` picks γ on the test samples themselves: an oracle upper bound, not a protocol
result (choose γ on held-out data for that). Everything is written to ``results.json`` under
``"gzsl"`` (the swept γ with their accuracies, a thinned complete curve), and the curve is drawn
as ``gzsl_curve.png`` and logged to the loggers.

Under DDP every process scores the whole GZSL set (``gzsl_dataloader`` is not sharded): the result is
the single-process one by construction, the same in every process (identical weights, so the values
logged with ``sync_dist=False`` agree), at the cost of repeating this one pass per process; rank 0 writes
the results. The exact γ curve needs every score at once, which sharding would have to gather anyway.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor

from purls_pl.callbacks.zero_shot import results_path, update_results
from purls_pl.zero_shot import gzsl_accuracies, gzsl_curve, gzsl_sweep

log = logging.getLogger(__name__)


def _finite(value: float) -> float | None:
    """JSON-safe: NaN (an empty group) becomes ``None``."""
    return None if math.isnan(value) else float(value)


def _thin(curve: dict[str, Tensor], points: int) -> dict[str, list[float | None]]:
    """At most ``points`` evenly spaced entries of the curve, both ends kept."""
    n = len(curve["gamma"])
    idx = torch.linspace(0, n - 1, min(n, max(2, points))).round().long().unique()
    return {k: [_finite(v) for v in curve[k][idx].tolist()] for k in ("gamma", "seen", "unseen", "h")}


class GeneralizedZeroShotEvaluation(Callback):
    """Score seen- and unseen-class test samples against all classes after ``test``.

    Args:
        enabled: Run the evaluation at the end of every ``test``.
        gamma: Calibrated-stacking γ of the headline ``gzsl/seen``, ``gzsl/unseen``, ``gzsl/h``
            (0: the plain argmax).
        calibration: The γ values of the sweep; default (``null``) every change point of the
            exact curve. The best H over them is reported as ``gzsl/h_best`` / ``gzsl/gamma_best``.
        per_class: Average accuracy over the classes of each group (the usual GZSL protocol)
            instead of over its samples.
        curve_points: Points of the complete curve kept in ``results.json``.
        figures: Save ``gzsl_curve.png`` beside the results and log it (not in ``fast_dev_run``).
    """

    def __init__(
        self,
        enabled: bool = True,
        gamma: float = 0.0,
        calibration: list[float] | None = None,
        per_class: bool = True,
        curve_points: int = 101,
        figures: bool = True,
    ) -> None:
        self.enabled = enabled
        self.gamma = gamma
        self.calibration = calibration
        self.per_class = per_class
        self.curve_points = curve_points
        self.figures = figures
        self.result: dict[str, Any] | None = None

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def candidates(pl_module: LightningModule) -> tuple[Tensor, Tensor, Tensor]:
        """``(K, m)`` global text of all classes (seen first), their ``(K,)`` class ids, ``(K,)`` seen mask."""
        seen_global = pl_module.seen_text[:, pl_module.partitioner.global_position]
        text = torch.cat([seen_global, pl_module.unseen_global])
        ids = torch.tensor([*pl_module.seen, *pl_module.unseen])
        mask = torch.arange(len(ids)) < len(pl_module.seen)
        return text, ids, mask

    @staticmethod
    def _max_batches(trainer: Trainer, total: int) -> int:
        if trainer.fast_dev_run:
            return 1 if trainer.fast_dev_run is True else int(trainer.fast_dev_run)
        limit = trainer.limit_test_batches
        if isinstance(limit, int):
            return min(limit, total)
        return max(1, int(total * float(limit))) if limit is not None else total

    @torch.no_grad()
    def collect(self, trainer: Trainer, pl_module: LightningModule) -> tuple[Tensor, Tensor, Tensor]:
        """``(N, K)`` scores of the GZSL samples, ``(N,)`` target positions among K, ``(K,)`` seen mask."""
        text, ids, mask = self.candidates(pl_module)
        position = torch.full((len(pl_module.class_names),), -1, dtype=torch.long)
        position[ids] = torch.arange(len(ids))
        loader = trainer.datamodule.gzsl_dataloader()
        limit = self._max_batches(trainer, len(loader))
        scores, targets = [], []
        was_training = pl_module.training
        pl_module.eval()
        try:
            for i, batch in enumerate(loader):
                if i >= limit:
                    break
                batch = trainer.strategy.batch_to_device(batch)
                with trainer.precision_plugin.test_step_context():
                    nodes = pl_module.node_features(batch)
                    scores.append(pl_module.score(nodes, text.to(nodes.device)).float().cpu())
                targets.append(position[batch["y"].cpu()])
        finally:
            pl_module.train(was_training)
        return torch.cat(scores), torch.cat(targets), mask

    def evaluate(self, scores: Tensor, targets: Tensor, seen_mask: Tensor) -> dict[str, Any]:
        """The ``results.json`` record of a score matrix (see the module docstring)."""
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

    # ------------------------------------------------------------------ hooks
    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.result = None
        if not self.enabled or trainer.sanity_checking:
            return
        if not hasattr(trainer.datamodule, "gzsl_dataloader"):
            log.warning("GZSL evaluation skipped: the datamodule has no gzsl_dataloader()")
            return
        scores, targets, seen_mask = self.collect(trainer, pl_module)
        self.result = self.evaluate(scores, targets, seen_mask)
        r = self.result
        values = {
            "gzsl/seen": r["seen"],
            "gzsl/unseen": r["unseen"],
            "gzsl/h": r["h"],
            "gzsl/h_best": r["best"]["h"],
            "gzsl/gamma_best": r["best"]["gamma"],
            "gzsl/ausuc": r["ausuc"],
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
        if not self.figures or trainer.fast_dev_run:
            return
        try:
            from purls_pl import plots
        except ImportError as err:  # pragma: no cover - matplotlib is in the `plots` extra
            log.info("no GZSL figure: %s", err)
            return
        fig = plots.gzsl_curve_figure(self.result)
        plots.log_figure(fig, "gzsl/curve", trainer.loggers, Path(path).parent / "gzsl_curve.png", trainer.global_step)
