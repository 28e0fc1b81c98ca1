"""Tests for the skeleton backbones (Shift-GCN, ST-GCN) and the skeleton graph."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from purls_pl.data.layouts import get_layout
from purls_pl.models.backbones import BACKBONES, STGCN, NodeEncoder, ShiftGCN, build_backbone
from purls_pl.models.backbones.graph import (
    adjacency_matrix,
    build_adjacency,
    hop_distance,
    normalize_digraph,
    normalize_undigraph,
)
from purls_pl.models.backbones.shift_gcn import ShiftSpatialConv, convert_official_state_dict
from purls_pl.models.backbones.shift_ops import (
    AdaptiveTemporalShift,
    FixedTemporalShift,
    shift_index,
    spatial_shift,
    temporal_shift,
)

TINY = {"channels": (8, 16, 16), "strides": (1, 2, 2)}
LAYOUTS = [("ntu25", 2), ("openpose18", 2), ("kinect20", 1), ("coco17", 2)]


def _tiny(name: str, layout: str, persons: int, **kw: object) -> NodeEncoder:
    torch.manual_seed(0)
    return build_backbone(name, layout=layout, num_persons=persons, **TINY, **kw)


# ----------------------------------------------------------------------------- shapes / contract


@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize(("layout", "persons"), LAYOUTS)
def test_output_shape(name: str, layout: str, persons: int) -> None:
    enc = _tiny(name, layout, persons)
    j = get_layout(layout).num_joints
    x = torch.randn(2, persons, 11, j, 3)
    out = enc(x)
    assert enc.temporal_stride == 4
    assert enc.out_channels == 16
    assert enc.output_frames(11) == math.ceil(11 / 4) == 3
    assert out.shape == (2, 16, 3, j)
    assert torch.isfinite(out).all()


def test_defaults_are_the_reference_model() -> None:
    enc = ShiftGCN()
    assert enc.out_channels == 256 and enc.temporal_stride == 4 and len(enc.layers) == 10
    # 0.69M parameters in the paper, including the 256x60 classifier this encoder leaves out.
    assert 0.66e6 < sum(p.numel() for p in enc.parameters()) < 0.69e6


def test_bad_input_is_rejected() -> None:
    enc = _tiny("shift_gcn", "ntu25", 2)
    with pytest.raises(ValueError, match="joints"):
        enc(torch.randn(1, 2, 8, 18, 3))
    with pytest.raises(ValueError, match="num_persons"):
        enc(torch.randn(1, 1, 8, 25, 3))
    with pytest.raises(ValueError, match="one entry per layer"):
        ShiftGCN(channels=(8, 8), strides=(1,))


def test_registry_and_dotted_path() -> None:
    assert BACKBONES == {"shift_gcn": ShiftGCN, "st_gcn": STGCN}
    enc = build_backbone("purls_pl.models.backbones.st_gcn.STGCN", layout="kinect20", **TINY)
    assert isinstance(enc, STGCN) and isinstance(enc, NodeEncoder)
    with pytest.raises(KeyError):
        build_backbone("nope")
    with pytest.raises(TypeError):
        build_backbone("torch.nn.Linear", in_features=1, out_features=1)
    with pytest.raises(TypeError):
        NodeEncoder()  # type: ignore[abstract]


# ----------------------------------------------------------------------------- spatial shift


def test_spatial_shift_matches_loops() -> None:
    b, j, c = 2, 5, 7
    x = torch.randn(b, j, c)
    shifted_in = spatial_shift(x, shift_index(j, c, +1))
    shifted_out = spatial_shift(x, shift_index(j, c, -1))
    ref_in, ref_out = torch.empty_like(x), torch.empty_like(x)
    for jj in range(j):
        for cc in range(c):
            ref_in[:, jj, cc] = x[:, (jj + cc) % j, cc]
            ref_out[:, jj, cc] = x[:, (jj - cc) % j, cc]
    assert torch.equal(shifted_in, ref_in)
    assert torch.equal(shifted_out, ref_out)
    # shift-out undoes shift-in
    assert torch.equal(spatial_shift(shifted_in, shift_index(j, c, -1)), x)


def test_shift_spatial_conv_matches_loops() -> None:
    torch.manual_seed(0)
    b, c_in, c_out, t, j = 2, 3, 4, 2, 5
    layer = ShiftSpatialConv(c_in, c_out, j).eval()
    with torch.no_grad():
        layer.feature_mask.normal_()
        layer.linear_bias.normal_()
        layer.bn.running_mean.normal_()
        layer.bn.running_var.uniform_(0.5, 2.0)
        for p in layer.down.parameters():
            p.normal_()
    x = torch.randn(b, c_in, t, j)
    with torch.no_grad():
        out = layer(x)
        mask = torch.tanh(layer.feature_mask[0]) + 1  # (J, C_in)
        ref = torch.empty(b, c_out, t, j)
        for n in range(b):
            for f in range(t):
                shifted = torch.empty(j, c_in)
                for jj in range(j):
                    for cc in range(c_in):
                        shifted[jj, cc] = x[n, cc, f, (jj + cc) % j] * mask[jj, cc]
                lin = shifted @ layer.linear_weight + layer.linear_bias  # (J, C_out)
                back = torch.empty(j, c_out)
                for jj in range(j):
                    for cc in range(c_out):
                        back[jj, cc] = lin[(jj - cc) % j, cc]
                ref[n, :, f, :] = back.T
        bn = layer.bn
        flat = ref.permute(0, 2, 3, 1).reshape(b * t, j * c_out)
        flat = (flat - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        ref = flat.view(b, t, j, c_out).permute(0, 3, 1, 2)
        ref = torch.relu(ref + layer.down(x))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- temporal shift


def _reference_roll(x: torch.Tensor, shifts: list[int], stride: int) -> torch.Tensor:
    """out[:, c, h] = x[:, c, h*stride + s_c], zero outside — via zero padding and slicing."""
    t = x.shape[2]
    pad = max(abs(s) for s in shifts) + stride
    padded = torch.nn.functional.pad(x, (0, 0, pad, pad))
    out = []
    for ch, s in enumerate(shifts):
        rolled = padded[:, ch, pad + s : pad + s + t]  # frame f of `rolled` is x[f + s] (or 0)
        out.append(rolled[:, ::stride])
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_temporal_shift_integer_matches_reference(stride: int) -> None:
    x = torch.randn(2, 5, 7, 3)
    shifts = [-2, 0, 1, 3, 9]
    expected = _reference_roll(x, shifts, stride)
    assert expected.shape[2] == math.ceil(7 / stride)
    torch.testing.assert_close(temporal_shift(x, torch.tensor(shifts), stride), expected)
    torch.testing.assert_close(temporal_shift(x, torch.tensor(shifts, dtype=torch.float), stride), expected)
    if stride == 1:
        adaptive = AdaptiveTemporalShift(5, stride=1)
        with torch.no_grad():
            adaptive.shift.copy_(torch.tensor(shifts, dtype=torch.float))
        torch.testing.assert_close(adaptive(x), expected)


def test_fixed_temporal_shift_groups() -> None:
    module = FixedTemporalShift(9, stride=2, kernel_size=3)
    assert module.shift.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1]
    x = torch.randn(1, 9, 6, 2)
    torch.testing.assert_close(module(x), _reference_roll(x, module.shift.tolist(), 2))


def test_temporal_shift_fractional_interpolates_and_is_differentiable() -> None:
    x = torch.randn(1, 2, 6, 1, dtype=torch.float64)
    out = temporal_shift(x, torch.tensor([0.25, -1.5], dtype=torch.float64))
    torch.testing.assert_close(out[0, 0, :5, 0], 0.75 * x[0, 0, :5, 0] + 0.25 * x[0, 0, 1:, 0])
    torch.testing.assert_close(out[0, 0, 5, 0], 0.75 * x[0, 0, 5, 0])  # the next frame is outside
    torch.testing.assert_close(out[0, 1, 2:, 0], 0.5 * x[0, 1, :4, 0] + 0.5 * x[0, 1, 1:5, 0])
    shift = torch.tensor([0.3, -1.6], dtype=torch.float64, requires_grad=True)
    xs = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, s: temporal_shift(a, s, 2), (xs, shift))


def test_adaptive_shift_sign_gradient() -> None:
    module = AdaptiveTemporalShift(4, stride=2)
    module(torch.randn(2, 4, 8, 3)).pow(2).sum().backward()
    assert module.shift.grad is not None
    assert torch.allclose(module.shift.grad.abs(), torch.full((4,), 0.01))


# ----------------------------------------------------------------------------- graph


@pytest.mark.parametrize(("layout", "persons"), LAYOUTS)
def test_graph_adjacency(layout: str, persons: int) -> None:
    del persons
    lay = get_layout(layout)
    a = adjacency_matrix(lay)
    assert torch.equal(a, a.T) and torch.all(torch.diag(a) == 1)
    assert int(a.sum()) == lay.num_joints + 2 * len(lay.edges)
    norm = normalize_digraph(a)
    torch.testing.assert_close(norm.sum(dim=0), torch.ones(lay.num_joints, dtype=norm.dtype))
    sym = normalize_undigraph(a)
    torch.testing.assert_close(sym, sym.T)
    parts = build_adjacency(lay, "spatial")
    assert parts.shape == (3, lay.num_joints, lay.num_joints)
    torch.testing.assert_close(parts.sum(dim=0), norm.float())
    torch.testing.assert_close(build_adjacency(lay, "uniform")[0], norm.float())
    torch.testing.assert_close(build_adjacency(lay, "distance").sum(0), norm.float())
    # root = self links only (a tree has no equidistant neighbours); centripetal and centrifugal are
    # each other's transpose pattern, and centripetal messages come from joints farther from the center.
    assert torch.equal(parts[0] > 0, torch.eye(lay.num_joints, dtype=torch.bool))
    assert torch.equal(parts[1] > 0, (parts[2] > 0).T)
    to_center = hop_distance(lay, lay.num_joints)[:, lay.center]
    v, w = torch.nonzero(parts[1], as_tuple=True)
    assert torch.all(to_center[v] > to_center[w])


# ----------------------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradient_flows(name: str) -> None:
    enc = _tiny(name, "kinect20", 1)
    x = torch.randn(2, 1, 8, 20, 3, requires_grad=True)
    enc(x).pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in enc.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_persons_are_averaged(name: str) -> None:
    two = _tiny(name, "ntu25", 2).eval()
    one = _tiny(name, "ntu25", 1).eval()
    state = two.state_dict()
    if name == "shift_gcn":  # the input BN has one entry per (person, joint, coordinate)
        with torch.no_grad():
            for key in ("data_bn.weight", "data_bn.bias", "data_bn.running_mean", "data_bn.running_var"):
                state[key].uniform_(0.5, 1.5)
        state = {k: (v[: v.numel() // 2] if k.startswith("data_bn.") and v.dim() else v) for k, v in state.items()}
        two.load_state_dict({k: (v.repeat(2) if k.startswith("data_bn.") and v.dim() else v) for k, v in state.items()})
    one.load_state_dict(state)
    p, q = torch.randn(2, 1, 9, 25, 3), torch.randn(2, 1, 9, 25, 3)
    with torch.no_grad():
        torch.testing.assert_close(two(torch.cat([p, p], dim=1)), one(p))
        torch.testing.assert_close(two(torch.cat([p, q], dim=1)), (one(p) + one(q)) / 2)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_mixed_precision(name: str) -> None:
    enc = _tiny(name, "openpose18", 2)
    x = torch.randn(2, 2, 8, 18, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 16, 2, 18)
    out.float().sum().backward()
    half = enc.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16


def test_tiny_shift_gcn_overfits() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 16, 20, 3, generator=g)
    y = torch.tensor([0, 1] * 4)
    enc = ShiftGCN(layout="kinect20", num_persons=1, channels=(16, 16, 32), strides=(1, 2, 1))
    head = nn.Linear(enc.out_channels, 2)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(20):
        loss = nn.functional.cross_entropy(head(enc(x).mean(dim=(2, 3))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = head(enc(x).mean(dim=(2, 3)))  # train mode: batch statistics, as during training
    assert (logits.argmax(dim=1) == y).float().mean().item() == 1.0
    assert nn.functional.cross_entropy(logits, y).item() < 0.1


# ----------------------------------------------------------------------------- checkpoints


def test_convert_official_state_dict() -> None:
    enc = ShiftGCN(layout="ntu25", channels=(4, 8), strides=(1, 2))
    official: dict[str, torch.Tensor] = {"fc.weight": torch.zeros(60, 8), "fc.bias": torch.zeros(60)}
    for key, value in enc.state_dict().items():
        if key.startswith("layers."):
            _, idx, rest = key.split(".", 2)
            key = f"l{int(idx) + 1}.{rest}"
        key = key.replace("linear_weight", "Linear_weight").replace("feature_mask", "Feature_Mask")
        if key.endswith("linear_bias"):
            key, value = key.replace("linear_bias", "Linear_bias"), value.view(1, 1, -1)
        key = key.replace(".shift_in.shift", ".shift_in.ypos").replace(".shift_out.shift", ".shift_out.ypos")
        official["module." + key] = value.clone() + 1
    for layer in ("l1", "l2"):
        official[f"module.{layer}.gcn1.shift_in"] = torch.zeros(3)
        official[f"module.{layer}.gcn1.shift_out"] = torch.zeros(3)
        official[f"module.{layer}.tcn1.shift_in.xpos"] = torch.zeros(3)
    fresh = ShiftGCN(layout="ntu25", channels=(4, 8), strides=(1, 2))
    fresh.load_state_dict(convert_official_state_dict(official), strict=True)
    for key, value in enc.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value + 1)


def test_checkpointed_layers_give_the_same_training_step() -> None:
    """Recomputing each layer in the backward pass changes neither the loss, the gradients nor BatchNorm's
    running statistics (the recompute must not update them a second time)."""
    x = torch.randn(3, 2, 12, 25, 3)
    runs = []
    for flag in (False, True):
        torch.manual_seed(0)
        model = ShiftGCN(layout="ntu25", num_persons=2, dropout=0.2, checkpoint_layers=flag, **TINY).train()
        torch.manual_seed(1)  # the same dropout masks in both runs (checkpoint replays the RNG state)
        out = model(x)
        out.square().mean().backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        runs.append((out.detach(), grads, {k: v.clone() for k, v in model.state_dict().items()}))
    (out_a, grads_a, state_a), (out_b, grads_b, state_b) = runs
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=0)
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-5, atol=1e-7, msg=k)
    assert state_b.keys() == state_a.keys()
    for k in state_a:  # running_mean / running_var / num_batches_tracked updated exactly once
        torch.testing.assert_close(state_b[k], state_a[k], rtol=0, atol=0, msg=k)
    assert int(state_b["layers.0.tcn1.bn.num_batches_tracked"]) == 1
    plain = ShiftGCN(layout="ntu25", num_persons=2, dropout=0.2, **TINY)
    plain.load_state_dict(model.state_dict())  # the flag is not part of the weights
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x), rtol=0, atol=0)
