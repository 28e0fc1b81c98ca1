"""TDSM on generated features: the schedule, shapes, each loss term, zero-shot ranking, GZSL scores and
the purity of scoring."""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.eval.gzsl import calibrated_stacking, gzsl_accuracies
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.tdsm import Tdsm, scaled_linear_alphas_cumprod, timestep_embedding
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS

K, SEEN, UNSEEN, M, S = 20, tuple(range(16)), (16, 17, 18, 19), 8, 6


def _text(gzsl: bool = False) -> ClassText:
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(K, len(FIELDS), M, generator=g), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(K)), emb, SEEN, UNSEEN, gzsl=gzsl)


def _module(tiny_backbone, gzsl: bool = False, **kw) -> Tdsm:
    torch.manual_seed(0)
    kw = {"hidden": 32, "depth": 2, "heads": 2, **kw}
    module = Tdsm(_text(gzsl), "ntu25", FrozenBackbone(str(tiny_backbone)), **kw)
    module.node_features = lambda x, index=None: x  # generated node features stand in for the backbone's
    return module


def _nodes(module: Tdsm, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """``(B, S, n)`` node features linear in each class's global text, plus noise: separable by text."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(M, module.backbone.out_channels, generator=torch.Generator().manual_seed(1))
    text = _text().embeddings[:, -1][labels]  # each class's global description
    return (text @ w)[:, None] + 0.05 * torch.randn(len(labels), S, w.shape[1], generator=g)


def _train(module: Tdsm, steps: int) -> None:
    optimizer = module.configure_optimizers()["optimizer"]
    for step in range(steps):
        labels = torch.tensor(SEEN).repeat(4)
        loss = module.training_step(SkeletonBatch(_nodes(module, labels, seed=step), labels), step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


@pytest.fixture(autouse=True)
def _one_thread():
    """The denoiser's ops are tiny: on a shared 2-core machine a second intra-op thread makes each step
    tens of times slower (measured: 8 ms vs 550 ms), so these tests run on one and restore the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def module(tiny_backbone) -> Tdsm:
    return _module(tiny_backbone)


def test_the_noise_schedule_is_stable_diffusions_scaled_linear_one_over_50_steps():
    abar = scaled_linear_alphas_cumprod(50)
    assert abar.shape == (50,) and bool((abar[1:] < abar[:-1]).all())
    assert abar[0].item() == pytest.approx(1 - 0.00085) and abar[-1].item() == pytest.approx(
        (1 - 0.012) * 0.7731, rel=1e-3
    )
    assert abar[25].item() == pytest.approx(0.9341, abs=1e-4)  # the paper's inference step: mostly signal
    emb = timestep_embedding(torch.tensor([0, 25]), 7)
    assert emb.shape == (2, 7) and torch.equal(emb[0, :3], torch.ones(3)) and emb[0, 6].item() == 0.0


def test_shapes_and_the_forward_process(module):
    x = torch.randn(5, 1, module.backbone.out_channels)
    t, noise = torch.tensor([0, 10, 25, 49, 3]), torch.randn_like(x)
    a = scaled_linear_alphas_cumprod(50)[t][:, None, None]
    torch.testing.assert_close(module.noised(x, t, noise), a.sqrt() * x + (1 - a).sqrt() * noise)
    assert module.text_fields == (len(FIELDS) - 1,) and module.seen_text.shape == (16, 1, M)  # the global field
    assert module.denoiser(x, t, module.seen_text[:5]).shape == x.shape
    nodes = _nodes(module, torch.tensor([16, 17, 3]), seed=0)
    assert module.latent(nodes).shape == (3, 1, module.backbone.out_channels)
    assert module.score(nodes, module.candidate_text).shape == (3, len(UNSEEN))
    # a fresh denoiser's output layer is zero (DiT's init): every candidate's error is then |ε|²
    torch.testing.assert_close(
        module.score(nodes, module.candidate_text), -module.draws((1, 16))[1].pow(2).mean().expand(3, 4)
    )
    assert module.full_class_text().shape == (K, len(FIELDS), M)


@pytest.mark.parametrize("term", ["diffusion", "triplet"])
def test_each_loss_term_decreases_when_trained_alone(module, term):
    opt = torch.optim.Adam(module.denoiser.parameters(), lr=3e-3)
    values = []
    for step in range(60):
        labels = torch.tensor(SEEN).repeat(4)
        x = module.latent(_nodes(module, labels, seed=step))
        terms = module.losses(x, module.seen_targets(labels), torch.Generator().manual_seed(step))
        opt.zero_grad()
        terms[term].backward()
        opt.step()
        values.append(terms[term].item())
    assert sum(values[-5:]) < 0.7 * sum(values[:5]), (term, values[:5], values[-5:])


def test_the_triplet_term_is_the_margin_hinge_of_the_two_errors_with_the_true_class_masked(module):
    labels = torch.tensor(SEEN).repeat(8)
    x = module.latent(_nodes(module, labels, seed=0))
    terms = module.losses(x, module.seen_targets(labels), torch.Generator().manual_seed(0))
    assert terms["loss"].item() == pytest.approx(terms["diffusion"].item() + terms["triplet"].item())
    # a fresh denoiser predicts zeros whatever the text: both errors equal, each unmasked pair costs the margin
    g = torch.Generator().manual_seed(0)
    torch.randint(0, 50, (len(x),), generator=g), torch.randn(x.shape, generator=g)
    unmasked = (torch.randint(0, 16, (len(x),), generator=g) != module.seen_targets(labels)).float().mean()
    assert terms["triplet"].item() == pytest.approx(1.0 * unmasked.item(), abs=1e-5) and unmasked < 1


def test_training_ranks_unseen_classes_first_on_separable_features(tiny_backbone):
    module = _module(tiny_backbone, lr=1e-2)
    _train(module, 100)
    labels = torch.tensor(UNSEEN).repeat(20)
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=999), labels))
    assert out.scores.shape == (len(labels), len(UNSEEN)) and out.field_scores is None
    assert bool((out.scores < 0).all())  # negated denoising errors
    top1 = (torch.tensor(UNSEEN)[out.zsl_scores.argmax(-1)] == labels).float().mean().item()
    assert top1 >= 0.9, top1
    # the true text denoises better than the others: training pushed the wrong text's error up
    true = out.scores[torch.arange(len(labels)), labels - 16]
    assert (true > out.scores.mean(-1)).float().mean().item() >= 0.9


def test_scoring_is_pure_and_is_the_mean_error_over_the_fixed_draws(tiny_backbone):
    module = _module(tiny_backbone, inference_timesteps=(10, 25), num_noises=2)
    _train(module, 5)  # non-zero output layer
    nodes = _nodes(module, torch.tensor(list(UNSEEN)), seed=3)
    text = module.candidate_text
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    first = module.score(nodes, text)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in weights.items())
    torch.testing.assert_close(module.score(nodes, text), first, rtol=0, atol=0)
    torch.testing.assert_close(module.score(nodes.flip(0), text.flip(0)), first.flip(0, 1))  # row-wise
    # the equation, by hand: timesteps (10, 10, 25, 25) with noises (ε1, ε2, ε1, ε2)
    timesteps, noises = module.draws((1, module.backbone.out_channels))
    assert timesteps.tolist() == [10, 10, 25, 25] and torch.equal(noises[0], noises[2])
    x = module.latent(nodes)
    by_hand = torch.zeros(len(x), len(text))
    with torch.no_grad():
        for t, eps in zip(timesteps, noises, strict=True):
            for k in range(len(text)):
                x_t = module.noised(x, t.expand(len(x)), eps.expand_as(x))
                pred = module.denoiser(x_t, t.expand(len(x)), text[k].expand(len(x), *text[k].shape))
                by_hand[:, k] -= (pred - eps).pow(2).mean(dim=(1, 2)) / len(timesteps)
    torch.testing.assert_close(first, by_hand)
    other_seed = _module(tiny_backbone, inference_timesteps=(10, 25), num_noises=2, seed=1)
    other_seed.load_state_dict(module.state_dict())
    assert not torch.equal(other_seed.score(nodes, text), first)  # the draws come from the seed


def test_the_global_token_takes_k_by_m_text_and_field_tokens_every_field(tiny_backbone):
    module = _module(tiny_backbone)
    _train(module, 5)
    nodes = _nodes(module, torch.tensor(list(UNSEEN)), seed=3)
    assert module.candidate_text.shape == (4, 1, M)
    torch.testing.assert_close(
        module.score(nodes, module.candidate_text[:, 0]), module.score(nodes, module.candidate_text)
    )
    fields = _module(tiny_backbone, text_tokens="fields")
    assert fields.text_fields == tuple(range(len(FIELDS))) and fields.candidate_text.shape == (4, len(FIELDS), M)
    torch.testing.assert_close(fields.candidate_text, _text().embeddings[list(UNSEEN)])
    _train(fields, 5)
    assert fields.score(nodes, fields.candidate_text).shape == (4, 4)
    assert fields.denoiser(module.latent(nodes), torch.full((4,), 25), fields.candidate_text[:, -1:]).shape == (
        4,
        1,
        16,
    )


def test_gzsl_scores_every_candidate_and_zsl_the_unseen_columns(tiny_backbone):
    module = _module(tiny_backbone, gzsl=True)
    _train(module, 20)
    labels = torch.tensor([0, 5, 16, 19])
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=5), labels))
    assert module.candidates == (*SEEN, *UNSEEN) and module.zsl_columns == [16, 17, 18, 19]
    assert out.scores.shape == (4, K) and out.zsl_scores.shape == (4, len(UNSEEN))
    torch.testing.assert_close(out.zsl_scores, out.scores[:, module.zsl_columns])  # independent of the others
    seen_mask = torch.tensor([c in SEEN for c in module.candidates])
    far = (out.scores.max() - out.scores.min()).item() + 1  # a γ past every score gap
    assert bool((calibrated_stacking(out.scores, seen_mask, far).argmax(-1) >= 16).all())  # only unseen wins
    assert bool((calibrated_stacking(out.scores, seen_mask, -far).argmax(-1) < 16).all())  # only seen wins
    assert gzsl_accuracies(out.scores, labels, seen_mask, gamma=far)["seen"] == 0.0
    assert gzsl_accuracies(out.scores, labels, seen_mask, gamma=-far)["unseen"] == 0.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"text_tokens": "labels"}, "text_tokens"),
        ({"inference_timesteps": (50,)}, "inference_timesteps"),
        ({"num_noises": 0}, "num_noises"),
    ],
)
def test_bad_arguments_are_refused(tiny_backbone, kw, match):
    with pytest.raises(ValueError, match=match):
        Tdsm(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), **kw)
