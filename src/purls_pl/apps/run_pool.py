"""Running many training runs: resumable by request hash, in parallel worker processes, with progress lines.

A *job* is one ``python -m purls_pl [pretrain] fit ...`` invocation, a
:class:`~purls_pl.apps.run_request.RunRequest` rendered, with its own directory. It runs unless the
directory holds a finished run of the same request: what it computes (its arguments without the
request's volatile ones: where it writes, how it shows progress, where the data lie), the contents of
its ``--config`` files, the bytes of its backbone export and the package's own source
(:func:`code_digest`), so a changed config, backbone or code reruns it and an unchanged one is never
repeated. A run whose request changed is moved aside (``<dir>.stale-<time>``), never deleted.

:class:`RunPool` runs jobs in ``jobs`` spawned worker processes with ``threads`` torch threads each
(or in this process for ``jobs=1``). A run's numbers depend on its thread count (float summation
order), not on how many run side by side, so a table computed with ``--jobs 2 --threads 1`` equals one
computed with ``--jobs 1 --threads 1`` on any machine.

Signals: under :func:`exit_on_signals` (the ``table`` and ``select`` commands) SIGTERM and SIGINT end the
command with exit status ``128 + signum`` (143, 130); the pool's worker processes are stopped with it,
and a run that did not finish has no ``done`` marker, so it is never taken as finished (it reruns).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from purls_pl.apps.run_request import RunRequest
from purls_pl.storage import atomic_write_json, move_aside
from purls_pl.train import cli, pretrain

PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of the package's source and data files (``purls_pl/**/*.py|json``): what the code computes."""
    h = hashlib.sha256()
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.json")]):
        h.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:20]


def request_hash(computed: Sequence[str], backbone: Path | None = None) -> str:
    """What a run computes: its computed arguments (:meth:`RunRequest.computed`), the contents of its
    ``--config`` files, of its backbone export and of the package (:func:`code_digest`)."""
    h = hashlib.sha256(code_digest().encode())
    computed = list(computed)
    for i, a in enumerate(computed):
        h.update(a.encode() + b"\0")
        if i > 0 and computed[i - 1] == "--config":
            h.update(Path(a).read_bytes())
    if backbone is not None:
        h.update(backbone.read_bytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Job:
    """A :class:`RunRequest` to run, rendered once (its config files must exist by then), with its progress label.

    Attributes:
        request: The run.
        what: Its progress label.
        args: ``request.args()``: the full argument list (starting with ``fit``).
        computed: ``request.computed()``: what its request hash reads.
    """

    request: RunRequest
    what: str = ""
    args: tuple[str, ...] = field(init=False)
    computed: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "computed", self.request.computed())
        object.__setattr__(self, "args", (*self.computed, *self.request.volatile()))


def run_once(job: Job, run: Callable[[], object]) -> float | None:
    """Run unless the request's directory holds a finished run of the same request; its seconds (None: reused)."""
    directory = job.request.directory
    request = request_hash(job.computed, job.request.backbone)
    record = directory / "request.json"
    if record.is_file() and json.loads(record.read_text()).get("hash") == request and (directory / "done").exists():
        return None
    if directory.exists():
        move_aside(directory)
    directory.mkdir(parents=True)
    atomic_write_json(record, {"hash": request, "args": list(job.args)})
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    atomic_write_json(directory / "done", {"seconds": round(seconds, 2)})
    return seconds


def execute(job: Job) -> float | None:
    """Run ``job`` in this process unless it finished before; its seconds (``None``: reused).

    Raises:
        SystemExit: ``128 + SIGTERM`` when Lightning stopped the run on a SIGTERM (it raises a
            ``SystemExit`` with status 0, which would read as success).
    """
    main = pretrain.main if job.request.command == "pretrain" else cli.main
    try:
        return run_once(job, lambda: main(list(job.args)))
    except SIGTERMException:
        raise SystemExit(128 + signal.SIGTERM) from None


#: The signals :func:`exit_on_signals` turns into an exit status.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Within: SIGTERM and SIGINT raise ``SystemExit(128 + signum)`` in the main thread, so a command stops
    with that status (not 0) wherever it is (Lightning calls this handler after its own during a fit), its
    pool's workers are stopped (:meth:`RunPool.run`) and an interrupted run writes no ``done`` marker."""
    previous = {s: signal.signal(s, _stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Progress:
    """One line per finished run with its time, the elapsed total and an estimate of what is left."""

    def __init__(self, total: int, log: Callable[[str], None], parallel: int = 1) -> None:
        self.total, self.done, self.log, self.parallel = total, 0, log, max(1, parallel)
        self.start = time.perf_counter()
        self.seconds: list[float] = []

    def __call__(self, what: str, seconds: float | None) -> None:
        self.done += 1
        if seconds is not None:
            self.seconds.append(seconds)
        elapsed = time.perf_counter() - self.start
        per_run = sum(self.seconds) / len(self.seconds) if self.seconds else 0.0
        left = per_run * (self.total - self.done) / self.parallel
        took = f"{seconds:.0f} s" if seconds is not None else "done before"
        self.log(
            f"[{self.done}/{self.total}] {what} ({took}; elapsed {elapsed / 60:.1f} min, ~{left / 60:.1f} min left)"
        )


def _init_worker(threads: int | None) -> None:
    # the parent stops the workers (a Ctrl-C reaches the whole terminal's process group)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if threads:
        torch.set_num_threads(threads)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the running workers (SIGTERM, then SIGKILL after 10 s)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def default_jobs() -> int:
    """Parallel runs by default: one per usable CPU core, or one on a GPU machine."""
    if torch.cuda.is_available():
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass(frozen=True)
class PoolOptions:
    """How a command's runs share the machine (the ``--jobs`` and ``--threads`` of ``table`` and ``select``).

    Attributes:
        jobs: runs side by side (default: CPU cores; 1 on a GPU)
        threads: torch threads per run (default: 1; numbers depend on it, not on --jobs; 0: torch's default)
    """

    jobs: int = field(default_factory=default_jobs)
    threads: int = 1

    def pool(self) -> RunPool:
        """The :class:`RunPool` of these options."""
        return RunPool(self.jobs, self.threads or None)


class RunPool:
    """Runs :class:`Job` s, ``jobs`` at a time, each with ``threads`` torch threads (module docstring).

    Args:
        jobs: Runs side by side (``1``: in this process).
        threads: Torch threads per run; ``None`` leaves torch's default (then numbers depend on the machine).
    """

    def __init__(self, jobs: int = 1, threads: int | None = 1) -> None:
        if jobs < 1 or (threads is not None and threads < 1):
            raise ValueError(f"jobs and threads must be >= 1, got jobs={jobs}, threads={threads}")
        self.jobs, self.threads = jobs, threads

    def run(self, jobs: Sequence[Job], progress: Callable[[str, float | None], None]) -> list[float | None]:
        """Run ``jobs`` (independent of each other); ``progress(job.what, seconds)`` as each finishes.

        Returns:
            Each job's seconds (``None``: reused), in the order given.
        """
        if self.jobs == 1 or len(jobs) <= 1:
            return self._run_here(jobs, progress)
        seconds: list[float | None] = [None] * len(jobs)
        environment = {"OMP_NUM_THREADS": str(self.threads)} if self.threads else {}
        previous = {k: os.environ.get(k) for k in environment}
        os.environ.update(environment)  # inherited by the spawned workers before they import torch
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker, initargs=(self.threads,))
        try:
            futures = {pool.submit(execute, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                i = futures[future]
                seconds[i] = future.result()
                progress(jobs[i].what, seconds[i])
            pool.shutdown()
        except Exception:  # a failed run: the others finish, then the error is raised
            pool.shutdown()
            raise
        except BaseException:  # a signal (SystemExit, KeyboardInterrupt): no worker outlives the command
            _stop_workers(pool)
            raise
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return seconds

    def _run_here(self, jobs: Sequence[Job], progress: Callable[[str, float | None], None]) -> list[float | None]:
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            out = []
            for job in jobs:
                out.append(execute(job))
                progress(job.what, out[-1])
            return out
        finally:
            torch.set_num_threads(before)
