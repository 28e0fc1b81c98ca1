"""Kinetics-skeleton from st-gcn's processed arrays ``{train,val}_data.npy`` + ``{train,val}_label.pkl``."""

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
from purls_pl.data.readers.kinetics import _SPLITS, HOW_TO_GET, NUM_JOINTS, KineticsSource, check_kinetics_dataset
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["KineticsProcessedSource"]

_READER_VERSION = 1


class KineticsProcessedSource(SourceBase):
    """Kinetics-skeleton from st-gcn's processed ``{train,val}_data.npy`` ``(N, 3, 300, 18, 2)`` + ``_label.pkl``.

    The arrays are taken as already normalised (st-gcn's ``kinetics_gendata.py`` output). train ->
    partition ``"train"``, val -> ``"test"``; either split may be absent.

    Args:
        root: Folder holding ``train_data.npy``, ``train_label.pkl``, ``val_data.npy``, ``val_label.pkl``.
        dataset: ``"kinetics400"`` or ``"kinetics200"`` (keeps classes 0..199 only).
            ``None``: ``"kinetics400"``; the CLI takes it from the split.
        num_frames: Refit every sequence to this many frames; ``None`` keeps the stored 300.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` (with ``num_frames``).
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    def __init__(
        self,
        root: str,
        dataset: str | None = None,
        num_frames: int | None = None,
        temporal: str = "pad",
        conversion: Conversion | None = None,
    ) -> None:
        dataset = dataset or "kinetics400"
        self.num_classes = check_kinetics_dataset(dataset)
        check_temporal(temporal)
        self.root, self.dataset, self.num_frames, self.temporal = root, dataset, num_frames, temporal
        self.conversion = Conversion.of(conversion)

    @property
    def preprocessing(self) -> Preprocessing:
        """The raw-clip preprocessing the stored arrays are assumed to have had (``approximate``): st-gcn's
        normalisation of the best 2 of 5 people per frame, then the fit to ``num_frames``."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            normalization="stgcn",
            num_persons=2,
            num_person_in=5,
            channels=3,
            reader=class_path(KineticsSource),
            approximate=True,
        )

    def load(self) -> SkeletonSet:
        """Convert (or take from the cache) the arrays: data ``(N, 2, T, 18, 3)``."""
        root = Path(self.root).expanduser()
        expected = "train_data.npy + train_label.pkl and/or val_data.npy + val_label.pkl (st-gcn kinetics_gendata.py)"
        if not root.is_dir():
            raise missing_root_error(root, "processed Kinetics-skeleton", expected, HOW_TO_GET)
        parts = [(s, f) for s in _SPLITS if (f := find_stgcn_files([root], s, ("{split}_data.npy",)))]
        if not parts:
            raise missing_root_error(root, "processed Kinetics-skeleton", expected, HOW_TO_GET, empty=True)
        params = {
            "reader": f"{self.dataset}-stgcn",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_samples": self.max_samples,
        }
        return self._cached(params, [p for _, f in parts for p in f], lambda _: self._build(parts))

    def _build(self, parts: list[tuple[str, tuple[Path, Path]]]) -> SkeletonSet:
        ids: list[str] = []
        labels: list[int] = []
        partition: list[str] = []
        readers = []
        tail = (0, 0, 0, 0)
        for split, (data_path, label_path) in parts:
            shape = array_shape(data_path)
            if len(shape) != 5 or shape[1] != 3 or shape[3] != NUM_JOINTS:
                raise ValueError(
                    f"{data_path}: shape {shape}; expected (N, 3, T, 18, M) from st-gcn kinetics_gendata.py"
                )
            names, lab = load_label_pickle(label_path)
            if len(names) != shape[0]:
                raise ValueError(
                    f"{label_path}: {len(names)} labels for {shape[0]} samples in {data_path}; "
                    "regenerate the two files together"
                )
            ids += [Path(n).stem for n in names]
            labels += lab
            partition += [_SPLITS[split]] * shape[0]
            readers.append((iter_array_rows(data_path), lambda a: a.transpose(0, 4, 2, 3, 1)))
            if tail[0] and tail != (shape[4], shape[2], NUM_JOINTS, 3):
                raise ValueError(f"{data_path}: shape {shape} differs from the other split's; regenerate both")
            tail = (shape[4], shape[2], NUM_JOINTS, 3)
        bad = sorted({x for x in labels if not 0 <= x < 400})
        if bad:
            raise ValueError(f"{parts[0][1][1]}: labels {bad[:5]} outside 0..399; not a Kinetics-400 label file")
        wanted = [i for i, x in enumerate(labels) if x < self.num_classes]
        select = np.asarray(pick_evenly(wanted, self.max_samples), dtype=np.int64)
        data, lengths = fill_processed(readers, len(ids), select, tail, self.num_frames, self.temporal)
        return SkeletonSet(
            data=data,
            labels=np.array(labels, np.int64)[select],
            sample_ids=[ids[i] for i in select],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array(partition, dtype="<U5")[select],
            lengths=lengths,
        )
