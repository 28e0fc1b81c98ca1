"""A signal ends a table or a selection with a non-zero exit (128 + signum), stops the pool's workers,
and leaves no interrupted run marked as finished. Each command runs in its own process, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_table import TINY_BACKBONE
from test_table import TINY_DATA as TABLE_TINY_DATA

REPO = Path(__file__).resolve().parents[2]
TINY_DATA = [f"--set={a}" for a in TABLE_TINY_DATA]
#: Stage 1 for far longer than the test waits: the signal always arrives mid-training.
LONG_BACKBONE = ["--trainer.max_epochs=100000", *TINY_BACKBONE[1:]]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _state(pid: int) -> tuple[int, str] | None:
    """``(parent pid, state)`` of a live process (``None``: gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (int(fields[1]), fields[0])


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (state := _state(int(entry.name))) is not None:
            children.setdefault(state[0], []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (cwd / "log.txt").open("w")
    return subprocess.Popen([sys.executable, "-m", "purls_pl", *args], cwd=cwd, env=env, stdout=log, stderr=log)


def _wait_for(condition, process: subprocess.Popen, what: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ended before {what}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _stopped(process: subprocess.Popen, tmp_path: Path) -> int:
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(
            "still running 60 s after the signal: " + (tmp_path / "log.txt").read_text()[-2000:]
        ) from None


def test_a_table_stopped_by_sigterm_exits_143_and_stops_its_workers(tmp_path, tiny_clip):
    spec = {
        "name": "signals",
        "splits": ["demo_15_5"],
        "seeds": [0, 1],  # two stage-1 runs, side by side in two worker processes
        "experiments": str(REPO / "experiments"),
        "common": [f"--data.text_encoder.model={tiny_clip}", "--trainer.max_epochs=1"],
        "pretrain": LONG_BACKBONE,
        "rows": [{"name": "PURLS"}],
    }
    (tmp_path / "table.yaml").write_text(yaml.safe_dump(spec))
    table = _start(["table", "table.yaml", "--out", "out", "--jobs", "2", "--threads", "1", *TINY_DATA], tmp_path)
    runs = [tmp_path / "out" / "backbones" / "demo_15_5" / f"seed{s}" for s in (0, 1)]
    try:
        _wait_for(lambda: all((r / "request.json").is_file() for r in runs), table, "both runs", tmp_path / "log.txt")
        time.sleep(3)  # well into training
        workers = _descendants(table.pid)
        assert len(workers) >= 2
        table.send_signal(signal.SIGTERM)
        assert _stopped(table, tmp_path) == 128 + signal.SIGTERM
    finally:
        if table.poll() is None:
            table.kill()
    deadline = time.monotonic() + 20
    while any(_state(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in workers if _state(p)], "no worker outlives the table"
    assert not any((r / "done").exists() for r in runs), "an interrupted run is not finished"
    assert not (tmp_path / "out" / "table.md").exists()


def test_a_selection_stopped_by_sigterm_exits_143_and_writes_nothing(tmp_path, tiny_clip):
    experiments = tmp_path / "experiments"
    for name in ("purls.yaml", "backbone.yaml", "demo.yaml", "demo_backbone.yaml", "sources/demo.yaml"):
        (experiments / name).parent.mkdir(parents=True, exist_ok=True)
        (experiments / name).write_text((REPO / "experiments" / name).read_text())
    args = ["select", "demo_15_5", "--search", "{model.lr: [0.001]}", "--out", "out", "--jobs", "1"]
    args += ["--experiments", str(experiments), f"--set=--data.text_encoder.model={tiny_clip}", *TINY_DATA]
    select = _start([*args, *(f"--pretrain={a}" for a in LONG_BACKBONE)], tmp_path)  # in this one process
    run = tmp_path / "out" / "backbones" / "demo_15_5-val0" / "seed0"
    try:
        started = lambda: (run / "request.json").is_file() and any((tmp_path / "out").rglob("config.yaml"))  # noqa: E731
        _wait_for(started, select, "stage 1 to train", tmp_path / "log.txt")
        time.sleep(2)  # in the fit loop: Lightning's SIGTERM handler (exit status 0) is installed
        select.send_signal(signal.SIGTERM)
        assert _stopped(select, tmp_path) == 128 + signal.SIGTERM
    finally:
        if select.poll() is None:
            select.kill()
    assert not (run / "done").exists() and not (experiments / "selected").exists()
