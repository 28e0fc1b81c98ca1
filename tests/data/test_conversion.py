"""Conversion plumbing: parallel parsing gives the serial result, progress bars stay quiet off a TTY."""

from __future__ import annotations

import shutil
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from purls_pl.data.readers import Conversion, KineticsSource, NTUSkeletonSource, SampleError, UCLASource
from purls_pl.data.readers._base import Skip, SkippedSample, convert_files
from purls_pl.data.skeletons import SkeletonSet


def _same(a: SkeletonSet, b: SkeletonSet) -> None:
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.partition, b.partition)
    assert a.sample_ids == b.sample_ids and a.meta.keys() == b.meta.keys()
    for k in a.meta:
        np.testing.assert_array_equal(a.meta[k], b.meta[k])


@pytest.mark.parametrize(
    ("source", "folder", "num_frames", "max_samples", "count"),
    [
        (NTUSkeletonSource, ("ntu-samples",), 64, None, 12),
        (KineticsSource, ("kinetics-samples",), 100, None, 7),
        (UCLASource, ("nw-ucla", "all_sqe"), 20, 300, 300),
    ],
    ids=["ntu", "kinetics", "nw-ucla"],
)
def test_parallel_equals_serial(source, folder, num_frames, max_samples, count) -> None:
    root = str(shared_path("data", *folder))
    serial = source(root, num_frames=num_frames, conversion=Conversion(max_samples=max_samples, cache=False)).load()
    parallel = Conversion(max_samples=max_samples, num_workers=2, cache=False)
    _same(source(root, num_frames=num_frames, conversion=parallel).load(), serial)
    assert len(serial) == count


def test_custom_parallel_equals_serial(tmp_path: Path) -> None:
    from purls_pl.data.layouts import SkeletonLayout
    from purls_pl.data.readers import CustomSource
    from purls_pl.data.readers.custom import write_custom_dataset

    tiny = SkeletonLayout(  # an unregistered-elsewhere layout must reach the worker processes
        name="tiny3-conversion-test",
        joint_names=("head", "hand", "hip", "foot"),
        edges=((0, 2), (1, 2), (2, 3)),
        center=2,
        parts={"head": (0,), "hands": (1,), "torso": (2,), "legs": (3,)},
    )
    rng = np.random.default_rng(0)
    samples = {f"s{i}": rng.normal(size=(int(rng.integers(1, 9)), 4, 3)) for i in range(12)}
    root = write_custom_dataset(tmp_path, samples, {k: "ab"[i % 2] for i, k in enumerate(samples)}, tiny)
    serial = CustomSource(str(root), num_frames=8, conversion=Conversion(cache=False)).load()
    _same(
        CustomSource(
            str(root),
            num_frames=8,
            conversion=Conversion(num_workers=2, cache=False),
        ).load(),
        serial,
    )


def test_parallel_skip_report_equals_serial(tmp_path: Path) -> None:
    src = shared_path("data", "nw-ucla", "all_sqe")
    for p in sorted(src.glob("a01_s0[12]_*.json")):
        shutil.copy(p, tmp_path)
    (tmp_path / "a01_s01_e09_v01.json").write_text('{"file_name": "a01_s01_e09_v01", "skeletons": [[[0, 0')
    results = []
    for workers in (0, 2):
        source = UCLASource(
            str(tmp_path),
            num_frames=8,
            conversion=Conversion(num_workers=workers, on_error="skip", cache=False),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append((source.load(), source.skipped))
    _same(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] and len(results[0][1]) == 1
    with pytest.raises(SampleError, match=r"a01_s01_e09_v01\.json"):
        UCLASource(
            str(tmp_path),
            conversion=Conversion(num_workers=2, cache=False),
        ).load()


def _square(x: int) -> int | Skip:
    if x == 3:
        return Skip("three is left out")
    if x == 5:
        raise SampleError(f"item{x}", "five is bad", "use another number")
    return x * x


@pytest.mark.parametrize("workers", [0, 2])
def test_convert_files_order_skip_and_raise(workers: int) -> None:
    skipped: list[SkippedSample] = []
    out = list(convert_files(_square, list(range(8)), on_error="skip", skipped=skipped, num_workers=workers))
    assert out == [(i, i * i) for i in (0, 1, 2, 4, 6, 7)]
    assert skipped == [SkippedSample("3", "three is left out", "excluded"), SkippedSample("item5", "five is bad")]
    with pytest.raises(SampleError, match=r"item5: five is bad; use another number; or set conversion.on_error='skip'"):
        list(convert_files(partial(_square), list(range(200)), on_error="raise", skipped=[], num_workers=workers))


def test_conversion_logs_progress_lines_through_a_pipe_too(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("PURLS_PROGRESS_SECONDS", "0")
    with caplog.at_level("INFO", logger="purls_pl.progress"):
        out = list(convert_files(_square, list(range(8)), on_error="skip", skipped=[], desc="numbers"))
    assert len(out) == 6
    lines = [r.getMessage() for r in caplog.records if r.name == "purls_pl.progress"]
    assert lines[0].startswith("converting numbers: 1/8 files (12%), ") and lines[0].endswith(" left")
    assert len(lines) == 8 and lines[-1].startswith("converting numbers: 8/8 files (100%), ")
    assert lines[-1].endswith(" elapsed, done")
