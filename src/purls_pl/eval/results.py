"""A run's ``results.json``: where it is and how callbacks add to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytorch_lightning import Trainer

from purls_pl.eval.metrics import RESULTS_FILE
from purls_pl.storage import update_json


def results_path(trainer: Trainer) -> Path:
    """The run's results file, ``<log_dir>/results.json`` (under DDP ``log_dir`` is a collective: call it
    in every process)."""
    return Path(trainer.log_dir or trainer.default_root_dir) / RESULTS_FILE


def update_results(path: str | Path, record: dict[str, Any]) -> None:
    """Merge ``record`` into the JSON object in ``path`` (created if absent), atomically."""
    update_json(path, record)


def latest_results(directory: str | Path) -> dict[str, Any] | None:
    """The newest ``results.json`` below ``directory`` (by modification time), or ``None``."""
    found = sorted(Path(directory).rglob(RESULTS_FILE), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else None
