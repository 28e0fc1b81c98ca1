"""CADA-VAE on generated features: each loss term, zero-shot ranking, GZSL scores, purity of scoring."""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.models.cada_vae import CadaVae, ramp, wasserstein
from purls_pl.models.features import FrozenBackbone
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS

K, SEEN, UNSEEN, M, S = 20, tuple(range(16)), (16, 17, 18, 19), 8, 6


def _text(gzsl: bool = False) -> ClassText:
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(K, len(FIELDS), M, generator=g), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(K)), emb, SEEN, UNSEEN, gzsl=gzsl)


def _module(tiny_backbone, gzsl: bool = False, **kw) -> CadaVae:
    torch.manual_seed(0)
    kw = {"skeleton_hidden": 64, "text_hidden": 64, "latent_dim": 16, "lr": 3e-3, **kw}
    module = CadaVae(_text(gzsl), "ntu25", FrozenBackbone(str(tiny_backbone)), **kw)
    module.node_features = lambda x, index=None: x  # generated node features stand in for the backbone's
    return module


def _nodes(module: CadaVae, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """``(B, S, n)`` node features linear in each class's global text, plus noise: separable by text."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(M, module.backbone.out_channels, generator=torch.Generator().manual_seed(1))
    text = _text().embeddings[:, -1][labels]  # each class's global description
    return (text @ w)[:, None] + 0.05 * torch.randn(len(labels), S, w.shape[1], generator=g)


@pytest.fixture
def module(tiny_backbone) -> CadaVae:
    return _module(tiny_backbone)


def test_ramp_and_wasserstein():
    assert [ramp(p, 0.2, 0.6) for p in (0.0, 0.2, 0.4, 0.6, 1.0)] == pytest.approx([0, 0, 0.5, 1, 1])
    mu, logvar = torch.zeros(1, 3), torch.zeros(1, 3)
    assert wasserstein(mu, logvar, mu + torch.tensor([[3.0, 4.0, 0.0]]), logvar).item() == pytest.approx(5.0)
    assert wasserstein(mu, logvar, mu, torch.full((1, 3), 2 * torch.tensor(2.0).log())).item() == pytest.approx(3**0.5)


@pytest.mark.parametrize("term", ["reconstruction", "kl", "cross_reconstruction", "alignment"])
def test_each_loss_term_decreases_when_trained_alone(module, term):
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    weights = {"beta": 1.0, "cross": 1.0, "alignment": 1.0}
    values = []
    for step in range(60):
        labels = torch.tensor(SEEN).repeat(4)
        x = module.pooled(_nodes(module, labels, seed=step))
        loss = module.losses(x, module.seen_text[module.seen_targets(labels)], weights)[term]
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert sum(values[-5:]) < 0.7 * sum(values[:5]), (term, values[:5], values[-5:])


def test_training_ranks_unseen_classes_first_on_separable_features(tiny_backbone):
    """Without a trainer there is no warm-up to follow: every weight is on from the first step."""
    module = _module(tiny_backbone, beta_warmup=(0.0, 0.0), cross_warmup=(0.0, 0.0), alignment_warmup=(0.0, 0.0))
    assert module.weights() == {"beta": 0.25, "cross": 2.37, "alignment": 8.13}
    opt = module.configure_optimizers()
    for step in range(300):
        labels = torch.tensor(SEEN).repeat(4)
        loss = module.training_step(SkeletonBatch(_nodes(module, labels, seed=step), labels), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    labels = torch.tensor(UNSEEN).repeat(20)
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=999), labels))
    assert out.scores.shape == (len(labels), len(UNSEEN)) and out.field_scores is None
    top1 = (torch.tensor(UNSEEN)[out.zsl_scores.argmax(-1)] == labels).float().mean().item()
    assert top1 >= 0.9, top1


def test_scoring_is_pure_and_draws_nothing_from_the_global_stream(module):
    module.eval()
    nodes = _nodes(module, torch.tensor(list(UNSEEN)), seed=3)
    text = module.candidate_text
    state = torch.get_rng_state()
    first = module.score(nodes, text)
    assert torch.equal(torch.get_rng_state(), state)
    module._classifiers.clear()  # a fresh classifier (as in another process) gives the same scores
    torch.testing.assert_close(module.score(nodes, text), first, rtol=0, atol=0)
    torch.testing.assert_close(module.score(nodes, text[:, None]), first)  # (K, 1, m): its one field


def test_gzsl_scores_every_candidate_and_zsl_only_the_unseen(tiny_backbone):
    module = _module(tiny_backbone, gzsl=True).eval()
    labels = torch.tensor([0, 16, 19])
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=5), labels))
    assert module.candidates == (*SEEN, *UNSEEN)
    assert out.scores.shape == (3, K) and out.zsl_scores.shape == (3, len(UNSEEN))
    torch.testing.assert_close(out.zsl_scores.exp().sum(-1), torch.ones(3))  # its own classifier over Y_u
    torch.testing.assert_close(out.scores.exp().sum(-1), torch.ones(3))


def test_a_field_outside_the_descriptions_is_refused(tiny_backbone):
    with pytest.raises(ValueError, match="model.field"):
        CadaVae(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), field="elbows")
