"""The temporal order: mirror-image actions (sit-to-stand vs stand-to-sit) differ only in the order of the
same poses. Pooling over all frames (the global field) erases that order; the phase fields (start,
middle, end) keep it, and ``model.field_weight`` lets them reach the prediction.

The data are generated node features ``(B, L'·J, n)`` in which a pair of mirror-image classes share
every pose and differ only in time direction, and class text in which the pair shares its global and
body-part descriptions and swaps its start and end descriptions, as "stand up" and "sit down" do.
The features are frame-local; a real backbone's temporal convolutions also carry some order into each
node, which is why the global field is not always blind to it in practice.
"""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.batch import SkeletonBatch
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.partition import AdaptivePartitioner, GlobalPartitioner, StaticPartitioner
from purls_pl.models.purls_module import PurlsModule
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS

FRAMES, JOINTS, M_DIM = 6, 25, 12  # L' frames of the ntu25 grid
PAIRS = 2  # mirror-image pairs among the seen classes: classes (0, 1) and (2, 3)
START, END = FIELDS.index("start"), FIELDS.index("end")


def _mirror_text() -> ClassText:
    """Classes 2p ("up") and 2p+1 ("down") share every field but start and end, which they swap."""
    g = torch.Generator().manual_seed(0)
    text = torch.zeros(2 * PAIRS + 2, len(FIELDS), M_DIM)
    for p in range(PAIRS + 1):
        shared = F.normalize(torch.randn(len(FIELDS), M_DIM, generator=g), dim=-1)
        low, high = F.normalize(torch.randn(2, M_DIM, generator=g), dim=-1)
        text[2 * p], text[2 * p + 1] = shared, shared
        text[2 * p, START], text[2 * p, END] = low, high  # up: starts low, ends high
        text[2 * p + 1, START], text[2 * p + 1, END] = high, low  # down: the mirror image
    names = tuple(f"{'up' if c % 2 == 0 else 'down'} {c // 2}" for c in range(len(text)))
    seen = tuple(range(2 * PAIRS))
    return ClassText(names, text, seen, (2 * PAIRS, 2 * PAIRS + 1), gzsl=False)


def _nodes(labels: torch.Tensor, node_dim: int, seed: int) -> torch.Tensor:
    """Frame-local node features: pair p moves between its two poses, low to high ("up") or back ("down")."""
    poses = F.normalize(torch.randn(PAIRS + 1, 2, node_dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    g = torch.Generator().manual_seed(seed)
    level = torch.linspace(0.0, 1.0, FRAMES)[:, None, None]
    rows = []
    for y in labels.tolist():
        course = level if y % 2 == 0 else level.flip(0)  # the same poses, in the opposite order
        low, high = poses[y // 2]
        frames = 3.0 * ((1 - course) * low + course * high) + 0.3 * torch.randn(FRAMES, JOINTS, node_dim, generator=g)
        rows.append(frames.reshape(FRAMES * JOINTS, node_dim))
    return torch.stack(rows)


def _module(backbone, partitioner, **kw) -> PurlsModule:
    module = PurlsModule(_mirror_text(), "ntu25", FrozenBackbone(str(backbone)), partitioner=partitioner, **kw)
    module.node_features = lambda x, index=None: x  # the generated nodes stand in for the backbone's
    return module


def _reverse_time(nodes: torch.Tensor) -> torch.Tensor:
    b, s, n = nodes.shape
    return nodes.view(b, FRAMES, JOINTS, n).flip(1).reshape(b, s, n)


@pytest.mark.parametrize("part", [GlobalPartitioner, StaticPartitioner, AdaptivePartitioner])
def test_global_pooling_cannot_tell_time_reversed_sequences_apart(tiny_backbone, part):
    module = _module(tiny_backbone, part).eval()
    nodes = _nodes(torch.tensor([0, 1, 2, 3]), module.backbone.out_channels, seed=1)
    with torch.no_grad():
        forward = module.score(nodes, module.seen_text)
        backward = module.score(_reverse_time(nodes), module.seen_text)
    # a mean or an attention-weighted sum over nodes is invariant to permuting them, time included
    torch.testing.assert_close(forward, backward)


def test_phase_fields_swap_mirror_image_classes_under_time_reversal(tiny_backbone):
    module = _module(tiny_backbone, StaticPartitioner, field_weight=1.0).eval()
    nodes = _nodes(torch.tensor([0, 2]), module.backbone.out_channels, seed=2)
    with torch.no_grad():
        forward = module.score(nodes, module.seen_text)  # (B, 4): up 0, down 0, up 1, down 1
        backward = module.score(_reverse_time(nodes), module.seen_text)
    # reversing time turns each "up" into its "down": the scores of a mirror pair trade places
    torch.testing.assert_close(backward, forward[:, [1, 0, 3, 2]])
    assert not torch.allclose(forward[:, 0], forward[:, 1])


def test_only_the_phase_fields_learn_the_order(tiny_backbone):
    """Trained on the mirror pairs, phase-field scoring separates them; global scoring stays at chance within
    a pair (it tells the pairs apart, not their direction)."""
    torch.manual_seed(0)
    module = _module(tiny_backbone, StaticPartitioner, field_weight=1.0)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=0.01)
    dim = module.backbone.out_channels
    for step in range(150):
        labels = torch.randint(0, 2 * PAIRS, (32,))
        loss = module.training_step(SkeletonBatch(_nodes(labels, dim, seed=100 + step), labels), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    labels = torch.arange(2 * PAIRS).repeat(50)
    with torch.no_grad():
        out = module.candidate_scores(_nodes(labels, dim, seed=7), module.seen_text)
    with_phases = (out.scores.argmax(-1) == labels).float().mean().item()
    global_only = (out.global_scores.argmax(-1) == labels).float().mean().item()
    same_pair = (out.global_scores.argmax(-1) // 2 == labels // 2).float().mean().item()
    per_field = (out.fields.argmax(1) == labels[:, None]).float().mean(0)  # (D,): each field's own ranking
    assert per_field[START] > 0.95 and per_field[END] > 0.95, per_field
    assert with_phases > 0.95, with_phases
    assert same_pair > 0.95 and global_only < 0.7, (same_pair, global_only)  # right pair, coin-flip direction
