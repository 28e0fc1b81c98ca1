"""Text diagnostics on hand-made embeddings: margins, close pairs, duplicates, label information."""

import math

import pytest
import torch

from purls_pl.text.analysis import (
    analyse_text,
    confusable_pairs,
    cosine_matrix,
    duplicate_classes,
    group_stats,
    label_agreement,
    label_misses,
)

NAMES = ["a", "b", "c", "d"]


def _unit(*rows: list[float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float64), dim=-1)


def test_two_identical_classes_have_margin_zero():
    x = _unit([1, 0, 0], [1, 0, 0], [0, 1, 0])
    stats = group_stats(cosine_matrix(x), [0, 1, 2], close=0.9)
    assert stats["min_margin"] == pytest.approx(0.0, abs=1e-12)
    # margins: a and b 0 (each other), c 1 (orthogonal to both) -> mean 1/3
    assert stats["mean_margin"] == pytest.approx(1 / 3)
    assert stats["max_similarity"] == pytest.approx(1.0) and stats["mean_similarity"] == pytest.approx(1 / 3)
    assert stats["pairs"] == 3 and stats["close_pair_fraction"] == pytest.approx(1 / 3)
    # relative margins: a, b 0; c: 1 / (1 - 0) = 1 -> mean 1/3
    assert stats["relative_margin"] == pytest.approx(1 / 3)


def test_relative_margin_ignores_a_tower_that_squeezes_similarities():
    x = _unit([1, 0, 0], [0.8, 0.6, 0], [0, 0, 1])
    sim = cosine_matrix(x)
    squeezed = 1 - 0.2 * (1 - sim)  # every distance shrinks five-fold
    a, b = group_stats(sim, [0, 1, 2]), group_stats(squeezed, [0, 1, 2])
    assert b["mean_margin"] == pytest.approx(a["mean_margin"] * 0.2)
    assert b["relative_margin"] == pytest.approx(a["relative_margin"])


def test_unseen_vs_seen_compares_only_across_the_groups():
    sim = cosine_matrix(_unit([1, 0], [1, 0], [0, 1], [0.6, 0.8]))
    cross = group_stats(sim, [0, 2], [1, 3])
    assert cross["pairs"] == 4
    # a's nearest seen class is b (identical): margin 0; c's nearest seen is d (0.8): margin 0.2
    assert cross["min_margin"] == pytest.approx(0.0, abs=1e-12) and cross["mean_margin"] == pytest.approx(0.1)
    assert math.isnan(group_stats(sim, [0])["mean_margin"]), "one class has no pair"


def test_confusable_pairs_are_sorted_and_unordered():
    sim = cosine_matrix(_unit([1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6]))
    pairs = confusable_pairs(sim, NAMES, [0, 1, 2, 3], top=2)
    assert [(p["a"], p["b"]) for p in pairs] == [("b", "d"), ("a", "d")]
    assert pairs[0]["similarity"] == pytest.approx(0.96) and pairs[1]["similarity"] == pytest.approx(0.8)


def test_duplicates_by_text_and_by_embedding():
    sim = cosine_matrix(_unit([1, 0, 0], [0.99, 0.141, 0], [0, 1, 0], [0, 0, 1]))
    texts = [("stand still",), ("Stand  still.",), ("walk",), ("stand still",)]
    dup = duplicate_classes(texts, sim, NAMES, duplicate=0.95)
    assert dup["identical"] == 3, "a, b and d say the same after clean-up"
    assert dup["near"] == 3 and dup["groups"] == [["a", "b", "d"]]
    none = duplicate_classes([("x",), ("y",), ("z",), ("w",)], cosine_matrix(torch.eye(4)), NAMES)
    assert none == {"identical": 0, "near": 0, "groups": []}


def test_label_information():
    labels = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    field = _unit([1, 0, 0], [0, 0.6, 0.8], [0, 0, 1])  # b's field sits nearer c's label than b's
    agree = label_agreement(field, labels)
    assert agree["own"] == pytest.approx((1 + 0.6 + 1) / 3)
    assert agree["other"] == pytest.approx((0 + (0 + 0.8) / 2 + 0) / 3)
    assert agree["gap"] == pytest.approx(agree["own"] - agree["other"])
    assert agree["top1"] == pytest.approx(2 / 3)
    assert label_agreement(field, labels, candidates=[0, 1])["top1"] == 1.0, "without c, b is nearest its own"
    (miss,) = label_misses(field, labels, ["a", "b", "c"])
    assert miss == {"class": "b", "nearest_label": "c", "similarity": pytest.approx(0.8), "own_similarity": 0.6}


def test_analyse_text_report_shape():
    emb = torch.stack([_unit([1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6]), _unit([1, 0], [1, 0], [0, 1], [0, 1])], dim=1)
    texts = [{"x": (f"x{i}",), "y": ("same" if i < 2 else "other",)} for i in range(4)]
    labels = _unit([1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6])
    report = analyse_text(emb.float(), NAMES, ["x", "y"], texts, labels, unseen=[1, 3], top=1)
    y = report["per_field"]["y"]
    assert report["unseen"] == ["b", "d"] and report["fields"] == ["x", "y"]
    assert y["duplicates"]["identical"] == 4 and y["all"]["min_margin"] == pytest.approx(0.0, abs=1e-6)
    assert y["unseen"]["pairs"] == 1 and y["unseen_vs_seen"]["pairs"] == 4
    assert report["per_field"]["x"]["label"]["top1"] == 1.0
    assert report["per_field"]["x"]["confusable_unseen"][0]["similarity"] == pytest.approx(0.96, abs=1e-6)
    assert y["nearest"]["a"] == {"class": "b", "similarity": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="do not match"):
        analyse_text(emb, NAMES[:3], ["x", "y"])
