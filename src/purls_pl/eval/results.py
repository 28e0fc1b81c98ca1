"""A run's ``results.json``: where it is, how callbacks add to it, when it is complete, and a run's status.

A test writes ``results.json`` with ``"complete": false`` first; the callbacks and the provenance add
their parts; ``"complete": true`` is written last (:func:`mark_complete`, at the test's teardown, which
Lightning reaches only when every hook succeeded). A run that failed after its first write (a full disk
while saving ``confusion.png``) therefore keeps ``"complete": false`` and is reported as incomplete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purls_pl.eval.metrics import (
    COMPLETE,
    RESULTS_FILE,
    TEST_MEAN_CLASS,
    TEST_TOP1,
    TEST_TOP5,
    VAL_CURVE_FILE,
    reports_top5,
)
from purls_pl.storage import update_json

if TYPE_CHECKING:  # pragma: no cover - the report reads results without loading Lightning
    from pytorch_lightning import Trainer

#: A run's status (:func:`run_status`): every output of its test is written.
FINISHED = "finished"
#: Its test wrote ``results.json`` but did not get to the end (a crash after the first write).
INCOMPLETE = "incomplete"
#: No ``results.json`` and no finished fit: still running, or killed (resume it with ``--ckpt_path``).
RUNNING_OR_KILLED = "running or killed"
#: The fit ended (``val_curve.json``) without a test: a selection run, or ``--test_after_fit=false``.
NOT_TESTED = "not tested"
#: A ``--trainer.fast_dev_run`` smoke test (one batch), never a result; also its mark in ``results.json``.
FAST_DEV_RUN = "fast_dev_run"


def results_path(trainer: Trainer) -> Path:
    """The run's results file, ``<log_dir>/results.json`` (under DDP ``log_dir`` is a collective: call it
    in every process)."""
    return Path(trainer.log_dir or trainer.default_root_dir) / RESULTS_FILE


def update_results(path: str | Path, record: dict[str, Any]) -> None:
    """Merge ``record`` into the JSON object in ``path`` (created if absent), atomically."""
    update_json(path, record)


def mark_complete(path: str | Path) -> None:
    """Write ``"complete": true`` into ``path``: the last write of a test, after all its outputs."""
    update_json(path, {COMPLETE: True})


def is_complete(record: dict[str, Any]) -> bool:
    """Whether a ``results.json`` record is complete (a record from before the mark counts as complete)."""
    return record.get(COMPLETE, True) is True


def read_results(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; a file that is not one raises ``ValueError`` naming it."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); move the file aside and rerun the test") from err
    if not isinstance(record, dict):
        raise ValueError(f"{path}: holds a {type(record).__name__}, not a results object; move it aside")
    return record


def latest_results(directory: str | Path) -> dict[str, Any] | None:
    """The newest complete ``results.json`` below ``directory`` (by modification time), or ``None``;
    incomplete ones (:func:`is_complete`) are skipped."""
    found = sorted(Path(directory).rglob(RESULTS_FILE), key=lambda p: p.stat().st_mtime)
    records = (read_results(p) for p in reversed(found))
    return next((r for r in records if is_complete(r)), None)


def run_status(directory: str | Path) -> tuple[str, dict[str, Any]]:
    """``(status, results record or {})`` of a run directory (``<run>/version_<k>``): :data:`FINISHED`,
    :data:`INCOMPLETE`, :data:`FAST_DEV_RUN`, :data:`NOT_TESTED` or :data:`RUNNING_OR_KILLED`."""
    directory = Path(directory)
    path = directory / RESULTS_FILE
    if path.is_file():
        record = read_results(path)
        if record.get(FAST_DEV_RUN):
            return FAST_DEV_RUN, record
        return (FINISHED if is_complete(record) else INCOMPLETE), record
    return (NOT_TESTED if (directory / VAL_CURVE_FILE).is_file() else RUNNING_OR_KILLED), {}


def _percent(value: Any) -> str:
    return f"{100 * float(value):.2f} %" if value is not None else "–"


def summary_lines(record: dict[str, Any], path: str | Path) -> list[str]:
    """A few readable lines of a test's results: zero-shot top-1 / top-5 / mean class on the unseen classes,
    GZSL seen / unseen / H when recorded, and where the file is."""
    unseen = record.get("num_unseen_classes")
    metrics = [f"top-1 {_percent(record.get(TEST_TOP1))}"]
    if unseen is None or reports_top5(int(unseen)):
        metrics.append(f"top-5 {_percent(record.get(TEST_TOP5))}")
    metrics.append(f"mean class {_percent(record.get(TEST_MEAN_CLASS))}")
    lines = [
        f"Zero-shot test on {unseen} unseen classes ({record.get('num_test_samples', '?')} samples):",
        "  " + ", ".join(metrics),
    ]
    gzsl = record.get("gzsl")
    if isinstance(gzsl, dict):
        lines.append(
            f"  GZSL at γ={float(gzsl.get('gamma') or 0.0):.3f}: seen {_percent(gzsl.get('seen'))}, "
            f"unseen {_percent(gzsl.get('unseen'))}, H {_percent(gzsl.get('h'))}"
        )
    lines.append(f"results: {path}")
    return lines
