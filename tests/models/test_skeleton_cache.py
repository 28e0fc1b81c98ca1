"""Skeleton-Cache: descriptors, fusion weights, the stream cache's retrieval and replacement, and its use by a
method's evaluation steps."""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import BODY_PARTS, get_layout
from purls_pl.models.cada_vae import CadaVae
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.skeleton_cache import (
    CacheSettings,
    SkeletonCache,
    StreamCache,
    class_weights,
    standardised,
    structured_descriptors,
)
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS, GLOBAL_INDEX

LAYOUT = get_layout("ntu25")


def test_descriptors_average_each_part_each_third_and_everything():
    frames, j = 6, LAYOUT.num_joints
    grid = torch.arange(frames * j, dtype=torch.float32).reshape(1, frames, j, 1).repeat(1, 1, 1, 2)
    d = structured_descriptors(grid.reshape(1, frames * j, 2), LAYOUT)
    assert d.shape == (1, len(FIELDS), 2)
    for i, part in enumerate(BODY_PARTS):
        assert d[0, i, 0] == pytest.approx(grid[0, :, list(LAYOUT.parts[part]), 0].mean().item())
    assert d[0, 4, 0] == pytest.approx(grid[0, 0:2, :, 0].mean().item())  # start: the first third
    assert d[0, 6, 0] == pytest.approx(grid[0, 4:6, :, 0].mean().item())  # end: the last third
    assert d[0, GLOBAL_INDEX, 0] == pytest.approx(grid.mean().item())
    one_frame = structured_descriptors(grid[:, :1].reshape(1, j, 2), LAYOUT)  # L' = 1: every phase is it
    assert torch.equal(one_frame[0, 4], one_frame[0, 6]) and torch.isfinite(one_frame).all()


def test_fusion_weights_give_gamma_to_global_and_the_text_prior_favours_fields_like_the_description():
    w = class_weights(0.5, "uniform")
    assert w.shape == (1, len(FIELDS)) and w.sum().item() == pytest.approx(1.0)
    assert w[0, GLOBAL_INDEX].item() == pytest.approx(0.5 / (0.5 + 2 * 0.5))
    text = F.normalize(torch.randn(3, len(FIELDS), 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    text[1, 2] = text[1, GLOBAL_INDEX]  # class 1's torso description says what its whole description says
    wt = class_weights(0.2, "text", text)
    torch.testing.assert_close(wt.sum(-1), torch.ones(3))
    assert int(wt[1, :4].argmax()) == 2 and wt[1, 2] > 0.9 * wt[1, :4].sum()
    assert class_weights(1.0, "text", text)[:, GLOBAL_INDEX].tolist() == pytest.approx([1.0] * 3)
    with pytest.raises(ValueError, match="needs the classes' field descriptions"):
        class_weights(0.5, "text")
    with pytest.raises(ValueError, match="gamma in"):
        CacheSettings(gamma=1.5)


def _stream(n: int, classes: int, seed: int, base_accuracy: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descriptors clustered by class ``(n, D, 8)``, labels ``(n,)`` and noisy base scores ``(n, C)`` that
    are right about ``base_accuracy`` of the time."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, len(FIELDS), 8, generator=g)
    labels = torch.arange(n) % classes
    descriptors = centres[labels] + 0.3 * torch.randn(n, len(FIELDS), 8, generator=g)
    scores = torch.randn(n, classes, generator=g) * 0.3
    right = torch.rand(n, generator=g) < base_accuracy
    wrong = (labels + 1 + torch.randint(0, classes - 1, (n,), generator=g)) % classes
    scores[torch.arange(n), torch.where(right, labels, wrong)] += 1.0
    return descriptors, labels, scores


def test_the_cache_corrects_a_noisy_method_on_clustered_features_and_respects_its_capacity():
    descriptors, labels, scores = _stream(300, 5, seed=1, base_accuracy=0.6)
    settings = CacheSettings(enabled=True, capacity=8, alpha=2.0, beta=5.0)
    cache = StreamCache(class_weights(0.5, "uniform").expand(5, -1), settings)
    adapted = cache.adapt(scores, descriptors)
    base_top1 = (scores.argmax(-1) == labels).float().mean().item()
    cache_top1 = (adapted.argmax(-1) == labels).float().mean().item()
    assert base_top1 == pytest.approx(0.6, abs=0.08) and cache_top1 > base_top1 + 0.15, (base_top1, cache_top1)
    assert max(cache.occupancy()) <= 8 and sum(cache.occupancy()) >= 30
    torch.testing.assert_close(adapted[0], standardised(scores)[0])  # the first sample meets an empty cache
    fresh = StreamCache(class_weights(0.5, "uniform").expand(5, -1), CacheSettings(enabled=True, alpha=0.0))
    torch.testing.assert_close(fresh.adapt(scores, descriptors), standardised(scores))  # α = 0: the method's own


def test_scores_are_standardised_so_the_cache_acts_alike_on_any_scale():
    """A method scoring with cosines in a narrow band (PURLS' are ~0.5 wide) and one with large logits get the
    same adapted predictions: the cache adds to per-sample standardised scores."""
    descriptors, labels, scores = _stream(200, 5, seed=2, base_accuracy=0.6)
    z = standardised(scores)
    torch.testing.assert_close(z.mean(-1), torch.zeros(200), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(-1), torch.ones(200))
    outs = []
    for scale in (0.1, 30.0):
        cache = StreamCache(class_weights(0.5, "uniform").expand(5, -1), CacheSettings(alpha=2.0))
        outs.append(cache.adapt(scale * scores, descriptors).argmax(-1))
    assert torch.equal(outs[0], outs[1]) and (outs[0] == labels).float().mean() > 0.75


def test_a_full_block_keeps_its_most_confident_entries():
    cache = StreamCache(class_weights(0.5, "uniform").expand(2, -1), CacheSettings(capacity=2))
    for entropy in (0.9, 0.5, 0.7, 0.95):
        cache.insert(torch.full((len(FIELDS), 4), entropy), 0, entropy)
    assert cache.occupancy() == [2, 0] and sorted(cache.entropy[0].tolist()) == pytest.approx([0.5, 0.7])


def test_a_method_with_a_cache_adapts_both_candidate_sets_and_starts_each_epoch_empty(tiny_backbone):
    k, seen, unseen = 8, tuple(range(5)), (5, 6, 7)
    emb = F.normalize(torch.randn(k, len(FIELDS), 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    text = ClassText(tuple(f"c{i}" for i in range(k)), emb, seen, unseen, gzsl=True)
    torch.manual_seed(0)
    module = CadaVae(text, "ntu25", FrozenBackbone(str(tiny_backbone)), latent_dim=4, samples_per_class=5)
    module.node_features = lambda x, index=None: x
    module.eval()
    nodes = torch.randn(6, 2 * LAYOUT.num_joints, module.backbone.out_channels)
    batch = SkeletonBatch(nodes, torch.tensor([5, 6, 7, 5, 6, 7]))
    with torch.no_grad():
        plain = module.adapted(batch)
        module.test_time_cache = SkeletonCache(CacheSettings(enabled=True, alpha=3.0), LAYOUT, emb)
        module.on_test_epoch_start()
        first = module.adapted(batch)
        second = module.adapted(batch)  # the same samples again: now the cache holds them
        module.on_test_epoch_start()
        again = module.adapted(batch)
    assert first.scores.shape == (6, k) and first.zsl_scores.shape == (6, len(unseen))
    assert set(module.test_time_cache.streams) == {module.candidates, unseen}
    torch.testing.assert_close(first.scores[0], standardised(plain.scores)[0])  # an empty cache for the first
    assert not torch.allclose(second.scores, plain.scores) and not torch.allclose(second.zsl_scores, plain.zsl_scores)
    torch.testing.assert_close(again.scores, first.scores)  # reset: the stream starts over


def test_the_zero_shot_stream_holds_only_the_zero_shot_classes_samples(tiny_backbone):
    """Under GZSL the zero-shot cache is fed the samples the zero-shot metric scores; a seen-class sample keeps
    its zero-shot scores and enters only the candidates' cache."""
    k, seen, unseen = 8, tuple(range(5)), (5, 6, 7)
    emb = F.normalize(torch.randn(k, len(FIELDS), 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    torch.manual_seed(0)
    module = CadaVae(
        ClassText(tuple(f"c{i}" for i in range(k)), emb, seen, unseen, gzsl=True),
        "ntu25",
        FrozenBackbone(str(tiny_backbone)),
        latent_dim=4,
        samples_per_class=5,
    )
    module.node_features = lambda x, index=None: x
    module.eval()
    nodes = torch.randn(4, 2 * LAYOUT.num_joints, module.backbone.out_channels)
    batch = SkeletonBatch(nodes, torch.tensor([0, 5, 1, 6]))
    module.test_time_cache = SkeletonCache(CacheSettings(enabled=True), LAYOUT)
    with torch.no_grad():
        plain = module.evaluate(batch)
        out = module.adapted(batch)
    torch.testing.assert_close(out.zsl_scores[[0, 2]], plain.zsl_scores[[0, 2]])  # seen rows: untouched
    assert sum(module.test_time_cache.stream(unseen).occupancy()) >= 2  # rows 1 and 3 (and their hedges)
    assert sum(module.test_time_cache.stream(module.candidates).occupancy()) >= 4
