"""Build-once cache of :class:`~purls_pl.data.skeletons.SkeletonSet` s.

Reading raw skeleton files (56k NTU-60 ``.skeleton`` files, 240k Kinetics json clips) takes
minutes to hours; every later run should take seconds. :func:`cached_build` keys a cache entry by

* the caller's parameters (reader name and version, protocol, frame count, preprocessing ...),
* a fingerprint of the source files (relative names, sizes and modification times; optionally a
  full content hash),

and stores the set as ``data.npy`` (memory-mapped on load, so a 20 GB NTU-120 set costs no RAM),
``arrays.npz`` (labels, partition, lengths, meta), ``index.json`` (sample ids, class names, layout)
and ``manifest.json`` (format version, key, fingerprint, parameters, shapes, creation time).

An entry is built in a hidden temporary directory (``.tmp-<entry>-<host>_<pidns>.<pid>.<random>``) and
renamed into place only when complete, so an interrupted or failed build never leaves an entry that a
later call would take as valid; the next build of the same entry deletes the folders that killed builds
left (:func:`purls_pl.storage.remove_stale_builds`). Before the data are written, their size is checked
against the free space of the cache's file system and the memory map's blocks are reserved, so a full
disk is one :class:`~purls_pl.storage.NoSpaceError` (an ``OSError``) naming the directory, the bytes
needed and free and the fix, never a ``SIGBUS``; the failed build's folder is removed. A
changed parameter or source file yields a different key, hence a fresh build; old entries are left
alone (delete ``~/.cache/purls_pl`` or ``$PURLS_CACHE_DIR`` by hand to reclaim the space). The
cache never deletes anything outside its own temporary build directories.

Big readers fill their output with :func:`allocate` instead of ``np.zeros``: inside a build it
returns a memory map in the build directory, so the data never has to fit in memory; a
:class:`ResidentRows` beside the fill drops the rows already written from the process's resident memory
(the kernel writes them back from its page cache), so a 20 GB build's peak RSS stays near its own
working set instead of growing with the file.

:func:`build_or_load` also returns the manifest and whether it built; a reader can add entries to
the manifest (``extra``), e.g. the list of files it skipped (see :mod:`purls_pl.data.readers._base`).
The readers' shared plumbing lives in :mod:`purls_pl.data.readers._base` and ``._processed``.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import mmap
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.skeletons import SkeletonSet
from purls_pl.storage import (
    cache_space_fix,
    check_free_space,
    default_cache_dir,
    folder_bytes,
    make_build_dir,
    no_space_guard,
    preallocate,
    remove_stale_builds,
)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CacheResult",
    "ResidentRows",
    "allocate",
    "build_or_load",
    "cached_build",
    "fingerprint_sources",
    "read_manifest",
]

#: Bump when the on-disk layout of an entry changes; older entries are then ignored.
CACHE_FORMAT_VERSION = 1
_DATA, _ARRAYS, _INDEX, _MANIFEST = "data.npy", "arrays.npz", "index.json", "manifest.json"
#: The fix an out-of-space error of the data cache names.
SPACE_FIX = cache_space_fix("the source's conversion.cache_dir")
_BUILD_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("purls_cache_build_dir", default=None)


def _iter_files(sources: Iterable[Path]) -> list[tuple[str, Path]]:
    """Each source file (directories expanded recursively) with a stable display name."""
    out: list[tuple[str, Path]] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            out.extend(
                (f"{src.name}/{p.relative_to(src).as_posix()}", p) for p in sorted(src.rglob("*")) if p.is_file()
            )
        elif src.exists():
            out.append((src.name, src))
        else:
            out.append((f"{src.name}:missing", src))
    return out


def fingerprint_sources(sources: Iterable[Path], content_hash: bool = False) -> str:
    """SHA-256 over the sources' names, sizes and mtimes (and whole contents if ``content_hash``).

    Directories are expanded recursively; a missing source contributes a ``missing`` marker.
    """
    h = hashlib.sha256()
    for name, path in _iter_files(sources):
        h.update(name.encode())
        if name.endswith(":missing"):
            continue
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns if not content_hash else ''}\n".encode())
        if content_hash:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def allocate(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Zero-filled output array of ``shape``.

    Inside :func:`cached_build` this is a ``.npy`` memory map in the build directory (the cache
    adopts it without a copy), its blocks reserved on disk; elsewhere a plain ``np.zeros``. Use it for
    a reader's ``(N, M, T, J, C)`` data.

    Raises:
        NoSpaceError: (an ``OSError``) inside a build, when the array does not fit on the cache's disk.
    """
    build_dir = _BUILD_DIR.get()
    if build_dir is None:
        return np.zeros(shape, dtype=dtype)
    return _open_data(build_dir / _DATA, shape, dtype)


class ResidentRows:
    """Bounds the resident memory of an :func:`allocate` d memory map filled row by row.

    Pages of a file-backed shared mapping that a process has written stay in its resident set (and in
    ``ru_maxrss``) until it unmaps them, so filling a 20 GB cache entry would show 20 GB of RSS. Every
    ``every_mb`` of finished rows, :meth:`written` tells the kernel the process no longer needs them
    (``MADV_DONTNEED``): on a shared file mapping this drops only the process's page references; the data
    stay in the page cache, are written back to the file and read back from it on the next access.
    A plain array (outside a build, or where ``madvise`` is unavailable) is left alone.

    Args:
        data: The array being filled, ``(N, ...)``: an :func:`allocate` d memory map or any array.
        every_mb: How many MB of finished rows to collect before releasing them.
    """

    def __init__(self, data: np.ndarray, every_mb: int = 256) -> None:
        self._map = getattr(data, "_mmap", None) if isinstance(data, np.memmap) else None
        if not hasattr(mmap, "MADV_DONTNEED") or not data.flags.c_contiguous:
            self._map = None
        self._row_bytes = int(np.prod(data.shape[1:])) * data.dtype.itemsize
        offset = int(getattr(data, "offset", 0))  # where the array starts in the file (after the .npy header)
        self._start = offset % mmap.ALLOCATIONGRANULARITY  # ... and in the mapping (np.memmap aligns it down)
        self._every = max(1, (every_mb << 20) // max(1, self._row_bytes))
        self._released = 0  # bytes of the mapping released so far (a whole number of pages)

    def written(self, rows: int) -> None:
        """Rows ``[0, rows)`` are final; release them when ``every_mb`` of them have gathered."""
        if self._map is None or (rows * self._row_bytes - self._released) < self._every * self._row_bytes:
            return
        end = (self._start + rows * self._row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE  # whole pages only
        if end > self._released:
            self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end


def _open_data(path: Path, shape: tuple[int, ...], dtype: Any) -> np.memmap:
    """A new ``.npy`` memory map at ``path``, after checking the free space and reserving its blocks."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    check_free_space(path.parent.parent, nbytes, f"the data cache entry {tuple(shape)} {np.dtype(dtype)}", SPACE_FIX)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    preallocate(path)
    return array


def _key(key_params: dict[str, Any], fingerprint: str) -> str:
    blob = json.dumps(
        {"format": CACHE_FORMAT_VERSION, "params": key_params, "sources": fingerprint}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _write_data(directory: Path, data: np.ndarray) -> None:
    """Save ``data`` as ``directory/data.npy``, adopting an :func:`allocate` d memmap in place."""
    target = directory / _DATA
    if isinstance(data, np.memmap) and data.filename and Path(data.filename).resolve() == target.resolve():
        header_shape = np.load(target, mmap_mode="r").shape
        if header_shape == data.shape and data.flags.c_contiguous:
            data.flush()
            return
    partial = directory / (_DATA + ".part")
    out = _open_data(partial, data.shape, np.float32)
    step = max(1, (256 << 20) // max(1, int(np.prod(data.shape[1:])) * 4))  # ~256 MB per copy
    for i in range(0, data.shape[0], step):
        out[i : i + step] = data[i : i + step]
    out.flush()
    del out
    os.replace(partial, target)


def _save(directory: Path, s: SkeletonSet) -> None:
    _write_data(directory, s.data)
    meta = {}
    for k, v in s.meta.items():
        arr = np.asarray(v)
        if arr.dtype == object:
            arr = arr.astype(str)
        meta[f"meta.{k}"] = arr
    np.savez(
        directory / _ARRAYS,
        labels=np.asarray(s.labels, np.int64),
        partition=np.asarray(s.partition, str),
        lengths=np.asarray(s.lengths, np.int64),
        **meta,
    )
    (directory / _INDEX).write_text(
        json.dumps({"sample_ids": list(map(str, s.sample_ids)), "class_names": list(s.class_names), "layout": s.layout})
    )


def _load(directory: Path, mmap: bool = True) -> SkeletonSet:
    index = json.loads((directory / _INDEX).read_text())
    with np.load(directory / _ARRAYS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return SkeletonSet(
        data=np.load(directory / _DATA, mmap_mode="r" if mmap else None, allow_pickle=False),
        labels=arrays.pop("labels"),
        sample_ids=index["sample_ids"],
        class_names=index["class_names"],
        layout=index["layout"],
        partition=arrays.pop("partition"),
        lengths=arrays.pop("lengths"),
        meta={k.removeprefix("meta."): v for k, v in arrays.items()},
    )


def _valid(entry: Path, key: str) -> bool:
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
        if manifest.get("format") != CACHE_FORMAT_VERSION or manifest.get("key") != key:
            return False
        shape = np.load(entry / _DATA, mmap_mode="r").shape
        return list(shape) == manifest["shape"] and all((entry / f).is_file() for f in (_ARRAYS, _INDEX))
    except (OSError, ValueError, KeyError):
        return False


@dataclass
class CacheResult:
    """What :func:`build_or_load` returns.

    Attributes:
        skeletons: The set, ``data`` ``(N, M, T, J, C)`` memory-mapped read-only from the entry.
        manifest: The entry's ``manifest.json`` (with any ``extra`` entries of the build).
        entry: The entry's directory.
        built: ``True`` if this call ran the build, ``False`` on a cache hit.
    """

    skeletons: SkeletonSet
    manifest: dict[str, Any]
    entry: Path
    built: bool


def read_manifest(entry: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a cache entry directory."""
    return json.loads((Path(entry) / _MANIFEST).read_text())


def build_or_load(
    key_params: dict[str, Any],
    sources: list[Path],
    build: Callable[[], SkeletonSet],
    cache_dir: Path | str | None = None,
    *,
    content_hash: bool = False,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> CacheResult:
    """Return the cached set for ``key_params`` + ``sources``, running ``build()`` only on a miss.

    Args:
        key_params: JSON-able parameters that change the output (reader name, version, options).
            ``key_params["reader"]`` (if given) prefixes the entry's directory name.
        sources: Files or directories the set is read from; their names, sizes and mtimes (or
            contents, with ``content_hash``) are part of the key.
        build: Produces the set, ``data`` ``(N, M, T, J, C)`` float32; may use :func:`allocate`.
        cache_dir: Cache root; ``None`` means :func:`default_cache_dir`.
        content_hash: Hash whole file contents instead of size + mtime (slow on big datasets).
        extra: Called after a successful build; its JSON-able entries are added to the manifest
            (they must not use the manifest's own keys).

    Returns:
        A :class:`CacheResult`. A failing ``build`` leaves no entry behind and never touches an
        existing valid one.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fingerprint = fingerprint_sources(sources, content_hash)
    key = _key(key_params, fingerprint)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key_params.get("reader", "set")))
    entry = root / f"{prefix}-{key[:20]}"
    if _valid(entry, key):
        return CacheResult(_load(entry), read_manifest(entry), entry, built=False)

    t0 = time.time()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(root, f".tmp-{entry.name}-", started=t0)
    tmp = make_build_dir(root, f".tmp-{entry.name}-")
    token = _BUILD_DIR.set(tmp)
    try:
        with no_space_guard(root, f"the data cache entry {entry.name}", SPACE_FIX, lambda: folder_bytes(tmp)):
            result = build()
            _save(tmp, result)
            manifest = {
                "format": CACHE_FORMAT_VERSION,
                "key": key,
                "sources_fingerprint": fingerprint,
                "content_hash": content_hash,
                "num_source_files": len(_iter_files(sources)),
                "params": json.loads(json.dumps(key_params, default=str)),
                "shape": list(result.data.shape),
                "num_samples": len(result),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.time() - t0, 3),
            }
            added = json.loads(json.dumps(extra() if extra else {}, default=str))
            clash = sorted(set(added) & set(manifest))
            if clash:
                raise ValueError(f"build_or_load: extra manifest entries {clash} would overwrite the cache's own")
            manifest.update(added)
            del result
            (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))  # written last: marks completeness
        _install(tmp, entry)
    finally:
        _BUILD_DIR.reset(token)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return CacheResult(_load(entry), read_manifest(entry), entry, built=True)


def cached_build(
    key_params: dict[str, Any],
    sources: list[Path],
    build: Callable[[], SkeletonSet],
    cache_dir: Path | str | None = None,
    *,
    content_hash: bool = False,
) -> SkeletonSet:
    """:func:`build_or_load` returning only the set (``data`` memory-mapped read-only)."""
    return build_or_load(key_params, sources, build, cache_dir, content_hash=content_hash).skeletons


def _install(tmp: Path, entry: Path) -> None:
    """Atomically move a finished build to ``entry``, replacing only an invalid entry of ours."""
    if entry.exists():
        ours = {_DATA, _ARRAYS, _INDEX, _MANIFEST, _DATA + ".part"}
        foreign = [p.name for p in entry.iterdir() if p.name not in ours]
        if foreign:
            raise FileExistsError(
                f"cache entry {entry} holds files the cache did not write ({foreign[:5]}); move them away "
                "or choose another cache_dir / PURLS_CACHE_DIR"
            )
        stale = entry.with_name(f".stale-{entry.name}-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(entry, stale)
        except OSError:  # another process replaced it meanwhile
            pass
        else:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(tmp, entry)
    except OSError:
        if not entry.exists():
            raise
        warnings.warn(f"cache entry {entry} was written concurrently by another process; using that one", stacklevel=3)
