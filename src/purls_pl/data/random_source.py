"""Random skeletons shaped like any dataset: for smoke tests, config checks and benchmarks.

The values carry no motion (Gaussian noise around the layout's joints), so accuracy on them is
chance; what they provide is the right class list, layout, shapes and protocol partition.
"""

from __future__ import annotations

import numpy as np

from purls_pl.data.catalog import card, class_names
from purls_pl.data.layouts import get_layout
from purls_pl.data.preprocessing import Preprocessing
from purls_pl.data.skeletons import SkeletonSet


class RandomSkeletonSource:
    """Gaussian skeletons with a real dataset's classes and layout.

    Args:
        dataset: Dataset key whose class list is used (``ntu120``, ``kinetics200``, ...).
        layout: Skeleton layout name; default the dataset's (its catalog card).
        samples_per_class: Samples generated per class (half ``train``, half ``test``).
        num_frames: T.
        num_persons: M.
        channels: C (3 for x, y, z or x, y, score).
        seed: Random seed.
    """

    def __init__(
        self,
        dataset: str = "ntu120",
        layout: str | None = None,
        samples_per_class: int = 2,
        num_frames: int = 16,
        num_persons: int = 2,
        channels: int = 3,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.layout = layout or card(dataset).layout
        self.samples_per_class = samples_per_class
        self.num_frames = num_frames
        self.num_persons = num_persons
        self.channels = channels
        self.seed = seed

    @property
    def preprocessing(self) -> Preprocessing:
        """None beyond the fit to ``num_frames`` (new samples come as arrays or ``.npy`` files)."""
        return Preprocessing(self.layout, self.num_frames, num_persons=self.num_persons, channels=self.channels)

    def load(self) -> SkeletonSet:
        names = class_names(self.dataset)
        joints = get_layout(self.layout).num_joints
        n = len(names) * self.samples_per_class
        rng = np.random.default_rng(self.seed)
        data = rng.normal(scale=0.3, size=(n, self.num_persons, self.num_frames, joints, self.channels))
        labels = np.repeat(np.arange(len(names)), self.samples_per_class)
        partition = np.where(np.arange(n) % self.samples_per_class < self.samples_per_class / 2, "train", "test")
        return SkeletonSet(
            data=data.astype(np.float32),
            labels=labels.astype(np.int64),
            sample_ids=[f"random_{i:06d}" for i in range(n)],
            class_names=names,
            layout=self.layout,
            partition=partition,
            lengths=np.full(n, self.num_frames, dtype=np.int64),
        )
