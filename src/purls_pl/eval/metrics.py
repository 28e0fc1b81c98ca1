"""Metric keys, result file names and the torchmetrics the evaluation callbacks accumulate.

The one place metric names are spelled. Keys are ``<stage>/<name>``:

* ``train/loss``, ``train/loss_<field>``, ``train/alpha_<field>``, ``train/temperature_<field>``;
* ``val/zsl_top1``, ``val/zsl_top5``, ``val/zsl_mean_class``: zero-shot accuracy on the validation
  classes (model selection; checkpoints and sweeps monitor :data:`VAL_TOP1`);
* ``test/zsl_top1``, ``test/zsl_top5``, ``test/zsl_mean_class``: zero-shot accuracy on the unseen
  classes, measured once after fitting;
* ``val/field_top1_<field>``, ``test/field_top1_<field>``: zero-shot top-1 when candidates are ranked
  by one description field alone (``cos(V_f^y, F_{y,f})``; models with local fields), a diagnostic of
  what each field carries;
* ``val/gzsl_h``, ``val/gzsl_gamma``: the best harmonic mean of a selection run's generalised zero-shot
  validation and the calibration γ that reaches it (carried to the final run);
* ``test/gzsl_seen``, ``test/gzsl_unseen``, ``test/gzsl_h``: generalised zero-shot accuracy on seen-
  and unseen-class samples scored against all classes, and their harmonic mean, at that γ.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

TRAIN, VAL, TEST = "train", "val", "test"
ZSL_TOP1, ZSL_TOP5, ZSL_MEAN_CLASS = "zsl_top1", "zsl_top5", "zsl_mean_class"
GZSL_SEEN, GZSL_UNSEEN, GZSL_H = "gzsl_seen", "gzsl_unseen", "gzsl_h"
FIELD_TOP1 = "field_top1"
#: The zero-shot metrics, in table order.
ZSL_METRICS: tuple[str, ...] = (ZSL_TOP1, ZSL_TOP5, ZSL_MEAN_CLASS)
#: Top-5 is reported only for more candidates than 5 (with 5 or fewer it is always 100 %).
TOP5_MIN_CANDIDATES = 6


def reports_top5(num_candidates: int) -> bool:
    """Whether top-5 says anything with ``num_candidates`` candidates (see :data:`TOP5_MIN_CANDIDATES`)."""
    return num_candidates >= TOP5_MIN_CANDIDATES


#: What a run writes beside its checkpoints after testing.
RESULTS_FILE = "results.json"
#: ``results.json``'s completion mark: ``false`` from the first write, ``true`` written last, once every output
#: of the test (metrics, GZSL, figures, provenance) is on disk. A file without it predates the mark.
COMPLETE = "complete"
#: What a run with validation writes when it ends: the ``val/…`` values after every epoch.
VAL_CURVE_FILE = "val_curve.json"


def key(stage: str, name: str) -> str:
    """``"<stage>/<name>"``, e.g. ``key(TEST, ZSL_TOP1) == "test/zsl_top1"``."""
    return f"{stage}/{name}"


VAL_TOP1 = key(VAL, ZSL_TOP1)
TEST_TOP1, TEST_TOP5, TEST_MEAN_CLASS = (key(TEST, m) for m in ZSL_METRICS)


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


class FieldAccuracy(Metric):
    """Top-1 accuracy of each description field's ranking of the candidates.

    Args:
        num_fields: ``D``, the fields scored.
    """

    full_state_update = False

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        self.add_state("correct", default=torch.zeros(num_fields), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, field_scores: Tensor, targets: Tensor) -> None:
        """``field_scores`` ``(N, K, D)``; ``targets`` ``(N,)`` candidate positions."""
        self.correct += (field_scores.argmax(dim=1) == targets[:, None]).float().sum(dim=0)
        self.total += len(targets)

    def compute(self) -> Tensor:
        """``(D,)`` accuracies."""
        return self.correct / self.total.clamp(min=1)


def zsl_metrics(num_classes: int) -> MetricCollection:
    """The zero-shot metric set for ``num_classes`` candidates (states synchronise across processes)."""
    return MetricCollection(
        {
            ZSL_TOP1: MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            ZSL_TOP5: MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            ZSL_MEAN_CLASS: MeanClassAccuracy(num_classes),
        }
    )
