"""Stage 1: the backbone classifier learns real NW-UCLA skeletons and exports a frozen-ready backbone."""

import numpy as np
import pytest
import torch
from conftest import shared_path

from purls_pl.data.readers import Conversion, UCLASource
from purls_pl.models.backbones import ShiftGCN
from purls_pl.models.classifier import BackboneClassifier
from purls_pl.models.features import FrozenBackbone, export_backbone


def test_overfits_a_tiny_real_nw_ucla_batch(tmp_path):
    root = shared_path("data", "nw-ucla", "all_sqe")
    data = UCLASource(
        str(root),
        num_frames=20,
        conversion=Conversion(max_samples=120, cache=False),
    ).load()
    index = np.concatenate([np.flatnonzero(data.labels == c)[:4] for c in (0, 3, 5, 8)])
    x = torch.from_numpy(np.asarray(data.data[index]))
    y = torch.from_numpy(data.labels[index])
    torch.manual_seed(0)
    backbone = ShiftGCN(layout="kinect20", num_persons=1, channels=[16, 32], strides=[1, 2])
    model = BackboneClassifier(backbone, seen_classes=[0, 3, 5, 8], label_smoothing=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    targets = model._targets(y)
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), targets).backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(-1) == targets).float().mean().item() == 1.0
    with pytest.raises(RuntimeError, match="outside the seen set"):
        model._targets(torch.tensor([1]))
    frozen = FrozenBackbone(str(export_backbone(model.backbone, tmp_path / "ucla.pt")))
    torch.testing.assert_close(frozen(x[:2]).mean(1), model.backbone(x[:2]).flatten(2).transpose(1, 2).mean(1))
