"""The zero-shot metrics and their callback: which rows and columns count, the results record."""

import json
import math
from types import SimpleNamespace

import torch

from purls_pl.data.batch import SkeletonBatch
from purls_pl.eval.callbacks import ZeroShotEvaluation
from purls_pl.eval.metrics import zsl_metrics
from purls_pl.eval.outputs import ZeroShotScores


def test_metric_values_on_a_hand_made_score_matrix():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],
            [0.2, 0.3, 0.5, 0.0, 0.0, 0.0],
            [0.1, 0.8, 0.1, 0.0, 0.0, 0.0],
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.9],
        ]
    )
    targets = torch.tensor([0, 1, 1, 2])
    metrics = zsl_metrics(6)
    metrics.update(scores[:2], targets[:2])
    metrics.update(scores[2:], targets[2:])
    out = {k: v.item() for k, v in metrics.compute().items()}
    assert math.isclose(out["zsl_top1"], 0.5)
    # top-5 of row 3 = classes 5, 4, 3, 2, 1 -> class 2 is in.
    assert math.isclose(out["zsl_top5"], 1.0)
    # per class: class 0 1/1, class 1 1/2, class 2 0/1; classes never targeted are ignored.
    assert math.isclose(out["zsl_mean_class"], 0.5, rel_tol=1e-6)


class _Module:
    """Stands in for PurlsModule: classes a..e, seen (0, 2, 4), unseen (1, 3), candidates seen first."""

    device = torch.device("cpu")
    class_names = ("a", "b", "c", "d", "e")
    seen, unseen, candidates = (0, 2, 4), (1, 3), (0, 2, 4, 1, 3)
    fields = ()

    def __init__(self) -> None:
        self.logged: dict[str, float] = {}

    def log_dict(self, values, **_):
        self.logged.update({k: float(v) for k, v in values.items()})


def test_callback_scores_only_unseen_rows_against_unseen_columns(tmp_path):
    """Seen-class test rows (there for GZSL) and seen columns never enter the zero-shot metrics."""
    module = _Module()
    trainer = SimpleNamespace(
        log_dir=str(tmp_path),
        default_root_dir=str(tmp_path),
        is_global_zero=True,
        world_size=1,
        fast_dev_run=True,
        current_epoch=3,
        global_step=12,
        loggers=[],
    )
    callback = ZeroShotEvaluation(figures=False)
    callback.setup(trainer, module, "test")
    # columns: a, c, e (seen) | b, d (unseen)
    scores = torch.tensor(
        [
            [9.0, 0.0, 0.0, 0.1, 0.2],  # label b: among the unseen columns d wins -> wrong
            [9.0, 0.0, 0.0, 0.5, 0.1],  # label b: right (the seen column a is ignored)
            [0.0, 0.0, 0.0, 0.3, 0.4],  # label d: right
            [0.0, 0.0, 0.0, 0.9, 0.8],  # label a (seen): not a zero-shot row
            [0.0, 0.0, 0.0, 0.0, 0.9],  # label d, a DDP padding row: not counted
        ]
    )
    labels = torch.tensor([1, 1, 3, 0, 3])
    batch = SkeletonBatch(x=torch.zeros(5), y=labels, valid=torch.tensor([True, True, True, True, False]))
    callback.on_test_batch_end(trainer, module, ZeroShotScores(scores, scores[:, 3:], labels), batch, 0)
    callback.on_test_epoch_end(trainer, module)
    assert math.isclose(module.logged["test/zsl_top1"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(module.logged["test/zsl_mean_class"], 0.75, rel_tol=1e-6)  # b: 1/2, d: 1/1
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["unseen_classes"] == ["b", "d"] and record["confusion"] == [[1, 1], [0, 1]]
    assert record["per_class"] == {"b": 0.5, "d": 1.0} and record["epoch"] == 3
    assert record["num_test_samples"] == 3  # the seen-class row and the padding row are not zero-shot samples
    assert record["samples"] == {"label": [1, 1, 3], "prediction": [3, 1, 3]}
