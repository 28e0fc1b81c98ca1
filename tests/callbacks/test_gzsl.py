"""The GZSL callback: candidate text of all classes, target mapping, the results record."""

import contextlib
import json
import math
from types import SimpleNamespace

import torch

from purls_pl.callbacks.gzsl import GeneralizedZeroShotEvaluation
from purls_pl.callbacks.zero_shot import update_results


class _Module(torch.nn.Module):
    """Stands in for PurlsModule: 5 classes, seen (0, 2, 4), unseen (1, 3), scores = fixed table."""

    def __init__(self) -> None:
        super().__init__()
        self.class_names = ("a", "b", "c", "d", "e")
        self.seen, self.unseen = (0, 2, 4), (1, 3)
        self.seen_text = torch.randn(3, 2, 4)  # (K_seen, D=2 fields, m)
        self.partitioner = SimpleNamespace(global_position=1)
        self.unseen_global = torch.randn(2, 4)

    def node_features(self, batch):
        return batch["x"]

    def score(self, nodes, candidates):
        assert candidates.shape == (5, 4)  # all classes
        return nodes


def _trainer(batches):
    return SimpleNamespace(
        datamodule=SimpleNamespace(gzsl_dataloader=lambda: batches),
        strategy=SimpleNamespace(batch_to_device=lambda b: b),
        precision_plugin=SimpleNamespace(test_step_context=contextlib.nullcontext),
        fast_dev_run=False,
        limit_test_batches=1.0,
    )


def test_candidates_are_every_class_seen_first():
    module = _Module()
    text, ids, mask = GeneralizedZeroShotEvaluation.candidates(module)
    assert ids.tolist() == [0, 2, 4, 1, 3] and mask.tolist() == [True, True, True, False, False]
    torch.testing.assert_close(text[:3], module.seen_text[:, 1])
    torch.testing.assert_close(text[3:], module.unseen_global)


def test_collect_maps_dataset_labels_to_candidate_positions_and_evaluates():
    module = _Module()
    # Candidate order: [a, c, e | b, d]. Sample labels: a, e, b, d -> positions 0, 2, 3, 4.
    scores = torch.tensor(
        [
            [0.9, 0.0, 0.0, 0.1, 0.0],  # a: right
            [0.0, 0.8, 0.1, 0.0, 0.3],  # e: wrong (c), margin 0.5
            [0.0, 0.0, 0.2, 0.6, 0.0],  # b: right unseen, margin -0.4
            [0.5, 0.0, 0.0, 0.0, 0.4],  # d: wrong at γ=0, margin 0.1 -> right for γ > 0.1
        ]
    )
    batches = [{"x": scores[:2], "y": torch.tensor([0, 4])}, {"x": scores[2:], "y": torch.tensor([1, 3])}]
    callback = GeneralizedZeroShotEvaluation(gamma=0.2, calibration=[0.0, 0.2, 1.0], per_class=True)
    got, targets, mask = callback.collect(_trainer(batches), module)
    assert torch.equal(got, scores) and targets.tolist() == [0, 2, 3, 4]
    record = callback.evaluate(got, targets, mask)
    assert math.isclose(record["seen"], 0.5) and math.isclose(record["unseen"], 1.0)  # at γ = 0.2
    assert math.isclose(record["h"], 2 / 3)
    assert record["sweep"]["gamma"] == [0.0, 0.2, 1.0]
    assert math.isclose(record["sweep"]["seen"][0], 0.5) and math.isclose(record["sweep"]["unseen"][0], 0.5)
    assert math.isclose(record["best"]["gamma"], 0.2)
    assert record["num_seen_samples"] == 2 and record["num_unseen_classes"] == 2
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


def test_disabled_callback_does_nothing():
    callback = GeneralizedZeroShotEvaluation(enabled=False)
    callback.on_test_epoch_end(SimpleNamespace(sanity_checking=False), _Module())
    assert callback.result is None
