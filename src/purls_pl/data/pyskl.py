"""The pyskl annotation pickle: reading it without running code, peeking at it, writing it.

pyskl (https://github.com/kennymckormick/pyskl) ships its skeleton datasets as one pickle each
(``ntu60_3danno.pkl``, ``ntu120_hrnet.pkl``, ``k400_hrnet.pkl`` ...)::

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
     "annotations": [{"frame_dir": "S001C001P001R001A001", "label": 0, "total_frames": 103,
                      "keypoint": (M, T, V, C) float32 / float16,      # C = 3 (NTU 3-D) or 2 (HRNet 2-D)
                      "keypoint_score": (M, T, V),                     # 2-D files
                      "img_shape": (H, W), "original_shape": (H, W)},  # 2-D files
                     ...]}

A pickle can name any importable callable and make the loader call it, so :func:`load_pyskl` reads the
file with :class:`RestrictedUnpickler`, which admits only the builtins and numpy array / dtype / scalar
constructors such a file holds and refuses anything else with an :class:`UnsafePickleError` naming the
offending ``module.name``: a data file never runs code. :func:`peek_keypoint` reads only as far as the first
``keypoint`` array (its shape decides the layout before the whole file is loaded). :func:`write_pyskl`
writes the format (builtins and numpy arrays only), from a :class:`~purls_pl.data.skeletons.SkeletonSet` or
from annotation dicts.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from purls_pl.data.skeletons import SkeletonSet

__all__ = [
    "ALLOWED_GLOBALS",
    "PYSKL_FIX",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_pyskl",
    "peek_keypoint",
    "write_pyskl",
]

#: What a file that cannot be read should be replaced with.
PYSKL_FIX = (
    "use a pyskl annotation file as released (https://github.com/kennymckormick/pyskl, docs/data_doc.md) or one "
    "written by purls_pl.data.pyskl.write_pyskl"
)
_NUMPY = ("numpy.core", "numpy._core")
_NUMPY_2 = int(np.__version__.split(".")[0]) >= 2
#: ``(module, name)`` pairs a pyskl pickle may name: containers and numbers, numpy arrays (protocol 2-4
#: ``_reconstruct`` + ``ndarray``; protocol 5 ``_frombuffer``), dtypes and scalars, and ``_codecs.encode``
#: (how protocol 2 stores bytes). numpy 1 files say ``numpy.core``, numpy 2 files ``numpy._core``.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str")}
    | {("builtins", n) for n in ("bytes", "bytearray", "bool")}
    | {(f"{p}.multiarray", n) for p in _NUMPY for n in ("_reconstruct", "scalar")}
    | {(f"{p}.numeric", "_frombuffer") for p in _NUMPY}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global outside :data:`ALLOWED_GLOBALS`; the file was not loaded."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only builtins and numpy arrays, dtypes and scalars (:data:`ALLOWED_GLOBALS`).

    Args:
        file: The open binary file.
        source: The file's name, for the refusal.
    """

    def __init__(self, file: BinaryIO, source: str | Path = "<pickle>") -> None:
        super().__init__(file)
        self.source = str(source)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to load the global {module}.{name}; a pyskl annotation file holds only "
                "builtins and numpy arrays, and a data file must never run code, so the file was not loaded. "
                f"Check where it came from, then {PYSKL_FIX}"
            )
        if module.startswith("numpy.core.") and _NUMPY_2:  # numpy 1's name; numpy 2 keeps them in numpy._core
            module = "numpy._core." + module.removeprefix("numpy.core.")
        elif module.startswith("numpy._core.") and not _NUMPY_2:  # a numpy 2 file read with numpy 1
            module = "numpy.core." + module.removeprefix("numpy._core.")
        return super().find_class(module, name)


def load_pyskl(path: str | Path) -> dict[str, Any]:
    """Read a pyskl annotation pickle with :class:`RestrictedUnpickler` (memory: about the file's size).

    Returns:
        The file's dict: ``"annotations"`` (a list of dicts) and ``"split"`` (``{name: [frame_dir, ...]}``,
        ``{}`` when the file has none).

    Raises:
        UnsafePickleError: the file names a global outside :data:`ALLOWED_GLOBALS` (nothing of it is used).
        FileNotFoundError: no such file.
        ValueError: not a pickle, truncated, or not a dict with a list ``"annotations"`` (and a dict ``"split"``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pyskl annotation file {path} does not exist; check the path. {PYSKL_FIX}")
    try:
        with open(path, "rb") as f:
            content = RestrictedUnpickler(f, path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); {PYSKL_FIX}") from None
    if not isinstance(content, dict) or "annotations" not in content:
        what = f"a dict with the keys {sorted(map(str, content))[:8]}" if isinstance(content, dict) else "a "
        what += "" if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f"{path}: holds {what}, not a pyskl annotation dict {{'split': {{...}}, 'annotations': [...]}}; {PYSKL_FIX}"
        )
    if not isinstance(content["annotations"], list):
        raise ValueError(f"{path}: 'annotations' is a {type(content['annotations']).__name__}, not a list; {PYSKL_FIX}")
    split = content.setdefault("split", {})
    if not isinstance(split, dict) or not all(isinstance(v, (list, tuple)) for v in split.values()):
        raise ValueError(f"{path}: 'split' is not a dict of frame_dir lists ({{'xsub_train': [...]}}); {PYSKL_FIX}")
    return content


class _Found(Exception):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(shape)
        self.shape = shape


class _Probe:
    """Stands in for an array while peeking: its state (BUILD) carries the shape."""

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        shape = tuple(int(s) for s in state[1])
        if len(shape) == 4:
            raise _Found(shape)


class _Peeker(RestrictedUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        if name == "_reconstruct":
            return lambda *_: _Probe()
        if name == "_frombuffer":
            return _peek_frombuffer
        return found


def _peek_frombuffer(buf: Any, dtype: Any, shape: tuple[int, ...], order: str) -> None:
    if len(shape) == 4:
        raise _Found(tuple(int(s) for s in shape))


def peek_keypoint(path: str | Path) -> tuple[int, int, int, int] | None:
    """The shape ``(M, T, V, C)`` of the file's first 4-D array (the first ``keypoint``), read only that far.

    Returns ``None`` when the file holds no 4-D array; raises as :func:`load_pyskl` for an unsafe or broken file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pyskl annotation file {path} does not exist; check the path. {PYSKL_FIX}")
    try:
        with open(path, "rb") as f:
            _Peeker(f, path).load()
    except _Found as found:
        return found.shape  # type: ignore[return-value]
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); {PYSKL_FIX}") from None
    return None


def _annotations_of(skeletons: SkeletonSet, score_channel: bool, dtype: Any) -> list[dict[str, Any]]:
    out = []
    for i, sid in enumerate(skeletons.sample_ids):
        length = int(skeletons.lengths[i])
        seq = np.asarray(skeletons.data[i, :, :length], dtype=np.float32)
        ann: dict[str, Any] = {"frame_dir": str(sid), "label": int(skeletons.labels[i]), "total_frames": length}
        if score_channel:
            ann["keypoint"] = np.ascontiguousarray(seq[..., :-1], dtype=dtype)
            ann["keypoint_score"] = np.ascontiguousarray(seq[..., -1], dtype=dtype)
        else:
            ann["keypoint"] = np.ascontiguousarray(seq, dtype=dtype)
        out.append(ann)
    return out


def write_pyskl(
    path: str | Path,
    samples: SkeletonSet | Sequence[Mapping[str, Any]],
    split: Mapping[str, Sequence[str]] | None = None,
    *,
    score_channel: bool = False,
    dtype: Any = np.float32,
    protocol: int = 4,
) -> Path:
    """Write a pyskl annotation pickle (builtins and numpy arrays only), atomically.

    Args:
        path: The ``.pkl`` to write.
        samples: A set (each sample's valid frames ``data[i, :, :lengths[i]]`` become its ``keypoint``
            ``(M, lengths[i], J, C)``; ``sample_ids`` its ``frame_dir``) or annotation dicts as they are.
        split: ``{name: [frame_dir, ...]}``; ``None``: a set's partition as ``train`` / ``val``
            (annotation dicts: no lists).
        score_channel: The set's last channel is a score: it becomes ``keypoint_score`` ``(M, T, J)``
            and ``keypoint`` keeps the others (a 2-D set of x, y, score).
        dtype: Of the written arrays (pyskl's 2-D files use float16).
        protocol: The pickle protocol (2-5).

    Returns:
        ``path``.
    """
    path = Path(path)
    if isinstance(samples, SkeletonSet):
        annotations = _annotations_of(samples, score_channel, dtype)
        if split is None:
            part = np.asarray(samples.partition).astype(str)
            split = {
                "train": [s for s, p in zip(samples.sample_ids, part) if p == "train"],
                "val": [s for s, p in zip(samples.sample_ids, part) if p == "test"],
            }
    else:
        annotations = [dict(a) for a in samples]
    lists = {str(k): [str(s) for s in v] for k, v in (split or {}).items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(tmp, "wb") as f:
        pickle.dump({"split": lists, "annotations": annotations}, f, protocol=protocol)
    os.replace(tmp, path)
    return path
