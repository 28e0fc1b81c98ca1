"""Progress lines: done/total, rate, elapsed and time left, at most every interval and at the end, on
stderr through a pipe when nothing configured logging."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from purls_pl import progress as progress_mod
from purls_pl.progress import Progress


def test_lines_come_at_most_every_interval_and_once_at_the_end(monkeypatch, caplog):
    now = [0.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: now[0])
    with caplog.at_level("INFO", logger="purls_pl.progress"):
        with Progress(6, "converting x", "file", interval=10.0) as bar:  # starts at 0 s
            for now[0] in (1.0, 4.0, 11.0, 12.0, 25.0):
                bar.update()
            now[0] = 30.0
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "converting x: 3/6 files (50%), 0.273 files/s, 0:11 elapsed, 0:11 left",
        "converting x: 5/6 files (83%), 0.2 files/s, 0:25 elapsed, 0:05 left",
    ]  # stopped at 5 of 6: no final line (the error that stopped it speaks)


def test_a_finished_phase_logs_its_final_line_once_and_an_empty_one_none(caplog):
    with caplog.at_level("INFO", logger="purls_pl.progress"):
        Progress(0, "nothing").close()
        bar = Progress(2, "two", "file", interval=1e9)
        bar.update(2)
        bar.close()
        bar.close()
    assert [r.getMessage().split(", ")[0] for r in caplog.records] == ["two: 2/2 files (100%)"]


@pytest.mark.parametrize("interval", ["0", "10"])
def test_the_lines_reach_a_piped_stderr_without_any_logging_setup(interval):
    code = "from purls_pl.progress import track\nfor _ in track(range(4), 4, 'encoding text', 'prompt'): pass"
    env = {**os.environ, "PURLS_PROGRESS_SECONDS": interval}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("encoding text: 4/4 prompts (100%), ") and lines[-1].endswith(" elapsed, done")
    assert len(lines) == (4 if interval == "0" else 1) and "\r" not in done.stderr
