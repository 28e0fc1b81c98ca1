"""Where files go and how they are written: the cache directory and atomic writes.

The lowest layer of the package (no Lightning, no other purls_pl import), so every other module can
use it. :func:`atomic_write` writes a file as ``<dir>/.<name>.<random>.tmp`` in the target's own
directory, flushes and ``fsync`` s it, then ``os.replace`` s it over the target (atomic on POSIX and
Windows within one file system) and syncs the directory: a crash at any point leaves either the
previous file or the complete new one, never a truncated file under the real name (at worst a stray
hidden ``.tmp``). Directory-sized builds (the data and feature caches) build in a hidden temporary
directory (:func:`make_build_dir`, named after its owner process) and rename it into place the same way;
:func:`remove_stale_builds` clears the folders that killed builds left behind.

Disk space: :func:`check_free_space` refuses a write that cannot fit before it starts,
:func:`preallocate` reserves a memory-mapped file's blocks (a full disk is then an ``ENOSPC`` error,
never a ``SIGBUS`` while writing through the map), and :func:`no_space_guard` turns an ``ENOSPC`` during
a build into one :class:`NoSpaceError` naming the directory, the bytes needed and free, and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "CACHE_ENV",
    "NoSpaceError",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "cache_space_fix",
    "check_free_space",
    "default_cache_dir",
    "folder_bytes",
    "free_bytes",
    "make_build_dir",
    "no_space_guard",
    "preallocate",
    "remove_stale_builds",
    "update_json",
]

log = logging.getLogger(__name__)

#: Environment variable that moves every cache (data, features, text embeddings).
CACHE_ENV = "PURLS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$PURLS_CACHE_DIR`` (``~`` expanded) if set, else ``~/.cache/purls_pl``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "purls_pl"


def cache_space_fix(option: str) -> str:
    """How to give a cache more room: ``set PURLS_CACHE_DIR (or <option>) to a directory on a bigger disk``."""
    return f"set {CACHE_ENV} (or {option}) to a directory on a disk with enough free space"


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes, atomically.

    Args:
        path: Target file; its directory is created if needed.
        write: Writes the whole content to the open binary file it is given.

    Returns:
        ``path``. If ``write`` (or anything else) fails, the target is untouched and the temporary
        file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (best effort; not supported everywhere)
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, value: Any, indent: int = 1) -> Path:
    """Write ``value`` as JSON (non-ASCII kept, trailing newline) through :func:`atomic_write`."""
    return atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


def update_json(path: str | Path, record: dict[str, Any]) -> Path:
    """Merge ``record`` into the JSON object in ``path`` (created if absent), atomically."""
    path = Path(path)
    current = json.loads(path.read_text()) if path.is_file() else {}
    return atomic_write_json(path, {**current, **record})


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    import torch  # the heavy import only where a tensor file is written

    return atomic_write(path, lambda f: torch.save(obj, f))


#: What a directory moved aside by :func:`move_aside` has in its name (``<dir>.stale-<time>``).
STALE = ".stale-"


def move_aside(directory: Path) -> Path:
    """Rename ``directory`` to ``<name>.stale-<time>[-n]`` beside it (kept, never deleted); return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stale, n = directory.with_name(f"{directory.name}{STALE}{stamp}"), 1
    while stale.exists():
        stale, n = directory.with_name(f"{directory.name}{STALE}{stamp}-{n}"), n + 1
    directory.rename(stale)
    return stale


def is_stale(path: Path) -> bool:
    """Whether ``path`` lies in a directory :func:`move_aside` moved aside."""
    return any(STALE in part for part in path.parts)


def _size(n: int) -> str:
    """``n`` bytes for people: ``48.6 MB (48,600,000 bytes)``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


class NoSpaceError(OSError):
    """A write that does not fit on its file system (``errno`` ``ENOSPC``); the message is one line,
    ``<directory>: <what> needs <needed> but its file system has <free> free; <fix>``.

    Attributes:
        directory: Where the write goes.
        needed: Bytes the write needs (``None`` when unknown).
        free: Bytes free on the directory's file system when the error was raised.
    """

    def __init__(self, directory: str | Path, needed: int | None, free: int, what: str, fix: str) -> None:
        need = f"needs {_size(needed)}" if needed is not None else "ran out of space"
        message = f"{directory}: {what} {need} but its file system has {_size(free)} free; {fix}"
        super().__init__(errno.ENOSPC, message, str(directory))
        self.directory, self.needed, self.free, self.message = Path(directory), needed, free, message

    def __str__(self) -> str:
        return self.message


def free_bytes(directory: str | Path) -> int:
    """Bytes free (for an unprivileged user) on the file system of ``directory`` or its nearest existing parent."""
    path = Path(directory).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def folder_bytes(folder: str | Path) -> int:
    """Apparent size of the files directly in ``folder`` (what a build had asked for); 0 if it is gone."""
    try:
        return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())
    except OSError:
        return 0


def check_free_space(directory: str | Path, needed: int, what: str, fix: str) -> None:
    """Raise :class:`NoSpaceError` unless ``needed`` bytes fit on the file system of ``directory``.

    Args:
        directory: Where the bytes will be written (need not exist yet).
        needed: Bytes the write needs.
        what: What is written, for the message (``"the data cache entry (960, 1, 40, 25, 3) float32"``).
        fix: How to make it fit, for the message.
    """
    free = free_bytes(directory)
    if needed > free:
        raise NoSpaceError(directory, needed, free, what, fix)


def preallocate(path: str | Path, size: int | None = None) -> None:
    """Reserve the blocks of the file ``path`` (``size`` bytes, default its length) with ``posix_fallocate``.

    A memory map over a sparse file dies with ``SIGBUS`` when the disk fills while it is written; over
    a preallocated one it cannot. Raises ``OSError(ENOSPC)`` when the space is not there; does nothing
    where the platform or file system cannot preallocate.
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:  # pragma: no cover - macOS, Windows
        return
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, 0, os.fstat(fd).st_size if size is None else size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def no_space_guard(
    directory: str | Path, what: str, fix: str, needed: Callable[[], int | None] = lambda: None
) -> Iterator[None]:
    """Turn an ``ENOSPC`` / ``EDQUOT`` ``OSError`` raised inside into one :class:`NoSpaceError`.

    ``needed()`` gives the bytes the write needed, if known by then (it is called only on the error).
    A :class:`NoSpaceError` raised inside passes through unchanged.
    """
    try:
        yield
    except NoSpaceError:
        raise
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise NoSpaceError(directory, needed(), free_bytes(directory), what, fix) from err


def _owner() -> str:
    """This process's host and pid namespace, as a file-name-safe tag (a pid means something only there)."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
    try:
        ns = re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        ns = "0"
    return f"{host}_{ns}"


#: A build folder untouched this long is stale even when its owner cannot be checked (another host).
STALE_BUILD_SECONDS = 3 * 24 * 3600
_OWNED = re.compile(r"(?P<owner>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+")
_LEGACY = re.compile(r"[A-Za-z0-9_]+")  # mkdtemp's suffix alone: folders of builds before owners were recorded


def make_build_dir(parent: Path, prefix: str) -> Path:
    """A new hidden build folder ``<parent>/<prefix><host>_<pidns>.<pid>.<random>`` (its owner in its name)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{_owner()}.{os.getpid()}.", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _last_change(folder: Path) -> float:
    """The newest modification time of ``folder`` and the files directly in it."""
    times = [folder.stat().st_mtime]
    with contextlib.suppress(OSError):
        times += [p.stat().st_mtime for p in folder.iterdir()]
    return max(times)


def remove_stale_builds(parent: Path, prefix: str, started: float, max_idle: float = STALE_BUILD_SECONDS) -> list[Path]:
    """Delete the build folders ``<parent>/<prefix>*`` that killed builds of the same cache left behind.

    A folder is stale when it was last changed before ``started`` (the running build's start) and either
    its owner process (host, pid namespace and pid in its name, see :func:`make_build_dir`) is gone, or
    nothing in it changed for ``max_idle`` seconds (the only test for an owner that cannot be checked: one
    on another host, or a folder of an older version). Nothing outside ``parent``, and nothing not named
    ``<prefix>...``, is touched.

    Returns:
        The folders removed.
    """
    removed: list[Path] = []
    here, now = _owner(), time.time()
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for folder in candidates:
        rest = folder.name[len(prefix) :]
        owned = _OWNED.fullmatch(rest)
        if owned is None and _LEGACY.fullmatch(rest) is None:
            continue
        try:
            changed = _last_change(folder)
        except OSError:  # removed meanwhile
            continue
        if changed >= started:
            continue
        stale = now - changed > max_idle
        if owned and owned["owner"] == here and not stale:
            pid = int(owned["pid"])
            stale = pid != os.getpid() and not _alive(pid)
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the stale build folder %s (its build was interrupted)", folder)
            removed.append(folder)
    return removed
