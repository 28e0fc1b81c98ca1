"""Plumbing the raw readers share: bad-input handling, the skip report, progress, parallel parsing.

Every raw reader (NTU ``.skeleton``, Kinetics json, NW-UCLA json, custom ``.npy``) takes
``on_error: "raise" | "skip"``. A reader's per-file work raises :class:`SampleError` (the file, what
is wrong, how to fix it); :func:`convert_files` then either re-raises it (``"raise"``, with a hint
about ``on_error="skip"``) or records a :class:`SkippedSample` and goes on (``"skip"``). Some files
are always left out whatever ``on_error`` says (a reader returns :class:`Skip`, e.g. NTU's published
samples with no skeleton); they are listed too, with ``kind="excluded"``.

At the end of a build :meth:`SourceBase._cached` emits **one** warning listing every skipped file with
its reason, stores the list in the cache manifest (``"skipped"``) and in ``source.skipped``. A later
cache hit restores ``source.skipped`` from the manifest; with ``on_error="raise"`` a hit on an entry
that was built by skipping bad files raises, so ``"raise"`` never silently returns a set with holes.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import numpy as np

from purls_pl.data.cache import ResidentRows, build_or_load
from purls_pl.data.catalog import card, class_names
from purls_pl.data.errors import SampleError, SampleMissingError
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.progress import Progress

__all__ = [
    "Conversion",
    "OnError",
    "SampleError",
    "SampleMissingError",
    "Skip",
    "SkippedSample",
    "SourceBase",
    "check_on_error",
    "check_values",
    "collect_converted",
    "convert_files",
    "format_skipped",
    "json_keys",
    "missing_root_error",
    "pick_evenly",
    "reject",
]

log = logging.getLogger("purls_pl.data.readers")

OnError = Literal["raise", "skip"]
T = TypeVar("T")
R = TypeVar("R")
SKIP_HINT = "or set conversion.on_error='skip' to leave such files out and list them in a report at the end"


class Skip(NamedTuple):
    """Returned (not raised) by a reader's per-file work: leave the file out whatever ``on_error`` is."""

    reason: str


@dataclass(frozen=True)
class SkippedSample:
    """A file left out of a build.

    Attributes:
        path: The file (as given to the reader).
        reason: What is wrong with it.
        kind: ``"bad"`` (an error, skipped because ``on_error="skip"``) or ``"excluded"`` (always left
            out by the reader, e.g. NTU's samples with no skeleton).
    """

    path: str
    reason: str
    kind: Literal["bad", "excluded"] = "bad"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Conversion:
    """How a reader builds its cache entry: the same options for every reader.

    Args:
        max_samples: Read only this many samples, evenly spaced over the sorted list (quick runs).
        num_workers: Parallel processes for parsing raw files (0 = in-process; results are identical).
            Readers of processed arrays load them in-process.
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the processed arrays there.
        on_error: A broken file raises an error naming it (``"raise"``) or is left out and listed in
            one warning at the end, in ``source.skipped`` and in the cache manifest (``"skip"``).
    """

    max_samples: int | None = None
    num_workers: int = 0
    cache_dir: str | None = None
    cache: bool = True
    on_error: OnError = "raise"

    def __post_init__(self) -> None:
        check_on_error(self.on_error)
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"conversion.max_samples must be >= 1 or None, got {self.max_samples}")
        if self.num_workers < 0:
            raise ValueError(f"conversion.num_workers must be >= 0, got {self.num_workers}")

    @classmethod
    def of(cls, value: Conversion | dict[str, Any] | None) -> Conversion:
        """``value`` as a :class:`Conversion` (``None``: the defaults; a mapping: its fields)."""
        if value is None:
            return cls()
        return value if isinstance(value, Conversion) else cls(**value)


def check_on_error(on_error: str) -> OnError:
    """``on_error`` if it is ``"raise"`` or ``"skip"``, else a ``ValueError``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return on_error  # type: ignore[return-value]


def check_values(path: str | Path, values: np.ndarray, where: str, fix: str) -> None:
    """Raise :class:`SampleError` naming the first NaN / inf entry of ``values`` (``(..., C)``)."""
    finite = np.isfinite(values)
    if finite.all():
        return
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise SampleError(path, f"{where} holds {values[first]} at index {first} (NaN/inf coordinates)", fix)


def missing_root_error(root: Path, what: str, expected: str, how: str, empty: bool = False) -> FileNotFoundError:
    """A ``FileNotFoundError`` naming the path, the files expected there and how to get them."""
    state = "holds none of the expected files" if empty else "does not exist"
    return FileNotFoundError(f"{what}: {root} {state}. Expected there: {expected}. {how}")


def json_keys(path: Path) -> set[str]:
    """The top-level keys of a json object file (empty when it is no readable json object)."""
    try:
        content = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return set()
    return set(content) if isinstance(content, dict) else set()


def pick_evenly(items: list[Any], max_items: int | None) -> list[Any]:
    """``max_items`` entries evenly spaced over ``items`` (all of them when ``None`` or enough)."""
    if max_items is None or max_items >= len(items):
        return list(items)
    if max_items < 1:
        raise ValueError(f"max_samples must be >= 1 or None, got {max_items}")
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, max_items).round().astype(int))]


def _guarded(fn: Callable[[T], R], item: T) -> tuple[str, Any]:
    """``("ok", result)``, ``("skip", reason)`` or ``("error", (path, problem, fix, missing))``."""
    try:
        out = fn(item)
    except SampleError as err:
        return "error", (err.path, err.problem, err.fix, isinstance(err, FileNotFoundError))
    except OSError as err:
        path = getattr(err, "filename", None) or str(item)
        missing = isinstance(err, FileNotFoundError)
        problem = "does not exist" if missing else f"cannot be read ({err.strerror or err})"
        return "error", (str(path), problem, "check the path and its permissions", missing)
    if isinstance(out, Skip):
        return "skip", out.reason
    return "ok", out


def _run_chunk(fn: Callable[[T], R], chunk: Sequence[T]) -> list[tuple[str, Any]]:
    return [_guarded(fn, x) for x in chunk]


def _ordered_results(fn: Callable[[T], R], items: Sequence[T], num_workers: int) -> Iterator[list[tuple[str, Any]]]:
    """Per chunk of ``items``, the guarded results in input order (serial or in worker processes)."""
    if num_workers <= 0 or len(items) <= 1:
        for x in items:
            yield [_guarded(fn, x)]
        return
    size = max(1, min(64, math.ceil(len(items) / (num_workers * 4))))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    pool = ProcessPoolExecutor(max_workers=num_workers)
    pending: list[Future] = []
    try:
        nxt = 0
        while nxt < len(chunks) or pending:
            while nxt < len(chunks) and len(pending) < 2 * num_workers:  # bounded: results never pile up
                pending.append(pool.submit(_run_chunk, fn, chunks[nxt]))
                nxt += 1
            yield pending.pop(0).result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def convert_files(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    on_error: OnError,
    skipped: list[SkippedSample],
    num_workers: int = 0,
    desc: str = "files",
    name: Callable[[T], str] = str,
) -> Iterator[tuple[int, R]]:
    """Run ``fn`` on every item, in input order, serially or in ``num_workers`` processes.

    Args:
        fn: Per-item work (picklable for ``num_workers > 0``: a module-level function or a
            ``functools.partial`` of one). Raises :class:`SampleError` for a bad item or returns
            :class:`Skip` for one to leave out.
        items: The inputs (usually paths).
        on_error: ``"raise"`` re-raises the first :class:`SampleError` (the pool is stopped);
            ``"skip"`` appends a :class:`SkippedSample` to ``skipped`` and continues.
        skipped: Receives the skipped items, in input order.
        num_workers: Worker processes; 0 runs in this process. Results are identical either way.
        desc: What is converted, for the progress lines (``"converting <desc>: <done>/<total> files ..."``,
            :mod:`purls_pl.progress`).
        name: How an item is named in the report when ``fn`` does not say.

    Yields:
        ``(index into items, fn(item))`` for each item that worked.
    """
    done = 0
    bar = Progress(len(items), f"converting {desc}", "file")
    chunks = _ordered_results(fn, items, num_workers)
    try:
        for chunk in chunks:
            for status, payload in chunk:
                i, done = done, done + 1
                bar.update()
                if status == "ok":
                    yield i, payload
                elif status == "skip":
                    skipped.append(SkippedSample(name(items[i]), payload, "excluded"))
                elif on_error == "skip":
                    skipped.append(SkippedSample(payload[0], payload[1], "bad"))
                else:
                    path, problem, fix, missing = payload
                    raise (SampleMissingError if missing else SampleError)(path, problem, f"{fix}; {SKIP_HINT}")
    finally:
        chunks.close()  # stops the worker pool at once on an error
        bar.close()


def collect_converted(
    converted: Iterable[tuple[int, tuple[Any, ...]]],
    data: np.ndarray,
    what: str,
    total: int,
    skipped: list[SkippedSample],
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Write each usable result's first item, a sample's block, into the next row of ``data`` ``(total, ...)``.

    ``converted`` yields ``(index, (block, *extras))`` as :func:`convert_files` does. Returns the usable
    indices and each one's ``extras``; a ``ValueError`` names ``what`` (the root) and lists ``skipped``
    when none of the ``total`` items could be used.
    """
    kept: list[int] = []
    extras: list[tuple[Any, ...]] = []
    resident = ResidentRows(data)
    for i, (block, *rest) in converted:
        data[len(kept)] = block
        kept.append(i)
        resident.written(len(kept))
        extras.append(tuple(rest))
    if not kept:
        raise ValueError(f"{what}: none of the {total} files could be used:\n{format_skipped(skipped)}")
    return kept, extras


def reject(
    on_error: OnError, skipped: list[SkippedSample], path: str | Path, problem: str, fix: str, missing: bool = False
) -> None:
    """A bad sample found while listing the inputs: raise :class:`SampleError` or record it as skipped."""
    if on_error == "skip":
        skipped.append(SkippedSample(str(path), problem, "bad"))
        return
    raise (SampleMissingError if missing else SampleError)(path, problem, f"{fix}; {SKIP_HINT}")


def format_skipped(skipped: Sequence[SkippedSample], limit: int = 100) -> str:
    """One line per skipped file (at most ``limit``), ``path: reason``."""
    lines = [f"  {s.path}: {s.reason}" for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (all in source.skipped and the cache manifest)")
    return "\n".join(lines)


class SourceBase(metaclass=ABCMeta):
    """Common behaviour of the readers: ``load()`` through the cache unless ``cache=False``, the skip
    report, and the contract that lets ``recognize`` prepare one new file as the reader prepared its own.

    Every reader states its :attr:`preprocessing` (a :class:`~purls_pl.data.preprocessing.Preprocessing`);
    a reader of single sample files also names their :attr:`suffixes` (and :attr:`file_format`, for
    messages), may refine :meth:`can_read`, and implements :meth:`read_file`. Its conversion prepares each
    file as ``preprocessing.apply(read_file(path, preprocessing))``, the very calls ``recognize`` makes.

    After ``load()``, ``skipped`` lists the files left out (:class:`SkippedSample`), also stored in the
    cache entry's ``manifest.json`` under ``"skipped"``.
    """

    dataset: str
    root: str
    conversion: Conversion = Conversion()
    skipped: list[SkippedSample]
    #: Suffixes (lower case) of the single sample files :meth:`read_file` reads; empty: it reads none.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: What one such file is, for messages (e.g. ``"NTU RGB+D .skeleton"``).
    file_format: ClassVar[str] = ""

    @property
    @abstractmethod
    def preprocessing(self) -> Preprocessing:
        """How this reader prepares each sample (the record a checkpoint stores); every reader states it."""

    @classmethod
    def can_read(cls, path: Path) -> bool:
        """Whether ``path`` is a sample file of this reader's format (by default: by its suffix)."""
        return path.suffix.lower() in cls.suffixes

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One sample file as :class:`~purls_pl.data.preprocessing.RawSkeleton`, read as ``preprocessing``
        says (persons and frames read); raises :class:`SampleError` naming the file, the field and the fix.
        A reader of whole-dataset arrays (no :attr:`suffixes`) refuses every file."""
        raise SampleError(
            path,
            f"{cls.__name__} reads whole-dataset files, not one sample per file",
            "give a file of the raw format these arrays were made from (the checkpoint's preprocessing names it)",
        )

    @property
    def max_samples(self) -> int | None:
        return self.conversion.max_samples

    @property
    def num_workers(self) -> int:
        return self.conversion.num_workers

    @property
    def cache_dir(self) -> str | None:
        return self.conversion.cache_dir

    @property
    def cache(self) -> bool:
        return self.conversion.cache

    @property
    def on_error(self) -> OnError:
        return self.conversion.on_error

    @property
    def layout(self) -> str:
        """The skeleton layout of the dataset's samples (from its catalog card)."""
        return card(self.dataset).layout

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names in class-index order (from its catalog card)."""
        return class_names(self.dataset)

    def _cached(
        self,
        params: dict[str, Any],
        sources: list[Path],
        build: Callable[[list[SkippedSample]], SkeletonSet],
        skipped: Sequence[SkippedSample] = (),
    ) -> SkeletonSet:
        """Load through the cache; ``build(skipped)`` appends the files it leaves out to ``skipped``.

        ``skipped`` (the argument) holds files already left out while listing the sources.
        """
        found: list[SkippedSample] = list(skipped)
        if not self.cache:
            result, built = build(found), True
        else:
            res = build_or_load(
                params,
                sources,
                lambda: build(found),
                self.cache_dir,
                extra=lambda: {"skipped": [s.as_dict() for s in found]},
            )
            result, built = res.skeletons, res.built
            if not built:
                found = [SkippedSample(**d) for d in res.manifest.get("skipped", [])]
                bad = [s for s in found if s.kind == "bad"]
                if bad and self.on_error == "raise":
                    raise SampleError(
                        bad[0].path,
                        f"{bad[0].reason} (this cache entry, {res.entry}, was built with on_error='skip' and "
                        f"left out {len(bad)} bad file(s))",
                        f"fix or remove the file(s), {SKIP_HINT}",
                    )
        self.skipped = found
        if found:
            self._report(found, built)
        return result

    def _report(self, skipped: list[SkippedSample], built: bool) -> None:
        what = f"{type(self).__name__}({self.root!r})"
        if built:
            warnings.warn(
                f"{what}: {len(skipped)} file(s) skipped:\n{format_skipped(skipped)}\n"
                "(the list is in source.skipped and in the cache manifest)",
                stacklevel=4,
            )
        else:
            log.warning(
                "%s: %d file(s) were skipped when this cache entry was built (source.skipped)", what, len(skipped)
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "skipped")
        return f"{type(self).__name__}({args})"
