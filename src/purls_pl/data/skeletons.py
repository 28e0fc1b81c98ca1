"""The one in-memory contract between dataset readers and the rest of the framework."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from purls_pl.data.layouts import SkeletonLayout, get_layout
from purls_pl.data.preprocessing import Preprocessing

#: Values of :attr:`SkeletonSet.partition`: which side of the dataset's own protocol a sample is on
#: (e.g. NW-UCLA views 1-2 are ``"train"`` and view 3 is ``"test"``).
PARTITIONS: tuple[str, ...] = ("train", "test")


@dataclass
class SkeletonSet:
    """Skeleton sequences in the standard layout, with labels and per-sample metadata.

    Attributes:
        data: ``(N, M, T, J, C)`` float32 — samples, persons, frames, joints, coordinates.
            Missing persons and padded frames are zeros.
        labels: ``(N,)`` int64 class index into ``class_names``.
        sample_ids: ``N`` stable identifiers (e.g. file stems), used in caches and reports.
        class_names: The dataset's full label list in class-index order.
        layout: Name of the skeleton layout (see :mod:`purls_pl.data.layouts`).
        partition: ``(N,)`` str, each ``"train"`` or ``"test"`` under the dataset's protocol.
        lengths: ``(N,)`` int64 number of valid frames before padding.
        meta: Optional extra per-sample arrays of length N (``view``, ``subject``, ``camera`` ...).
    """

    data: np.ndarray
    labels: np.ndarray
    sample_ids: list[str]
    class_names: list[str]
    layout: str
    partition: np.ndarray
    lengths: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.data.ndim != 5:
            raise ValueError(f"SkeletonSet.data must be (N, M, T, J, C), got shape {self.data.shape}")
        if self.data.shape[0] != n or len(self.sample_ids) != n or len(self.partition) != n or len(self.lengths) != n:
            raise ValueError(
                "SkeletonSet fields disagree on N: "
                f"data {self.data.shape[0]}, labels {n}, sample_ids {len(self.sample_ids)}, "
                f"partition {len(self.partition)}, lengths {len(self.lengths)}"
            )
        joints = get_layout(self.layout).num_joints
        if self.data.shape[3] != joints:
            raise ValueError(f"SkeletonSet has {self.data.shape[3]} joints but layout {self.layout!r} has {joints}")
        bad = sorted(set(np.unique(self.partition).tolist()) - set(PARTITIONS))
        if bad:
            raise ValueError(f"SkeletonSet.partition holds {bad}; allowed values are {list(PARTITIONS)}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"SkeletonSet.labels must lie in 0..{len(self.class_names) - 1}")
        for key, values in self.meta.items():
            if len(values) != n:
                raise ValueError(f"SkeletonSet.meta[{key!r}] has {len(values)} entries, expected {n}")

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """A cheap content hash: shape, dtype, ids, labels, partition, lengths and the first and
        middle frames of every sample. Changes when the data or their preprocessing change."""
        h = hashlib.sha256()
        h.update(f"{self.data.shape}|{self.data.dtype}|{self.layout}|{len(self.class_names)}".encode())
        h.update("\n".join(self.sample_ids).encode())
        for array in (self.labels, self.partition.astype(str), self.lengths):
            h.update(np.ascontiguousarray(array).tobytes())
        mid = self.data.shape[2] // 2
        h.update(np.ascontiguousarray(self.data[:, :, [0, mid]]).tobytes())
        return h.hexdigest()[:24]

    @property
    def skeleton_layout(self) -> SkeletonLayout:
        return get_layout(self.layout)

    def subset(self, index: np.ndarray | Sequence[int]) -> SkeletonSet:
        """The samples at ``index`` (a view where numpy allows, no copy of ``data`` otherwise)."""
        index = np.asarray(index)
        return SkeletonSet(
            data=self.data[index],
            labels=self.labels[index],
            sample_ids=[self.sample_ids[i] for i in np.arange(len(self))[index]],
            class_names=self.class_names,
            layout=self.layout,
            partition=self.partition[index],
            lengths=self.lengths[index],
            meta={k: v[index] for k, v in self.meta.items()},
        )


@dataclass(frozen=True)
class SkeletonFormat:
    """The shape of one sample a backbone is built for (what the data determine, never a config).

    Attributes:
        layout: Skeleton layout name (``J = get_layout(layout).num_joints``).
        num_persons: ``M``.
        channels: ``C``.
        num_frames: ``T``.
    """

    layout: str
    num_persons: int
    channels: int
    num_frames: int

    @classmethod
    def of(cls, skeletons: SkeletonSet) -> SkeletonFormat:
        """The format of a loaded set, ``data`` ``(N, M, T, J, C)``."""
        _, m, t, _, c = skeletons.data.shape
        return cls(skeletons.layout, int(m), int(c), int(t))


@runtime_checkable
class SkeletonSource(Protocol):
    """Anything that yields a :class:`SkeletonSet`: a reader of raw files, a processed-array
    loader, the synthetic demo. Configs pick one with ``class_path``.

    ``dataset`` is the key of the class list and description set (``ntu60``, ``ntu120``,
    ``kinetics200``, ``kinetics400``, ``nw-ucla``, ``demo``, or a custom name).
    """

    dataset: str
    layout: str

    @property
    def preprocessing(self) -> Preprocessing:
        """How each sample was prepared from its raw file (checkpoints store it; ``recognize`` replays it)."""
        ...

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) and return the whole dataset."""
        ...


def preprocessing_record(source: SkeletonSource, data_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The plain-data record of ``source.preprocessing`` a checkpoint stores (``"preprocess"``), with ``M``, ``T``
    and ``C`` of its loaded set ``data_shape`` ``(N, M, T, J, C)`` when given.

    Raises:
        TypeError: ``source`` is no :class:`SkeletonSource` (it needs ``dataset``, ``layout``, ``load()`` and
            ``preprocessing``).
    """
    if not isinstance(source, SkeletonSource):
        raise TypeError(
            f"{type(source).__name__} is no SkeletonSource: give it dataset, layout, load() and a preprocessing "
            "property (a purls_pl.data.preprocessing.Preprocessing) so checkpoints record how its samples were made"
        )
    preprocessing = source.preprocessing
    return (preprocessing if data_shape is None else preprocessing.fitted(data_shape)).to_mapping()
