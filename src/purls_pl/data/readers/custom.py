"""Your own skeleton dataset: one ``.npy`` per sample plus an ``index.csv``.

Folder layout::

    <root>/
      index.csv        # header: sample_id,label[,split]
      <sample_id>.npy  # one per row of index.csv
      layout.json      # optional: the skeleton layout (else pass layout="<registered name>")
      classes.txt      # optional: one class name per line, fixing the class order

``index.csv``
    ``sample_id`` names ``<sample_id>.npy`` in the folder; ``label`` is the class *name*;
    ``split`` (optional column, per row optional) is ``train`` or ``test``, default ``train``.
``<sample_id>.npy``
    float array ``(T, J, C)`` for one person or ``(M, T, J, C)`` for several; ``J`` must match the
    layout, ``C`` (2 for x, y; 3 for x, y, z or x, y, score) must be the same in every file. Missing
    data are zeros: an all-zero joint is missing (it stays zero through centering and augmentation), and
    a frame with every joint zero is dropped wherever it is, so resampling and padding use only frames
    that show someone. Sequences may differ in length; they are fitted to ``num_frames``.
``layout.json``
    a :meth:`~purls_pl.data.layouts.SkeletonLayout.from_mapping` spec: ``name``, ``joint_names``,
    ``edges`` (0-based pairs), ``center`` (joint index) and ``parts`` (``head``, ``hands``, ``torso``,
    ``legs`` -> disjoint joint lists covering every joint). It is registered under its ``name``.
``classes.txt``
    the full class list in index order (may hold classes without samples); without it the classes
    are the sorted unique labels of ``index.csv``. The class names double as the keys of the
    text descriptions (``descriptions/<dataset>.json``).

Bad input: a row with an empty field or a ``split`` other than train/test, a label missing from
``classes.txt``, a missing or unreadable ``.npy``, a wrong joint count, NaN/inf, a 0-frame (or
all-zero) sequence each raise an error naming the file (or line) and the fix; with
``on_error="skip"`` such samples are left out and listed in one report (``source.skipped``, the
cache manifest). A wrong header or a duplicate ``sample_id`` always raises.

Example::

    index.csv:   sample_id,label,split
                 clip001,wave,train
                 clip002,jump,test
    clip001.npy: np.save("clip001.npy", np.zeros((64, 18, 3), np.float32))
"""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from purls_pl.data.cache import ResidentRows, allocate
from purls_pl.data.layout_check import check_layout
from purls_pl.data.layouts import SkeletonLayout, get_layout, register_layout
from purls_pl.data.preprocess import check_temporal, valid_length
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton, class_path
from purls_pl.data.readers._base import (
    Conversion,
    OnError,
    SampleError,
    SampleMissingError,
    SkippedSample,
    SourceBase,
    check_values,
    convert_files,
    format_skipped,
    missing_root_error,
    pick_evenly,
    reject,
)
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["CustomSource", "read_custom_index", "write_custom_dataset"]

_READER_VERSION = 3  # 2: skipped files recorded in the manifest; 3: empty frames dropped anywhere
HOW_TO_MAKE = "See the format description in purls_pl.data.readers.custom (or write_custom_dataset)."


def read_custom_index(
    path: Path, on_error: OnError = "raise", skipped: list[SkippedSample] | None = None
) -> list[tuple[str, str, str]]:
    """``index.csv`` -> ``[(sample_id, label, split), ...]``; errors name the line and the field.

    A bad row raises, or with ``on_error="skip"`` is appended to ``skipped`` and left out. A wrong
    header or a duplicate ``sample_id`` always raises.
    """
    skipped = [] if skipped is None else skipped
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        if "sample_id" not in fields or "label" not in fields:
            raise ValueError(f"{path}: header is {fields}; expected the columns sample_id,label[,split]")
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            sid, label, split = row.get("sample_id", ""), row.get("label", ""), row.get("split", "") or "train"
            where = f"{path}, line {line}"
            if not sid or not label:
                reject(on_error, skipped, where, "empty 'sample_id' or 'label'", "every row needs both")
            elif split not in ("train", "test"):
                reject(on_error, skipped, where, f"split is {split!r}", "use 'train' or 'test' (or leave it empty)")
            else:
                rows.append((sid, label, split))
    dup = sorted(s for s, n in Counter(r[0] for r in rows).items() if n > 1)
    if dup:
        raise ValueError(f"{path}: sample_id {dup[:5]} listed more than once; sample ids must be unique")
    return rows


def _read_npy(path: Path, preprocessing: Preprocessing) -> RawSkeleton:
    """One ``.npy`` sample, checked, as :class:`RawSkeleton` (its first ``num_persons`` persons); else a
    :class:`SampleError` naming the file, the problem and the fix."""
    layout = get_layout(preprocessing.layout)
    if not path.is_file():
        raise SampleMissingError(path, "is listed in index.csv but does not exist", "add the file or remove its row")
    try:
        seq = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise SampleError(path, f"is not a readable .npy array ({err})", "re-save it with numpy.save") from None
    if seq.ndim == 3:
        seq = seq[None]
    if seq.ndim != 4 or seq.shape[2] != layout.num_joints or not np.issubdtype(seq.dtype, np.number):
        raise SampleError(
            path,
            f"shape {seq.shape} ({seq.dtype}); expected numbers (T, J, C) or (M, T, J, C) with "
            f"J = {layout.num_joints} joints of layout {layout.name!r}",
            "re-save it in the documented shape, or pick the matching layout",
        )
    seq = seq[: preprocessing.num_persons].astype(np.float32)
    check_values(path, seq, "the array", "mark missing joints with zeros instead")
    if valid_length(seq) == 0:
        raise SampleError(path, f"holds {seq.shape[1]} frames and no non-zero joint (an empty sequence)", "remove it")
    return RawSkeleton(seq, str(path), fix="re-save it with numpy.save in the documented shape")


def _process_custom(path: Path, *, preprocessing: Preprocessing, layout: SkeletonLayout) -> tuple[np.ndarray, int]:
    """One ``.npy`` -> ``((max_persons, num_frames, J, C), valid frames)``, or :class:`SampleError`.

    ``layout`` (``preprocessing.layout``'s) is registered first where it is not (a worker process that did
    not inherit the parent's registry)."""
    try:
        get_layout(layout.name)
    except KeyError:
        register_layout(layout)
    return preprocessing.apply(_read_npy(path, preprocessing))


def _peek_layout_name(root: Path) -> str:
    """The ``name`` in ``root/layout.json`` ('' when absent or unreadable; :meth:`CustomSource.load` reports)."""
    try:
        return str(json.loads((root / "layout.json").read_text()).get("name", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _layout(root: Path, layout: str | None) -> SkeletonLayout:
    spec_path = root / "layout.json"
    if spec_path.is_file():
        try:
            lay = SkeletonLayout.from_mapping(json.loads(spec_path.read_text()))
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"{spec_path}: invalid layout spec: {err}") from None
        if layout is not None and layout != lay.name:
            raise ValueError(f"{spec_path} names layout {lay.name!r} but layout={layout!r} was passed; drop one")
        try:
            known = get_layout(lay.name)
        except KeyError:
            return register_layout(lay)
        if known != lay:
            raise ValueError(
                f"{spec_path}: layout name {lay.name!r} is already registered with different joints; "
                "give your layout another 'name'"
            )
        return known
    if layout is None:
        raise FileNotFoundError(
            f"{root}: no layout.json and no layout= given; add layout.json (see "
            "purls_pl.data.readers.custom) or pass a registered layout name such as 'ntu25'"
        )
    return get_layout(layout)


class CustomSource(SourceBase):
    """A dataset in the documented custom format (see :mod:`purls_pl.data.readers.custom`).

    Args:
        root: Folder with ``index.csv``, the ``<sample_id>.npy`` files and ``layout.json`` / ``classes.txt``.
        dataset: Name of the set (the key of its class descriptions), e.g. ``"my-gestures"``.
        layout: Registered layout name, needed when the folder has no ``layout.json``.
        num_frames: Frames per sample.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` to ``num_frames``.
        max_persons: Person slots (extra persons are dropped, missing ones zero).
        center: Subtract the first frame's center joint from the coordinates (first ``min(C, 3)`` channels).
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    suffixes = (".npy",)
    file_format = ".npy array (T, J, C) or (M, T, J, C)"

    def __init__(
        self,
        root: str,
        dataset: str = "custom",
        layout: str | None = None,
        num_frames: int = 64,
        temporal: str = "pad",
        max_persons: int = 1,
        center: bool = True,
        conversion: Conversion | None = None,
    ) -> None:
        check_temporal(temporal)
        self.root, self.dataset, self.layout_name, self.num_frames = root, dataset, layout, num_frames
        self.conversion = Conversion.of(conversion)
        self.temporal, self.max_persons, self.center = temporal, max_persons, center
        self._layout = layout or _peek_layout_name(Path(root).expanduser())

    @property
    def layout(self) -> str:
        """The layout's name: ``layout`` or the ``name`` in ``layout.json`` (registered by :meth:`load`)."""
        return self._layout

    @property
    def preprocessing(self) -> Preprocessing:
        """Drop empty frames anywhere in a sequence (a tracker that lost the person for a while), center it,
        fit it to ``num_frames``; ``C`` is whatever the files hold."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            empty_frames="all",
            center=self.center,
            num_persons=self.max_persons,
            reader=class_path(CustomSource),
        )

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One ``.npy`` sample ``(T, J, C)`` or ``(M, T, J, C)`` with the layout's ``J``, no NaN/inf, not all zero."""
        return _read_npy(Path(path), preprocessing)

    @property
    def class_list_file(self) -> Path:
        """Where the class list comes from: ``classes.txt``, else ``index.csv``."""
        root = Path(self.root).expanduser()
        return root / "classes.txt" if (root / "classes.txt").is_file() else root / "index.csv"

    @property
    def class_names(self) -> list[str]:
        """The class list: ``classes.txt``, else the sorted labels of ``index.csv``."""
        root = Path(self.root).expanduser()
        classes_file = root / "classes.txt"
        if classes_file.is_file():
            return [c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()]
        self._require_index(root)
        return sorted({label for _, label, _ in read_custom_index(root / "index.csv", "skip", [])})

    def _require_index(self, root: Path) -> None:
        """Raise a FileNotFoundError naming ``root/index.csv``, what the folder holds and how to make it."""
        if not (root / "index.csv").is_file():
            raise missing_root_error(
                root / "index.csv",
                f"custom dataset {self.dataset!r}",
                "index.csv, <sample_id>.npy files, layout.json, optional classes.txt",
                HOW_TO_MAKE,
            )

    def load(self) -> SkeletonSet:
        """Read the folder: data ``(N, max_persons, num_frames, J, C)``."""
        root = Path(self.root).expanduser()
        self._require_index(root)
        lay = _layout(root, self.layout_name)
        self._layout = lay.name
        skipped: list[SkippedSample] = []
        rows = read_custom_index(root / "index.csv", self.on_error, skipped)
        classes_file = root / "classes.txt"
        classes = self.class_names
        if classes_file.is_file():
            known = set(classes)
            for sid, label, _ in rows:
                if label not in known:
                    reject(
                        self.on_error,
                        skipped,
                        root / f"{sid}.npy",
                        f"label {label!r} (index.csv) is not a class of {classes_file}",
                        "add the class there or fix the label column",
                    )
            rows = [r for r in rows if r[1] in known]
        rows = pick_evenly(rows, self.max_samples)
        files = [root / f"{sid}.npy" for sid, _, _ in rows]
        params = {
            "reader": f"custom-{self.dataset}",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_persons": self.max_persons,
            "center": self.center,
            "max_samples": self.max_samples,
            "layout": lay.name,
            "classes": classes,
        }
        sources = [root / "index.csv", *files, *(p for p in (root / "layout.json", classes_file) if p.is_file())]
        skeletons = self._cached(params, sources, lambda found: self._build(rows, files, classes, lay, found), skipped)
        for problem in check_layout(skeletons.data, lay):
            warnings.warn(
                f"{root}: the data contradict layout {lay.name!r} ({root / 'layout.json'}): {problem}. Check that "
                "the joint order of the .npy files is the layout's joint_names order",
                stacklevel=2,
            )
        return skeletons

    def _build(
        self,
        rows: list[tuple[str, str, str]],
        files: list[Path],
        classes: list[str],
        lay: SkeletonLayout,
        skipped: list[SkippedSample],
    ) -> SkeletonSet:
        work = partial(_process_custom, preprocessing=self.preprocessing, layout=lay)
        data: np.ndarray | None = None
        kept: list[int] = []
        lengths: list[int] = []
        converted = convert_files(
            work, files, on_error=self.on_error, skipped=skipped, num_workers=self.num_workers, desc=self.dataset
        )
        for i, (out, length) in converted:
            if data is None:
                data = allocate((len(rows), self.max_persons, self.num_frames, lay.num_joints, out.shape[-1]))
                resident = ResidentRows(data)
                first = files[i]
            if out.shape[-1] != data.shape[4]:
                reject(
                    self.on_error,
                    skipped,
                    files[i],
                    f"has C = {out.shape[-1]} channels but {first.name} has {data.shape[4]}",
                    "all samples need the same channels",
                )
                continue
            data[len(kept), : len(out)] = out
            kept.append(i)
            lengths.append(length)
            resident.written(len(kept))
        if data is None or not kept:
            raise ValueError(f"{self.root}: index.csv lists no usable sample:\n{format_skipped(skipped)}")
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array([classes.index(rows[i][1]) for i in kept], np.int64),
            sample_ids=[rows[i][0] for i in kept],
            class_names=classes,
            layout=lay.name,
            partition=np.array([rows[i][2] for i in kept], dtype="<U5"),
            lengths=np.array(lengths, np.int64),
        )


def write_custom_dataset(
    root: str | Path,
    samples: dict[str, np.ndarray],
    labels: dict[str, str],
    layout: SkeletonLayout | str,
    splits: dict[str, str] | None = None,
    classes: list[str] | None = None,
) -> Path:
    """Write ``samples`` (id -> ``(T, J, C)`` or ``(M, T, J, C)``) in the custom format; returns ``root``.

    ``layout`` as a :class:`SkeletonLayout` is written to ``layout.json``; as a name it is not
    (pass ``layout=`` to :class:`CustomSource` then).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "index.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sample_id", "label", "split"])
        for sid, arr in samples.items():
            np.save(root / f"{sid}.npy", np.asarray(arr, np.float32))
            w.writerow([sid, labels[sid], (splits or {}).get(sid, "train")])
    if isinstance(layout, SkeletonLayout):
        (root / "layout.json").write_text(json.dumps(layout.to_mapping(), indent=1))
    if classes is not None:
        (root / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    return root
