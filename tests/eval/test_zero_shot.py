import math

import pytest
import torch
import torch.nn.functional as F

from purls_pl.eval.gzsl import ausuc, calibrated_stacking, gzsl_accuracies, gzsl_curve, gzsl_sweep, harmonic_mean
from purls_pl.eval.zero_shot import (
    mean_class_accuracy,
    mix_scores,
    predict_classes,
    topk_accuracy,
    with_local_fields,
    zero_shot_scores,
)


def test_scores_are_cosine_similarities_and_argmax_predicts():
    text = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]]), dim=-1)
    skel = torch.tensor([[2.0, 0.1], [-1.0, 1.2]])
    scores = zero_shot_scores(skel, text)
    assert scores.shape == (2, 3)
    assert math.isclose(scores[0, 0].item(), 2.0 / math.hypot(2.0, 0.1), rel_tol=1e-6)
    assert predict_classes(scores).tolist() == [0, 2]
    assert predict_classes(scores, torch.tensor([7, 11, 42])).tolist() == [7, 42]


def test_candidate_conditioned_embeddings_score_their_own_candidate():
    text = F.normalize(torch.randn(4, 5), dim=-1)
    skel = torch.randn(3, 4, 5)
    scores = zero_shot_scores(skel, text)
    expected = torch.einsum("bkm,km->bk", F.normalize(skel, dim=-1), text)
    torch.testing.assert_close(scores, expected)
    with pytest.raises(ValueError):
        zero_shot_scores(torch.randn(3, 2, 5), text)


def test_eq5_argmin_loss_equals_argmax_similarity_when_v_is_shared():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 8), dim=-1)
    skel = F.normalize(torch.randn(10, 8), dim=-1)
    scores = zero_shot_scores(skel, text)
    loss = -torch.log_softmax(scores / 0.07, dim=-1)  # Eq. 5 for every candidate y
    assert torch.equal(loss.argmin(-1), scores.argmax(-1))
    eq5 = zero_shot_scores(skel, text, "eq5", 1 / 0.07)
    torch.testing.assert_close(eq5, -loss)  # the score is minus the loss
    assert torch.equal(eq5.argmax(-1), scores.argmax(-1))


def test_eq5_with_one_representation_per_candidate_has_one_denominator_each():
    """V^y depends on the candidate (adaptive partitioning): score(y) = V^y·F_y/τ - log Σ_o exp(V^y·F_o/τ)."""
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # V^0 is class 0's text exactly, but close to class 1's too; V^1 is less aligned with class 1, yet alone.
    skel = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    scale = 10.0
    cosine = zero_shot_scores(skel, text)
    eq5 = zero_shot_scores(skel, text, "eq5", scale)
    v = F.normalize(skel[0], dim=-1)
    expected = torch.stack([scale * v[y] @ text[y] - torch.logsumexp(scale * (v[y] @ text.T), dim=0) for y in range(2)])
    torch.testing.assert_close(eq5[0], expected)
    assert cosine[0].argmax() == 0 and eq5[0].argmax() == 1, "the two scorings disagree on this sample"


def test_accuracies():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    targets = torch.tensor([0, 1, 1, 2])
    assert topk_accuracy(scores, targets, 1) == 0.5
    assert topk_accuracy(scores, targets, 2) == 0.75
    # class 0: 1/1, class 1: 1/2, class 2: 0/1
    assert math.isclose(mean_class_accuracy(scores, targets), (1 + 0.5 + 0) / 3)


# ---------------------------------------------------------------- generalised zero-shot


def _gzsl_example():
    """4 classes (0, 1 seen; 2, 3 unseen), 6 samples, hand-checkable scores."""
    seen = torch.tensor([True, True, False, False])
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.3, 0.0],  # target 0 (seen): right, margin 0.9 - 0.3 = 0.6
            [0.2, 0.5, 0.4, 0.1],  # target 1 (seen): right, margin 0.1
            [0.6, 0.1, 0.2, 0.0],  # target 1 (seen): wrong (best seen is 0)
            [0.5, 0.0, 0.3, 0.1],  # target 2 (unseen): best unseen 2 right, margin 0.2
            [0.1, 0.0, 0.0, 0.4],  # target 3 (unseen): right already, margin -0.3
            [0.7, 0.2, 0.1, 0.3],  # target 3 (unseen): best unseen 3, margin 0.4
        ]
    )
    targets = torch.tensor([0, 1, 1, 2, 3, 3])
    return scores, targets, seen


def test_gzsl_accuracies_on_a_hand_made_matrix():
    scores, targets, seen = _gzsl_example()
    # γ = 0: predictions 0, 1, 0, 0, 3, 0.
    per_sample = gzsl_accuracies(scores, targets, seen, 0.0, per_class=False)
    assert math.isclose(per_sample["seen"], 2 / 3) and math.isclose(per_sample["unseen"], 1 / 3)
    assert math.isclose(per_sample["h"], 2 * (2 / 3) * (1 / 3) / (2 / 3 + 1 / 3))
    # per class: seen = mean(class 0: 1/1, class 1: 1/2); unseen = mean(class 2: 0/1, class 3: 1/2).
    per_class = gzsl_accuracies(scores, targets, seen, 0.0, per_class=True)
    assert math.isclose(per_class["seen"], 0.75) and math.isclose(per_class["unseen"], 0.25)
    assert math.isclose(per_class["h"], 2 * 0.75 * 0.25 / 1.0)
    # γ = 0.5 (> margins 0.1, 0.2, 0.4; < 0.6): predictions 0, 2, 2, 2, 3, 3.
    calibrated = gzsl_accuracies(scores, targets, seen, 0.5, per_class=False)
    assert math.isclose(calibrated["seen"], 1 / 3) and math.isclose(calibrated["unseen"], 1.0)
    assert torch.equal(calibrated_stacking(scores, seen, 0.5)[:, 2:], scores[:, 2:])


def test_harmonic_mean_and_empty_groups():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert math.isclose(harmonic_mean(0.5, 1.0), 2 / 3)
    assert math.isnan(harmonic_mean(math.nan, 0.5))
    scores, targets, seen = _gzsl_example()
    only_seen = gzsl_accuracies(scores[:3], targets[:3], seen)
    assert math.isnan(only_seen["unseen"]) and math.isnan(only_seen["h"])


def test_raising_gamma_trades_seen_for_unseen_monotonically():
    torch.manual_seed(0)
    seen = torch.tensor([True] * 5 + [False] * 3)
    targets = torch.randint(0, 8, (300,))
    scores = torch.randn(300, 8) * 0.3 + 0.5 * F.one_hot(targets, 8) + 0.4 * seen  # seen classes favoured
    gammas = torch.linspace(-1.5, 2.5, 41)
    accs = [gzsl_accuracies(scores, targets, seen, float(g)) for g in gammas]
    s = torch.tensor([a["seen"] for a in accs])
    u = torch.tensor([a["unseen"] for a in accs])
    assert bool((s[1:] <= s[:-1] + 1e-12).all()) and bool((u[1:] >= u[:-1] - 1e-12).all())
    assert s[0] > 0.5 and u[0] == 0.0 and s[-1] == 0.0 and u[-1] > 0.5  # from all-seen to all-unseen
    assert accs[20]["unseen"] > gzsl_accuracies(scores, targets, seen, 0.0)["unseen"] - 1e-12  # γ=0.5 >= γ=0


def test_exact_curve_agrees_with_the_argmax_at_any_gamma():
    torch.manual_seed(1)
    seen = torch.tensor([True, False, True, False, True, True])
    targets = torch.randint(0, 6, (120,))
    scores = torch.randn(120, 6)
    probe = torch.tensor([-2.0, -0.7, -0.1, 0.0, 0.33, 1.2, 3.0])
    for per_class in (True, False):
        curve = gzsl_curve(scores, targets, seen, probe, per_class)
        for g, cs, cu in zip(probe.tolist(), curve["seen"].tolist(), curve["unseen"].tolist()):
            direct = gzsl_accuracies(scores, targets, seen, g, per_class)
            assert math.isclose(cs, direct["seen"], abs_tol=1e-12) and math.isclose(cu, direct["unseen"], abs_tol=1e-12)
    full = gzsl_curve(scores, targets, seen)
    assert full["unseen"][0] == 0.0 and full["seen"][-1] == 0.0
    assert bool((full["gamma"][1:] > full["gamma"][:-1]).all())


def test_sweep_reports_best_gamma_and_ausuc():
    scores, targets, seen = _gzsl_example()
    sweep = gzsl_sweep(scores, targets, seen, per_class=False)
    # γ <= 0.1: seen 2/3, unseen 1/3 (H 4/9); γ in (0.1, 0.2]: 1/3, 1/3; γ in (0.2, 0.4]: 1/3, 2/3;
    # γ in (0.4, 0.6]: seen 1/3 (sample 0 only), unseen 1 -> H = 0.5, the best.
    assert math.isclose(sweep["best"]["h"], max(h for h in sweep["h"]))
    assert math.isclose(sweep["best"]["h"], 0.5)
    assert 0.0 <= sweep["ausuc"] <= 1.0
    grid = gzsl_sweep(scores, targets, seen, [0.0, 0.5], per_class=False)
    assert grid["gamma"] == [0.0, 0.5] and math.isclose(grid["best"]["gamma"], 0.5)
    # Separable scores: some γ gets every sample right, so H = 1 and AUSUC = 1.
    perfect = torch.tensor([[0.9, 0.0, 0.5, 0.0], [0.0, 0.9, 0.0, 0.5], [0.6, 0.0, 0.4, 0.0], [0.0, 0.6, 0.0, 0.4]])
    best = gzsl_sweep(perfect, torch.tensor([0, 1, 2, 3]), seen)
    assert math.isclose(best["best"]["h"], 1.0) and math.isclose(best["ausuc"], 1.0)
    assert math.isclose(ausuc(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 1.0])), 1.0)


@pytest.mark.parametrize("mix", [with_local_fields, mix_scores])
def test_score_mixes_weigh_cosines_or_log_probabilities(mix):
    scores = torch.tensor([[0.2, 0.5, -0.1]])
    other = torch.tensor([[0.9, 0.0, 0.3]])
    parts = other.unsqueeze(-1) if mix is with_local_fields else other  # one local field: its mean is itself
    assert torch.equal(mix(scores, parts, 0.0), scores)
    torch.testing.assert_close(mix(scores, parts, 0.25), 0.75 * scores + 0.25 * other)
    # eq5: the added term is a log-softmax over the candidates at the given temperature
    logp = (other * 10.0).log_softmax(-1)
    torch.testing.assert_close(mix(scores, parts, 1.0, "eq5", 10.0), logp)
    assert torch.equal(mix(scores, parts, 1.0, "eq5", 10.0).argmax(-1), torch.tensor([0]))
