"""Every experiment file parses, and a fast_dev_run of both stages runs for each (on stand-in data)."""

import json
from pathlib import Path

import pytest
import yaml

from purls_pl import cli, pretrain

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p for p in (REPO / "experiments").glob("*.yaml"))
BACKBONES = sorted((REPO / "experiments" / "backbones").glob("*.yaml"))
LAYOUTS = {
    "ntu60": "ntu25",
    "ntu120": "ntu25",
    "kinetics200": "openpose18",
    "kinetics400": "openpose18",
    "nw-ucla": "kinect20",
    "demo": "ntu25",
}


def _split(config: Path) -> str:
    return yaml.safe_load(config.read_text())["data"]["split"]


def test_every_split_has_both_stages():
    assert {p.name for p in EXPERIMENTS if not p.stem.endswith("_global")} == {p.name for p in BACKBONES}
    assert len(EXPERIMENTS) >= 15


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_print_config(config, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as stop:
        cli.main(["fit", "--config", str(config), "--print_config"])
    assert stop.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["split"] == _split(config)
    assert "class_text" not in printed["model"], "linked values must not be configurable"


@pytest.mark.parametrize("config", BACKBONES, ids=lambda p: p.stem)
def test_print_config_backbones(config, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit):
        pretrain.main(["fit", "--config", str(config), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert "seen_classes" not in printed["model"]


def _stand_in(split: str) -> list[str]:
    dataset = split.rsplit("_", 2)[0]
    persons = 1 if dataset in ("nw-ucla", "demo") else 2
    if dataset == "demo":
        return ["--data.source.init_args.samples_per_class=4", "--data.source.init_args.num_frames=12"]
    return [
        "--data.source=purls_pl.data.random_source.RandomSkeletonSource",
        f"--data.source.init_args.dataset={dataset}",
        f"--data.source.init_args.layout={LAYOUTS[dataset]}",
        f"--data.source.init_args.num_persons={persons}",
        "--data.source.init_args.num_frames=12",
    ]


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_fast_dev_run_both_stages(config, tmp_path, monkeypatch, tiny_clip):
    monkeypatch.chdir(REPO)
    split = _split(config)
    stage1 = REPO / "experiments" / "backbones" / f"{split}.yaml"
    export = tmp_path / "backbone.pt"
    common = ["--trainer.fast_dev_run=true", "--trainer.precision=32-true", f"--trainer.default_root_dir={tmp_path}"]
    common += ["--data.batch_size=4", "--data.num_workers=0", *_stand_in(split)]
    pretrain.main(
        [
            "fit",
            "--config",
            str(stage1),
            *common,
            f"--export.path={export}",
            "--model.backbone.init_args.channels=[8,16]",
            "--model.backbone.init_args.strides=[1,2]",
        ]
    )
    assert export.is_file()
    cli.main(
        [
            "fit",
            "--config",
            str(config),
            *common,
            f"--model.backbone.checkpoint={export}",
            f"--data.text_encoder.model={tiny_clip}",
            "--data.eval_batch_size=8",
        ]
    )
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert 0.0 <= results["test/zsl_top1"] <= 1.0 and results["num_unseen_classes"] == int(split.rsplit("_", 1)[1])


def test_fast_dev_run_under_bf16_autocast(tmp_path, monkeypatch, tiny_clip, tiny_backbone):
    """Mixed precision (the GPU configs use bf16-mixed): the same path under CPU autocast."""
    monkeypatch.chdir(REPO)
    cli.main(
        [
            "fit",
            "--config",
            str(REPO / "experiments" / "demo_15_5.yaml"),
            "--trainer.fast_dev_run=true",
            "--trainer.precision=bf16-mixed",
            f"--trainer.default_root_dir={tmp_path}",
            "--data.batch_size=4",
            *_stand_in("demo_15_5"),
            f"--model.backbone.checkpoint={tiny_backbone}",
            f"--data.text_encoder.model={tiny_clip}",
            "--data.eval_batch_size=8",
        ]
    )
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert 0.0 <= results["test/zsl_top1"] <= 1.0
