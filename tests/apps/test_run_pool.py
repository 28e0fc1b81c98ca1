"""Running many runs: requests (arguments, configs, backbone, code) decide reuse; the pool's workers."""

import pytest

from purls_pl.apps import run_pool
from purls_pl.apps.run_pool import Progress, RunPool, code_digest, request_hash, run_once


def test_a_changed_request_is_rerun_and_the_old_run_kept(tmp_path, monkeypatch):
    calls = []
    run_dir = tmp_path / "run"
    config = tmp_path / "a.yaml"
    config.write_text("x: 1\n")
    args = ["fit", "--config", str(config), "--trainer.default_root_dir=/anywhere"]
    assert run_once(run_dir, args, None, lambda: calls.append(1)) is not None
    assert run_once(run_dir, args, None, lambda: calls.append(2)) is None and calls == [1]
    moved = [*args[:-1], "--trainer.default_root_dir=/elsewhere"]  # where a run writes is not what it computes
    assert request_hash(moved) == request_hash(args)
    config.write_text("x: 2\n")  # a config file's content is
    assert run_once(run_dir, args, None, lambda: calls.append(3)) is not None and calls == [1, 3]
    monkeypatch.setattr(run_pool, "code_digest", lambda: "other code")  # and so is the package's code
    assert run_once(run_dir, args, None, lambda: calls.append(4)) is not None and calls == [1, 3, 4]
    stale = [p for p in tmp_path.iterdir() if p.name.startswith("run.stale-")]
    assert len(stale) >= 1 and (run_dir / "done").is_file(), "old runs are moved aside, never deleted"


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
