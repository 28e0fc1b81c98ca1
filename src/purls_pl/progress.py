"""Progress lines for long silent phases (cache builds, feature extraction, text encoding).

A :class:`Progress` logs ``<desc>: <done>/<total> <unit>s (<pct>%), <rate> <unit>s/s, <elapsed> elapsed,
<left> left`` through :mod:`logging` at most every :data:`INTERVAL_SECONDS` and once at the end, so the
lines read well in a log file and through a pipe, not only on a terminal (tqdm redraws one line with
carriage returns, which a log file shows as one garbled line). When nothing configured logging, the
``purls_pl.progress`` logger writes to stderr itself, at ``INFO``; configure logging to route it elsewhere.

The bottom layer of the package, beside :mod:`purls_pl.storage`: it imports no other purls_pl module.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

__all__ = ["INTERVAL_ENV", "INTERVAL_SECONDS", "Progress", "track"]

#: Seconds between two progress lines of one phase (the last line comes at the end, whatever the interval).
INTERVAL_SECONDS = 10.0
#: Environment variable overriding :data:`INTERVAL_SECONDS`.
INTERVAL_ENV = "PURLS_PROGRESS_SECONDS"

log = logging.getLogger("purls_pl.progress")
T = TypeVar("T")


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each line (redirections included)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _ensure_visible() -> None:
    """Make ``INFO`` lines of the progress logger reach stderr when nobody configured logging."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        log.addHandler(_Stderr())


def _clock(seconds: float) -> str:
    """``75.0`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    s = round(seconds)
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts finished work and logs a line at most every ``interval`` seconds and at :meth:`close`.

    Args:
        total: Units of work in the phase.
        desc: What runs, e.g. ``"kinetics400: converting"``.
        unit: Name of one unit (``"file"``, ``"sample"``, ``"prompt"``).
        interval: Seconds between lines; default ``$PURLS_PROGRESS_SECONDS`` or :data:`INTERVAL_SECONDS`.
    """

    def __init__(self, total: int, desc: str, unit: str = "item", interval: float | None = None) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.interval = float(os.environ.get(INTERVAL_ENV, INTERVAL_SECONDS)) if interval is None else interval
        self.done = 0
        self.start = self._last = time.monotonic()
        self._closed = False
        _ensure_visible()

    def line(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = (
            "done" if self.done >= self.total else (f"{_clock((self.total - self.done) / rate)} left" if rate else "")
        )
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s ({pct:.0f}%)"]
        parts += [f"{rate:.3g} {self.unit}s/s", f"{_clock(elapsed)} elapsed"] + ([left] if left else [])
        return ", ".join(parts)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done; log a line if ``interval`` has passed since the last one."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval and self.done < self.total:
            self._last = now
            log.info(self.line())

    def close(self) -> None:
        """Log the final line once, when every unit is done (a phase that stops early leaves the word to
        its error; an empty phase logs nothing)."""
        if self._closed or self.total == 0 or self.done < self.total:
            self._closed = True
            return
        self._closed = True
        log.info(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def track(items: Iterable[T], total: int, desc: str, unit: str = "item") -> Iterator[T]:
    """Yield ``items``, counting each in a :class:`Progress` of ``total`` units (closed at the end)."""
    with Progress(total, desc, unit) as progress:
        for item in items:
            yield item
            progress.update()
