"""One new sample file, prepared as a reader prepared its own: what ``recognize`` runs on each input.

:func:`prepare_sample` finds the reader of a file (:func:`reader_for`: the reader a record names when it
reads the file, else the first of :func:`file_readers` that does), reads it with that reader's
``read_file`` and prepares it with the record's :meth:`~purls_pl.data.preprocessing.Preprocessing.apply`:
the two calls the reader's own conversion makes on each of its files. Arrays ``(T, J, C)`` /
``(M, T, J, C)`` skip the reading.

A new file format is a reader (a :class:`~purls_pl.data.readers._base.SourceBase` with ``suffixes``,
``read_file`` and a ``preprocessing``) on a dataset card of the catalog; nothing here changes.
"""

from __future__ import annotations

import inspect
import logging
import pydoc
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.catalog import cards
from purls_pl.data.errors import SampleError, SampleMissingError
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton
from purls_pl.data.readers._base import SourceBase
from purls_pl.data.readers.custom import CustomSource

__all__ = ["file_readers", "prepare_sample", "read_sample", "reader_for", "recorded_preprocessing"]

log = logging.getLogger(__name__)

SampleInput = str | Path | np.ndarray


def _reader_class(path: str) -> type[SourceBase] | None:
    """The :class:`SourceBase` subclass a dotted class path names (``None``: no such reader class)."""
    try:
        found = pydoc.locate(path)
    except pydoc.ErrorDuringImport:
        return None
    return found if isinstance(found, type) and issubclass(found, SourceBase) else None


def recorded_preprocessing(record: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> Preprocessing:
    """A checkpoint's ``preprocess`` record as :class:`Preprocessing`; an older flat record (no ``format``) is
    completed by the reader that made the data, rebuilt from the checkpoint's ``source`` record
    (``{"class_path", "init_args"}``), whose ``preprocessing`` supplies what old records did not hold
    (e.g. Penn Action's normalisation); the old record's layout, persons, frames and channels are kept.

    A source that cannot be rebuilt (gone, renamed, other arguments) leaves the old record as it is, with a
    warning.
    """
    prep = Preprocessing.from_mapping(record)
    if "format" in record or not source or not source.get("class_path"):
        return prep
    try:
        reader = pydoc.locate(str(source["class_path"]))
        accepted = inspect.signature(reader).parameters  # type: ignore[arg-type]
        args = {k: v for k, v in dict(source.get("init_args") or {}).items() if k in accepted}
        stated = reader(**args).preprocessing  # type: ignore[operator, misc]
    except (TypeError, ValueError, AttributeError, pydoc.ErrorDuringImport) as err:
        warnings.warn(
            f"the checkpoint's preprocessing record predates format 2 and its source {source['class_path']} cannot "
            f"be rebuilt ({type(err).__name__}: {err}); the record is replayed as it is",
            stacklevel=2,
        )
        return prep
    return replace(
        stated, layout=prep.layout, num_persons=prep.num_persons, num_frames=prep.num_frames, channels=prep.channels
    )


def file_readers() -> tuple[type[SourceBase], ...]:
    """The readers of single sample files: every catalogued dataset's reader that reads such files, then
    :class:`~purls_pl.data.readers.CustomSource` (``.npy`` arrays)."""
    found: list[type[SourceBase]] = []
    for entry in cards().values():
        reader = _reader_class(entry.reader)
        if reader is not None and reader.suffixes and reader not in found:
            found.append(reader)
    return (*found, *(r for r in (CustomSource,) if r not in found))


def reader_for(path: Path, preprocessing: Preprocessing) -> type[SourceBase]:
    """The reader of ``path``: the one ``preprocessing.reader`` names when it can read the file, else the first
    of :func:`file_readers` that can.

    Raises:
        SampleError: no reader reads the file (the message lists the formats read).
    """
    recorded = _reader_class(preprocessing.reader) if preprocessing.reader else None
    if preprocessing.reader and recorded is None:
        log.warning("the recorded reader %s cannot be imported; trying the known readers", preprocessing.reader)
    readers = file_readers()
    for reader in (recorded, *readers) if recorded is not None else readers:
        if reader.suffixes and reader.can_read(path):
            return reader
    formats = "; ".join(r.file_format for r in readers)
    raise SampleError(path, "is a file no reader reads", f"give one of: {formats}")


def read_sample(sample: SampleInput, preprocessing: Preprocessing) -> RawSkeleton:
    """One input as its reader reads it (an array as it is: ``(T, J, C)`` or ``(M, T, J, C)``).

    Raises:
        SampleError: (a ``ValueError``) naming the file, what is wrong and the fix; a
            :class:`~purls_pl.data.errors.SampleMissingError` when it does not exist.
    """
    if isinstance(sample, np.ndarray):
        return RawSkeleton.of_array(sample)
    path = Path(sample)
    if not path.is_file():
        raise SampleMissingError(path, "skeleton file does not exist", "check the path")
    return reader_for(path, preprocessing).read_file(path, preprocessing)


def prepare_sample(sample: SampleInput, preprocessing: Preprocessing) -> np.ndarray:
    """One input prepared as the training data were: ``(num_persons, num_frames, J, C)`` float32.

    Raises:
        SampleError: as :func:`read_sample` and :meth:`Preprocessing.apply`, or for a sample that shows nobody.
    """
    raw = read_sample(sample, preprocessing)
    block, length = preprocessing.apply(raw)
    if length == 0:
        raise SampleError(raw.source, "no joint in any frame (an empty sequence)", "give a sample that shows someone")
    return block
