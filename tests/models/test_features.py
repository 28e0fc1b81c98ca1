"""Frozen backbone features: cached (float16 memmap) equals online; staleness; stage-1 learning."""

import json

import numpy as np
import pytest
import torch

from purls_pl.data.demo.motion import DemoSource
from purls_pl.models.backbones import ShiftGCN
from purls_pl.models.features import FeatureCache, FrozenBackbone, export_backbone


@pytest.fixture(scope="module")
def skeletons():
    return DemoSource(samples_per_class=3, num_frames=12).load()


def test_cached_features_equal_online(skeletons, tiny_backbone, tmp_path):
    online = FrozenBackbone(str(tiny_backbone))
    cached = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path), extract_batch_size=7)
    cached.prepare(skeletons)
    index = torch.tensor([0, 5, 17, 59])
    x = torch.from_numpy(np.asarray(skeletons.data[index.numpy()]))
    expected = online(x)
    got = cached(x, index)
    assert got.shape == expected.shape == (4, 6 * 25, 16)
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=2e-3)  # float16 storage
    assert cached.features.array.dtype == np.float16 and len(cached.features) == len(skeletons)


def test_pooling_applies_to_both_modes(skeletons, tiny_backbone, tmp_path):
    x = torch.from_numpy(np.asarray(skeletons.data[:2]))
    pooled = FrozenBackbone(str(tiny_backbone), pool_frames=3)
    assert pooled(x).shape == (2, 3 * 25, 16)
    cached = FrozenBackbone(str(tiny_backbone), pool_frames=3, cache=True, cache_dir=str(tmp_path))
    cached.prepare(skeletons)
    torch.testing.assert_close(cached(x, torch.tensor([0, 1])), pooled(x), rtol=1e-2, atol=2e-3)


def test_changed_checkpoint_or_data_rebuilds_and_unchanged_reuses(skeletons, tiny_backbone, tmp_path):
    first = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path))
    first.prepare(skeletons)
    again = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path))
    again.prepare(skeletons)
    assert again.features.directory == first.features.directory
    torch.manual_seed(1)
    other = export_backbone(
        ShiftGCN(layout="ntu25", num_persons=1, channels=[8, 16], strides=[1, 2]), tmp_path / "b.pt"
    )
    changed = FrozenBackbone(str(other), cache=True, cache_dir=str(tmp_path))
    changed.prepare(skeletons)
    assert changed.features.directory != first.features.directory
    assert not np.allclose(changed.features.array[:3], first.features.array[:3])
    other_data = DemoSource(samples_per_class=3, num_frames=12, seed=1).load()
    assert FeatureCache.key(first, other_data) != FeatureCache.key(first, skeletons)
    manifest = json.loads((first.features.directory / "manifest.json").read_text())
    assert manifest["checkpoint"] == str(tiny_backbone) and manifest["shape"] == [60, 150, 16]


def test_interrupted_extraction_leaves_no_valid_cache(skeletons, tiny_backbone, tmp_path, monkeypatch):
    backbone = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path))
    real = FeatureCache._extract

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureCache, "_extract", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        backbone.prepare(skeletons)
    assert list((tmp_path / "features").iterdir()) == []
    monkeypatch.setattr(FeatureCache, "_extract", staticmethod(real))
    backbone.prepare(skeletons)
    assert (backbone.features.directory / "manifest.json").is_file()
