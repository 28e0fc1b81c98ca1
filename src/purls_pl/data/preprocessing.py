"""One typed record of how a reader prepares a sample, and the one function that prepares it.

Every skeleton source exposes a :class:`Preprocessing` (``source.preprocessing``): the settings that turn
one raw sample of its files into a row of its :class:`~purls_pl.data.skeletons.SkeletonSet`. The reader's
conversion calls :meth:`Preprocessing.apply` on each file it reads (``reader.read_file(path, preprocessing)``
gives the :class:`RawSkeleton`); checkpoints store the record whole (:meth:`Preprocessing.to_mapping`), and
``recognize`` rebuilds it (:meth:`Preprocessing.from_mapping`, old records too) and calls the same
``read_file`` and ``apply`` on a new file, so a file is prepared exactly as the training data were.

The steps of :meth:`Preprocessing.apply`, in order (the array functions are in :mod:`.preprocess`):

1. keep the first ``num_persons`` persons; drop empty frames (every joint of every person zero):
   ``empty_frames`` ``"trailing"`` (those after the sequence), ``"ends"`` (also those before it) or
   ``"all"`` (also those inside it: a tracker that lost the person for a while);
2. ``normalization``: ``"stgcn"`` (x, y - 0.5, zeroed where the score is 0: st-gcn's Kinetics feeder),
   ``"box"`` (x, y relative to the centre of the union of the clip's person boxes, divided by the median
   box size), ``"image"`` (relative to the image centre, divided by its larger side) or ``"none"``;
3. ``center`` (optionally ``per_person``) on the layout's center joint, then ``align`` (3-D layouts);
4. the temporal fit to ``num_frames`` (``temporal``: pad, loop or resample); with ``visibility`` the last
   channel is a 0/1 visibility flag, and a joint interpolated from a frame that does not show it is dropped;
5. zero persons appended up to ``num_persons``.

A source of already-processed arrays states the raw preprocessing they are assumed to have had, with
``approximate=True``; ``reader`` names the reader of the raw files (a class path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from purls_pl.data.errors import SampleError
from purls_pl.data.layouts import get_layout
from purls_pl.data.preprocess import (
    align_sequence,
    box_frame,
    center_sequence,
    check_temporal,
    fit_length,
    image_frame,
    normalize_2d,
    normalize_to_frame,
    valid_length,
)

__all__ = ["EMPTY_FRAMES", "NORMALIZATIONS", "RECORD_FORMAT", "Preprocessing", "RawSkeleton", "class_path"]

#: ``normalization`` values: none, st-gcn's Kinetics shift, the person boxes' frame, the image's frame.
NORMALIZATIONS: tuple[str, ...] = ("none", "stgcn", "box", "image")
#: ``empty_frames`` values: which empty frames are dropped before the temporal fit.
EMPTY_FRAMES: tuple[str, ...] = ("trailing", "ends", "all")
#: Format of :meth:`Preprocessing.to_mapping` (records without ``format`` are the older flat dicts).
RECORD_FORMAT = 2
#: With ``visibility``, an interpolated joint is kept when its interpolated flag is at least this.
_VISIBLE = 1.0 - 1e-4


def class_path(obj: Any) -> str:
    """``module.QualName`` of a class, or of an instance's class (how :attr:`Preprocessing.reader` names a
    reader, and checkpoints their method and backbone)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, eq=False)
class RawSkeleton:
    """One sample as its file holds it, before preprocessing (what a reader's ``read_file`` returns).

    Attributes:
        data: ``(M, L, J, C)`` persons, frames, joints, channels; a missing joint is all zeros.
        source: The file (or ``"<array>"``), for messages.
        layout: The skeleton layout the file format fixes (``None``: any layout with ``J`` joints).
        boxes: ``(K, 4)`` person boxes x1, y1, x2, y2 in the coordinates' units (``normalization="box"``).
        image_size: ``(H, W)`` of the image the coordinates are in (``normalization="image"``).
        fix: How to repair the file, for errors about it.
    """

    data: np.ndarray
    source: str = "<array>"
    layout: str | None = None
    boxes: np.ndarray | None = None
    image_size: tuple[float, float] | None = None
    fix: str = "check the file"

    @classmethod
    def of_array(cls, array: Any, source: str = "<array>") -> RawSkeleton:
        """An array ``(T, J, C)`` (one person) or ``(M, T, J, C)`` as float32; else a :class:`SampleError`."""
        data = np.asarray(array, dtype=np.float32)
        if data.ndim == 3:
            data = data[None]
        if data.ndim != 4:
            raise SampleError(
                source,
                f"a skeleton array must be (T, J, C) or (M, T, J, C), got shape {data.shape}",
                "reshape it to frames x joints x channels (persons first, when several)",
            )
        return cls(data, source)


@dataclass(frozen=True)
class Preprocessing:
    """How one raw sample becomes a ``(num_persons, num_frames, J, C)`` block (steps in the module docstring).

    Attributes:
        layout: Skeleton layout name (its center joint and alignment axes; ``J``).
        num_frames: Target ``T`` (``None``: the sample's own length after trimming).
        temporal: ``"pad"``, ``"loop"`` or ``"resample"``.
        empty_frames: ``"trailing"``, ``"ends"`` or ``"all"``: which empty frames are dropped first.
        normalization: ``"none"``, ``"stgcn"``, ``"box"`` or ``"image"`` (2-D coordinates x, y first).
        center: Subtract the center joint of the first valid frame.
        per_person: Center each person on its own first frame (else on the main person's).
        align: Rotate hip->spine to +z and the shoulders to +x (the layout's ``align_axes``).
        visibility: The last channel is a 0/1 visibility flag (kept exact through resampling).
        num_persons: ``M`` (extra persons dropped, missing ones zero; ``None``: as read).
        num_person_in: Persons read per frame before ranking (Kinetics' OpenPose files).
        channels: ``C`` the sample must have (``None``: any).
        reader: Class path of the reader of the raw files (``None``: arrays and ``.npy`` files).
        approximate: The data were processed elsewhere; this is the raw preprocessing they are assumed
            to have had.
    """

    layout: str
    num_frames: int | None = None
    temporal: str = "resample"
    empty_frames: str = "trailing"
    normalization: str = "none"
    center: bool = False
    per_person: bool = False
    align: bool = False
    visibility: bool = False
    num_persons: int | None = None
    num_person_in: int = 5
    channels: int | None = None
    reader: str | None = None
    approximate: bool = False

    def __post_init__(self) -> None:
        check_temporal(self.temporal)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"preprocessing normalization must be one of {list(NORMALIZATIONS)}, got {self.normalization!r}"
            )
        if self.empty_frames not in EMPTY_FRAMES:
            raise ValueError(
                f"preprocessing empty_frames must be one of {list(EMPTY_FRAMES)}, got {self.empty_frames!r}"
            )
        for name, value in (
            ("num_frames", self.num_frames),
            ("num_persons", self.num_persons),
            ("channels", self.channels),
        ):
            if value is not None and value < 1:
                raise ValueError(f"preprocessing {name} must be >= 1 or None, got {value}")

    # ------------------------------------------------------------------ record
    def fitted(self, data_shape: tuple[int, ...]) -> Preprocessing:
        """This record with ``num_persons``, ``num_frames`` and ``channels`` of a loaded set ``(N, M, T, J, C)``."""
        _, m, t, _, c = data_shape
        return replace(self, num_persons=int(m), num_frames=int(t), channels=int(c))

    def to_mapping(self) -> dict[str, Any]:
        """The record as plain data (a checkpoint's ``"preprocess"``): ``{"format": 2, <every field>}``."""
        return {"format": RECORD_FORMAT, **asdict(self)}

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any] | Preprocessing) -> Preprocessing:
        """Rebuild a record written by :meth:`to_mapping`, or an older flat one (no ``format``: its
        ``normalize_kinetics`` is ``normalization="stgcn"``, its ``drop_empty_frames`` ``empty_frames="all"``).

        Raises:
            ValueError: naming unknown fields and the known ones.
        """
        if isinstance(record, Preprocessing):
            return record
        values = dict(record)
        fmt = values.pop("format", 1)
        if fmt == 1:
            if values.pop("normalize_kinetics", False):
                values["normalization"] = "stgcn"
            if values.pop("drop_empty_frames", False):
                values["empty_frames"] = "all"
            values = {k: v for k, v in values.items() if v is not None}  # None meant "the default"
        elif fmt != RECORD_FORMAT:
            raise ValueError(
                f"preprocessing record of format {fmt!r}; this version reads formats 1 and {RECORD_FORMAT}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"preprocessing record: unknown field(s) {unknown}; the fields are {known}")
        if "layout" not in values:
            raise ValueError(f"preprocessing record {dict(record)} has no 'layout'; it needs at least the layout name")
        return cls(**values)

    # ------------------------------------------------------------------ the steps
    def apply(self, raw: RawSkeleton | np.ndarray) -> tuple[np.ndarray, int]:
        """Prepare one sample: the block ``(num_persons, num_frames, J, C)`` float32 and its valid frame count.

        Args:
            raw: What a reader's ``read_file`` returned, or an array ``(T, J, C)`` / ``(M, T, J, C)``.

        Returns:
            The block (missing joints zero) and the valid frames after the temporal fit (0: nothing to show).

        Raises:
            SampleError: (a ``ValueError``) naming the file, what does not fit and the fix: a file of another
                layout, a joint or channel count other than the layout's / the record's, a normalisation
                whose boxes or image size the file lacks.
        """
        raw = raw if isinstance(raw, RawSkeleton) else RawSkeleton.of_array(raw)
        lay = get_layout(self.layout)
        seq = self._checked(raw, lay.num_joints)
        if self.num_persons is not None:
            seq = seq[: self.num_persons]
        seq = self._trimmed(seq)
        seq = self._normalized(seq, raw).astype(np.float32, copy=False)
        if self.center:
            dims = 2 if self.normalization != "none" else min(seq.shape[-1], 3)
            seq = center_sequence(seq, lay.center, per_person=self.per_person, dims=dims)
        if self.align:
            if lay.align_axes is None:
                raise ValueError(
                    f"layout {lay.name!r} has no alignment axes; give it align_axes (its layout.json: "
                    '"align_axes": [[hip, spine], [right_shoulder, left_shoulder]]) or set align=False'
                )
            seq = align_sequence(seq, *lay.align_axes)
        out, length = fit_length(seq, self.num_frames or max(seq.shape[1], 1), self.temporal)  # type: ignore[arg-type]
        if self.visibility:  # a joint counts only where every frame it is interpolated from shows it
            present = out[..., -1:] >= _VISIBLE
            out = np.where(present, out, 0.0).astype(np.float32)
            out[..., -1:] = present
        if self.num_persons is not None and out.shape[0] < self.num_persons:
            out = np.concatenate([out, np.zeros((self.num_persons - out.shape[0], *out.shape[1:]), np.float32)])
        return out, length

    def _checked(self, raw: RawSkeleton, joints: int) -> np.ndarray:
        seq = np.asarray(raw.data)
        if raw.layout is not None and raw.layout != self.layout:
            raise SampleError(
                raw.source,
                f"is a {raw.layout} skeleton, but the data it is prepared for (the model) use layout {self.layout!r}",
                f"give a file of layout {self.layout!r}, or use a model trained on {raw.layout} data",
            )
        if seq.ndim != 4 or seq.shape[2] != joints:
            raise SampleError(
                raw.source,
                f"shape {seq.shape}: {seq.shape[2] if seq.ndim == 4 else '?'} joints, layout {self.layout!r} has "
                f"{joints} (expected (M, T, {joints}, C))",
                f"give a skeleton of layout {self.layout!r}, its joints in the layout's joint_names order",
            )
        if self.channels is not None and seq.shape[3] != self.channels:
            raise SampleError(
                raw.source,
                f"{seq.shape[3]} channels per joint, the data it is prepared for (the model) have {self.channels}",
                "give the same channels as the training data (e.g. x, y, z or x, y, score)",
            )
        return seq

    def _trimmed(self, seq: np.ndarray) -> np.ndarray:
        seq = seq[:, : valid_length(seq)]
        shown = np.abs(seq).sum(axis=(0, 2, 3)) > 0
        if self.empty_frames == "all":
            return seq[:, shown]
        if self.empty_frames == "ends" and shown.any():
            return seq[:, int(np.argmax(shown)) :]
        return seq

    def _normalized(self, seq: np.ndarray, raw: RawSkeleton) -> np.ndarray:
        if self.normalization == "stgcn":
            return normalize_2d(seq)
        if self.normalization == "image":
            if raw.image_size is None:
                raise SampleError(
                    raw.source,
                    "has no image size, which normalization 'image' needs",
                    "give the clip's own file (e.g. a Penn Action .mat, field 'dimensions')",
                )
            return normalize_to_frame(seq, *image_frame(raw.image_size))
        if self.normalization == "box":
            if raw.boxes is None:
                raise SampleError(
                    raw.source,
                    "has no person boxes, which normalization 'box' needs",
                    "give the clip's own file (e.g. a Penn Action .mat, field 'bbox')",
                )
            frame = box_frame(raw.boxes)
            if frame is None:
                raise SampleError(raw.source, "field 'bbox' holds no box of positive width and height", raw.fix)
            return normalize_to_frame(seq, *frame)
        return seq
