"""A second method through the CLI, each command in its own process: CADA-VAE is chosen by its experiment
file alone, trains, tests, writes a checkpoint that rebuilds as CADA-VAE, and recognises actions by name."""

import json
import subprocess
from pathlib import Path

import numpy as np
import torch
from conftest import NW_UCLA_STAND_IN, run_purls

from purls_pl.models.cada_vae import CadaVae
from purls_pl.models.method import ZeroShotMethod

REPO = Path(__file__).resolve().parents[2]
NAMES = ["drink water", "pick up with two hands", "sit down"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_purls(*args)


def test_cada_vae_fits_tests_and_recognises_from_its_experiment_file(tmp_path, tiny_clip):
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    torch.manual_seed(0)
    export = export_backbone(
        ShiftGCN(layout="kinect20", num_persons=1, channels=[8, 16], strides=[1, 2]), tmp_path / "b.pt"
    )
    experiments = REPO / "experiments"
    _run(
        "fit",
        *("--config", str(experiments / "purls.yaml"), "--config", str(experiments / "nw-ucla.yaml")),
        *("--config", str(experiments / "cada_vae.yaml"), "--data.split=nw-ucla_8_2"),
        *NW_UCLA_STAND_IN,
        f"--data.text_encoder.model={tiny_clip}",
        f"--model.backbone.checkpoint={export}",
        "--model.samples_per_class=20",
        "--model.classifier_epochs=2",
        f"--trainer.default_root_dir={tmp_path / 'runs'}",
        "--trainer.max_epochs=2",
        "--zero_shot.figures=false",
        "--gzsl.figures=false",
    )
    (run,) = (p.parent for p in (tmp_path / "runs").rglob("results.json"))
    assert run.parent.name == "nw-ucla_8_2-cada_vae"  # a variant: its own run folder beside PURLS'
    results = json.loads((run / "results.json").read_text())
    assert results["complete"] and 0.0 <= results["test/zsl_top1"] <= 1.0 and "gzsl" in results
    ckpt = next(run.rglob("last.ckpt"))
    module = ZeroShotMethod.from_checkpoint(ckpt)
    assert isinstance(module, CadaVae) and module.hparams.samples_per_class == 20
    export.unlink()  # the checkpoint alone must suffice
    clip = tmp_path / "clip.npy"
    np.save(clip, np.random.default_rng(0).normal(size=(1, 17, 20, 3)).astype(np.float32))
    done = _run("recognize", str(clip), "--ckpt", str(ckpt), "--candidates", ",".join(NAMES), "--json")
    ranking = json.loads(done.stdout.strip().splitlines()[-1])["ranking"]
    assert sorted(name for name, _ in ranking) == sorted(NAMES)
    scores = [score for _, score in ranking]
    assert scores == sorted(scores, reverse=True) and np.isclose(np.exp(scores).sum(), 1.0, atol=1e-4)
