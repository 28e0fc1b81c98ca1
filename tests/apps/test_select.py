"""Model selection on validation classes: the coordinate search, the epoch and γ choice, the written
config delta that make train and the table runner compose, and one real selection run on the demo."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from purls_pl.apps.experiments import experiment_files, selection_file
from purls_pl.apps.options import parse_options, render_options
from purls_pl.apps.run_pool import PoolOptions
from purls_pl.apps.select import (
    PURLS_SEARCH,
    Selection,
    SelectOptions,
    Trial,
    best_trial,
    coordinate_search,
    nested,
    plan_selection,
    select,
    write_selection,
)
from purls_pl.data.splits import get_split
from purls_pl.train.paths import backbone_export_path

REPO = Path(__file__).resolve().parents[2]


def _curve(*top1: float, gamma: float = 0.1) -> list[dict[str, float]]:
    return [{"epochs": e + 1, "val/zsl_top1": v, "val/gzsl_gamma": gamma} for e, v in enumerate(top1)]


def test_trial_scores_its_best_epoch_averaged_over_folds():
    trial = Trial({"model.lr": 0.001}, [_curve(0.5, 0.7, 0.6, gamma=0.1), _curve(0.5, 0.6, 0.8, gamma=0.3)])
    assert trial.mean() == [0.5, 0.65, 0.7] and trial.best == (3, 0.7)
    assert trial.gamma(3) == pytest.approx(0.2)
    tie = Trial({}, [_curve(0.5, 0.7, 0.7)])
    assert tie.best == (2, 0.7), "of equal epochs, the earlier"


def test_coordinate_search_settles_one_key_at_a_time():
    scores = {  # (lr, alpha) -> validation accuracy
        (0.001, "learnable"): 0.5,
        (0.003, "learnable"): 0.6,
        (0.0003, "learnable"): 0.6,  # a tie: the earlier value (0.003) is kept
        (0.003, "uniform"): 0.55,
    }
    calls = []

    def evaluate(settings):
        batches.append(len(settings))
        calls.extend(dict(o) for o in settings)
        return [Trial(o, [_curve(scores[(o["model.lr"], o["model.alpha"])])]) for o in settings]

    batches: list[int] = []
    search = {"model.lr": [0.001, 0.003, 0.0003], "model.alpha": ["learnable", "uniform"]}
    trials = coordinate_search(search, evaluate)
    assert len(calls) == len(trials) == 4, "every setting runs once"
    assert batches == [3, 1], "a key's values run together (side by side in a pool); known settings are recalled"
    assert best_trial(trials, search).overrides == {"model.lr": 0.003, "model.alpha": "learnable"}


def test_written_selection_is_a_config_delta_that_runs_compose(tmp_path):
    for name in ("purls.yaml", "demo.yaml"):
        (tmp_path / name).write_text("{}\n")
    assert experiment_files("demo_15_5", root=tmp_path) == [tmp_path / "purls.yaml", tmp_path / "demo.yaml"]
    overrides = {"model.lr": 0.003, "trainer.max_epochs": 7, "gzsl.gamma": 0.05}
    record = {"stage": "purls", "folds": [[1, 2]], "seed": 0, "max_epochs": 20, "git_commit": "abc", "date": "d"}
    record["trials"] = [{"overrides": {"model.lr": 0.003}, "best": [7, 0.6]}]
    path = write_selection(Selection("demo_15_5", "purls", overrides, [], record), tmp_path)
    assert path == selection_file("demo_15_5", "purls", tmp_path) and path.with_suffix(".json").is_file()
    assert yaml.safe_load(path.read_text()) == nested(overrides)
    assert "never on its unseen classes" in path.read_text()
    assert experiment_files("demo_15_5", root=tmp_path)[-1] == path, "make train composes it last"
    assert experiment_files("demo_15_5", root=tmp_path, selected=None)[-1] == tmp_path / "demo.yaml"


def test_selection_on_the_demo(tmp_path, tiny_clip, monkeypatch):
    monkeypatch.chdir(REPO)
    lines: list[str] = []
    options = SelectOptions(
        "demo_15_5",
        search={"model.lr": [0.001, 0.01]},
        folds=2,
        max_epochs=2,
        out=str(tmp_path),
        set=(
            f"--data.text_encoder.model={tiny_clip}",
            "--data.source.init_args.samples_per_class=6",
            "--data.source.init_args.num_frames=12",
        ),
        pretrain=(
            "--trainer.max_epochs=1",
            "--model.backbone.init_args.channels=[8,16]",
            "--model.backbone.init_args.strides=[1,2]",
        ),
    )
    chosen = select(options, log=lines.append)
    assert set(chosen.overrides) == {"model.lr", "trainer.max_epochs", "gzsl.gamma"}
    assert chosen.overrides["model.lr"] in (0.001, 0.01) and chosen.overrides["trainer.max_epochs"] in (1, 2)
    assert len(chosen.trials) == 2 and all(len(t.curves) == 2 for t in chosen.trials)
    folds = chosen.record["folds"]
    assert len(folds) == 2 and not set(folds[0]) & set(folds[1]), "disjoint validation folds"
    assert (tmp_path / "backbones" / "demo_15_5-val1" / "seed0.pt").is_file(), "a backbone per fold"
    assert sum("stage 1" in line for line in lines) == 2  # one line per fold's backbone
    command = chosen.record["command"]
    assert command[:5] == ["python", "-m", "purls_pl", "select", "demo_15_5"]
    again = parse_options(command[4:], (SelectOptions,), "select", "")[0]
    assert again == replace(options, name="purls"), "the recorded command parses back to the options"


def test_the_select_command_line_is_generated_from_its_options(capsys):
    argv = ["nw-ucla_8_2", "--stage", "global", "--max-epochs", "3", "--search", "{model.lr: [0.1, 0.2]}"]
    argv += ["--set=--data.num_workers=0", "--set=--model.lr=1", "--pretrain=--trainer.max_epochs=1", "--jobs", "2"]
    options, pool = parse_options(argv, (SelectOptions, PoolOptions), "select", "")
    assert options == SelectOptions(
        "nw-ucla_8_2",
        stage="global",
        max_epochs=3,
        search={"model.lr": [0.1, 0.2]},
        set=("--data.num_workers=0", "--model.lr=1"),
        pretrain=("--trainer.max_epochs=1",),
    )
    assert (pool.jobs, pool.threads) == (2, 1)
    assert parse_options(render_options(options), (SelectOptions,), "select", "")[0] == options
    assert "--max-epochs" in render_options(options) and "--set=--model.lr=1" in render_options(options)
    with pytest.raises(SystemExit):
        parse_options(["--stage", "purls"], (SelectOptions,), "select", "")  # no split, no recipe
    assert "name a split, or give --recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options(["x", "--stage", "backbone"], (SelectOptions,), "select", "")
    assert "a selection's stage is one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options(["--help"], (SelectOptions, PoolOptions), "select", "")
    usage = capsys.readouterr().out
    assert "--max-epochs MAX_EPOCHS" in usage and "epochs per trial" in usage and "(default: 20)" in usage


def test_a_selection_plan_names_its_runs_before_running(tmp_path):
    for name in ("purls.yaml", "demo.yaml", "backbone.yaml", "demo_backbone.yaml"):
        (tmp_path / name).write_text("{}\n")
    options = SelectOptions("demo_15_5", folds=2, experiments=str(tmp_path), out=str(tmp_path / "out"))
    options = replace(options, set=("--data.source.init_args.root=/d", "--model.x=1"), pretrain=("--trainer.y=2",))
    plan = plan_selection(options)
    assert plan.options.name == "purls" and plan.search == PURLS_SEARCH and plan.split == get_split("demo_15_5")
    assert [r.export_path for r in plan.stage1] == [
        backbone_export_path(f"demo_15_5-val{f}", 0, tmp_path / "out") for f in (0, 1)
    ]
    assert all(r.overrides == ("--trainer.y=2",) and r.data_root == "/d" for r in plan.stage1)
    trial = plan.trial({"model.lr": 0.1}, 1)
    assert trial.backbone == plan.stage1[1].export_path and trial.overrides == ("--model.lr=0.1", "--model.x=1")
    assert trial.data_root == "/d" and trial.fold == 1 and trial.max_epochs == 20 and trial.selected is None
    moved = plan_selection(replace(options, set=("--data.source.init_args.root=/elsewhere", "--model.x=1")))
    assert moved.trial({"model.lr": 0.1}, 1).root_dir == trial.root_dir, "trials are keyed by what they compute"
