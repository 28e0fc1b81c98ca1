"""The same seed and config give the same run twice on CPU: through the command line, the tiny demo
(dropout and the seeded shuffling on) is fitted twice in-process; the final weights are equal
(``torch.equal``) and the zero-shot results identical. The CLI also installs the atomic checkpoint
writer."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from purls_pl.apps.experiments import experiment_args
from purls_pl.train import cli
from purls_pl.train.checkpoint_io import AtomicCheckpointIO

REPO = Path(__file__).resolve().parents[2]


def _run(root: Path, clip: Path, backbone: Path) -> tuple[dict, dict]:
    run = cli.main(
        [
            "fit",
            *experiment_args("demo_15_5", root=REPO / "experiments"),
            "--data.source.init_args.samples_per_class=4",
            "--data.source.init_args.num_frames=12",
            f"--data.text_encoder.model={clip}",
            "--data.batch_size=8",
            "--data.eval_batch_size=16",
            f"--model.backbone.checkpoint={backbone}",
            "--model.partitioner.init_args.attn_dim=16",
            "--model.proj_hidden=32",
            "--model.lr=0.003",
            "--trainer.max_epochs=2",
            "--trainer.precision=32-true",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={root}",
            "--gzsl.figures=false",
            "--zero_shot.figures=false",
        ]
    )
    assert isinstance(run.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    results = json.loads(next(root.rglob("results.json")).read_text())
    state = torch.load(next(root.rglob("last.ckpt")), weights_only=True)["state_dict"]
    return results, state


def test_same_seed_same_results(tmp_path, monkeypatch, tiny_clip, tiny_backbone):
    monkeypatch.chdir(REPO)
    first, weights_a = _run(tmp_path / "a", tiny_clip, tiny_backbone)
    second, weights_b = _run(tmp_path / "b", tiny_clip, tiny_backbone)
    assert weights_a.keys() == weights_b.keys()
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key
    for key in ("test/zsl_top1", "test/zsl_top5", "test/zsl_mean_class", "per_class", "confusion", "gzsl"):
        assert first[key] == second[key], key
