"""NTU RGB+D 60 / 120 from already-processed arrays (CTR-GCN ``.npz`` or st-gcn ``.npy`` + ``.pkl``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purls_pl.data.catalog import class_names
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import Preprocessing, class_path
from purls_pl.data.readers._base import Conversion, SourceBase, missing_root_error, pick_evenly
from purls_pl.data.readers._processed import (
    array_shape,
    fill_processed,
    find_stgcn_files,
    iter_array_rows,
    load_label_pickle,
)
from purls_pl.data.readers.ntu import NTUSkeletonSource
from purls_pl.data.readers.ntu_protocol import _NAME, HOW_TO_GET_RAW, NTUSampleName, check_dataset_protocol
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["CTRGCN_FILES", "NTUProcessedSource"]

_READER_VERSION = 1

#: CTR-GCN's ``data/ntu*/seq_transformation.py`` outputs per (dataset, protocol).
CTRGCN_FILES = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
}
HOW_TO_GET_PROCESSED = (
    "Create them from the raw skeletons with CTR-GCN's data/ntu(120)/get_raw_skes_data.py, get_raw_denoised_data.py "
    "and seq_transformation.py (-> NTU60_CS.npz ...), or 2s-AGCN / Shift-GCN's data_gen/ntu_gendata.py "
    "(-> <protocol>/train_data_joint.npy ...); or read the raw files with NTUSkeletonSource. " + HOW_TO_GET_RAW
)


class NTUProcessedSource(SourceBase):
    """NTU RGB+D 60 / 120 from already-processed arrays.

    Two formats are read: CTR-GCN's ``NTU60_CS.npz`` / ``NTU60_CV.npz`` / ``NTU120_CSub.npz`` /
    ``NTU120_CSet.npz`` (``x_train`` ``(N, T, 150)`` = 2 persons x 25 joints x xyz, ``y_train`` one-hot,
    ``x_test``, ``y_test``), and the st-gcn / 2s-AGCN / Shift-GCN ``{train,val}_data_joint.npy``
    (or ``{train,val}_data.npy``) ``(N, 3, T, 25, 2)`` with ``{train,val}_label.pkl``. The data are
    taken as already centered / normalised; ``train`` -> partition ``"train"``, ``test``/``val`` -> ``"test"``.

    Args:
        root: The ``.npz`` file, or a folder holding it, the st-gcn files, or ``<protocol>/`` with them.
        dataset: ``"ntu60"`` or ``"ntu120"`` (class list; picks the CTR-GCN file name).
            ``None``: ``"ntu60"``; the CLI takes it from the split.
        protocol: ``"xsub"``, ``"xview"`` or ``"xset"`` (which split the files encode).
        format: ``"auto"``, ``"ctrgcn"`` (npz) or ``"stgcn"`` (npy + pkl).
        num_frames: Refit every sequence to this many frames; ``None`` keeps the stored length.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` (with ``num_frames``).
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    def __init__(
        self,
        root: str,
        dataset: str | None = None,
        protocol: str = "xsub",
        format: str = "auto",
        num_frames: int | None = None,
        temporal: str = "pad",
        conversion: Conversion | None = None,
    ) -> None:
        dataset = dataset or "ntu60"
        self.protocol = check_dataset_protocol(dataset, protocol)
        if self.protocol == "all":
            raise ValueError("processed NTU files encode one protocol; choose 'xsub', 'xview' or 'xset'")
        if format not in ("auto", "ctrgcn", "stgcn"):
            raise ValueError(f"format must be 'auto', 'ctrgcn' or 'stgcn', got {format!r}")
        check_temporal(temporal)
        self.root, self.dataset, self.format, self.num_frames = root, dataset, format, num_frames
        self.conversion = Conversion.of(conversion)
        self.temporal = temporal

    @property
    def preprocessing(self) -> Preprocessing:
        """The raw-file preprocessing the stored arrays are assumed to have had (``approximate``): the raw
        NTU reader's centering and alignment, then the fit to ``num_frames`` (``None``: the stored length)."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            center=True,
            align=True,
            num_persons=2,
            channels=3,
            reader=class_path(NTUSkeletonSource),
            approximate=True,
        )

    def _resolve(self) -> tuple[str, list[tuple[str, Path, Path | None]]]:
        """``(format, [(split, data file, label file or None), ...])``."""
        root = Path(self.root).expanduser()
        npz = CTRGCN_FILES.get((self.dataset, self.protocol), "NTU*.npz")
        expected = f"{npz} (CTR-GCN) or train/val_data_joint.npy + train/val_label.pkl (st-gcn)"
        if root.is_file() and root.suffix == ".npz" and self.format != "stgcn":
            return "ctrgcn", [("train", root, None), ("test", root, None)]
        if not root.is_dir():
            raise missing_root_error(root, "processed NTU RGB+D", expected, HOW_TO_GET_PROCESSED)
        if self.format != "stgcn" and (root / npz).is_file():
            return "ctrgcn", [("train", root / npz, None), ("test", root / npz, None)]
        if self.format != "ctrgcn":
            folders = [root, root / self.protocol]
            names = ("{split}_data_joint.npy", "{split}_data.npy")
            train, val = find_stgcn_files(folders, "train", names), find_stgcn_files(folders, "val", names)
            if train and val:
                return "stgcn", [("train", *train), ("test", *val)]
        raise missing_root_error(root, "processed NTU RGB+D", expected, HOW_TO_GET_PROCESSED, empty=True)

    def load(self) -> SkeletonSet:
        """Convert (or take from the cache) the arrays: data ``(N, 2, T, 25, 3)``."""
        fmt, parts = self._resolve()
        params = {
            "reader": f"{self.dataset}-{fmt}-{self.protocol}",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_samples": self.max_samples,
        }
        sources = sorted({p for _, d, lab in parts for p in (d, lab) if p is not None})
        return self._cached(params, sources, lambda _: self._build(fmt, parts))

    def _build(self, fmt: str, parts: list[tuple[str, Path, Path | None]]) -> SkeletonSet:
        names_all = class_names(self.dataset)
        ids: list[str] = []
        labels: list[int] = []
        partition: list[str] = []
        readers = []
        for split, data_path, label_path in parts:
            if fmt == "ctrgcn":
                shape = array_shape(data_path, f"x_{split}")
                if len(shape) != 3 or shape[2] != 150:
                    raise ValueError(
                        f"{data_path}: x_{split} has shape {shape}; expected (N, T, 150) = "
                        "2 persons x 25 joints x 3 (CTR-GCN seq_transformation.py output)"
                    )
                with np.load(data_path, allow_pickle=False) as z:
                    y = np.asarray(z[f"y_{split}"])
                lab = (y.argmax(1) if y.ndim == 2 else y).astype(int).tolist()
                split_ids = [f"{self.dataset}_{self.protocol}_{split}_{i:06d}" for i in range(shape[0])]
                readers.append(
                    (
                        iter_array_rows(data_path, f"x_{split}"),
                        lambda a: a.reshape(len(a), a.shape[1], 2, 25, 3).transpose(0, 2, 1, 3, 4),
                    )
                )
                tail = (2, shape[1], 25, 3)
            else:
                shape = array_shape(data_path)
                if len(shape) != 5 or shape[1] != 3 or shape[3] != 25:
                    raise ValueError(
                        f"{data_path}: shape {shape}; expected (N, 3, T, 25, M) as written by "
                        "st-gcn / 2s-AGCN ntu_gendata.py"
                    )
                split_ids, lab = load_label_pickle(label_path)  # type: ignore[arg-type]
                split_ids = [Path(s).name.removesuffix(".skeleton") for s in split_ids]
                readers.append((iter_array_rows(data_path), lambda a: a.transpose(0, 4, 2, 3, 1)))
                tail = (shape[4], shape[2], 25, 3)
            if len(split_ids) != shape[0] or len(lab) != shape[0]:
                raise ValueError(
                    f"{data_path}: {shape[0]} samples but {len(lab)} labels; the data and label "
                    "files come from different runs, regenerate them together"
                )
            bad = sorted({x for x in lab if not 0 <= x < len(names_all)})
            if bad:
                raise ValueError(
                    f"{label_path or data_path}: labels {bad[:5]} outside 0..{len(names_all) - 1} "
                    f"of {self.dataset}; set dataset= to the set the files were made from"
                )
            ids += split_ids
            labels += lab
            partition += ["train" if split == "train" else "test"] * shape[0]
        select = np.asarray(pick_evenly(list(range(len(ids))), self.max_samples))
        data, lengths = fill_processed(readers, len(ids), select, tail, self.num_frames, self.temporal)
        meta: dict[str, np.ndarray] = {}
        if fmt == "stgcn" and all(_NAME.search(s) for s in ids):
            parsed = [NTUSampleName.parse(ids[i]) for i in select]
            meta = {
                k: np.array([getattr(n, k) for n in parsed], np.int64)
                for k in ("setup", "camera", "subject", "replication", "action")
            }
        return SkeletonSet(
            data=data,
            labels=np.array(labels, np.int64)[select],
            sample_ids=[ids[i] for i in select],
            class_names=names_all,
            layout=self.layout,
            partition=np.array(partition)[select],
            lengths=lengths,
            meta=meta,
        )
