"""Build-once cache of :class:`~purls_pl.data.skeletons.SkeletonSet` s.

Reading raw skeleton files (56k NTU-60 ``.skeleton`` files, 240k Kinetics json clips) takes
minutes to hours; every later run should take seconds. :func:`cached_build` keys a cache entry by

* the caller's parameters (reader name and version, protocol, frame count, preprocessing ...),
* a fingerprint of the source files (relative names, sizes and modification times; optionally a
  full content hash),

and stores the set as ``data.npy`` (memory-mapped on load, so a 20 GB NTU-120 set costs no RAM),
``arrays.npz`` (labels, partition, lengths, meta), ``index.json`` (sample ids, class names, layout)
and ``manifest.json`` (format version, key, fingerprint, parameters, shapes, creation time).

An entry is built in a hidden temporary directory and renamed into place only when complete, so
an interrupted or failed build never leaves an entry that a later call would take as valid. A
changed parameter or source file yields a different key, hence a fresh build; old entries are left
alone (delete ``~/.cache/purls_pl`` or ``$PURLS_CACHE_DIR`` by hand to reclaim the space). The
cache never deletes anything outside its own temporary build directories.

Big readers fill their output with :func:`allocate` instead of ``np.zeros``: inside a build it
returns a memory map in the build directory, so the data never has to fit in memory.

The module also holds the plumbing the readers in :mod:`purls_pl.data.readers` share:
:class:`SourceBase` (``load()`` through the cache), :func:`missing_root_error`, :func:`pick_evenly`,
and the processed-array I/O (:func:`load_label_pickle` with a restricted unpickler,
:func:`iter_array_rows` streaming ``.npy`` / ``.npz`` members, :func:`fill_processed`,
:func:`find_stgcn_files`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.preprocess import fit_length, valid_length
from purls_pl.data.skeletons import SkeletonSet

__all__ = [
    "CACHE_FORMAT_VERSION",
    "SourceBase",
    "allocate",
    "array_shape",
    "cached_build",
    "default_cache_dir",
    "fill_processed",
    "find_stgcn_files",
    "fingerprint_sources",
    "iter_array_rows",
    "load_label_pickle",
    "missing_root_error",
    "pick_evenly",
]

#: Bump when the on-disk layout of an entry changes; older entries are then ignored.
CACHE_FORMAT_VERSION = 1
_DATA, _ARRAYS, _INDEX, _MANIFEST = "data.npy", "arrays.npz", "index.json", "manifest.json"
_BUILD_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("purls_cache_build_dir", default=None)


def default_cache_dir() -> Path:
    """``$PURLS_CACHE_DIR`` if set, else ``~/.cache/purls_pl``."""
    env = os.environ.get("PURLS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "purls_pl"


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
    adopts it without a copy); elsewhere a plain ``np.zeros``. Use it for a reader's
    ``(N, M, T, J, C)`` data.
    """
    build_dir = _BUILD_DIR.get()
    if build_dir is None:
        return np.zeros(shape, dtype=dtype)
    return np.lib.format.open_memmap(build_dir / _DATA, mode="w+", dtype=dtype, shape=shape)


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
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=data.shape)
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


def cached_build(
    key_params: dict[str, Any],
    sources: list[Path],
    build: Callable[[], SkeletonSet],
    cache_dir: Path | str | None = None,
    *,
    content_hash: bool = False,
) -> SkeletonSet:
    """Return the cached set for ``key_params`` + ``sources``, running ``build()`` only on a miss.

    Args:
        key_params: JSON-able parameters that change the output (reader name, version, options).
            ``key_params["reader"]`` (if given) prefixes the entry's directory name.
        sources: Files or directories the set is read from; their names, sizes and mtimes (or
            contents, with ``content_hash``) are part of the key.
        build: Produces the set, ``data`` ``(N, M, T, J, C)`` float32; may use :func:`allocate`.
        cache_dir: Cache root; ``None`` means :func:`default_cache_dir`.
        content_hash: Hash whole file contents instead of size + mtime (slow on big datasets).

    Returns:
        The set, with ``data`` memory-mapped read-only from the cache entry.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fingerprint = fingerprint_sources(sources, content_hash)
    key = _key(key_params, fingerprint)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key_params.get("reader", "set")))
    entry = root / f"{prefix}-{key[:20]}"
    if _valid(entry, key):
        return _load(entry)

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=root))
    token = _BUILD_DIR.set(tmp)
    try:
        t0 = time.time()
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
        del result
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))  # written last: marks completeness
        _install(tmp, entry)
    finally:
        _BUILD_DIR.reset(token)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load(entry)


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


# --- plumbing shared by the dataset sources in purls_pl.data.readers ---------------------------------


class SourceBase:
    """Common behaviour of the readers: ``load()`` through :func:`cached_build` unless ``cache=False``."""

    dataset: str
    layout: str
    cache_dir: str | None = None
    cache: bool = True

    def _cached(self, params: dict[str, Any], sources: list[Path], build: Callable[[], SkeletonSet]) -> SkeletonSet:
        if not self.cache:
            return build()
        return cached_build(params, sources, build, self.cache_dir)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def missing_root_error(root: Path, what: str, expected: str, how: str, empty: bool = False) -> FileNotFoundError:
    """A ``FileNotFoundError`` naming the path, the files expected there and how to get them."""
    state = "holds none of the expected files" if empty else "does not exist"
    return FileNotFoundError(f"{what}: {root} {state}. Expected there: {expected}. {how}")


def pick_evenly(items: list[Any], max_items: int | None) -> list[Any]:
    """``max_items`` entries evenly spaced over ``items`` (all of them when ``None`` or enough)."""
    if max_items is None or max_items >= len(items):
        return list(items)
    if max_items < 1:
        raise ValueError(f"max_samples must be >= 1 or None, got {max_items}")
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, max_items).round().astype(int))]


# --- processed-array I/O shared by the NTU and Kinetics readers ---------------------------------------

_SAFE_GLOBALS = {
    ("builtins", n) for n in ("list", "tuple", "dict", "set", "frozenset", "int", "float", "str", "bytes", "bool")
} | {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain builtins (and numpy scalars), never arbitrary classes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def load_label_pickle(path: str | Path) -> tuple[list[str], list[int]]:
    """Read an st-gcn / 2s-AGCN / Shift-GCN ``*_label.pkl``: a pickle of ``(sample_names, labels)``.

    Only builtins (and numpy scalars) are unpickled; anything else is refused.
    """
    fix = (
        "a label file must be a pickle of (list of sample names, list of int labels), as written by the "
        "st-gcn / 2s-AGCN gendata scripts"
    )
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the label pickle ({err}); {fix}") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a (names, labels) pair; {fix}")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in obj[0]]
    labels = [int(x) for x in obj[1]]
    if len(names) != len(labels):
        raise ValueError(f"{path}: {len(names)} sample names but {len(labels)} labels; {fix}")
    return names, labels


def _npz_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if fortran or dtype.hasobject:
        raise ValueError("array is Fortran-ordered or holds objects")
    return tuple(shape), dtype


def _npz_member(zf: zipfile.ZipFile, path: Path, key: str) -> str:
    if f"{key}.npy" not in zf.namelist():
        raise KeyError(f"{path}: has no array {key!r} (found {sorted(n[:-4] for n in zf.namelist())})")
    return f"{key}.npy"


def array_shape(path: Path, key: str | None = None) -> tuple[int, ...]:
    """Shape of a ``.npy`` file, or of member ``key`` of an ``.npz``, without reading the data."""
    if key is None:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    with zipfile.ZipFile(path) as zf, zf.open(_npz_member(zf, path, key)) as f:
        return _npz_header(f)[0]


def iter_array_rows(path: Path, key: str | None = None, chunk: int = 64) -> Iterator[np.ndarray]:
    """Stream a ``.npy`` (memory-mapped) or an ``.npz`` member in row chunks ``(<=chunk, ...)``.

    The ``.npz`` member is decompressed as a stream, so a 10 GB array never sits in memory.
    """
    if key is None:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        for i in range(0, len(arr), chunk):
            yield np.asarray(arr[i : i + chunk])
        return
    with zipfile.ZipFile(path) as zf, zf.open(_npz_member(zf, path, key)) as f:
        shape, dtype = _npz_header(f)
        row = int(np.prod(shape[1:])) * dtype.itemsize
        for i in range(0, shape[0], chunk):
            n = min(chunk, shape[0] - i)
            buf = f.read(n * row)
            if len(buf) != n * row:
                raise ValueError(f"{path}: array {key!r} is truncated; re-create or re-download the file")
            yield np.frombuffer(buf, dtype).reshape((n, *shape[1:]))


def fill_processed(
    parts: list[tuple[Iterable[np.ndarray], Callable[[np.ndarray], np.ndarray]]],
    total: int,
    select: np.ndarray | None,
    tail: tuple[int, int, int, int],
    num_frames: int | None,
    temporal: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Copy chunked processed arrays into one :func:`~purls_pl.data.cache.allocate` d block.

    Args:
        parts: Per file, its row chunks and a function turning a chunk into ``(n, M, T, J, C)``.
        total: Rows over all parts.
        select: Sorted global row indices to keep, or ``None`` for all.
        tail: ``(M, T, J, C)`` of the stored rows.
        num_frames: Refit each sequence to this length with ``temporal`` (``None`` keeps ``T``).

    Returns:
        data ``(N, M, T', J, C)`` float32 and lengths ``(N,)`` int64.
    """
    m, t, j, c = tail
    keep = np.arange(total) if select is None else np.asarray(select)
    data = allocate((len(keep), m, num_frames or t, j, c))
    lengths = np.zeros(len(keep), np.int64)
    row, out = 0, 0
    for chunks, convert in parts:
        for chunk in chunks:
            mine = keep[(keep >= row) & (keep < row + len(chunk))] - row
            row += len(chunk)
            if not mine.size:
                continue
            block = convert(np.asarray(chunk)[mine]).astype(np.float32)
            for seq in block:
                length = valid_length(seq)
                if num_frames is not None:
                    seq, length = fit_length(seq[:, :length], num_frames, temporal)  # type: ignore[arg-type]
                data[out], lengths[out] = seq, length
                out += 1
    return data, lengths


def find_stgcn_files(folders: Iterable[Path], split: str, data_names: tuple[str, ...]) -> tuple[Path, Path] | None:
    """The first ``(<split>_data*.npy, <split>_label.pkl)`` pair found in ``folders``."""
    for folder in folders:
        label = folder / f"{split}_label.pkl"
        for name in data_names:
            if (folder / name.format(split=split)).is_file() and label.is_file():
                return folder / name.format(split=split), label
    return None
