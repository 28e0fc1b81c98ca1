"""Atomic, pickle-free Lightning checkpoint files.

:class:`AtomicCheckpointIO` is Lightning's ``TorchCheckpointIO`` writing through
:func:`purls_pl.storage.atomic_torch_save` (temporary file in the target's directory, ``fsync``,
``os.replace``) — Lightning's own ``_atomic_save`` goes through an fsspec transaction whose temporary
file lives in the system temp directory, and when that is another file system the final move is a copy
that a crash can cut short — and loading with ``weights_only=True`` by default, so a checkpoint carrying
a pickled object is refused instead of executed. :class:`purls_pl.train.cli.PurlsCLI` installs it on every
trainer (:func:`use_atomic_checkpoint_io`).
"""

from __future__ import annotations

from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning import Trainer

from purls_pl.integrity import load_torch_file, seal
from purls_pl.storage import atomic_torch_save, atomic_write

__all__ = ["AtomicCheckpointIO", "atomic_torch_save", "atomic_write", "use_atomic_checkpoint_io"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` writing local checkpoints atomically and sealed with a checksum of their
    content, and loading them with ``weights_only=True``, the seal and finite weights checked
    (:func:`purls_pl.integrity.load_torch_file`).

        Remote paths (``s3://`` ...) keep Lightning's fsspec writer. Loading honours an explicit
        ``weights_only=False`` (only for checkpoints you trust).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not support storage_options")
        atomic_torch_save(seal(checkpoint), path)

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if weights_only is False or "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=bool(weights_only is None or weights_only))
        return load_torch_file(path, what="checkpoint", map_location=map_location)


def use_atomic_checkpoint_io(trainer: Trainer) -> None:
    """Install :class:`AtomicCheckpointIO` on ``trainer``'s strategy unless it uses a custom CheckpointIO
    (anything but Lightning's default ``TorchCheckpointIO``, e.g. a sharded strategy's own)."""
    strategy = trainer.strategy
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
