"""The GZSL callback: candidate text of all classes, target mapping, the results record."""

import json
import math
from types import SimpleNamespace

import torch

from purls_pl.data.batch import SkeletonBatch
from purls_pl.eval.callbacks import GeneralizedZeroShotEvaluation
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.eval.results import update_results


class _Module:
    """Stands in for PurlsModule: 5 classes, seen (0, 2, 4), unseen (1, 3), candidates seen first."""

    def __init__(self, gzsl: bool = True) -> None:
        self.class_names = ("a", "b", "c", "d", "e")
        self.seen, self.unseen = (0, 2, 4), (1, 3)
        self.candidates = (0, 2, 4, 1, 3) if gzsl else (1, 3)
        self.logged: dict[str, float] = {}

    def log_dict(self, values, **_):
        self.logged.update(values)


_TRAINER = SimpleNamespace(world_size=1, sanity_checking=False)


def test_test_rows_map_labels_to_candidate_positions_and_skip_padding():
    module = _Module()
    # Candidate order: [a, c, e | b, d]. Sample labels: a, e, b, d -> positions 0, 2, 3, 4.
    scores = torch.tensor(
        [
            [0.9, 0.0, 0.0, 0.1, 0.0],  # a: right
            [0.0, 0.8, 0.1, 0.0, 0.3],  # e: wrong (c), margin 0.5
            [0.0, 0.0, 0.2, 0.6, 0.0],  # b: right unseen, margin -0.4
            [0.5, 0.0, 0.0, 0.0, 0.4],  # d: wrong at γ=0, margin 0.1 -> right for γ > 0.1
            [0.0, 0.0, 0.0, 0.0, 9.0],  # a DDP padding row: never counted
        ]
    )
    labels = torch.tensor([0, 4, 1, 3, 3])
    callback = GeneralizedZeroShotEvaluation(gamma=0.2, calibration=[0.0, 0.2, 1.0], per_class=True, figures=False)
    callback.on_test_epoch_start(_TRAINER, module)
    for rows in (slice(0, 2), slice(2, 5)):
        valid = torch.tensor([True, True, True, True, False])[rows]
        batch = SkeletonBatch(x=torch.zeros(len(valid)), y=labels[rows], valid=valid)
        outputs = ZeroShotScores(scores[rows], scores[rows][:, 3:], labels[rows])
        callback.on_test_batch_end(_TRAINER, module, outputs, batch, 0)
    callback.on_test_epoch_end(_TRAINER, module)
    record = callback.result
    assert record["num_samples"] == 4 and record["num_seen_samples"] == 2 and record["num_unseen_classes"] == 2
    assert math.isclose(record["seen"], 0.5) and math.isclose(record["unseen"], 1.0)  # at γ = 0.2
    assert math.isclose(record["h"], 2 / 3)
    assert math.isclose(module.logged["test/gzsl_h"], 2 / 3) and math.isclose(module.logged["test/gzsl_seen"], 0.5)
    assert record["sweep"]["gamma"] == [0.0, 0.2, 1.0]
    assert math.isclose(record["sweep"]["seen"][0], 0.5) and math.isclose(record["sweep"]["unseen"][0], 0.5)
    assert len(record["curve"]["gamma"]) <= callback.curve_points
    json.dumps(record, allow_nan=False)  # results.json stays strict JSON


def test_empty_groups_give_null_not_nan(tmp_path):
    callback = GeneralizedZeroShotEvaluation()
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    record = callback.evaluate(scores, torch.tensor([0, 1]), torch.tensor([True, True, False]))
    assert record["unseen"] is None and record["h"] is None
    path = tmp_path / "results.json"
    update_results(path, {"test/zsl_top1": 0.5})
    update_results(path, {"gzsl": record})
    written = json.loads(path.read_text())
    assert written["test/zsl_top1"] == 0.5 and written["gzsl"]["seen"] == 1.0


def test_without_seen_candidates_there_is_nothing_to_do():
    module = _Module(gzsl=False)
    callback = GeneralizedZeroShotEvaluation()
    callback.on_test_epoch_start(_TRAINER, module)
    batch = SkeletonBatch(x=torch.zeros(1), y=torch.tensor([1]))
    outputs = ZeroShotScores(torch.zeros(1, 2), torch.zeros(1, 2), batch.y)
    callback.on_test_batch_end(_TRAINER, module, outputs, batch, 0)
    callback.on_test_epoch_end(_TRAINER, module)
    assert callback.result is None and not module.logged
