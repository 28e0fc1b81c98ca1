"""A crash in the middle of writing a checkpoint or cache file never leaves a file that later loads as
valid: the previous file stays (or none appears), and the reader falls back (re-encodes, rebuilds).

Crashes are simulated by a ``torch.save`` / ``write_text`` that writes half its bytes and then raises, and,
for Lightning checkpoints, by a process that SIGKILLs itself mid-write. The feature cache and the data
cache have their own interrupted-build tests (``tests/models/test_features.py``, ``tests/data/test_cache.py``)
and the text cache its damaged-file test (``tests/text/test_encoder.py``).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_fs import tiny_fs

from purls_pl import storage
from purls_pl.train.checkpoint_io import AtomicCheckpointIO, atomic_write


class Crash(RuntimeError):
    pass


def _half_then_crash(obj: object, f: object, *args: object, **kwargs: object) -> None:
    """A ``torch.save`` that dies halfway through writing."""
    buffer = io.BytesIO()
    _real_save(obj, buffer)
    data = buffer.getvalue()
    if isinstance(f, (str, os.PathLike)):
        Path(f).write_bytes(data[: len(data) // 2])
    else:
        f.write(data[: len(data) // 2])
        f.flush()
    raise Crash("killed mid-write")


_real_save = torch.save


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def broken(f):
        f.write(b"new but trunc")
        raise Crash

    with pytest.raises(Crash):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert _leftovers(target.parent) == []


def test_checkpoint_io_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io_ = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io_.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 1}, path)
    monkeypatch.setattr(torch, "save", _half_then_crash)
    with pytest.raises(Crash):
        io_.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 2}, path)
    monkeypatch.undo()
    loaded = io_.load_checkpoint(path)
    assert loaded["global_step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.zeros(1000))
    assert _leftovers(tmp_path) == []


# What AtomicCheckpointIO.save_checkpoint runs (purls_pl.storage: no Lightning import, a fast child process).
_KILLED_WRITER = """
import io, os, signal, sys, torch
from purls_pl.storage import atomic_torch_save
real = torch.save
def dying_save(obj, f, *a, **k):
    b = io.BytesIO(); real(obj, b); f.write(b.getvalue()[:1000]); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
torch.save = dying_save
atomic_torch_save({"state_dict": {"w": torch.ones(100000)}, "global_step": 2}, sys.argv[1])
"""


def test_checkpoint_writer_killed_mid_write(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(10)}, "global_step": 1}, path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert AtomicCheckpointIO().load_checkpoint(path)["global_step"] == 1  # the previous checkpoint, intact
    assert len(_leftovers(tmp_path)) == 1  # only the hidden partial temp file, never under the real name


def test_text_cache_crash_mid_write_is_not_taken_as_valid(tiny_clip, tmp_path, monkeypatch):
    from purls_pl.text.encoder import TextEncoder

    encoder = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    texts = ["a person waves", "a person jumps"]
    monkeypatch.setattr(torch, "save", _half_then_crash)
    with pytest.raises(Crash):
        encoder.encode_cached(texts)
    monkeypatch.undo()
    assert list((tmp_path / "text").glob("*.pt")) == []  # nothing under a cache name
    torch.testing.assert_close(encoder.encode_cached(texts), encoder.encode(texts))


def test_backbone_export_crash_mid_write_keeps_the_previous_export(tiny_backbone, tmp_path, monkeypatch):
    from purls_pl.models.features import export_backbone, load_backbone

    net, _ = load_backbone(tiny_backbone)
    path = export_backbone(net, tmp_path / "backbone.pt", {"version": 1})
    monkeypatch.setattr(torch, "save", _half_then_crash)
    with pytest.raises(Crash):
        export_backbone(net, path, {"version": 2})
    monkeypatch.undo()
    assert load_backbone(path)[1] == {"version": 1}


def test_results_json_crash_mid_write_keeps_the_previous_results(tmp_path, monkeypatch):
    from purls_pl.eval.results import update_results

    path = tmp_path / "results.json"
    update_results(path, {"test/zsl_top1": 0.5})

    def crash(fd: int) -> None:  # the new content is written to the temporary file, not yet renamed
        raise Crash

    monkeypatch.setattr("purls_pl.storage.os.fsync", crash)
    with pytest.raises(Crash):
        update_results(path, {"gzsl": {"h": 0.3}})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"test/zsl_top1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no stray temporary file


# --- disk space and stale build folders ------------------------------------------------------------------


def test_check_free_space_names_the_directory_both_sizes_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda p: shutil_usage(free=3_900_000))
    storage.check_free_space(tmp_path / "new" / "dir", 3_900_000, "x", "fix it")  # fits exactly
    with pytest.raises(storage.NoSpaceError) as err:
        storage.check_free_space(tmp_path / "new" / "dir", 48_600_000, "the thing", "set PURLS_CACHE_DIR elsewhere")
    assert isinstance(err.value, OSError) and err.value.errno == 28
    assert str(err.value) == (
        f"{tmp_path / 'new' / 'dir'}: the thing needs 48.6 MB (48,600,000 bytes) but its file system has "
        "3.9 MB (3,900,000 bytes) free; set PURLS_CACHE_DIR elsewhere"
    )


def shutil_usage(free: int) -> object:
    import shutil

    return shutil._ntuple_diskusage(10 * free, 9 * free, free)  # type: ignore[attr-defined]


def test_preallocate_makes_a_full_disk_an_error_not_a_sigbus(tmp_path):
    with tiny_fs(tmp_path / "small") as small:
        big = small / "big.bin"
        with open(big, "wb") as f:
            f.truncate(8 << 20)  # sparse: 8 MB on a 4 MB file system
        with pytest.raises(OSError) as err:
            storage.preallocate(big)
        assert err.value.errno == 28
        with pytest.raises(storage.NoSpaceError, match=r"small: the build needs 8.4 MB .* free; more room$"):
            with storage.no_space_guard(small, "the build", "more room", lambda: 8 << 20):
                storage.preallocate(big)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_remove_stale_builds_takes_only_dead_or_long_idle_builds_of_that_cache(tmp_path):
    mine = storage.make_build_dir(tmp_path, ".tmp-entry-")
    assert mine.name.startswith(".tmp-entry-") and f".{os.getpid()}." in mine.name
    dead = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{_dead_pid()}."))
    alive = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{os.getppid()}."))
    elsewhere = tmp_path / ".tmp-entry-otherhost_1.12.abc"  # another host's build: only age counts
    old_elsewhere = tmp_path / ".tmp-entry-otherhost_1.13.abd"
    legacy_old, legacy_new = tmp_path / ".tmp-entry-k2j3l4m5", tmp_path / ".tmp-entry-n6o7p8q9"
    other_cache, not_ours = tmp_path / ".tmp-entry2-x.1.abc", tmp_path / ".tmp-entry-keep me"
    for d in (dead, alive, elsewhere, old_elsewhere, legacy_old, legacy_new, other_cache, not_ours):
        d.mkdir()
        (d / "data.npy").write_bytes(b"x")
    week = 7 * 24 * 3600
    for d in (old_elsewhere, legacy_old, other_cache, not_ours):
        for p in (d / "data.npy", d):
            os.utime(p, (p.stat().st_mtime - week,) * 2)
    started = storage.time.time() + 1
    removed = storage.remove_stale_builds(tmp_path, ".tmp-entry-", started=started)
    assert sorted(p.name for p in removed) == sorted(p.name for p in (dead, old_elsewhere, legacy_old))
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {p.name for p in (mine, alive, elsewhere, legacy_new, other_cache, not_ours)}
    newer = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{_dead_pid()}."))
    newer.mkdir()  # changed after the running build started: not stale, whoever owned it
    assert storage.remove_stale_builds(tmp_path, ".tmp-entry-", started=newer.stat().st_mtime - 5) == []
