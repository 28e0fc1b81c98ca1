"""Frozen backbone features: cached (float16 memmap) equals online; staleness; stage-1 learning."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_fs import tiny_fs

from purls_pl import storage
from purls_pl.data.demo.motion import DemoSource
from purls_pl.models.backbones import ShiftGCN
from purls_pl.models.features import FeatureCache, FrozenBackbone, export_backbone
from purls_pl.storage import NoSpaceError, make_build_dir


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


def test_a_feature_cache_that_does_not_fit_is_refused_with_the_sizes_and_the_fix(skeletons, tiny_backbone, tmp_path):
    """60 samples x 150 nodes x 16 channels float16 = 288 kB; a 200 kB disk (tmpfs rounds to pages) is too small."""
    with tiny_fs(tmp_path / "small", size="200k") as small:
        backbone = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(small))
        with pytest.raises(NoSpaceError) as err:
            backbone.prepare(skeletons)
        message = str(err.value)
        assert message.startswith(f"{small / 'features'}: the feature cache (60, 150, 16) float16 needs 288.0 kB")
        assert message.endswith(
            "free; set PURLS_CACHE_DIR (or model.backbone.cache_dir) to a directory on a disk with enough free space, "
            "or lower model.backbone.pool_frames (now None) to shrink the cache"
        )
        assert list((small / "features").iterdir()) == []


def test_a_disk_that_fills_during_extraction_is_an_error_not_a_sigbus(skeletons, tiny_backbone, tmp_path, monkeypatch):
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 40, 0, 1 << 40))
    with tiny_fs(tmp_path / "small", size="200k") as small:
        backbone = FrozenBackbone(str(tiny_backbone), pool_frames=6, cache=True, cache_dir=str(small))
        with pytest.raises(NoSpaceError, match=r"features: the feature cache needs 288.\d kB .*pool_frames \(now 6\)"):
            backbone.prepare(skeletons)
        assert list((small / "features").iterdir()) == []


def test_the_next_extraction_removes_the_folder_a_killed_one_left(skeletons, tiny_backbone, tmp_path):
    backbone = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path))
    root = tmp_path / "features"
    key = FeatureCache.key(backbone, skeletons)
    mine = make_build_dir(root, f".{key}.")
    (mine / "features.npy").write_bytes(b"partial")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = mine.rename(mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{int(dead.stdout)}.")))
    other = make_build_dir(root, ".0123456789abcdef01234567.")  # another cache's build
    for d in (killed, other):
        os.utime(d, (d.stat().st_mtime - 60,) * 2)
    backbone.prepare(skeletons)
    assert sorted(p.name for p in root.iterdir()) == sorted([key, other.name])


def test_extraction_logs_progress_lines(skeletons, tiny_backbone, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PURLS_PROGRESS_SECONDS", "0")
    backbone = FrozenBackbone(str(tiny_backbone), cache=True, cache_dir=str(tmp_path), extract_batch_size=25)
    with caplog.at_level("INFO", logger="purls_pl.progress"):
        backbone.prepare(skeletons)
    lines = [r.getMessage().split(", ")[0] for r in caplog.records if r.name == "purls_pl.progress"]
    assert lines == [f"extracting features: {n}/60 samples ({p}%)" for n, p in ((25, 42), (50, 83), (60, 100))]
