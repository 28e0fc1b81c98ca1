import math

import torch
import torch.nn.functional as F

from purls_pl.models.losses import PartAwareContrastiveLoss, symmetric_contrastive_loss


def _unit(*shape):
    return F.normalize(torch.randn(*shape), dim=-1)


def test_symmetric_loss_equals_hand_computed_value():
    # Two samples of distinct classes, three seen classes, 2-D embeddings.
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    y = torch.tensor([0, 1])
    s = 2.0
    # skeleton -> text: sample 0 sims (1, 0, -1), sample 1 sims (0, 1, 0)
    l_st0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    l_st1 = -math.log(math.exp(2) / (1 + math.exp(2) + 1))
    # text -> skeleton: text of class 0 vs samples (1, 0); text of class 1 vs samples (0, 1)
    l_ts0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    l_ts1 = -math.log(math.exp(2) / (1 + math.exp(2)))
    expected = 0.5 * (l_st0 + l_st1) / 2 + 0.5 * (l_ts0 + l_ts1) / 2
    got = symmetric_contrastive_loss(v, f, y, s)
    assert math.isclose(got.item(), expected, rel_tol=1e-6)


def test_same_class_samples_are_not_negatives():
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    loss = symmetric_contrastive_loss(v, f, y, 10.0)
    # text of class 0 vs samples: sample 1 (same class) is masked, so only sample 2 competes.
    l_ts0 = -math.log(math.exp(10) / (math.exp(10) + math.exp(0)))
    l_ts2 = -math.log(math.exp(10) / (math.exp(0) + math.exp(0) + math.exp(10)))
    l_st = -math.log(math.exp(10) / (math.exp(10) + 1))
    expected = 0.5 * l_st + 0.5 * (2 * l_ts0 + l_ts2) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-3)


def test_uniform_alpha_is_the_mean_of_terms():
    torch.manual_seed(0)
    fields = ("head", "start", "global")
    crit = PartAwareContrastiveLoss(fields, alpha="uniform", temperature_init=0.1)
    v, f, y = _unit(4, 3, 8), _unit(5, 3, 8), torch.tensor([0, 1, 2, 3])
    out = crit(v, f, y)
    terms = torch.stack([out[f"loss_{n}"] for n in fields])
    assert math.isclose(out["loss"].item(), terms.mean().item(), rel_tol=1e-6)
    for n in fields:
        assert math.isclose(out[f"alpha_{n}"].item(), 1 / 3, rel_tol=1e-6)
        assert math.isclose(out[f"temperature_{n}"].item(), 0.1, rel_tol=1e-5)
    assert not crit.log_var.requires_grad


def test_learnable_alpha_starts_uniform_and_does_not_collapse():
    torch.manual_seed(0)
    fields = ("head", "global")
    crit = PartAwareContrastiveLoss(fields, alpha="learnable", learn_temperature=False)
    v, f, y = _unit(6, 2, 8), _unit(6, 2, 8), torch.arange(6)
    out = crit(v, f, y)
    assert math.isclose(out["alpha_head"].item(), 0.5, rel_tol=1e-6)
    opt = torch.optim.SGD([crit.log_var], lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        crit(v, f, y)["loss"].backward()
        opt.step()
    alphas = crit.alphas()
    # The optimum of exp(-s)·L + s is exp(-s) = 1/L: every weight stays positive and finite.
    terms = torch.stack([crit(v, f, y)[f"loss_{n}"] for n in fields])
    torch.testing.assert_close(alphas * len(fields), 1 / terms, rtol=1e-2, atol=1e-3)
    assert bool((alphas > 0).all())


def test_gradients_reach_embeddings_and_temperature():
    crit = PartAwareContrastiveLoss(("global",), alpha="uniform")
    v = _unit(4, 1, 8).requires_grad_()
    out = crit(v, _unit(3, 1, 8), torch.tensor([0, 1, 2, 0]))
    out["loss"].backward()
    assert v.grad is not None and crit.log_scale.grad is not None


def test_class_conditioned_embeddings_reduce_to_the_plain_loss():
    torch.manual_seed(0)
    v, f, y = _unit(5, 8), _unit(4, 8), torch.tensor([0, 1, 2, 3, 1])
    plain = symmetric_contrastive_loss(v, f, y, 5.0)
    same_for_every_class = symmetric_contrastive_loss(v[:, None].expand(5, 4, 8), f, y, 5.0)
    torch.testing.assert_close(same_for_every_class, plain)
    # V(b, o) only matters through V(b, o) · F_o: a representation queried by class o is scored against F_o.
    cond = _unit(5, 4, 8)
    sims = torch.einsum("bkm,km->bk", cond, f)
    expected = 0.5 * F.cross_entropy(sims * 5.0, y)
    t2s = (sims[:, y].T * 5.0).masked_fill((y[:, None] == y[None]) & ~torch.eye(5, dtype=torch.bool), float("-inf"))
    expected = expected + 0.5 * F.cross_entropy(t2s, torch.arange(5))
    torch.testing.assert_close(symmetric_contrastive_loss(cond, f, y, 5.0), expected)
