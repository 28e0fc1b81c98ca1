"""Training progress as plain lines, for output that is not a terminal (a pipe, ``nohup``, SLURM, CI).

Lightning's progress bars redraw one line in place; in a log file that is either nothing until the end
(Rich) or one ever-growing line (tqdm). :class:`LogProgress` is a Lightning ``ProgressBar`` that writes a
line at most every ``interval`` seconds and one at the end of every epoch, formatted by tqdm's meter::

    epoch 3/15 40/120 [00:31<01:02, 1.30step/s], 83 samples/s train/loss=2.103
    epoch 3/15 done 120/120 [01:33<00:00, 1.28step/s], 82 samples/s, run left 18:36 train/loss=1.98

:func:`use_log_progress` puts it in place of the default bar when stderr is not a terminal
(``PURLS_PROGRESS=lines`` forces it, ``PURLS_PROGRESS=bar`` keeps the bar; ``PURLS_PROGRESS_SECONDS``
sets the interval, default 10).
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

import torch
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ProgressBar
from tqdm import tqdm

DEFAULT_INTERVAL = 10.0


def _batch_size(batch: Any) -> int:
    """The number of samples of a batch (its first tensor's first dimension; 0 when it has none)."""
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 0


def _metrics(values: dict[str, Any]) -> str:
    shown = []
    for key, value in values.items():
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        shown.append(f"{key}={number:.4g}")
    return " ".join(shown)


class LogProgress(ProgressBar):
    """Progress lines: step/total, elapsed<left, steps/s, samples/s and the progress-bar metrics.

    Args:
        interval: Seconds between two lines within an epoch (a line also ends every epoch, validation
            and test).
        stream: Where lines go (default: stderr, flushed after each line).
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.interval = interval
        self.stream = stream
        self._enabled = True
        self._start = 0.0
        self._last = 0.0
        self._samples = self._steps = 0
        self._fit_start: float | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _write(self, trainer: Trainer, line: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(line, file=self.stream or sys.stderr, flush=True)

    def _epoch(self, trainer: Trainer) -> str:
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        return f"epoch {trainer.current_epoch + 1}/{total}"

    def _meter(self, done: int, total: int | float, unit: str = "step") -> str:
        elapsed = time.perf_counter() - self._start
        meter = tqdm.format_meter(
            done,
            total if total not in (None, float("inf")) else None,
            elapsed,
            unit=unit,
            bar_format="{n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]",
        )
        rate = self._samples / elapsed if elapsed > 0 else 0.0
        return f"{meter}, {rate:.0f} samples/s"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_start = time.perf_counter()
        self._first_epoch = trainer.current_epoch  # a resumed run starts later

    def _run_left(self, trainer: Trainer) -> str:
        """``, run left 12:30`` from the mean epoch time so far (empty without a known epoch count)."""
        done = trainer.current_epoch + 1 - self._first_epoch
        if self._fit_start is None or not trainer.max_epochs or trainer.max_epochs < 0 or done <= 0:
            return ""
        left = (time.perf_counter() - self._fit_start) / done * max(trainer.max_epochs - trainer.current_epoch - 1, 0)
        return f", run left {tqdm.format_interval(left)}"

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._samples = self._steps = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._samples += _batch_size(batch)
        self._steps = batch_idx + 1
        now = time.perf_counter()
        if now - self._last < self.interval:
            return
        self._last = now
        meter = self._meter(batch_idx + 1, self.total_train_batches)
        self._write(trainer, f"{self._epoch(trainer)} {meter} {_metrics(self.get_metrics(trainer, pl_module))}")

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        meter = self._meter(self._steps, self.total_train_batches) + self._run_left(trainer)
        line = f"{self._epoch(trainer)} done {meter} {_metrics(self.get_metrics(trainer, pl_module))}"
        self._write(trainer, line.rstrip())

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            self._write(trainer, f"{self._epoch(trainer)} validation {_metrics(metrics)}".rstrip())

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer, f"testing {sum(trainer.num_test_batches)} batches")

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """The progress-bar metrics without Lightning's version number."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def wants_lines(stream: IO[str] | None = None) -> bool:
    """Whether progress should be lines: ``PURLS_PROGRESS`` (``lines``/``bar``), else ``stream`` (stderr) is
    not a terminal."""
    choice = os.environ.get("PURLS_PROGRESS", "").lower()
    if choice in ("lines", "bar"):
        return choice == "lines"
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def use_log_progress(trainer: Trainer) -> None:
    """Replace ``trainer``'s progress bar by :class:`LogProgress` when :func:`wants_lines` (a trainer with
    the bar disabled, ``enable_progress_bar=false``, stays silent)."""
    bar = trainer.progress_bar_callback
    if bar is None or isinstance(bar, LogProgress) or not wants_lines():
        return
    interval = float(os.environ.get("PURLS_PROGRESS_SECONDS", DEFAULT_INTERVAL))
    trainer.callbacks[trainer.callbacks.index(bar)] = LogProgress(interval)
