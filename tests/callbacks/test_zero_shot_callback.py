import math

import torch

from purls_pl.callbacks.zero_shot import zsl_metrics


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
