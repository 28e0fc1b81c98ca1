"""SMIE on generated features: the MI estimate and its terms, each loss term, zero-shot ranking, GZSL scores,
purity of scoring."""

import math

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.eval.gzsl import gzsl_accuracies
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.smie import Critic, Smie, jsd_mi, observed_frames, temporal_margin
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS

K, SEEN, UNSEEN, M, FRAMES, JOINTS = 20, tuple(range(16)), (16, 17, 18, 19), 8, 6, 25


def _text(gzsl: bool = False) -> ClassText:
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(K, len(FIELDS), M, generator=g), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(K)), emb, SEEN, UNSEEN, gzsl=gzsl)


def _module(tiny_backbone, gzsl: bool = False, **kw) -> Smie:
    torch.manual_seed(0)
    kw = {"hidden": (128, 64), **kw}
    module = Smie(_text(gzsl), "ntu25", FrozenBackbone(str(tiny_backbone)), **kw)
    module.node_features = lambda x, index=None: x  # generated node features stand in for the backbone's
    return module


def _nodes(module: Smie, labels: torch.Tensor, seed: int, noise: float = 0.3) -> torch.Tensor:
    """``(B, L'·J, n)`` node features linear in each class's global text, the same in every frame and joint,
    plus noise per frame: separable by text, and a partial view is noisier than the whole sequence."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(M, module.backbone.out_channels, generator=torch.Generator().manual_seed(1))
    signal = (_text().embeddings[:, -1][labels] @ w)[:, None, None]  # (B, 1, 1, n)
    frames = signal + noise * torch.randn(len(labels), FRAMES, 1, w.shape[1], generator=g)
    return frames.expand(-1, -1, JOINTS, -1).flatten(1, 2)


@pytest.fixture
def module(tiny_backbone) -> Smie:
    return _module(tiny_backbone)


def test_the_critic_scores_pairs_and_the_jsd_estimate_is_bounded():
    critic = Critic(5, 3, (16, 8))
    v, t = torch.randn(4, 5), torch.randn(7, 3)
    assert critic(v, t).shape == (4, 7) and critic(v, t[:4], paired=True).shape == (4,)
    torch.testing.assert_close(critic(v, t[:4], paired=True), critic(v, t[:4]).diagonal())
    # the split first layer is the official MLP on [LN(v); t]
    first = torch.cat([critic.skeleton.weight, critic.text.weight], dim=1)
    concat = critic.head(F.linear(torch.cat([critic.norm(v), t[:4]], -1), first, critic.skeleton.bias)).squeeze(-1)
    torch.testing.assert_close(critic(v, t[:4], paired=True), concat)
    big = torch.full((10,), 30.0)
    assert jsd_mi(big, -big).item() == pytest.approx(0.0, abs=1e-6)  # a perfect critic: the bound 0
    zero = torch.zeros(10)
    assert jsd_mi(zero, zero).item() == pytest.approx(-2 * math.log(2))  # a blind critic
    assert temporal_margin(zero, zero, 0.1).item() == pytest.approx(0.1)
    assert temporal_margin(big, -big, 0.1).item() == 0.0  # the whole sequence already beats its part


def test_the_partial_view_observes_the_calm_frames_or_a_prefix():
    frames = torch.zeros(2, 10, 3)
    frames[:, 7:] = torch.arange(3.0)[:, None] * 10  # frames 6..9 move (6 and 7 border the jump)
    seen = observed_frames(frames, 0.3, "motion", torch.Generator().manual_seed(0))
    assert seen.sum(1).tolist() == [4, 4] and not bool(seen[:, 7:].any())  # 10 - 3 moving - 3 random
    assert observed_frames(frames, 0.3, "prefix").tolist() == [[1] * 4 + [0] * 6] * 2
    assert observed_frames(frames[:, :1], 0.3, "motion").tolist() == [[1], [1]]  # at least one frame


def test_losses_have_the_shapes_and_the_weighting(module):
    labels = torch.tensor(SEEN[:8])
    terms = module.losses(_nodes(module, labels, seed=0), module.seen_text[module.seen_targets(labels)])
    assert set(terms) == {"mi", "temporal", "loss"} and all(v.shape == () for v in terms.values())
    assert terms["mi"].item() >= -1e-6  # -Î, and Î <= 0 for the JSD estimate
    torch.testing.assert_close(terms["loss"], terms["mi"] + 0.5 * terms["temporal"])
    assert module.frames(_nodes(module, labels, seed=0)).shape == (8, FRAMES, module.backbone.out_channels)


@pytest.mark.parametrize("term", ["mi", "temporal"])
def test_each_loss_term_decreases_when_trained_alone(module, term):
    opt = torch.optim.Adam(module.critic.parameters(), lr=3e-3)
    values = []
    for step in range(60):
        labels = torch.tensor(SEEN)[torch.randperm(len(SEEN), generator=torch.Generator().manual_seed(step))]
        labels = labels.repeat(4)
        terms = module.losses(_nodes(module, labels, seed=step), module.seen_text[module.seen_targets(labels)])
        opt.zero_grad()
        terms[term].backward()
        opt.step()
        values.append(terms[term].item())
    assert sum(values[-5:]) < 0.5 * sum(values[:5]), (term, values[:5], values[-5:])


@pytest.fixture(scope="module")
def trained(tiny_backbone) -> Smie:
    """300 steps of the whole loss on the seen classes (trained once for the tests that score)."""
    module = _module(tiny_backbone)
    opt = module.configure_optimizers()  # no trainer: the plain optimiser, no schedule
    for step in range(300):
        labels = torch.tensor(SEEN)[torch.randperm(len(SEEN), generator=torch.Generator().manual_seed(step))]
        loss = module.training_step(SkeletonBatch(_nodes(module, labels.repeat(4), seed=step), labels.repeat(4)), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


def test_training_ranks_unseen_classes_first_on_separable_features(trained):
    module = trained
    labels = torch.tensor(UNSEEN).repeat(20)
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=999), labels))
    assert out.scores.shape == (len(labels), len(UNSEEN)) and out.field_scores is None
    assert bool((out.scores <= 0).all())  # log σ(T)
    top1 = (torch.tensor(UNSEEN)[out.zsl_scores.argmax(-1)] == labels).float().mean().item()
    assert top1 >= 0.9, top1


def test_gzsl_scores_every_candidate_and_calibration_moves_samples_to_the_unseen(tiny_backbone, trained):
    module = _module(tiny_backbone, gzsl=True)
    module.load_state_dict(trained.state_dict())
    module.eval()
    labels = torch.tensor([*SEEN, *UNSEEN]).repeat(5)
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=7), labels))
    assert module.candidates == (*SEEN, *UNSEEN)
    assert out.scores.shape == (len(labels), K) and out.zsl_scores.shape == (len(labels), len(UNSEEN))
    torch.testing.assert_close(out.zsl_scores, out.scores[:, module.zsl_columns])  # each candidate alone
    targets = torch.tensor([module.candidates.index(c) for c in labels.tolist()])
    seen_mask = torch.tensor([c in SEEN for c in module.candidates])
    plain = gzsl_accuracies(out.scores, targets, seen_mask, gamma=0.0)
    assert plain["seen"] >= 0.8, plain
    # γ past every score gap predicts only unseen classes: the unseen accuracy is then the ZSL top-1's
    tilted = gzsl_accuracies(out.scores, targets, seen_mask, gamma=1e3)
    zsl_hits = torch.tensor(UNSEEN)[out.zsl_scores.argmax(-1)] == labels
    assert tilted["seen"] == 0.0 and tilted["unseen"] == pytest.approx(zsl_hits[labels >= 16].float().mean().item())
    assert tilted["unseen"] >= plain["unseen"]


def test_scoring_is_pure(module):
    module.eval()
    nodes = _nodes(module, torch.tensor(list(UNSEEN)), seed=3)
    text = module.candidate_text
    state, weights = torch.get_rng_state(), {k: v.clone() for k, v in module.state_dict().items()}
    first = module.score(nodes, text)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, weights[k]) for k, v in module.state_dict().items())
    torch.testing.assert_close(module.score(nodes, text), first, rtol=0, atol=0)
    torch.testing.assert_close(module.score(nodes, text[:, None]), first)  # (K, 1, m): its one field
    torch.testing.assert_close(module.score(nodes, 3 * text), first)  # text is normalised as in training
    torch.testing.assert_close(module.score(nodes, text[[2, 0]]), first[:, [2, 0]])  # each candidate alone


def test_a_field_or_partial_view_outside_the_choices_is_refused(tiny_backbone):
    with pytest.raises(ValueError, match="model.field"):
        Smie(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), field="elbows")
    with pytest.raises(ValueError, match="model.partial"):
        Smie(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), partial="suffix")
