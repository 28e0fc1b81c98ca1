"""Atomic file writes (no Lightning import, so light processes can use them).

:func:`atomic_write` writes a file as ``<dir>/.<name>.<random>.tmp`` in the target's own directory,
flushes and ``fsync`` s it, then ``os.replace`` s it over the target (atomic on POSIX and Windows within
one file system) and syncs the directory: a crash at any point leaves either the previous file or the
complete new one, never a truncated file under the real name (at worst a stray hidden ``.tmp``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


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


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    return atomic_write(path, lambda f: torch.save(obj, f))
