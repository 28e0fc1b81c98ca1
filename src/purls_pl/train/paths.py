"""Where the training runs put their files (no Lightning import, so light commands can ask)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["AUTO", "backbone_export_path"]

#: What ``model.backbone.checkpoint`` and ``export.path`` say to mean :func:`backbone_export_path`.
AUTO = "auto"


def backbone_export_path(split: str, seed: int, root: str | Path | None = None) -> Path:
    """Where stage 1 exports, and PURLS finds, the backbone of ``split`` trained with ``seed``:
    ``<root>/backbones/<split>/seed<seed>.pt`` (root: ``trainer.default_root_dir``, else ``lightning_logs``)."""
    return Path(root or "lightning_logs") / "backbones" / split / f"seed{seed}.pt"
