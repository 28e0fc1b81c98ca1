"""Where the training runs put their files, and which experiment files name a variant of a run (no Lightning
import, so light commands can ask)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["AUTO", "VARIANTS", "backbone_export_path", "variant_file", "variant_of"]

#: What ``model.backbone.checkpoint`` and ``export.path`` say to mean :func:`backbone_export_path`.
AUTO = "auto"
#: Variants of a stage-2 run: each is the experiment file :func:`variant_file` names, composed after the
#: recipe; a run composing it is named ``<split>-<variant>`` (the paper's Global baseline: ``global``).
VARIANTS: tuple[str, ...] = ("global", "cada_vae")


def variant_file(variant: str, root: str | Path) -> Path:
    """The experiment file of ``variant`` (one of :data:`VARIANTS`) in the experiments folder ``root``."""
    if variant not in VARIANTS:
        raise ValueError(f"{variant!r} is not a variant of a run; variants: {VARIANTS}")
    return Path(root) / f"{variant}.yaml"


def variant_of(config: str | Path) -> str | None:
    """The variant an experiment file is (:func:`variant_file` of one of :data:`VARIANTS`), else ``None``."""
    path = Path(config)
    return next((v for v in VARIANTS if variant_file(v, path.parent) == path), None)


def backbone_export_path(split: str, seed: int, root: str | Path | None = None) -> Path:
    """Where stage 1 exports, and PURLS finds, the backbone of ``split`` trained with ``seed``:
    ``<root>/backbones/<split>/seed<seed>.pt`` (root: ``trainer.default_root_dir``, else ``lightning_logs``)."""
    return Path(root or "lightning_logs") / "backbones" / split / f"seed{seed}.pt"
