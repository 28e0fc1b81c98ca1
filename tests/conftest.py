"""Shared fixtures: the read-only ../shared data, an isolated cache, tiny components."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PURLS_SHARED_DIR", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test cleanly when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is not available")
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session writes caches under a temp dir, never the user's ~/.cache."""
    os.environ["PURLS_CACHE_DIR"] = str(tmp_path_factory.mktemp("purls_cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def repo() -> Path:
    return REPO
