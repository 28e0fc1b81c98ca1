import torch

from purls_pl.models.regularizers import drop_nodes, text_noise


def test_text_noise_keeps_unit_vectors_near_the_text():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(6, 8, 64), dim=-1)
    noisy = text_noise(text, 0.3)
    torch.testing.assert_close(noisy.norm(dim=-1), torch.ones(6, 8))  # still unit vectors
    cos = (noisy * text).sum(-1)
    assert 0.9 < cos.mean() < 0.99  # relative size 0.3: cos ≈ 1/sqrt(1 + 0.09) = 0.958
    assert text_noise(text, 0.0) is text


def test_drop_nodes_zeroes_whole_nodes_and_rescales():
    torch.manual_seed(0)
    nodes = torch.ones(64, 100, 8)
    dropped = drop_nodes(nodes, 0.5)
    kept = dropped[..., 0] != 0
    assert 0.45 < kept.float().mean() < 0.55
    assert (dropped[kept] == 2.0).all() and (dropped[~kept] == 0).all()  # whole nodes, rescaled by 1/(1-p)
    assert drop_nodes(nodes, 0.0) is nodes
