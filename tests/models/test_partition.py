import pytest
import torch

from purls_pl.data.layouts import BODY_PARTS, get_layout
from purls_pl.models.partition import AdaptivePartitioner, GlobalPartitioner, StaticPartitioner
from purls_pl.text.fields import FIELDS

B, T, J, N, M = 3, 6, 25, 16, 12


def _inputs(d: int = 8):
    torch.manual_seed(0)
    return torch.randn(B, T * J, N), torch.randn(B, d, M)


@pytest.mark.parametrize("heads", [1, 3])
def test_adaptive_shapes_and_rows_sum_to_one(heads):
    nodes, text = _inputs()
    part = AdaptivePartitioner(M, N, "ntu25", attn_dim=10, num_heads=heads)
    reps, attn = part(nodes, text)
    assert reps.shape == (B, 8, N)
    assert attn.shape == (B, 8, T * J)
    torch.testing.assert_close(attn.sum(-1), torch.ones(B, 8))
    torch.testing.assert_close(reps, attn @ nodes)


def test_adaptive_matches_equations_1_and_2():
    nodes, text = _inputs()
    part = AdaptivePartitioner(M, N, "ntu25", attn_dim=10)
    q = text @ part.w_q.weight.T
    k = nodes @ part.w_k.weight.T
    a = torch.softmax(q @ k.transpose(1, 2) / 10**0.5, dim=-1)
    reps, attn = part(nodes, text)
    torch.testing.assert_close(attn, a)
    torch.testing.assert_close(reps, a @ nodes)


def test_adaptive_global_representation_queries_each_candidate():
    nodes, _ = _inputs()
    part = AdaptivePartitioner(M, N, "ntu25", attn_dim=10)
    cands = torch.randn(5, M)
    out = part.global_representation(nodes, cands)
    assert out.shape == (B, 5, N)
    one = part(nodes, cands[2].expand(B, 1, M))[0][:, 0]
    torch.testing.assert_close(out[:, 2], one)


@pytest.mark.parametrize("layout", ["ntu25", "openpose18", "kinect20", "coco17"])
def test_static_groups_follow_the_layout(layout):
    lay = get_layout(layout)
    frames = 7
    part = StaticPartitioner(M, N, layout)
    nodes = torch.randn(2, frames * lay.num_joints, N)
    reps, attn = part(nodes, torch.zeros(2, 8, M))
    grid = nodes.view(2, frames, lay.num_joints, N)
    for i, name in enumerate(BODY_PARTS):
        torch.testing.assert_close(reps[:, i], grid[:, :, list(lay.parts[name])].mean(dim=(1, 2)))
    thirds = torch.tensor_split(torch.arange(frames), 3)
    for i, chunk in enumerate(thirds):
        torch.testing.assert_close(reps[:, 4 + i], grid[:, chunk].mean(dim=(1, 2)))
    torch.testing.assert_close(reps[:, 7], nodes.mean(1))
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 8))


def test_global_partitioner_is_the_mean_of_all_nodes():
    nodes, _ = _inputs()
    part = GlobalPartitioner(M, N, "ntu25")
    assert part.fields == ("global",)
    reps, _ = part(nodes, torch.zeros(B, 1, M))
    torch.testing.assert_close(reps[:, 0], nodes.mean(1))
    torch.testing.assert_close(part.global_representation(nodes, torch.zeros(4, M))[:, 0], nodes.mean(1))


def test_field_subsets_and_validation():
    part = AdaptivePartitioner(M, N, "ntu25", fields=["global", "head", "hands", "torso", "legs"])
    assert part.fields == ("head", "hands", "torso", "legs", "global")
    assert part.field_index == (0, 1, 2, 3, 7)
    with pytest.raises(ValueError, match="global"):
        AdaptivePartitioner(M, N, "ntu25", fields=["head"])
    with pytest.raises(ValueError, match="subset"):
        StaticPartitioner(M, N, "ntu25", fields=["global", "elbows"])
    assert FIELDS[part.field_index[-1]] == "global"
