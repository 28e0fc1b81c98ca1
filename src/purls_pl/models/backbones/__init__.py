"""Skeleton backbones (node encoders): ``(N, M, T, J, C)`` sequences to ``(N, n, L', J)`` features.

Built-in: ``"shift_gcn"`` (:class:`ShiftGCN`, Cheng et al., CVPR 2020 — PURLS' backbone) and
``"st_gcn"`` (:class:`STGCN`, Yan et al., AAAI 2018). Any :class:`NodeEncoder` subclass can be used
instead, via ``class_path`` in a config or a dotted path passed to :func:`build_backbone`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from purls_pl.models.backbones.base import NodeEncoder
from purls_pl.models.backbones.shift_gcn import ShiftGCN
from purls_pl.models.backbones.st_gcn import STGCN

BACKBONES: dict[str, type[NodeEncoder]] = {"shift_gcn": ShiftGCN, "st_gcn": STGCN}
#: What a stage-1 config injects: a backbone class with its own arguments (``class_path`` + ``init_args``);
#: the data supply the rest, ``(layout, in_channels, num_persons)``.
NodeEncoderFactory = Callable[[str, int, int], NodeEncoder]


def build_backbone(name: str, **kwargs: Any) -> NodeEncoder:
    """Instantiate a backbone by registry name (``"shift_gcn"``, ``"st_gcn"``) or dotted class path.

    Args:
        name: A key of :data:`BACKBONES` or ``"package.module.ClassName"`` of a :class:`NodeEncoder`.
        **kwargs: Constructor arguments (``layout``, ``in_channels``, ``num_persons``, ``channels``,
            ``strides``, ``dropout``, ...).

    Returns:
        The constructed encoder.
    """
    cls: Any = BACKBONES.get(name)
    if cls is None:
        if "." not in name:
            raise KeyError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)} or a dotted class path")
        module, _, attr = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, NodeEncoder)):
        raise TypeError(f"backbone {name!r} is not a NodeEncoder subclass")
    return cls(**kwargs)


__all__ = ["BACKBONES", "STGCN", "NodeEncoder", "NodeEncoderFactory", "ShiftGCN", "build_backbone"]
