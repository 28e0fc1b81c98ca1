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
    layout, ``C`` (2 for x, y; 3 for x, y, z or x, y, score) must be the same in every file. All-zero
    joints mean "missing". Sequences may differ in length; they are fitted to ``num_frames``.
``layout.json``
    a :meth:`~purls_pl.data.layouts.SkeletonLayout.from_mapping` spec: ``name``, ``joint_names``,
    ``edges`` (0-based pairs), ``center`` (joint index) and ``parts`` (``head``, ``hands``, ``torso``,
    ``legs`` -> disjoint joint lists covering every joint). It is registered under its ``name``.
``classes.txt``
    the full class list in index order (may hold classes without samples); without it the classes
    are the sorted unique labels of ``index.csv``. The class names double as the keys of the
    text descriptions (``descriptions/<dataset>.json``).

Example::

    index.csv:   sample_id,label,split
                 clip001,wave,train
                 clip002,jump,test
    clip001.npy: np.save("clip001.npy", np.zeros((64, 18, 3), np.float32))
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np

from purls_pl.data.cache import SourceBase, allocate, missing_root_error, pick_evenly
from purls_pl.data.layouts import SkeletonLayout, get_layout, register_layout
from purls_pl.data.preprocess import check_temporal, preprocess_sequence
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["CustomSource", "read_custom_index", "write_custom_dataset"]

_READER_VERSION = 1
HOW_TO_MAKE = "See the format description in purls_pl.data.readers.custom (or write_custom_dataset)."


def read_custom_index(path: Path) -> list[tuple[str, str, str]]:
    """``index.csv`` -> ``[(sample_id, label, split), ...]``; errors name the row and the field."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        if "sample_id" not in fields or "label" not in fields:
            raise ValueError(f"{path}: header is {fields}; expected the columns sample_id,label[,split]")
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            sid, label, split = row.get("sample_id", ""), row.get("label", ""), row.get("split", "") or "train"
            if not sid or not label:
                raise ValueError(f"{path}, line {line}: empty 'sample_id' or 'label'; every row needs both")
            if split not in ("train", "test"):
                raise ValueError(f"{path}, line {line}: split is {split!r}; use 'train' or 'test' (or leave it empty)")
            rows.append((sid, label, split))
    dup = sorted(s for s, n in Counter(r[0] for r in rows).items() if n > 1)
    if dup:
        raise ValueError(f"{path}: sample_id {dup[:5]} listed more than once; sample ids must be unique")
    return rows


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
        max_samples: Read only this many samples, evenly spaced over ``index.csv`` (quick runs).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the processed arrays there.
    """

    def __init__(
        self,
        root: str,
        dataset: str = "custom",
        layout: str | None = None,
        num_frames: int = 64,
        temporal: str = "pad",
        max_persons: int = 1,
        center: bool = True,
        max_samples: int | None = None,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        check_temporal(temporal)
        self.root, self.dataset, self.layout_name, self.num_frames = root, dataset, layout, num_frames
        self.temporal, self.max_persons, self.center, self.max_samples = temporal, max_persons, center, max_samples
        self.cache_dir, self.cache = cache_dir, cache
        self.layout = layout or _peek_layout_name(Path(root).expanduser())

    def load(self) -> SkeletonSet:
        """Read the folder: data ``(N, max_persons, num_frames, J, C)``."""
        root = Path(self.root).expanduser()
        if not (root / "index.csv").is_file():
            raise missing_root_error(
                root / "index.csv",
                f"custom dataset {self.dataset!r}",
                "index.csv, <sample_id>.npy files, layout.json, optional classes.txt",
                HOW_TO_MAKE,
            )
        lay = _layout(root, self.layout_name)
        self.layout = lay.name
        rows = pick_evenly(read_custom_index(root / "index.csv"), self.max_samples)
        classes_file = root / "classes.txt"
        if classes_file.is_file():
            classes = [c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()]
            unknown = sorted({r[1] for r in rows} - set(classes))
            if unknown:
                raise ValueError(
                    f"{root / 'index.csv'}: labels {unknown[:5]} are not in {classes_file}; add them "
                    "there or fix the label column"
                )
        else:
            classes = sorted({r[1] for r in rows})
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
        return self._cached(params, sources, lambda: self._build(rows, files, classes, lay))

    def _build(
        self, rows: list[tuple[str, str, str]], files: list[Path], classes: list[str], lay: SkeletonLayout
    ) -> SkeletonSet:
        data: np.ndarray | None = None
        lengths = np.zeros(len(rows), np.int64)
        for i, path in enumerate(files):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: listed in index.csv (sample_id {rows[i][0]!r}) but missing")
            seq = np.load(path, allow_pickle=False)
            if seq.ndim == 3:
                seq = seq[None]
            if seq.ndim != 4 or seq.shape[2] != lay.num_joints:
                raise ValueError(
                    f"{path}: shape {seq.shape}; expected (T, J, C) or (M, T, J, C) with "
                    f"J = {lay.num_joints} joints of layout {lay.name!r}"
                )
            if data is None:
                data = allocate((len(rows), self.max_persons, self.num_frames, lay.num_joints, seq.shape[3]))
            if seq.shape[3] != data.shape[4]:
                raise ValueError(
                    f"{path}: has C = {seq.shape[3]} channels but {files[0]} has {data.shape[4]}; "
                    "all samples need the same channels"
                )
            seq = seq[: self.max_persons].astype(np.float32)
            if not np.isfinite(seq).all():
                raise ValueError(f"{path}: holds NaN or inf; mark missing joints with zeros instead")
            out, lengths[i] = preprocess_sequence(
                seq,
                lay,
                self.num_frames,
                self.temporal,  # type: ignore[arg-type]
                center=self.center,
            )
            data[i, : len(out)] = out
        if data is None:
            raise ValueError(f"{self.root}: index.csv lists no samples")
        return SkeletonSet(
            data=data,
            labels=np.array([classes.index(r[1]) for r in rows], np.int64),
            sample_ids=[r[0] for r in rows],
            class_names=classes,
            layout=lay.name,
            partition=np.array([r[2] for r in rows], dtype="<U5"),
            lengths=lengths,
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
        spec = {
            "name": layout.name,
            "joint_names": list(layout.joint_names),
            "edges": [list(e) for e in layout.edges],
            "center": layout.center,
            "parts": {k: list(v) for k, v in layout.parts.items()},
        }
        (root / "layout.json").write_text(json.dumps(spec, indent=1))
    if classes is not None:
        (root / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    return root
