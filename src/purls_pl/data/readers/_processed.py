"""Processed-array I/O shared by :class:`~purls_pl.data.readers.NTUProcessedSource` and
:class:`~purls_pl.data.readers.KineticsProcessedSource`.

:func:`load_label_pickle` reads st-gcn / 2s-AGCN ``*_label.pkl`` files with a restricted unpickler;
:func:`array_shape` and :func:`iter_array_rows` read ``.npy`` files (memory-mapped) and ``.npz``
members (streamed) without loading them whole; :func:`fill_processed` copies the rows into one
:func:`~purls_pl.data.cache.allocate` d ``(N, M, T, J, C)`` block; :func:`find_stgcn_files` locates
the ``<split>_data*.npy`` / ``<split>_label.pkl`` pairs.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.cache import ResidentRows, allocate
from purls_pl.data.preprocess import fit_length, valid_length
from purls_pl.progress import Progress

__all__ = ["array_shape", "fill_processed", "find_stgcn_files", "iter_array_rows", "load_label_pickle"]

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
    """Copy chunked processed arrays into one :func:`~purls_pl.data.cache.allocate` d block (with progress lines).

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
    resident = ResidentRows(data)
    lengths = np.zeros(len(keep), np.int64)
    row, out = 0, 0
    bar = Progress(len(keep), "converting processed arrays", "sample")
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
                resident.written(out)
                bar.update()
    bar.close()
    return data, lengths


def find_stgcn_files(folders: Iterable[Path], split: str, data_names: tuple[str, ...]) -> tuple[Path, Path] | None:
    """The first ``(<split>_data*.npy, <split>_label.pkl)`` pair found in ``folders``."""
    for folder in folders:
        label = folder / f"{split}_label.pkl"
        for name in data_names:
            if (folder / name.format(split=split)).is_file() and label.is_file():
                return folder / name.format(split=split), label
    return None
