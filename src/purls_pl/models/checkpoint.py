"""Self-contained checkpoints: what rebuilding a method and open-vocabulary prediction need.

Every checkpoint holds, under ``checkpoint["purls"]``, plain data only (safe for
``torch.load(..., weights_only=True)``). :meth:`ZeroShotMethod.on_save_checkpoint` writes what the method
itself knows (:func:`module_spec`)::

    {"format": 1, "method": "purls_pl.models.purls_module.PurlsModule",
     "class_names": [...], "seen": [...], "unseen": [...], "gzsl": bool,
     "class_text": (K, 8, m) tensor,          # the text the module was built with (seen fields, candidates' global)
     "layout": {"name", "joint_names", "edges", "center", "parts", "align_axes"},
     "hparams": {proj_hidden, alpha, lr, ...},
     "partitioner": {"class_path", "init_args"}, "class_labels": (K, m) | None,  # PURLS' own entries
     "backbone": {"class_path", "init_args", "pool_frames", "checkpoint", "meta"}}
     # the backbone's weights: state_dict["backbone.encoder.*"]

and the training wiring (:class:`purls_pl.train.wiring.RecordDataSpec`) adds what the data side knows,
from the datamodule's public ``checkpoint_record()``::

     "text": {"model", "pooling", "max_length"}, "templates": "paper" | {field: template},
     "descriptions": str | None, "split": str, "source": {"class_path", "init_args"},
     "preprocess": the source's Preprocessing record, whole (purls_pl.data.preprocessing.Preprocessing
                   .to_mapping(): {"format": 2, "layout", "num_frames", "temporal", "empty_frames",
                   "normalization", "center", "per_person", "align", "visibility", "num_persons",
                   "num_person_in", "channels", "reader", "approximate"}; older checkpoints hold a flat dict
                   that Preprocessing.from_mapping reads too)

A checkpoint saved without a datamodule has ``None`` there (prediction then needs the text model given).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from purls_pl.data.layouts import restore_layout
from purls_pl.data.preprocessing import class_path
from purls_pl.integrity import load_torch_file
from purls_pl.models.features import FrozenBackbone, init_args_of
from purls_pl.text.encoder import ClassText

SPEC_KEY = "purls"
SPEC_FORMAT = 1
#: The entries the data side adds (``None`` until a datamodule records them).
DATA_KEYS: tuple[str, ...] = ("text", "templates", "descriptions", "split", "source", "preprocess")
#: The method of a checkpoint that records none (written before methods were recorded).
PURLS_METHOD = "purls_pl.models.purls_module.PurlsModule"


def import_class(path: str) -> Any:
    """The class named by a dotted ``path``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def plain(value: Any) -> Any:
    """``value`` as data ``torch.load(weights_only=True)`` accepts: containers, str/int/float/bool/None,
    tensors; numpy values become Python ones, classes their dotted path, partials ``{class_path, init_args}``."""
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
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


def uses_labels(hparams: Any) -> bool:
    """Whether a module with these hyper-parameters scores candidates with their label embeddings."""
    return bool(hparams.get("label_fusion", 0) or hparams.get("label_field", 0))


def module_spec(module: Any) -> dict[str, Any]:
    """The model's part of the ``checkpoint["purls"]`` record of a zero-shot method (module docstring).

    Args:
        module: The method (a :class:`~purls_pl.models.method.ZeroShotMethod`); it provides
            ``class_names``, ``seen``, ``unseen``, ``gzsl``, ``layout``, ``full_class_text()``, ``backbone``,
            ``hparams`` and ``spec_extra()``: its own entries (PURLS: the partitioner, the label embeddings),
            whose keys are left out of ``hparams``.
    """
    encoder = module.backbone.encoder
    extra = module.spec_extra()
    hparams = {k: v for k, v in module.hparams.items() if k not in extra and not k.startswith("_")}
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "method": class_path(module),
        "class_names": list(module.class_names),
        "seen": list(module.seen),
        "unseen": list(module.unseen),
        "gzsl": bool(module.gzsl),
        "class_text": module.full_class_text(),
        "layout": module.layout.to_mapping(),
        "hparams": hparams,
        "backbone": {
            "class_path": class_path(encoder),
            "init_args": init_args_of(encoder),
            "pool_frames": module.backbone.pool_frames,
            "checkpoint": str(module.backbone.checkpoint),
            "meta": dict(module.backbone.meta),  # what stage 1 recorded: its seen classes, its accuracies
        },
        **extra,
    }
    return plain(spec)


def _restore_backbone(spec: dict[str, Any]) -> FrozenBackbone:
    """A FrozenBackbone of the stored architecture (weights come with the module's state dict)."""
    encoder: nn.Module = import_class(spec["class_path"])(**spec["init_args"])
    checkpoint = spec.get("checkpoint", "<from PURLS checkpoint>")
    return FrozenBackbone.from_encoder(encoder, spec.get("meta") or {}, spec["pool_frames"], checkpoint)


def module_from_checkpoint(cls: type[Any], path: str | Path, map_location: Any = "cpu") -> Any:
    """Rebuild the method a checkpoint holds (its ``"method"``, a subclass of ``cls``; PURLS for checkpoints
    written before methods were recorded) from the checkpoint alone (``weights_only=True`` loading), in eval
    mode, with ``checkpoint_spec`` set to the stored record."""
    checkpoint = load_torch_file(path, what="checkpoint")
    spec = checkpoint.get(SPEC_KEY)
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(
            f"{path} holds no PURLS spec (format {SPEC_FORMAT}): it is not a PURLS checkpoint or predates "
            "self-contained checkpoints. Use it with its experiment config instead "
            "(python -m purls_pl test --config <experiment yaml> --ckpt_path <ckpt>), or retrain."
        )
    method = import_class(spec.get("method", PURLS_METHOD))
    if not (isinstance(method, type) and issubclass(method, cls)):
        raise ValueError(f"{path}: its method {spec.get('method')} is not a {class_path(cls)}")
    layout = restore_layout(spec["layout"])
    text = ClassText(
        tuple(spec["class_names"]),
        spec["class_text"],
        tuple(spec["seen"]),
        tuple(spec["unseen"]),
        gzsl=bool(spec.get("gzsl", True)),
        labels=spec.get("class_labels"),
    )
    accepted = inspect.signature(method.__init__).parameters
    hparams = {k: v for k, v in spec["hparams"].items() if k in accepted}
    module = method(text, layout, _restore_backbone(spec["backbone"]), **method.init_args_from_spec(spec), **hparams)
    module.load_state_dict(checkpoint["state_dict"])
    module.checkpoint_spec = {**dict.fromkeys(DATA_KEYS), **spec}
    return module.to(map_location).eval()


def partitioner_from_spec(spec: dict[str, Any]) -> Any:
    """The partitioner factory a :func:`partitioner_spec` record describes."""
    return functools.partial(import_class(spec["class_path"]), **spec["init_args"])
