"""Running many runs: requests (arguments, configs, backbone, code) decide reuse; the pool's workers."""

import json
from dataclasses import replace

import pytest

from purls_pl.apps import run_pool
from purls_pl.apps.run_pool import Job, Progress, RunPool, code_digest, request_hash, run_once
from purls_pl.apps.run_request import RunRequest, take_data_root
from purls_pl.data.splits import get_split
from purls_pl.train.paths import backbone_export_path


def test_a_changed_request_is_rerun_and_the_old_run_kept(tmp_path, monkeypatch):
    calls = []
    for name in ("purls.yaml", "demo.yaml"):
        (tmp_path / name).write_text("x: 1\n")
    request = RunRequest(
        "purls", get_split("demo_15_5"), 0, tmp_path / "run", ("--model.lr=0.1",), experiments=tmp_path
    )
    job = Job(request)
    assert run_once(job, lambda: calls.append(1)) is not None
    assert run_once(job, lambda: calls.append(2)) is None and calls == [1]
    # where a run writes and where the data lie are not what it computes
    moved = Job(replace(request, root_dir=tmp_path / "elsewhere", data_root="/data/copy"))
    assert moved.computed == job.computed and moved.args != job.args
    assert request_hash(moved.computed) == request_hash(job.computed)
    (tmp_path / "demo.yaml").write_text("x: 2\n")  # a config file's content is
    assert run_once(job, lambda: calls.append(3)) is not None and calls == [1, 3]
    monkeypatch.setattr(run_pool, "code_digest", lambda: "other code")  # and so is the package's code
    assert run_once(job, lambda: calls.append(4)) is not None and calls == [1, 3, 4]
    stale = [p for p in tmp_path.iterdir() if p.name.startswith("run.stale-")]
    assert len(stale) >= 1 and (tmp_path / "run" / "done").is_file(), "old runs are moved aside, never deleted"
    assert json.loads((tmp_path / "run" / "request.json").read_text())["args"] == list(job.args)


def test_a_request_renders_its_flags_once(tmp_path):
    """Stage 1 exports where train/paths.py names it and stage 2 reads that; the split renders as --data.split."""
    for name in ("purls.yaml", "demo.yaml", "backbone.yaml", "demo_backbone.yaml"):
        (tmp_path / name).write_text("{}\n")
    split = get_split("demo_15_5")
    stage1 = RunRequest(
        "backbone", split, 2, tmp_path / "out", ("--a=1",), fold=1, data_root="/d", experiments=tmp_path
    )
    assert stage1.export_path == backbone_export_path("demo_15_5-val1", 2, tmp_path / "out")
    assert stage1.directory == stage1.export_path.parent / "seed2" and stage1.command == "pretrain"
    assert stage1.args() == (
        "fit",
        *("--config", str(tmp_path / "backbone.yaml"), "--config", str(tmp_path / "demo_backbone.yaml")),
        "--data.split=demo_15_5",
        *("--data.protocol=select", "--data.val_fold=1", "--seed_everything=2", "--a=1"),
        f"--export.path={stage1.export_path}",
        "--data.source.init_args.root=/d",
        f"--trainer.default_root_dir={tmp_path / 'out'}",
        "--trainer.enable_progress_bar=false",
    )
    trial = RunRequest(
        "purls",
        split,
        2,
        tmp_path / "t",
        ("--b=2",),
        fold=1,
        max_epochs=3,
        backbone=stage1.export_path,
        experiments=tmp_path,
        selected=None,
    )
    tail = (
        "--seed_everything=2",
        "--trainer.max_epochs=3",
        "--b=2",
        f"--model.backbone.checkpoint={stage1.export_path}",
    )
    assert trial.computed()[-4:] == tail, "the epochs precede the overrides, which may replace them"
    assert trial.directory == tmp_path / "t" and trial.command == "fit"
    assert take_data_root(["--x=1", "--data.source.init_args.root=/a", "--data.source.init_args.root=/b"]) == (
        ("--x=1",),
        "/b",
    )
    with pytest.raises(ValueError, match="reads none"):
        replace(stage1, backbone=stage1.export_path)


def test_code_digest_covers_the_package():
    assert len(code_digest()) == 20 and code_digest() == code_digest()
    assert any(p.name == "splits.json" for p in run_pool.PACKAGE.rglob("*.json"))


def test_progress_estimates_what_is_left_per_worker():
    lines: list[str] = []
    progress = Progress(5, lines.append, parallel=2)
    progress("a", 60.0)
    progress("b", None)
    assert lines[0].startswith("[1/5] a (60 s;") and "~2.0 min left" in lines[0]  # 4 runs x 60 s / 2 workers
    assert "done before" in lines[1]


def test_pool_arguments_are_checked():
    with pytest.raises(ValueError, match="jobs"):
        RunPool(jobs=0)
