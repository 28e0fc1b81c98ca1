"""A run's outputs and its status, through the CLI as a user runs it (each command its own process).

Tiny demo runs (4 samples per class, 12 frames, one epoch, the tiny random CLIP tower and Shift-GCN of
``conftest.py``); failures are injected from a ``sitecustomize.py`` put first on ``PYTHONPATH``:

* a full disk while ``confusion.png`` is saved (after ``results.json`` was first written);
* a process killed (``os._exit``) as epoch 1 starts, after epoch 0's ``last.ckpt`` was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

COMPLETE = "complete"  # results.json's completion mark (purls_pl.eval.metrics.COMPLETE)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"

FAILURES = """
import os
if os.environ.get("FAIL_FIGURE"):
    import errno
    from purls_pl.eval import figures
    save = figures.save_figure
    def save_figure(fig, path):
        if os.path.basename(str(path)) == os.environ["FAIL_FIGURE"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return save(fig, path)
    figures.save_figure = save_figure
if os.environ.get("KILL_AT_EPOCH"):
    from purls_pl.models.purls_module import PurlsModule
    def on_train_epoch_start(self):
        if self.current_epoch == int(os.environ["KILL_AT_EPOCH"]):
            os._exit(137)  # killed: no hook, no cleanup
    PurlsModule.on_train_epoch_start = on_train_epoch_start
"""


def purls(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m purls_pl <args>`` in ``cwd`` with the failures above available (``env`` switches them on)."""
    hooks = cwd.parent / f"{cwd.name}-hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(FAILURES)
    path = os.pathsep.join([str(hooks), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    run_env = {**os.environ, "PYTHONPATH": path, **env}
    return subprocess.run(
        [sys.executable, "-m", "purls_pl", *args], cwd=cwd, env=run_env, capture_output=True, text=True, timeout=300
    )


def demo_fit(clip: Path, backbone: Path, *extra: str) -> list[str]:
    """``fit`` arguments of the tiny demo run (``extra`` appended)."""
    return [
        "fit",
        *("--config", str(EXPERIMENTS / "purls.yaml"), "--config", str(EXPERIMENTS / "demo.yaml")),
        "--data.split=demo_15_5",
        "--data.source.init_args.samples_per_class=4",
        "--data.source.init_args.num_frames=12",
        "--data.batch_size=16",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--data.text_encoder.model={clip}",
        f"--model.backbone.checkpoint={backbone}",
        *extra,
    ]


def report(cwd: Path, *roots: Path) -> str:
    out = purls(["report", *map(str, roots)], cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def table_row(table: str, version: int) -> list[str]:
    """The cells of the report row of ``demo_15_5`` version ``version``."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| demo")]
    found = [r for r in rows if r[-2] == str(version)]
    assert len(found) == 1, table
    return found[0]


def test_a_run_that_failed_after_its_test_is_reported_incomplete(tmp_path, tiny_clip, tiny_backbone):
    runs = tmp_path / "runs"
    failed = purls(demo_fit(tiny_clip, tiny_backbone, f"--trainer.default_root_dir={runs}"), tmp_path,
                   FAIL_FIGURE="confusion.png")  # fmt: skip
    assert failed.returncode != 0 and "No space left on device" in failed.stderr
    record = json.loads((runs / "demo_15_5" / "version_0" / "results.json").read_text())
    assert record[COMPLETE] is False and "gzsl" not in record  # the test wrote its metrics, then crashed
    assert purls(demo_fit(tiny_clip, tiny_backbone, f"--trainer.default_root_dir={runs}"), tmp_path).returncode == 0
    assert json.loads((runs / "demo_15_5" / "version_1" / "results.json").read_text())[COMPLETE] is True

    table = report(tmp_path, runs / "demo_15_5")
    assert table_row(table, 0)[-1] == "**incomplete**" and table_row(table, 1)[-1] == "finished"
    assert "1 of 2 runs are not finished" in table
    fields = purls(["report", str(runs / "demo_15_5"), "--fields"], tmp_path).stdout.split("field alone")[1]
    assert len([line for line in fields.splitlines() if line.startswith("| demo_15_5 |")]) == 1  # the finished one


def test_a_killed_run_resumes_in_its_own_version(tmp_path, tiny_clip, tiny_backbone):
    runs = tmp_path / "runs"
    # A final fit writes last.ckpt only when it ends; keeping the latest epoch's checkpoint gives one to resume.
    common = [f"--trainer.default_root_dir={runs}", "--trainer.max_epochs=2", "--checkpoint.monitor=null"]
    killed = purls(demo_fit(tiny_clip, tiny_backbone, *common), tmp_path, KILL_AT_EPOCH="1")
    assert killed.returncode == 137
    version = runs / "demo_15_5" / "version_0"
    assert (version / "checkpoints" / "last.ckpt").is_file() and not (version / "results.json").exists()
    assert table_row(report(tmp_path, runs / "demo_15_5"), 0)[-1] == "**running or killed**"

    bad = purls(demo_fit(tiny_clip, tiny_backbone, *common, f"--ckpt_path={tmp_path / 'nope.ckpt'}"), tmp_path)
    assert bad.returncode != 0
    assert sorted(p.name for p in (runs / "demo_15_5").iterdir()) == ["version_0"]  # no empty version_1

    ckpt = f"--ckpt_path={version / 'checkpoints' / 'last.ckpt'}"
    resumed = purls(demo_fit(tiny_clip, tiny_backbone, *common, ckpt), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in (runs / "demo_15_5").iterdir()) == ["version_0"]
    record = json.loads((version / "results.json").read_text())
    assert record[COMPLETE] is True and record["epoch"] == 2  # epoch 1 trained after the resume
    assert table_row(report(tmp_path, runs / "demo_15_5"), 0)[-1] == "finished"


def test_fast_dev_run_writes_nothing_into_the_working_directory(tmp_path, tiny_clip, tiny_backbone):
    cwd = tmp_path / "work"
    cwd.mkdir()
    out = purls(demo_fit(tiny_clip, tiny_backbone, "--trainer.fast_dev_run=true"), cwd)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in cwd.iterdir()) == ["lightning_logs"]
    results = cwd / "lightning_logs" / "demo_15_5" / "fast_dev_run" / "results.json"
    assert json.loads(results.read_text())["fast_dev_run"] is True
    row = next(line for line in report(cwd, cwd / "lightning_logs").splitlines() if line.startswith("| demo"))
    assert row.endswith("| **fast_dev_run** |")  # listed as what it is, with no metrics
    assert row.startswith("| demo_15_5/fast_dev_run | – | – | – |")


def test_fit_prints_its_metrics_and_the_results_path(tmp_path, tiny_clip, tiny_backbone):
    runs = tmp_path / "runs"
    out = purls(demo_fit(tiny_clip, tiny_backbone, f"--trainer.default_root_dir={runs}"), tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads((runs / "demo_15_5" / "version_0" / "results.json").read_text())
    assert f"top-1 {100 * record['test/zsl_top1']:.2f} %" in out.stdout
    assert f"results: {runs / 'demo_15_5' / 'version_0' / 'results.json'}" in out.stdout
    assert "Test metric" not in out.stdout  # Lightning's own big table is off
