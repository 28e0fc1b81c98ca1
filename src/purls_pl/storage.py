"""Where files go and how they are written: the cache directory and atomic writes.

The lowest layer of the package (no Lightning, no other purls_pl import), so every other module can
use it. :func:`atomic_write` writes a file as ``<dir>/.<name>.<random>.tmp`` in the target's own
directory, flushes and ``fsync`` s it, then ``os.replace`` s it over the target (atomic on POSIX and
Windows within one file system) and syncs the directory: a crash at any point leaves either the
previous file or the complete new one, never a truncated file under the real name (at worst a stray
hidden ``.tmp``). Directory-sized builds (the data and feature caches) build in a hidden temporary
directory and rename it into place the same way.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "CACHE_ENV",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "default_cache_dir",
    "update_json",
]

#: Environment variable that moves every cache (data, features, text embeddings).
CACHE_ENV = "PURLS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$PURLS_CACHE_DIR`` (``~`` expanded) if set, else ``~/.cache/purls_pl``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "purls_pl"


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
