"""Shared fixtures: the read-only ../shared data, an isolated cache, tiny components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PURLS_SHARED_DIR", REPO.parent / "shared"))


#: Stage-2 overrides that stand random NW-UCLA-shaped skeletons (kinect20, 1 person, 12 frames) in for the
#: dataset: a fast, data-free run of an NW-UCLA split.
NW_UCLA_STAND_IN: tuple[str, ...] = (
    "--data.source=purls_pl.data.random_source.RandomSkeletonSource",
    "--data.source.init_args.dataset=nw-ucla",
    "--data.source.init_args.layout=kinect20",
    "--data.source.init_args.num_persons=1",
    "--data.source.init_args.num_frames=12",
    "--data.source.init_args.samples_per_class=4",
    "--data.num_workers=0",
)


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


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A random CLIPTextModelWithProjection with a real (byte-level, merge-free) CLIP tokenizer."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to 256+.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=24,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(0)
    CLIPTextModelWithProjection(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Shift-GCN for the ntu25 layout (one person), exported as stage 1 would."""
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    torch.manual_seed(0)
    net = ShiftGCN(layout="ntu25", num_persons=1, channels=[8, 16], strides=[1, 2])
    return export_backbone(net, tmp_path_factory.mktemp("backbone") / "tiny.pt", {"note": "random"})


def run_purls(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m purls_pl <args>`` in its own process at the repository root, as a user runs it (progress
    lines off, ``env`` added to the environment); fails the test with the command's stderr unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "purls_pl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PURLS_PROGRESS": "off", **env},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
