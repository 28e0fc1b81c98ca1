"""Released pooled features (a SynSE folder or a Flora ``.npz``) as a source that needs no stage 1.

:class:`ReleasedFeatureSource` reads one released split (:mod:`purls_pl.data.released_features`) into a
:class:`~purls_pl.data.skeletons.SkeletonSet` of layout ``pooled`` whose ``data`` is ``(N, 1, 1, 1, n)``: each
sample one person, one frame and one node, the ``n`` channels its feature vector. The ``train`` part is
partition ``"train"``; the ``zsl`` part (the unseen classes' test samples) and the seen-class rows of the
``gzsl`` part (the rows whose class is not a ``zsl`` class) are partition ``"test"``, so the zero-shot test
reads exactly the released ZSL set and the generalised test adds the released seen test samples. The model
takes them through :class:`purls_pl.models.pooled.ReleasedFeatures`, a pass-through backbone.

The file's classes are checked against the split the run asks for (:meth:`ReleasedFeatureSource.check_split`,
called by the datamodule): the ``zsl`` labels must be the split's unseen classes and the ``train`` labels
seen classes, and a mismatch is refused with both class lists by name. Nothing is cached: the arrays are the
data (NTU-120 at n = 256 is 117 MB in float32), read whole and checked before anything uses them, so a bad
file leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purls_pl.data.catalog import class_names as catalog_class_names
from purls_pl.data.layouts import POOLED
from purls_pl.data.preprocessing import Preprocessing, class_path
from purls_pl.data.released_features import FeatureFileError, ReleasedFeatures, feature_dim, read_released_features
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import ZeroShotSplit

__all__ = ["ReleasedFeatureSource"]


class ReleasedFeatureSource:
    """Pooled features released for one split: a SynSE folder or a Flora ``.npz`` (module docstring).

    Args:
        path: The SynSE folder (``train.npy``, ``train_label.npy``, ``ztest.npy``, ``z_label.npy`` [,
            ``gtest.npy``, ``g_label.npy``]) or the Flora ``.npz``.
        dataset: Catalogued dataset whose class indices the labels are (``ntu60``, ``ntu120`` ...); ``None``:
            the CLI takes it from the split.
        class_names_file: A text file of class names, one per line in label order (instead of a catalogued
            dataset; then ``dataset`` names it).
    """

    layout: str = POOLED.name

    def __init__(self, path: str, dataset: str | None = None, class_names_file: str | None = None) -> None:
        self.path = str(path)
        self.dataset = dataset or "ntu60"
        self.class_names_file = class_names_file
        self._features: ReleasedFeatures | None = None

    @property
    def class_names(self) -> list[str]:
        """The dataset's classes in label order (the class-list file's, else the catalog's)."""
        if self.class_names_file:
            return [ln.strip() for ln in Path(self.class_names_file).read_text().splitlines() if ln.strip()]
        return catalog_class_names(self.dataset)

    @property
    def feature_dim(self) -> int:
        """``n``, read from the training features' header alone."""
        return feature_dim(self.path)

    @property
    def preprocessing(self) -> Preprocessing:
        """No skeleton preprocessing here: the features were extracted elsewhere (``approximate``)."""
        return Preprocessing(
            POOLED.name, 1, num_persons=1, channels=self.feature_dim, reader=class_path(self), approximate=True
        )

    def features(self) -> ReleasedFeatures:
        """The released parts, read and checked once."""
        if self._features is None:
            self._features = read_released_features(self.path)
        return self._features

    def load(self) -> SkeletonSet:
        """The samples of every part as ``(N, 1, 1, 1, n)`` pooled "skeletons" (module docstring)."""
        released = self.features()
        names = self.class_names
        for part, (_, labels) in released.parts.items():
            if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
                raise FeatureFileError(
                    released.sources[part],
                    f"labels span {labels.min()}..{labels.max()}, but {self.dataset} has {len(names)} classes",
                    "set data.source.init_args.dataset to the dataset the features index (ntu60: 0..59, ntu120: "
                    "0..119), or pick a split of that dataset",
                )
        zsl_classes = np.unique(released.parts["zsl"][1])
        blocks: list[tuple[str, np.ndarray, np.ndarray, str]] = [
            ("train", *released.parts["train"], "train"),
            ("zsl", *released.parts["zsl"], "test"),
        ]
        if "gzsl" in released.parts:
            x, y = released.parts["gzsl"]
            keep = ~np.isin(y, zsl_classes)  # its unseen rows are the zsl part's samples
            blocks.append(("gzsl", x[keep], y[keep], "test"))
        data = np.concatenate([x for _, x, _, _ in blocks])[:, None, None, None, :]
        labels = np.concatenate([y for _, _, y, _ in blocks])
        part = np.concatenate([np.full(len(y), name) for name, _, y, _ in blocks])
        partition = np.concatenate([np.full(len(y), side) for _, _, y, side in blocks])
        ids = [f"{name}_{i:06d}" for name, _, y, _ in blocks for i in range(len(y))]
        return SkeletonSet(
            data=np.ascontiguousarray(data, dtype=np.float32),
            labels=labels,
            sample_ids=ids,
            class_names=names,
            layout=POOLED.name,
            partition=partition,
            lengths=np.ones(len(labels), dtype=np.int64),
            meta={"released_part": part},
        )

    def check_split(self, split: ZeroShotSplit) -> None:
        """Refuse a split whose classes are not the file's: the ``zsl`` labels must be exactly the split's unseen
        classes and the ``train`` labels seen classes (the features' encoder was trained on those).

        Raises:
            FeatureFileError: naming the file, both class lists by name and the fix.
        """
        released = self.features()
        names = self.class_names

        def named(classes: object) -> list[str]:
            return [names[int(c)] for c in sorted({int(c) for c in classes})]  # type: ignore[union-attr]

        zsl = set(np.unique(released.parts["zsl"][1]).tolist())
        if zsl != set(split.unseen):
            raise FeatureFileError(
                released.sources["zsl"],
                f"its zero-shot test classes {named(zsl)} are not the unseen classes of split {split.name!r} "
                f"{named(split.unseen)} (in the file only: {named(zsl - set(split.unseen))}; in the split only: "
                f"{named(set(split.unseen) - zsl)})",
                "pick the split these features were released for (data.split), or the features of this split",
            )
        foreign = set(np.unique(released.parts["train"][1]).tolist()) - set(split.seen)
        if foreign:
            raise FeatureFileError(
                released.sources["train"],
                f"trains on {named(foreign)}, which are not seen classes of split {split.name!r} "
                f"(its seen classes: {named(split.seen)})",
                "pick the split these features were released for (data.split)",
            )
