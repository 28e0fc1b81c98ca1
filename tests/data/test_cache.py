"""Build-once cache: hit, miss, rebuild on parameter / source change, interrupted builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_fs import tiny_fs

from purls_pl import storage
from purls_pl.data import cache as cache_mod
from purls_pl.data.cache import ResidentRows, allocate, build_or_load, cached_build, fingerprint_sources, read_manifest
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.storage import default_cache_dir


def _make(calls: list[int], value: float = 1.0, use_allocate: bool = False) -> SkeletonSet:
    calls.append(1)
    data = allocate((3, 1, 4, 25, 3)) if use_allocate else np.zeros((3, 1, 4, 25, 3), np.float32)
    data[:] = value
    return SkeletonSet(
        data=data,
        labels=np.array([0, 1, 2]),
        sample_ids=["a", "b", "c"],
        class_names=["x", "y", "z"],
        layout="ntu25",
        partition=np.array(["train", "test", "train"]),
        lengths=np.array([4, 3, 2]),
        meta={"view": np.array([1, 2, 3])},
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "one.txt").write_text("hello")
    return src


def test_hit_miss_and_param_change(tmp_path: Path, source: Path) -> None:
    calls: list[int] = []
    cdir = tmp_path / "cache"
    first = cached_build({"reader": "t", "T": 4}, [source], lambda: _make(calls), cdir)
    second = cached_build({"reader": "t", "T": 4}, [source], lambda: _make(calls), cdir)
    assert len(calls) == 1
    assert isinstance(second.data, np.memmap) and not second.data.flags.writeable
    np.testing.assert_array_equal(first.data, second.data)
    assert second.sample_ids == ["a", "b", "c"] and second.partition.tolist() == ["train", "test", "train"]
    assert second.meta["view"].tolist() == [1, 2, 3] and second.class_names == ["x", "y", "z"]
    cached_build({"reader": "t", "T": 5}, [source], lambda: _make(calls, 2.0), cdir)
    assert len(calls) == 2
    entries = [p for p in cdir.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2 and all((p / "manifest.json").is_file() for p in entries)


def test_source_change_rebuilds(tmp_path: Path, source: Path) -> None:
    calls: list[int] = []
    cdir = tmp_path / "cache"
    cached_build({"reader": "t"}, [source], lambda: _make(calls), cdir)
    before = fingerprint_sources([source])
    (source / "one.txt").write_text("hello, world")
    assert fingerprint_sources([source]) != before
    cached_build({"reader": "t"}, [source], lambda: _make(calls), cdir)
    (source / "two.txt").write_text("new file")
    cached_build({"reader": "t"}, [source], lambda: _make(calls), cdir)
    assert len(calls) == 3
    # same size and mtime but different bytes: only the content hash notices
    path = source / "one.txt"
    st = path.stat()
    content, quick = fingerprint_sources([source], content_hash=True), fingerprint_sources([source])
    path.write_text("HELLO, WORLD")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fingerprint_sources([source]) == quick
    assert fingerprint_sources([source], content_hash=True) != content


def test_interrupted_build_leaves_no_valid_entry(tmp_path: Path, source: Path) -> None:
    calls: list[int] = []
    cdir = tmp_path / "cache"

    def broken() -> SkeletonSet:
        data = allocate((3, 1, 4, 25, 3))
        data[:] = 7
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_build({"reader": "t"}, [source], broken, cdir)
    assert list(cdir.iterdir()) == []  # the temporary build directory is gone, nothing else written
    s = cached_build({"reader": "t"}, [source], lambda: _make(calls, 3.0, use_allocate=True), cdir)
    assert len(calls) == 1 and float(s.data.max()) == 3.0
    # a half-written entry (no manifest) is not taken as valid
    entry = next(cdir.iterdir())
    (entry / "manifest.json").unlink()
    cached_build({"reader": "t"}, [source], lambda: _make(calls, 4.0), cdir)
    assert len(calls) == 2


def test_allocated_view_is_copied_and_default_dir(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def partial_build() -> SkeletonSet:
        full = _make([], 5.0, use_allocate=True)
        return full.subset(np.array([0, 1]))

    monkeypatch.setenv("PURLS_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    s = cached_build({"reader": "t"}, [source], partial_build)
    assert s.data.shape == (2, 1, 4, 25, 3) and (tmp_path / "env-cache").is_dir()
    assert not any(p.suffix == ".part" for p in (tmp_path / "env-cache").rglob("*"))
    assert cache_mod.CACHE_FORMAT_VERSION >= 1


def test_build_or_load_reports_hits_and_extra_manifest_entries(tmp_path: Path, source: Path) -> None:
    calls: list[int] = []
    cdir = tmp_path / "cache"
    first = build_or_load({"reader": "t"}, [source], lambda: _make(calls), cdir, extra=lambda: {"skipped": ["x"]})
    assert first.built and first.manifest["skipped"] == ["x"] and read_manifest(first.entry) == first.manifest
    second = build_or_load({"reader": "t"}, [source], lambda: _make(calls), cdir)
    assert not second.built and second.entry == first.entry and second.manifest["skipped"] == ["x"]
    assert len(calls) == 1
    with pytest.raises(ValueError, match=r"extra manifest entries \['key'\]"):
        build_or_load({"reader": "u"}, [source], lambda: _make(calls), cdir, extra=lambda: {"key": 1})
    assert sorted(p.name for p in cdir.iterdir()) == [first.entry.name]  # the failed build left nothing


# --- a full disk, stale build folders ---------------------------------------------------------------------


def _big(n: int = 180) -> SkeletonSet:
    """A set whose data (``n`` x 1 x 300 x 25 x 3 float32, 162 kB each) fill more than a 4 MB disk."""
    data = allocate((n, 1, 300, 25, 3))
    data[:] = 1.0
    return SkeletonSet(
        data=data,
        labels=np.zeros(n, np.int64),
        sample_ids=[f"s{i}" for i in range(n)],
        class_names=["x"],
        layout="ntu25",
        partition=np.full(n, "train"),
        lengths=np.full(n, 300),
    )


def test_a_full_disk_is_one_error_naming_the_sizes_and_the_fix_and_leaves_no_build_folder(tmp_path, source):
    with tiny_fs(tmp_path / "small") as small:
        with pytest.raises(storage.NoSpaceError) as err:
            build_or_load({"reader": "big"}, [source], _big, small)
        message = str(err.value)
        entry = "the data cache entry (180, 1, 300, 25, 3) float32"
        assert message.startswith(f"{small}: {entry} needs 16.2 MB (16,200,000 bytes)")
        assert "but its file system has 4.2 MB (4,194,304 bytes) free; set PURLS_CACHE_DIR (or the source's" in message
        assert "\n" not in message and list(small.iterdir()) == []


def test_a_disk_that_fills_during_the_build_is_an_error_not_a_sigbus(tmp_path, source, monkeypatch):
    """The free-space check passes (another process takes the room meanwhile): the preallocation fails."""
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 40, 0, 1 << 40))
    with tiny_fs(tmp_path / "small") as small:
        with pytest.raises(storage.NoSpaceError, match=r"small: the data cache entry big-\w+ needs 16.2 MB"):
            build_or_load({"reader": "big"}, [source], _big, small)
        assert list(small.iterdir()) == []


def test_the_next_build_removes_the_folder_a_killed_build_left(tmp_path, source):
    cdir = tmp_path / "cache"
    entry = build_or_load({"reader": "t"}, [source], lambda: _make([]), cdir).entry
    shutil.rmtree(entry)  # as if the entry had never been completed ...
    mine = storage.make_build_dir(cdir, f".tmp-{entry.name}-")  # ... by a build killed before its rename
    (mine / "data.npy").write_bytes(b"partial")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = mine.rename(mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{int(dead.stdout)}.")))
    running = storage.make_build_dir(cdir, f".tmp-{entry.name}-")  # this process's own build: kept
    other = storage.make_build_dir(cdir, ".tmp-other-entry-")  # another cache's: kept
    for d in (killed, running, other):
        os.utime(d, (d.stat().st_mtime - 60,) * 2)
    assert build_or_load({"reader": "t"}, [source], lambda: _make([]), cdir).built
    assert sorted(p.name for p in cdir.iterdir()) == sorted([entry.name, running.name, other.name])


def _rss_file_mb() -> float:
    """This process's resident file-backed memory (Linux ``RssFile``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no RssFile in /proc/self/status")


@pytest.mark.parametrize("release", [False, True])
def test_resident_rows_keep_a_big_fill_out_of_rss_and_its_data_intact(tmp_path: Path, source: Path, release) -> None:
    rows, shape = 96, (1, 100, 25, 3)  # 96 rows of 30 kB x 10 = 28.8 MB
    growth: list[float] = []

    def build() -> SkeletonSet:
        data = allocate((rows * 10, *shape))
        resident = ResidentRows(data, every_mb=2)
        before = _rss_file_mb()
        for i in range(rows * 10):
            data[i] = i  # every byte of the row written, as a reader does
            if release:
                resident.written(i + 1)
        growth.append(_rss_file_mb() - before)
        n = rows * 10
        return SkeletonSet(
            data=data,
            labels=np.zeros(n, np.int64),
            sample_ids=[str(i) for i in range(n)],
            class_names=["x"],
            layout="ntu25",
            partition=np.array(["train"] * n),
            lengths=np.full(n, 100),
        )

    result = build_or_load({"reader": f"big-{release}"}, [source], build, tmp_path / "c")
    assert growth[0] < 5 if release else growth[0] > 25  # at most the 2 MB not yet released, plus the page tail
    np.testing.assert_array_equal(np.asarray(result.skeletons.data[:, 0, 0, 0, 0]), np.arange(rows * 10))
    assert (np.asarray(result.skeletons.data[-1]) == rows * 10 - 1).all()


def test_resident_rows_leave_a_plain_array_alone() -> None:
    data = np.zeros((4, 1024), np.float32)
    ResidentRows(data, every_mb=0).written(4)  # nothing to release, nothing raised
    data[:] = 1
    assert data.sum() == 4096
