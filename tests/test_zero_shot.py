import math

import pytest
import torch
import torch.nn.functional as F

from purls_pl.zero_shot import mean_class_accuracy, predict_classes, topk_accuracy, zero_shot_scores


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


def test_eq5_argmin_loss_equals_argmax_similarity():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 8), dim=-1)
    skel = F.normalize(torch.randn(10, 8), dim=-1)
    scores = zero_shot_scores(skel, text)
    loss = -torch.log_softmax(scores / 0.07, dim=-1)  # Eq. 5 for every candidate y
    assert torch.equal(loss.argmin(-1), scores.argmax(-1))


def test_accuracies():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    targets = torch.tensor([0, 1, 1, 2])
    assert topk_accuracy(scores, targets, 1) == 0.5
    assert topk_accuracy(scores, targets, 2) == 0.75
    # class 0: 1/1, class 1: 1/2, class 2: 0/1
    assert math.isclose(mean_class_accuracy(scores, targets), (1 + 0.5 + 0) / 3)
