"""Run provenance: the resolved config and the code version, recorded with every run, secrets never.

:class:`RunProvenance` (attached by :class:`purls_pl.train.cli.PurlsCLI`) logs, once per run, to every logger
(TensorBoard ``hparams.yaml``, the W&B run config)::

    {"git_commit": "<sha>" | None, "git_dirty": bool | None, "config": {<the full resolved config>}}

and adds ``git_commit`` / ``git_dirty`` to ``results.json`` after ``test``. A run that fails before it starts
(a checkpoint that cannot be resumed, a bad setting found in ``setup``) leaves no empty version folder behind:
:func:`remove_failed_start` removes what the start wrote there, and the folder if nothing else is in it.
Before anything is logged,
:func:`redact` replaces the value of every key that names a credential (``api_key``, ``token``,
``secret``, ``password`` ...) and every occurrence of the value of such an environment variable
(``OPENAI_API_KEY``, ``WANDB_API_KEY``, ``HF_TOKEN`` ...) by ``"<redacted>"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer

from purls_pl.eval.results import results_path, update_results

SECRET_NAME = re.compile(r"(^|[_.-])(api[_-]?key|token|secret|password|passwd|credentials?)($|[_.-])", re.IGNORECASE)
REDACTED = "<redacted>"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values (8+ characters) of environment variables whose names look like credentials."""
    env = os.environ if environ is None else environ
    return sorted({v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= 8}, key=len, reverse=True)


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with credential-named keys and any secret environment value replaced by ``"<redacted>"``."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_NAME.search(str(k)) else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """``{"git_commit": sha, "git_dirty": bool}`` of the checkout holding ``path`` (default: this package);
    both ``None`` outside a git checkout. Read-only: no index refresh (``--no-optional-locks``)."""
    where = str(Path(path) if path is not None else Path(__file__).resolve().parent)
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", "--no-optional-locks", "-C", where, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
            check=True,
        )
        return run.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


#: Config entries that change where or how fast a run goes, not what it computes (left out of the hash).
VOLATILE_KEYS: tuple[str, ...] = (
    "config",
    "trainer.logger",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "checkpoint.dirpath",
    "data.num_workers",
    "data.pin_memory",
    "data.eval_batch_size",
    "data.text_encoder.init_args.cache_dir",
    "data.text_encoder.init_args.batch_size",
    "data.text_encoder.init_args.device",
    "data.source.init_args.root",
    "data.source.init_args.conversion.num_workers",
    "data.source.init_args.conversion.cache_dir",
    "model.backbone.init_args.cache_dir",
    "model.backbone.init_args.extract_batch_size",
)


def _child(node: Any, key: str) -> Any:
    """``node[key]``, looking through a class's ``init_args`` (``model.backbone`` is
    ``model.init_args.backbone``); ``None`` when absent."""
    if not isinstance(node, dict):
        return None
    if key not in node and isinstance(node.get("init_args"), dict):
        node = node["init_args"]
    return node.get(key)


def config_hash(config: dict[str, Any]) -> str:
    """A hash of what a run computes: the resolved config without :data:`VOLATILE_KEYS`, with the backbone
    export's path replaced by the hash of its bytes (a retrained backbone at the same path changes it)."""
    config = json.loads(json.dumps(config, default=str))
    for dotted in VOLATILE_KEYS:
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = _child(node, part)
        if isinstance(node, dict):
            node.pop(leaf, None)
    backbone = _child(_child(_child(config, "model"), "backbone"), "init_args") or {}
    checkpoint = backbone.get("checkpoint")
    if isinstance(checkpoint, str) and Path(checkpoint).is_file():
        backbone["checkpoint"] = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:20]


#: What starting a run writes into its version folder before any work: the saved config, the hyperparameters,
#: TensorBoard's event files.
START_FILES = re.compile(r"config\.yaml|hparams\.yaml|events\.out\.tfevents\..*")


def remove_failed_start(directory: str | Path, since: float) -> bool:
    """Remove a version folder that a failed start left: only when every file in it is a start file
    (:data:`START_FILES`) written at or after ``since`` (a ``time.time()``); any other or older file (a
    checkpoint, the results, a resumed run's own history) keeps the folder untouched. Returns whether it
    was removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return False
    files = [p for p in directory.rglob("*") if not p.is_dir()]
    if any(not START_FILES.fullmatch(p.name) or p.stat().st_mtime < since - 1.0 for p in files):
        return False
    for path in files:
        path.unlink()
    for folder in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        folder.rmdir()
    directory.rmdir()
    return True


class RunProvenance(Callback):
    """Log the resolved config, its hash and the git state to the loggers; add the hash and the git state
    to ``results.json``.

    Args:
        config: The run's resolved configuration (redacted before it is stored).
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.git = git_state()
        self.config = redact(config or {})
        self.record = {**self.git, "config_hash": config_hash(self.config)}
        self._logged = False
        self._created = time.time()
        self._started = False
        self._run_dir: Path | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.loggers and self._run_dir is None:  # every process: under DDP log_dir is a collective
            log_dir = trainer.log_dir
            self._run_dir = Path(log_dir) if log_dir else None
        if self._logged:
            return
        for logger in trainer.loggers:
            logger.log_hyperparams({**self.record, "config": self.config})
        self._logged = True

    def _start(self, *_: Any) -> None:
        self._started = True

    on_fit_start = on_validation_start = on_test_start = on_predict_start = _start

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A run that failed before it started leaves no version folder of its own behind."""
        if not self._started and self._run_dir is not None and trainer.is_global_zero:
            for logger in trainer.loggers:  # close the event files first (they are removed below)
                logger.finalize("failed")
            remove_failed_start(self._run_dir, self._created)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        path = results_path(trainer)
        if trainer.is_global_zero and path.is_file():
            update_results(path, self.record)

    def state_dict(self) -> dict[str, Any]:
        return {}
