"""SA-DVAE on generated features: the schedule, each loss term, the discriminator, zero-shot ranking, GZSL
scores, purity of scoring."""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.sa_dvae import SaDvae
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS

K, SEEN, UNSEEN, M, S = 20, tuple(range(16)), (16, 17, 18, 19), 8, 6
FULL = {"beta": 1.0, "text_beta": 1.0, "cross": 1.0, "tc": 1.0, "alignment": 1.0}


def _text(gzsl: bool = False) -> ClassText:
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(K, len(FIELDS), M, generator=g), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(K)), emb, SEEN, UNSEEN, gzsl=gzsl)


def _module(tiny_backbone, gzsl: bool = False, **kw) -> SaDvae:
    torch.manual_seed(0)
    kw = {"skeleton_hidden": 64, "text_hidden": 64, "semantic_dim": 16, "irrelevant_dim": 4, "lr": 3e-3, **kw}
    kw.setdefault("samples_per_class", 50)
    module = SaDvae(_text(gzsl), "ntu25", FrozenBackbone(str(tiny_backbone)), **kw)
    module.node_features = lambda x, index=None: x  # generated node features stand in for the backbone's
    return module


def _nodes(module: SaDvae, labels: torch.Tensor, seed: int, style: float = 0.0) -> torch.Tensor:
    """``(B, S, n)`` node features linear in each class's global text, plus noise (and, with ``style``, a
    random per-sample direction the text does not explain): separable by text."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(M, module.backbone.out_channels, generator=torch.Generator().manual_seed(1))
    v = torch.randn(2, module.backbone.out_channels, generator=torch.Generator().manual_seed(2))
    text = _text().embeddings[:, -1][labels]  # each class's global description
    x = text @ w + style * torch.randn(len(labels), 2, generator=g) @ v
    return x[:, None] + 0.05 * torch.randn(len(labels), S, w.shape[1], generator=g)


@pytest.fixture
def module(tiny_backbone) -> SaDvae:
    return _module(tiny_backbone)


def test_shapes_of_the_split_latent_and_the_scores(module):
    x = module.pooled(_nodes(module, torch.tensor([0, 1, 2]), seed=0))
    mu_r, logvar_r, mu_v, logvar_v = module.encode_skeleton(x)
    assert mu_r.shape == logvar_r.shape == (3, 16) and mu_v.shape == logvar_v.shape == (3, 4)
    assert module.discriminator(torch.cat([mu_r, mu_v], -1)).shape == (3,)
    module.eval()
    scores = module.score(_nodes(module, torch.tensor([0, 1, 2]), seed=0), module.candidate_text)
    assert scores.shape == (3, len(UNSEEN))
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(3))


def test_weights_follow_the_official_cyclical_schedule(module, tiny_backbone):
    """A cycle is an epoch: in each, β_x ramps from 0.59 of it, λ_ca switches on at 0.8, β_t and λ_tc ramp
    from 0.8 but only from the third cycle on; with no progress given every weight is at its full value."""
    full = {"beta": 0.023, "text_beta": 0.011, "cross": 1.0, "tc": 0.011, "alignment": 0.0}
    assert module.weights() == pytest.approx(full)
    assert module.weights(0.5) == pytest.approx(dict.fromkeys(full, 0.0))  # half-way through epoch 0
    first = module.weights(0.9)
    assert first["beta"] == pytest.approx(0.023 * 0.31 / 0.41) and first["cross"] == 1.0
    assert first["text_beta"] == first["tc"] == 0.0
    third = module.weights(2.9)
    assert third["text_beta"] == pytest.approx(0.0055) and third["tc"] == pytest.approx(0.0055)
    assert module.weights(2.5)["cross"] == 0.0  # half-way through epoch 2: cross-alignment is off again
    assert module.weights(12.9) == pytest.approx(third)  # the schedule repeats, however long the training
    assert _module(tiny_backbone, cycle_epochs=2.0).weights(1.8) == pytest.approx(first)


@pytest.mark.parametrize("term", ["reconstruction", "kl", "text_kl", "cross_alignment", "tc", "alignment"])
def test_each_loss_term_decreases_when_trained_alone(module, term):
    params = [p for n, p in module.named_parameters() if p.requires_grad and not n.startswith("discriminator.")]
    opt = torch.optim.Adam(params, lr=3e-3)
    values = []
    for step in range(60):
        labels = torch.tensor(SEEN).repeat(4)
        x = module.pooled(_nodes(module, labels, seed=step, style=1.0))
        loss = module.losses(x, module.seen_text[module.seen_targets(labels)], FULL)[term]
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert sum(values[-5:]) < 0.7 * sum(values[:5]), (term, values[:5], values[-5:])


def test_the_discriminator_learns_to_tell_joint_latents_from_permuted_ones(module):
    """With little sampling noise an encoder's two parts are both functions of x, so dependent: the
    discriminator's cross-entropy falls below chance (ln 2) when it alone trains; the encoder does not move."""
    with torch.no_grad():
        module.skeleton_encoder.net[-1].bias[20:] = -8.0  # log σ² of both parts: z ≈ μ
        module.text_encoder.net[-1].bias[16:] = -8.0
    opt = torch.optim.Adam(module.discriminator.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in module.skeleton_encoder.parameters()]
    values = []
    for step in range(150):
        labels = torch.tensor(SEEN).repeat(8)
        x = module.pooled(_nodes(module, labels, seed=step, style=1.0))
        loss = module.discriminator_loss(x, module.seen_text[module.seen_targets(labels)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert sum(values[:5]) / 5 == pytest.approx(0.693, abs=0.05)
    assert sum(values[-10:]) / 10 < 0.6, values[-10:]
    assert all(torch.equal(a, b) for a, b in zip(before, module.skeleton_encoder.parameters(), strict=True))


def test_training_ranks_unseen_classes_first_on_separable_features(tiny_backbone):
    """The training steps of the full objective (the discriminator in turn), along the schedule (an epoch
    of 50 steps)."""
    module = _module(tiny_backbone)
    vae = [p for n, p in module.named_parameters() if p.requires_grad and not n.startswith("discriminator.")]
    opt, d_opt = torch.optim.Adam(vae, lr=3e-3), torch.optim.Adam(module.discriminator.parameters(), lr=3e-3)
    steps = 300
    for step in range(steps):
        labels = torch.tensor(SEEN).repeat(4)
        x = module.pooled(_nodes(module, labels, seed=step, style=1.0))
        t = module.seen_text[module.seen_targets(labels)]
        loss = module.losses(x, t, module.weights(step / 50))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        d_loss = module.discriminator_loss(x, t)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
    module.eval()
    labels = torch.tensor(UNSEEN).repeat(20)
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=999, style=1.0), labels))
    assert out.scores.shape == (len(labels), len(UNSEEN)) and out.field_scores is None
    top1 = (torch.tensor(UNSEEN)[out.zsl_scores.argmax(-1)] == labels).float().mean().item()
    assert top1 >= 0.9, top1


def test_scoring_is_pure_and_draws_nothing_from_the_global_stream(module):
    module.eval()
    nodes = _nodes(module, torch.tensor(list(UNSEEN)), seed=3)
    text = module.candidate_text
    state = torch.get_rng_state()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    first = module.score(nodes, text)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    module._classifiers.clear()  # a fresh classifier (as in another process) gives the same scores
    torch.testing.assert_close(module.score(nodes, text), first, rtol=0, atol=0)
    torch.testing.assert_close(module.score(nodes, text[:, None]), first)  # (K, 1, m): its one field
    with torch.no_grad():
        module.text_encoder.net[0].bias.add_(1.0)  # new weights: a new classifier, new scores
    assert not torch.allclose(module.score(nodes, text), first)


def test_gzsl_scores_every_candidate_and_zsl_only_the_unseen(tiny_backbone):
    module = _module(tiny_backbone, gzsl=True).eval()
    labels = torch.tensor([0, 16, 19])
    with torch.no_grad():
        out = module.evaluate(SkeletonBatch(_nodes(module, labels, seed=5), labels))
    assert module.candidates == (*SEEN, *UNSEEN) and module.zsl_columns == [16, 17, 18, 19]
    assert out.scores.shape == (3, K) and out.zsl_scores.shape == (3, len(UNSEEN))
    torch.testing.assert_close(out.zsl_scores.exp().sum(-1), torch.ones(3))  # its own classifier over Y_u
    torch.testing.assert_close(out.scores.exp().sum(-1), torch.ones(3))
    assert len(module._classifiers) == 2  # both candidate sets stay cached across batches


def test_bad_arguments_are_refused(tiny_backbone):
    with pytest.raises(ValueError, match="model.field"):
        SaDvae(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), field="elbows")
    with pytest.raises(ValueError, match="irrelevant_dim"):
        SaDvae(_text(), "ntu25", FrozenBackbone(str(tiny_backbone)), irrelevant_dim=0)


def test_a_trainer_steps_the_vaes_and_the_discriminator_in_turn(tiny_backbone):
    from pytorch_lightning import Trainer
    from torch.utils.data import DataLoader

    module = _module(tiny_backbone, discriminator_every=2)
    batches = [
        SkeletonBatch(_nodes(module, torch.tensor(SEEN).repeat(2), seed=i, style=1.0), torch.tensor(SEEN).repeat(2))
        for i in range(4)
    ]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(module, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))
    after = module.state_dict()
    assert not module.automatic_optimization
    for prefix in ("skeleton_encoder.", "text_encoder.", "skeleton_decoder.", "text_decoder.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix)), prefix
    assert trainer.global_step == 3 * (4 + 2)  # every batch steps the VAEs, every second one the discriminator
    logged = trainer.callback_metrics
    assert {"train/discriminator", "train/cross_alignment", "train/tc"} <= set(logged)
    assert 0.0 < float(logged["train/tc"]) < 1.0  # a probability: the discriminator's on joint latents
