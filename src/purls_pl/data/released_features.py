"""Released pooled skeleton features: the SynSE folders and Flora's ``.npz`` files, read and written.

The zero-shot skeleton papers after SynSE publish the stage-1 features they trained on, one pooled vector per
sample, so a method can be trained without a skeleton encoder. Two layouts are read, exactly these names:

**SynSE folder** (https://github.com/skelemoa/synse-zsl, ``synse/data_cnn60.py``; read by SynSE, SMIE,
SA-DVAE and TDSM), one folder per split such as ``ntu60/synse_resources/ntu_results/shift_5_r/``::

    train.npy (N, n)   train_label.npy (N,)     seen classes, the dataset's training protocol
    ztest.npy (N, n)   z_label.npy (N,)         zero-shot test: the unseen classes' test samples
    gtest.npy (N, n)   g_label.npy (N,)         generalised test: seen and unseen test samples (optional)

**Flora file** (https://github.com/cseeyangchen/Flora, ``feeders/feeder_ntu.py``), one ``.npz`` per split
such as ``ntu60_xsub_seen40_unseen20.npz``, holding the same three parts as the keys ``train_data`` /
``train_label``, ``zsl_data`` / ``zsl_label`` and ``gzsl_data`` / ``gzsl_label`` (the ``gzsl`` pair optional).

Labels are class indices of the whole dataset (NTU-60: 0..59, NTU-120: 0..119), as both codes compare them
with the split's class indices. Features are ``(N, n)``; an array of rank > 2, ``(N, ..., n)`` (Flora's own
features are ``(N, 2, 16, 512)``: persons, frames, channels), is mean-pooled over its middle axes. Any other
file name or key is refused with the list of what was found, as are a truncated or non-numpy file, rows and
labels of different lengths, a non-integer label, NaN/inf features and parts of different widths: each an
:class:`FeatureFileError` naming the file, the field and the fix. Nothing is unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from purls_pl.data.errors import SampleError

__all__ = [
    "FLORA_KEYS",
    "PARTS",
    "SYNSE_FILES",
    "FeatureFileError",
    "ReleasedFeatures",
    "feature_dim",
    "read_flora_features",
    "read_released_features",
    "read_synse_features",
    "write_flora_features",
    "write_synse_features",
]

#: The three parts of a released split, in this order: seen-class training samples, the zero-shot test set
#: (unseen classes), the generalised zero-shot test set (seen and unseen classes; optional).
PARTS: tuple[str, ...] = ("train", "zsl", "gzsl")
#: part -> (features file, labels file) of a SynSE folder.
SYNSE_FILES: dict[str, tuple[str, str]] = {
    "train": ("train.npy", "train_label.npy"),
    "zsl": ("ztest.npy", "z_label.npy"),
    "gzsl": ("gtest.npy", "g_label.npy"),
}
#: part -> (features key, labels key) of a Flora ``.npz``.
FLORA_KEYS: dict[str, tuple[str, str]] = {
    "train": ("train_data", "train_label"),
    "zsl": ("zsl_data", "zsl_label"),
    "gzsl": ("gzsl_data", "gzsl_label"),
}
_REQUIRED = ("train", "zsl")
_FIX = (
    "use the features as released (SynSE folder: train.npy, train_label.npy, ztest.npy, z_label.npy "
    "[, gtest.npy, g_label.npy]; Flora .npz: train_data, train_label, zsl_data, zsl_label [, gzsl_data, "
    "gzsl_label]) or write them with purls_pl.data.released_features.write_synse_features / write_flora_features"
)


class FeatureFileError(SampleError):
    """A released feature file (or folder) that cannot be used: the path, what is wrong and the fix."""


@dataclass(frozen=True)
class ReleasedFeatures:
    """The parts of one released split.

    Attributes:
        path: The SynSE folder or the Flora ``.npz``.
        format: ``"synse"`` or ``"flora"``.
        parts: part (:data:`PARTS`) -> ``(features (N, n) float32, labels (N,) int64)``; ``gzsl`` may be absent.
        sources: part -> the file (or ``file:key``) each part was read from, for messages.
    """

    path: Path
    format: str
    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    sources: dict[str, str]

    @property
    def dim(self) -> int:
        """``n``, the feature width."""
        return int(self.parts["train"][0].shape[1])


def _features(array: np.ndarray, where: str) -> np.ndarray:
    """``(N, n)`` float32 features from ``(N, n)`` or ``(N, ..., n)`` (middle axes averaged), checked finite."""
    if not np.issubdtype(array.dtype, np.number) or array.ndim < 2:
        raise FeatureFileError(
            where, f"features must be a numeric (N, n) array, found {array.dtype} of shape {array.shape}", _FIX
        )
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1, array.shape[-1]).mean(axis=1)
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise FeatureFileError(
            where,
            f"{len(rows)} of {len(array)} feature rows hold NaN or inf (first rows {rows[:5].tolist()})",
            "re-extract those samples' features (or drop the rows and their labels together)",
        )
    return array


def _labels(array: np.ndarray, where: str) -> np.ndarray:
    """``(N,)`` int64 class indices from ``(N,)`` or ``(N, 1)`` integer (or integral float) labels."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
        raise FeatureFileError(
            where,
            f"labels must be (N,) class indices, found {array.dtype} of shape {array.shape}",
            "store one integer class index of the whole dataset per row",
        )
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise FeatureFileError(where, "labels are not whole numbers", "store integer class indices")
    return array.astype(np.int64)


def _part(features: np.ndarray, labels: np.ndarray, where_x: str, where_y: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(features, where_x), _labels(labels, where_y)
    if len(x) != len(y):
        raise FeatureFileError(
            where_x,
            f"{len(x)} feature rows but {len(y)} labels in {where_y}",
            "give exactly one label per feature row (both files of the same extraction)",
        )
    return x, y


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise FeatureFileError(
            path, f"cannot be read as a .npy array (truncated, or not written by numpy: {err})", _FIX
        ) from None


def read_synse_features(folder: str | Path) -> ReleasedFeatures:
    """Read a SynSE feature folder (module docstring): ``train``, ``zsl`` and, when present, ``gzsl``.

    Raises:
        FeatureFileError: a missing folder or required file, an unknown ``.npy`` file, an unreadable file, or
            any check of the module docstring.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FeatureFileError(folder, "is not a folder of SynSE features", _FIX)
    accepted = {name for pair in SYNSE_FILES.values() for name in pair}
    found = sorted(p.name for p in folder.iterdir() if p.suffix == ".npy")
    unknown = sorted(set(found) - accepted)
    if unknown:
        raise FeatureFileError(
            folder,
            f"holds .npy files this reader does not know: {unknown} (found {found}; accepted {sorted(accepted)})",
            "keep only the split's own files in the folder (a SynSE validation folder's val.npy / *_out.npy "
            "belong to another protocol)",
        )
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sources: dict[str, str] = {}
    for part, (xs, ys) in SYNSE_FILES.items():
        present = [(folder / n).is_file() for n in (xs, ys)]
        if not any(present) and part not in _REQUIRED:
            continue
        missing = [n for n, ok in zip((xs, ys), present, strict=True) if not ok]
        if missing:
            raise FeatureFileError(folder, f"has no {missing} (found {found})", _FIX)
        parts[part] = _part(_load_npy(folder / xs), _load_npy(folder / ys), str(folder / xs), str(folder / ys))
        sources[part] = str(folder / xs)
    return _checked(ReleasedFeatures(folder, "synse", parts, sources))


def read_flora_features(path: str | Path) -> ReleasedFeatures:
    """Read a Flora ``.npz`` (module docstring): ``train``, ``zsl`` and, when present, ``gzsl``.

    Raises:
        FeatureFileError: a missing or unreadable file, a missing or unknown key, or any check of the module
            docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(path, "does not exist", _FIX)
    accepted = {key for pair in FLORA_KEYS.values() for key in pair}
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            unknown = sorted(set(keys) - accepted)
            if unknown:
                found = f"found {keys}; accepted {sorted(accepted)}"
                raise FeatureFileError(path, f"holds keys this reader does not know: {unknown} ({found})", _FIX)
            arrays = {key: npz[key] for key in keys}
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
        if isinstance(err, FeatureFileError):
            raise
        problem = f"cannot be read as a .npz archive (truncated, or not numpy's: {err})"
        raise FeatureFileError(path, problem, _FIX) from None
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sources: dict[str, str] = {}
    for part, (xk, yk) in FLORA_KEYS.items():
        present = [k in arrays for k in (xk, yk)]
        if not any(present) and part not in _REQUIRED:
            continue
        missing = [k for k, ok in zip((xk, yk), present, strict=True) if not ok]
        if missing:
            raise FeatureFileError(path, f"has no keys {missing} (found {keys})", _FIX)
        parts[part] = _part(arrays[xk], arrays[yk], f"{path}:{xk}", f"{path}:{yk}")
        sources[part] = f"{path}:{xk}"
    return _checked(ReleasedFeatures(path, "flora", parts, sources))


def _checked(features: ReleasedFeatures) -> ReleasedFeatures:
    widths = {part: x.shape[1] for part, (x, _) in features.parts.items()}
    if len(set(widths.values())) > 1:
        raise FeatureFileError(
            features.path,
            f"its parts have different feature widths {widths}",
            "use the train and test features of one extraction (one encoder)",
        )
    return features


def read_released_features(path: str | Path) -> ReleasedFeatures:
    """A SynSE folder (a directory) or a Flora file (``.npz``)."""
    path = Path(path)
    if path.is_dir():
        return read_synse_features(path)
    if path.suffix == ".npz":
        return read_flora_features(path)
    problem = "does not exist" if not path.exists() else "is neither a SynSE folder nor a Flora .npz"
    raise FeatureFileError(path, problem, _FIX)


def _header_width(handle: object, where: str) -> int:
    try:
        version = np.lib.format.read_magic(handle)  # type: ignore[arg-type]
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read(handle)  # type: ignore[arg-type]
    except (ValueError, EOFError, OSError) as err:
        raise FeatureFileError(where, f"has no readable .npy header ({err})", _FIX) from None
    if len(shape) < 2:
        raise FeatureFileError(where, f"features must be (N, n), found shape {shape}", _FIX)
    return int(shape[-1])


def feature_dim(path: str | Path) -> int:
    """``n`` of a SynSE folder or Flora file, from the header of its training features alone (what a model
    needs before the data are read)."""
    path = Path(path)
    if path.is_dir():
        where = path / SYNSE_FILES["train"][0]
        if not where.is_file():
            raise FeatureFileError(path, f"has no {where.name}", _FIX)
        with open(where, "rb") as handle:
            return _header_width(handle, str(where))
    if path.suffix == ".npz" and path.is_file():
        key = FLORA_KEYS["train"][0]
        try:
            with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as handle:
                return _header_width(handle, f"{path}:{key}")
        except KeyError:
            raise FeatureFileError(path, f"has no key {key!r}", _FIX) from None
        except zipfile.BadZipFile as err:
            raise FeatureFileError(path, f"cannot be read as a .npz archive ({err})", _FIX) from None
    return read_released_features(path).dim  # raises the reader's error for anything else


Part = tuple[np.ndarray, np.ndarray]


def write_synse_features(folder: str | Path, train: Part, zsl: Part, gzsl: Part | None = None) -> Path:
    """Write a SynSE feature folder: each part is ``(features (N, n), labels (N,))``; ``gzsl`` optional.
    Each file is written aside and renamed into place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for part, value in zip(PARTS, (train, zsl, gzsl), strict=True):
        if value is None:
            continue
        for name, array in zip(SYNSE_FILES[part], value, strict=True):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(array), allow_pickle=False)
            os.replace(tmp, folder / name)
    return folder


def write_flora_features(path: str | Path, train: Part, zsl: Part, gzsl: Part | None = None) -> Path:
    """Write a Flora ``.npz``: each part is ``(features (N, n), labels (N,))``; ``gzsl`` optional. Written
    aside and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for part, value in zip(PARTS, (train, zsl, gzsl), strict=True):
        if value is not None:
            arrays.update({key: np.asarray(a) for key, a in zip(FLORA_KEYS[part], value, strict=True)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)
    return path
