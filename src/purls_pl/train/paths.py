"""Where the training runs put their files, and which experiment files name a variant of a run (no Lightning
import, so light commands can ask)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["AUTO", "BASES", "backbone_export_path", "is_variant_file", "variant_file", "variant_of", "variants"]

#: What ``model.backbone.checkpoint`` and ``export.path`` say to mean :func:`backbone_export_path`.
AUTO = "auto"
#: The base experiment files of an experiments folder: stage 2 (``purls.yaml``) and stage 1 (``backbone.yaml``).
BASES: tuple[str, ...] = ("purls", "backbone")


def is_variant_file(path: str | Path) -> bool:
    """Whether ``path`` is a variant of a stage-2 run: a ``.yaml`` file directly in an experiments folder (one
    holding both bases, :data:`BASES`; a folder of selections holds no ``backbone.yaml``) that is neither a
    base nor a dataset recipe (a recipe has its stage-1 recipe ``<name>_backbone.yaml`` beside it) nor such a
    stage-1 recipe. A method's experiment file (``cada_vae.yaml``) and the paper's Global baseline
    (``global.yaml``) are variants: dropping a new method's file into ``experiments/`` makes it a stage of
    ``configs``, ``select`` and tables, with no list to edit."""
    path = Path(path)
    return (
        path.suffix == ".yaml"
        and path.stem not in BASES
        and not path.stem.endswith("_backbone")
        and not path.with_name(f"{path.stem}_backbone.yaml").exists()
        and all(path.with_name(f"{base}.yaml").is_file() for base in BASES)
        and path.is_file()
    )


def variants(root: str | Path) -> tuple[str, ...]:
    """The variants of a stage-2 run in the experiments folder ``root`` (:func:`is_variant_file`), sorted:
    each is the experiment file :func:`variant_file` names, composed after the recipe; a run composing it is
    named ``<split>-<variant>`` (the paper's Global baseline: ``global``)."""
    return tuple(sorted(p.stem for p in Path(root).glob("*.yaml") if is_variant_file(p)))


def variant_file(variant: str, root: str | Path) -> Path:
    """The experiment file of ``variant`` (one of :func:`variants` of ``root``) in the experiments folder ``root``."""
    path = Path(root) / f"{variant}.yaml"
    if not is_variant_file(path):
        raise ValueError(f"{variant!r} is not a variant of a run in {root}; variants: {variants(root)}")
    return path


def variant_of(config: str | Path) -> str | None:
    """The variant an experiment file is (:func:`is_variant_file`: its stem), else ``None``."""
    return Path(config).stem if is_variant_file(config) else None


def backbone_export_path(split: str, seed: int, root: str | Path | None = None) -> Path:
    """Where stage 1 exports, and PURLS finds, the backbone of ``split`` trained with ``seed``:
    ``<root>/backbones/<split>/seed<seed>.pt`` (root: ``trainer.default_root_dir``, else ``lightning_logs``)."""
    return Path(root or "lightning_logs") / "backbones" / split / f"seed{seed}.pt"
