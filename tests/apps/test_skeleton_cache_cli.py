"""Skeleton-Cache through the CLI, each run in its own process: ``--test_time_cache.*`` reaches the method's
evaluation, is recorded in the run's config, and with α = 0 leaves the method's zero-shot results as they were."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from conftest import NW_UCLA_STAND_IN

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def _fit(root: Path, backbone: Path, tiny_clip: str, *extra: str) -> dict:
    env = {**os.environ, "PURLS_PROGRESS": "off"}
    args = [
        *("fit", "--config", str(EXPERIMENTS / "purls.yaml"), "--config", str(EXPERIMENTS / "nw-ucla.yaml")),
        *("--config", str(EXPERIMENTS / "global.yaml"), "--data.split=nw-ucla_8_2", *NW_UCLA_STAND_IN),
        f"--data.text_encoder.model={tiny_clip}",
        f"--model.backbone.checkpoint={backbone}",
        f"--trainer.default_root_dir={root}",
        "--trainer.max_epochs=1",
        "--zero_shot.figures=false",
        "--gzsl.figures=false",
        *extra,
    ]
    done = subprocess.run([sys.executable, "-m", "purls_pl", *args], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = root.rglob("results.json")
    config = yaml.safe_load(next(root.rglob("config.yaml")).read_text())
    return {**json.loads(results.read_text()), "config": config}


def test_the_cache_options_reach_the_evaluation_and_alpha_zero_changes_nothing(tmp_path, tiny_clip):
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    torch.manual_seed(0)
    net = ShiftGCN(layout="kinect20", num_persons=1, channels=[8, 16], strides=[1, 2])
    backbone = export_backbone(net, tmp_path / "b.pt")
    plain = _fit(tmp_path / "plain", backbone, tiny_clip)
    off = _fit(tmp_path / "off", backbone, tiny_clip, "--test_time_cache.enabled=true", "--test_time_cache.alpha=0")
    on = _fit(
        tmp_path / "on",
        backbone,
        tiny_clip,
        "--test_time_cache.enabled=true",
        "--test_time_cache.alpha=50",
        "--test_time_cache.prior=text",
    )
    assert plain["config"]["test_time_cache"]["enabled"] is False
    assert on["config"]["test_time_cache"] == {**off["config"]["test_time_cache"], "alpha": 50.0, "prior": "text"}
    keys = [k for k in plain if k.startswith("test/") and isinstance(plain[k], float)]
    # α = 0: the cache is wired in and adds nothing; its standardised scores keep every ranking
    assert keys and all(off[k] == plain[k] for k in keys)
    # a heavy cache moves the scores (the seen/unseen curve over γ; on 8 test samples top-1 may not change)
    assert on["complete"] and on["gzsl"]["curve"] != plain["gzsl"]["curve"]
