"""The contract every skeleton backbone (node encoder) follows.

PURLS (Zhu et al., "Part-aware Unified Representation of Language and Skeleton for Zero-shot
Action Recognition", CVPR 2024) encodes a skeleton sequence into per-joint, per-frame features
``(N, n, L', J)`` that its prompting modules attend over, *before* any global pooling. A
backbone is a :class:`NodeEncoder`; the built-in ones are
:class:`~purls_pl.models.backbones.shift_gcn.ShiftGCN` and
:class:`~purls_pl.models.backbones.st_gcn.STGCN`.

Plugging in your own backbone: subclass :class:`NodeEncoder`, set ``self.out_channels`` and
``self.layout`` in ``__init__`` (or call :meth:`NodeEncoder._init_stages`), implement :meth:`forward`, and point a
config at it with ``class_path: my_pkg.MyEncoder`` (``init_args`` are its constructor arguments).
Constructors should accept the common arguments ``layout``, ``in_channels``, ``num_persons``,
``channels``, ``strides`` and ``dropout`` (typed and documented: their docstrings become the CLI
``--help``), plus any of their own.
"""

from __future__ import annotations

import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from purls_pl.data.layouts import SkeletonLayout, get_layout


class NodeEncoder(nn.Module, ABC):
    """Abstract skeleton encoder: ``(N, M, T, J, C)`` sequences to ``(N, n, L', J)`` node features.

    Contract:

    * ``out_channels: int`` — ``n``, the feature width of every joint/frame node.
    * ``layout: SkeletonLayout`` — the skeleton the encoder was built for (``J = layout.num_joints``).
    * ``num_persons: int`` — ``M`` the encoder expects (some encoders normalise per person).
    * :attr:`temporal_stride` — the total temporal down-sampling (default: the product of ``strides``),
      so ``L' = ceil(T / temporal_stride)``
      (see :meth:`output_frames`).
    * :meth:`forward` — ``x (N, M, T, J, C) -> (N, n, L', J)``; the persons are encoded
      independently and their features **averaged** over ``M`` (as PURLS does); no pooling over
      frames or joints. It must not hard-code dtypes or devices, so mixed precision works.
    """

    out_channels: int
    layout: SkeletonLayout
    num_persons: int
    #: The constructor arguments of the outermost class, recorded automatically so a trained
    #: encoder can be exported and rebuilt (:mod:`purls_pl.models.features`).
    init_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _record_init_args(cls.__dict__["__init__"])

    def _init_stages(
        self, layout: str, in_channels: int, num_persons: int, channels: Sequence[int], strides: Sequence[int]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Validate and store the attributes every backbone shares; returns ``(channels, strides)`` as tuples."""
        channels, strides = tuple(int(c) for c in channels), tuple(int(s) for s in strides)
        validate_stages(channels, strides)
        self.layout = get_layout(layout)
        self.in_channels = in_channels
        self.num_persons = num_persons
        self.channels = channels
        self.strides = strides
        self.out_channels = channels[-1]
        return channels, strides

    @property
    def temporal_stride(self) -> int:
        """Product of the temporal strides of all layers (``T / L'``); the product of ``strides`` for an
        encoder built with :meth:`_init_stages`."""
        return math.prod(self.strides)

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Encode skeleton sequences.

        Args:
            x: ``(N, M, T, J, C)`` — samples, persons, frames, joints, coordinates.

        Returns:
            ``(N, out_channels, L', J)`` node features, averaged over the ``M`` persons, with
            ``L' = ceil(T / temporal_stride)``.
        """

    def output_frames(self, num_frames: int) -> int:
        """``L'`` for an input of ``num_frames`` frames: ``ceil(num_frames / temporal_stride)``."""
        return math.ceil(num_frames / self.temporal_stride)

    def check_input(self, x: Tensor) -> None:
        """Raise a readable error if ``x`` is not ``(N, M, T, J, C)`` for this encoder's layout."""
        if x.dim() != 5:
            raise ValueError(f"{type(self).__name__} expects x of shape (N, M, T, J, C), got {tuple(x.shape)}")
        j = self.layout.num_joints
        if x.shape[3] != j:
            raise ValueError(
                f"{type(self).__name__} was built for layout {self.layout.name!r} with {j} joints, "
                f"but x has {x.shape[3]} joints (shape {tuple(x.shape)}, expected (N, M, T, J, C))"
            )


def _record_init_args(init: Any) -> Any:
    """Wrap ``__init__`` so the outermost call stores its bound arguments as ``self.init_args``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: NodeEncoder, *args: Any, **kwargs: Any) -> None:
        outermost = not self.__dict__.get("_recording_init_args", False)
        if outermost:
            object.__setattr__(self, "_recording_init_args", True)
        init(self, *args, **kwargs)
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            recorded = {k: list(v) if isinstance(v, tuple) else v for k, v in bound.arguments.items() if k != "self"}
            object.__setattr__(self, "init_args", recorded)
            object.__setattr__(self, "_recording_init_args", False)

    return wrapper


def validate_stages(channels: tuple[int, ...], strides: tuple[int, ...]) -> None:
    """Check a backbone's per-layer ``channels`` and ``strides`` lists."""
    if len(channels) == 0:
        raise ValueError("channels must list at least one layer width")
    if len(channels) != len(strides):
        raise ValueError(f"channels and strides must have one entry per layer, got {len(channels)} and {len(strides)}")
    if any(c <= 0 for c in channels) or any(s <= 0 for s in strides):
        raise ValueError(f"channels and strides must be positive, got {channels} and {strides}")
