"""Nothing the project loads unpickles arbitrary objects: a checkpoint or cache file carrying a pickled
payload (here: one that would create a marker file when unpickled) is refused, and the payload never runs.

Covered: a Lightning checkpoint through :meth:`PurlsModule.from_checkpoint` and through the CLI's
:class:`AtomicCheckpointIO` (resume, ``--ckpt_path``), the text-embedding cache, a backbone export, the
feature cache and a YAML config with a Python tag.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning import Trainer

from purls_pl.integrity import FileRefused
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.purls_module import PurlsModule
from purls_pl.text.encoder import ClassText
from purls_pl.train.checkpoint_io import AtomicCheckpointIO


class Payload:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload_ran"


def _module(tiny_backbone: Path) -> PurlsModule:
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(6, 8, 12), dim=-1)
    text = ClassText(tuple(f"c{i}" for i in range(6)), emb, (0, 1, 2, 4), (3, 5))
    return PurlsModule(text, "ntu25", FrozenBackbone(str(tiny_backbone)))


@pytest.fixture
def lightning_checkpoint(tmp_path, tiny_backbone) -> Path:
    """A real Lightning checkpoint of a PURLS module (``Trainer.save_checkpoint``)."""
    trainer = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(_module(tiny_backbone))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def _tamper(path: Path, marker: Path) -> None:
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"] = {"lr": Payload(marker)}
    torch.save(checkpoint, path)


def test_clean_checkpoint_loads(lightning_checkpoint):
    module = PurlsModule.from_checkpoint(lightning_checkpoint)
    assert module.class_names == tuple(f"c{i}" for i in range(6))
    assert "state_dict" in AtomicCheckpointIO().load_checkpoint(lightning_checkpoint)


def test_tampered_checkpoint_is_refused(lightning_checkpoint, marker):
    _tamper(lightning_checkpoint, marker)
    refusal = rf"^{lightning_checkpoint}: this checkpoint holds pickled Python objects \(.*open.*\).*was not loaded"
    with pytest.raises(FileRefused, match=refusal) as refused:
        PurlsModule.from_checkpoint(lightning_checkpoint)
    assert "weights_only" not in str(refused.value)  # never the advice to turn the check off
    with pytest.raises(FileRefused, match=refusal):  # what `fit --ckpt_path` / resume goes through in the CLI
        AtomicCheckpointIO().load_checkpoint(lightning_checkpoint)
    assert not marker.exists()


def test_tampered_text_cache_is_not_unpickled(tiny_clip, tmp_path, marker):
    from purls_pl.text.encoder import TextEncoder

    encoder = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    texts = ["a person waves"]
    expected = encoder.encode_cached(texts)
    (cached,) = (tmp_path / "text").glob("*.pt")
    torch.save(Payload(marker), cached)
    torch.testing.assert_close(encoder.encode_cached(texts), expected)  # refused, then re-encoded
    assert not marker.exists()


def test_tampered_backbone_export_is_refused(tiny_backbone, tmp_path, marker):
    from purls_pl.models.features import load_backbone

    payload = torch.load(tiny_backbone, weights_only=True)
    payload["meta"] = {"note": Payload(marker)}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(FileRefused, match=r"evil\.pt: this backbone export holds pickled Python objects"):
        load_backbone(tmp_path / "evil.pt")
    assert not marker.exists()


def test_tampered_feature_cache_is_refused(tmp_path, marker):
    from purls_pl.models.features import FeatureCache

    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1}))
    np.save(tmp_path / "features.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        FeatureCache(tmp_path)
    assert not marker.exists()


def test_yaml_config_with_python_tag_is_refused(tmp_path, marker, capsys):
    from purls_pl.train import cli

    config = tmp_path / "evil.yaml"
    config.write_text(f"seed_everything: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(SystemExit):
        cli.main(["fit", "--config", str(config), "--print_config"])
    assert "could not determine a constructor for the tag" in capsys.readouterr().err
    assert not marker.exists()
