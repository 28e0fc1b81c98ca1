"""Self-contained PURLS checkpoints: what rebuilding the module and open-vocabulary prediction need.

:meth:`PurlsModule.on_save_checkpoint` stores, under ``checkpoint["purls"]``, plain data only (safe for
``torch.load(..., weights_only=True)``)::

    {"format": 1,
     "class_names": [...], "seen": [...], "unseen": [...],
     "class_text": (K, 8, m) tensor,          # the text the module was built with (seen fields, unseen global)
     "layout": {"name", "joint_names", "edges", "center", "parts"},
     "partitioner": {"class_path", "init_args"}, "hparams": {proj_hidden, alpha, lr, ...},
     "backbone": {"class_path", "init_args", "pool_frames", "checkpoint"},   # weights: state_dict["backbone.encoder.*"]
     "text": {"model", "pooling", "max_length", "batch_size"} | None,       # the frozen text tower
     "templates": "paper" | {field: template} | None, "descriptions": str | None, "split": str | None,
     "source": {"class_path", "init_args"} | None,
     "preprocess": {"layout", "num_frames", "temporal", "center", "align", "per_person",
                    "normalize_kinetics", "num_persons", "channels", "num_person_in", "approximate"}}

The text, source and preprocessing entries come from the datamodule attached to the trainer; a
checkpoint saved without one has ``None`` there (prediction then needs the text model given).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from purls_pl.data.layouts import SkeletonLayout, get_layout, register_layout
from purls_pl.text.descriptions import FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from purls_pl.models.purls_module import PurlsModule

SPEC_KEY = "purls"
SPEC_FORMAT = 1
#: Raw-file preprocessing assumed for sources that read already-processed arrays (approximate).
PROCESSED_DEFAULTS: dict[str, dict[str, Any]] = {
    "NTUProcessedSource": {"center": True, "align": True},
    "KineticsProcessedSource": {"normalize_kinetics": True},
}


def class_path(obj: Any) -> str:
    """``module.QualName`` of a class (or of an instance's class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str) -> Any:
    """The class named by a dotted ``path``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def plain(value: Any) -> Any:
    """``value`` as data ``torch.load(weights_only=True)`` accepts: containers, str/int/float/bool/None,
    tensors; numpy values become Python ones, classes their dotted path, partials ``{class_path, init_args}``."""
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, functools.partial):
        return {"class_path": class_path(value.func), "init_args": plain(value.keywords)}
    if isinstance(value, type):
        return class_path(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def layout_spec(layout: SkeletonLayout) -> dict[str, Any]:
    """A layout as the mapping :meth:`SkeletonLayout.from_mapping` reads."""
    return {
        "name": layout.name,
        "joint_names": list(layout.joint_names),
        "edges": [list(e) for e in layout.edges],
        "center": layout.center,
        "parts": {k: list(v) for k, v in layout.parts.items()},
    }


def restore_layout(spec: dict[str, Any]) -> SkeletonLayout:
    """The registered layout of that name if it is the same, else the stored one (registered)."""
    stored = SkeletonLayout.from_mapping(spec)
    try:
        known = get_layout(stored.name)
    except KeyError:
        return register_layout(stored)
    return known if layout_spec(known) == layout_spec(stored) else stored


def partitioner_spec(partitioner: torch.nn.Module) -> dict[str, Any]:
    """``{class_path, init_args}`` of a partitioner: its own constructor arguments, read back from the
    attributes of the same name (the module supplies text_dim, node_dim and layout)."""
    args = {}
    for name, param in inspect.signature(type(partitioner).__init__).parameters.items():
        if name in ("self", "text_dim", "node_dim", "layout") or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        if hasattr(partitioner, name):
            args[name] = plain(getattr(partitioner, name))
    return {"class_path": class_path(partitioner), "init_args": args}


def preprocess_spec(source: Any, layout: str, data_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """How one raw file must be preprocessed to look like the training data of ``source``.

    Readers record their settings as attributes (``num_frames``, ``temporal``, ``center``, ``align``,
    ``per_person``, ``normalize``, ``num_person_in``); sources without them (the demo, random data)
    did no centering. ``data_shape`` ``(N, M, T, J, C)`` of the loaded set fixes T, M and C.
    """
    spec: dict[str, Any] = {
        "layout": layout,
        "num_frames": getattr(source, "num_frames", None),
        "temporal": getattr(source, "temporal", "resample"),
        "center": bool(getattr(source, "center", False)),
        "align": bool(getattr(source, "align", False)),
        "per_person": bool(getattr(source, "per_person", False)),
        "normalize_kinetics": bool(getattr(source, "normalize", False)),
        "num_person_in": int(getattr(source, "num_person_in", 5)),
        "num_persons": getattr(source, "max_persons", None) or getattr(source, "num_persons", None),
        "channels": getattr(source, "channels", None),
        "approximate": type(source).__name__ in PROCESSED_DEFAULTS,
    }
    spec.update(PROCESSED_DEFAULTS.get(type(source).__name__, {}))
    if data_shape is not None:
        spec["num_persons"], spec["num_frames"], spec["channels"] = data_shape[1], data_shape[2], data_shape[4]
    return plain(spec)


def full_class_text(module: PurlsModule) -> torch.Tensor:
    """``(K, 8, m)`` text holding what the module was built with (seen classes' fields, unseen global)."""
    seen_text, unseen_global = module.seen_text.detach().cpu(), module.unseen_global.detach().cpu()
    text = torch.zeros(len(module.class_names), len(FIELDS), seen_text.shape[-1], dtype=seen_text.dtype)
    fields = list(module.partitioner.field_index)
    for row, cls in enumerate(module.seen):
        text[cls, fields] = seen_text[row]
    text[list(module.unseen), FIELDS.index("global")] = unseen_global
    return text


def build_spec(module: PurlsModule) -> dict[str, Any]:
    """The ``checkpoint["purls"]`` record of ``module`` (see the module docstring)."""
    from purls_pl.models.features import init_args_of

    trainer = module._trainer
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    encoder = module.backbone.encoder
    hparams = {k: v for k, v in module.hparams.items() if k != "partitioner" and not k.startswith("_")}
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "class_names": list(module.class_names),
        "seen": list(module.seen),
        "unseen": list(module.unseen),
        "class_text": full_class_text(module),
        "layout": layout_spec(module.partitioner.layout),
        "partitioner": partitioner_spec(module.partitioner),
        "hparams": plain(hparams),
        "backbone": {
            "class_path": class_path(encoder),
            "init_args": plain(init_args_of(encoder)),
            "pool_frames": module.backbone.pool_frames,
            "checkpoint": str(module.backbone.checkpoint),
        },
        "text": None,
        "templates": None,
        "descriptions": None,
        "split": None,
        "source": None,
        "preprocess": None,
    }
    if dm is not None and hasattr(dm, "text_encoder"):
        enc = dm.text_encoder
        spec["text"] = {"model": enc.model, "pooling": enc.pooling, "max_length": enc.max_length}
        spec["templates"] = plain(dm.templates)
        spec["descriptions"] = dm.descriptions if isinstance(dm.descriptions, str) else None
        spec["split"] = dm.split.name
        source = dm.source
        args = {k: v for k, v in vars(source).items() if not k.startswith("_") and k != "skipped"}
        spec["source"] = {"class_path": class_path(source), "init_args": plain(args)}
        shape = tuple(dm.skeletons.data.shape) if getattr(dm, "skeletons", None) is not None else None
        spec["preprocess"] = preprocess_spec(source, module.partitioner.layout.name, shape)
    return plain(spec)


def _restore_backbone(spec: dict[str, Any]) -> Any:
    """A FrozenBackbone of the stored architecture (weights come with the module's state dict)."""
    from purls_pl.models.features import FrozenBackbone, export_backbone

    encoder = import_class(spec["class_path"])(**spec["init_args"])
    with tempfile.TemporaryDirectory() as tmp:
        backbone = FrozenBackbone(str(export_backbone(encoder, Path(tmp) / "backbone.pt")), spec["pool_frames"])
    backbone.checkpoint = spec.get("checkpoint", "<from PURLS checkpoint>")
    return backbone


def module_from_checkpoint(cls: type[PurlsModule], path: str | Path, map_location: Any = "cpu") -> PurlsModule:
    """Rebuild a :class:`PurlsModule` from a checkpoint alone (``weights_only=True`` loading), in eval mode."""
    from purls_pl.text.encoder import ClassText

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    spec = checkpoint.get(SPEC_KEY)
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(
            f"{path} holds no PURLS spec (format {SPEC_FORMAT}): it is not a PURLS checkpoint or predates "
            "self-contained checkpoints. Use it with its experiment config instead "
            "(python -m purls_pl test --config <experiment yaml> --ckpt_path <ckpt>), or retrain."
        )
    layout = restore_layout(spec["layout"])
    text = ClassText(tuple(spec["class_names"]), spec["class_text"], tuple(spec["seen"]), tuple(spec["unseen"]))
    part = spec["partitioner"]
    partitioner = functools.partial(import_class(part["class_path"]), **part["init_args"])
    accepted = inspect.signature(cls.__init__).parameters
    hparams = {k: v for k, v in spec["hparams"].items() if k in accepted}
    module = cls(text, layout, _restore_backbone(spec["backbone"]), partitioner, **hparams)
    module.load_state_dict(checkpoint["state_dict"])
    module.checkpoint_spec = spec
    return module.to(map_location).eval()
