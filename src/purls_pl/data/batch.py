"""Typed samples and batches: what the loaders give the models and the evaluation callbacks.

A :class:`SkeletonSample` is one item of a dataset; :func:`collate_samples` stacks them into a
:class:`SkeletonBatch`. Both are (mutable) dataclasses, so Lightning moves them to the device field by
field, and a misspelt field is an ``AttributeError`` instead of a silently missing dict key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SkeletonSample:
    """One sample of a dataset.

    Attributes:
        x: ``(M, T, J, C)`` float32 skeletons (persons, frames, joints, channels).
        y: ``()`` its dataset class id.
        index: ``()`` its position in the dataset (the row of the node-feature cache).
        valid: ``()`` bool; ``False`` on the padding rows that even out the shards of a distributed
            evaluation (:class:`purls_pl.train.resumable.PaddedEvalSet`).
    """

    x: Tensor
    y: Tensor
    index: Tensor
    valid: Tensor = dataclasses.field(default_factory=lambda: torch.tensor(True))

    def as_padding(self) -> SkeletonSample:
        """This sample flagged as a padding row (``valid = False``)."""
        return dataclasses.replace(self, valid=torch.tensor(False))


@dataclass
class SkeletonBatch:
    """A batch of :class:`SkeletonSample` (the same fields with a leading batch dimension ``B``).

    Attributes:
        x: ``(B, M, T, J, C)`` skeletons.
        y: ``(B,)`` dataset class ids.
        index: ``(B,)`` dataset positions (the feature cache's rows), or ``None`` for skeletons from
            elsewhere (their node features are computed online).
        valid: ``(B,)`` bool, ``False`` on padding rows; ``None``: every row is a sample.
    """

    x: Tensor
    y: Tensor
    index: Tensor | None = None
    valid: Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def valid_rows(self) -> Tensor:
        """``(B,)`` bool: which rows are samples (not padding)."""
        return torch.ones_like(self.y, dtype=torch.bool) if self.valid is None else self.valid.bool()

    def pin_memory(self) -> SkeletonBatch:
        """Page-locked copies (the DataLoader's ``pin_memory=True`` calls this)."""
        pinned = [None if t is None else t.pin_memory() for t in (self.x, self.y, self.index, self.valid)]
        return SkeletonBatch(*pinned)


def collate_samples(samples: Sequence[SkeletonSample]) -> SkeletonBatch:
    """Stack ``samples`` into one :class:`SkeletonBatch` (the loaders' ``collate_fn``)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    return SkeletonBatch(
        x=torch.stack([s.x for s in samples]),
        y=torch.stack([s.y for s in samples]),
        index=torch.stack([s.index for s in samples]),
        valid=torch.stack([s.valid for s in samples]).bool(),
    )
