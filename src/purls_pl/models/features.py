"""Frozen skeleton backbones: export after stage-1 pre-training, reload frozen for PURLS.

A backbone export is one ``torch.save`` file holding only plain data (safe for
``torch.load(weights_only=True)``)::

    {"format": 1, "class_path": "purls_pl.models.backbones.ShiftGCN", "init_args": {...},
     "state_dict": {...}, "meta": {"split": ..., "seen_val_top1": ..., ...}}
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

EXPORT_FORMAT = 1


def init_args_of(module: nn.Module) -> dict[str, Any]:
    """The constructor arguments a backbone was built with (recorded by ``NodeEncoder``)."""
    args = getattr(module, "init_args", None)
    if args is None:
        raise TypeError(
            f"{type(module).__name__} does not record its constructor arguments; subclass "
            "purls_pl.models.backbones.NodeEncoder so it can be exported and reloaded"
        )
    return dict(args)


def export_backbone(backbone: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``backbone`` (class, constructor args, weights) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cls = type(backbone)
    payload = {
        "format": EXPORT_FORMAT,
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": init_args_of(backbone),
        "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "meta": dict(meta or {}),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_backbone(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported backbone. Only plain data is unpickled (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone checkpoint {path} does not exist. Pre-train one on the split's seen classes first: "
            "`python -m purls_pl.pretrain fit --config experiments/backbones/<split>.yaml` "
            "(`make train` does this automatically)."
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: unsupported backbone export format {payload.get('format')!r}")
    module_name, _, class_name = payload["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    backbone = cls(**payload["init_args"])
    backbone.load_state_dict(payload["state_dict"])
    return backbone, payload.get("meta", {})


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, eval mode (BatchNorm statistics and dropout fixed)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def to_node_sequence(features: Tensor) -> Tensor:
    """``(N, n, L', J)`` backbone output -> ``(N, S = L'·J, n)`` time-major node features."""
    n, c, t, j = features.shape
    return features.permute(0, 2, 3, 1).reshape(n, t * j, c)


class FrozenBackbone(nn.Module):
    """A pre-trained skeleton encoder, frozen, producing PURLS node features.

    Args:
        checkpoint: Backbone export written by stage-1 pre-training
            (``python -m purls_pl.pretrain fit``), e.g. ``lightning_logs/backbones/demo_15_5.pt``.
        pool_frames: Average-pool the backbone's L' frames down to this many (bounds the feature
            cache; ``None`` keeps L'). Applied identically in both modes.
        cache: ``True`` extracts the features of the whole dataset once into a float16 memory-mapped
            cache (see :mod:`purls_pl.models.feature_cache`) and reads them by sample index;
            ``False`` runs the backbone in every forward pass ("online").
        cache_dir: Feature cache root; default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``.
        extract_batch_size: Batch size when filling the cache.
    """

    def __init__(
        self,
        checkpoint: str,
        pool_frames: int | None = None,
        cache: bool = False,
        cache_dir: str | None = None,
        extract_batch_size: int = 64,
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.encoder, self.meta = load_backbone(checkpoint)
        # Hashed once, at load: the identity of the weights in memory, however often caches ask for it.
        self._checkpoint_digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]
        freeze(self.encoder)
        self.out_channels: int = int(self.encoder.out_channels)
        self.pool_frames = pool_frames
        self.cache = cache
        self.cache_dir = cache_dir
        self.extract_batch_size = extract_batch_size
        self.features: Any = None  # the FeatureCache once prepared

    @property
    def identity(self) -> str:
        """Hash of the loaded checkpoint's bytes and the pooling: changes whenever features would."""
        return f"{self._checkpoint_digest}-pool{self.pool_frames}"

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Stays in eval mode whatever the trainer asks: the backbone is frozen."""
        super().train(False)
        return self

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """``(N, M, T, J, C)`` skeletons -> ``(N, S, n)`` node features (persons averaged, pooled)."""
        features = self.encoder(x)  # (N, n, L', J)
        if self.pool_frames is not None and features.shape[2] != self.pool_frames:
            features = nn.functional.adaptive_avg_pool2d(features, (self.pool_frames, features.shape[3]))
        return to_node_sequence(features)

    def prepare(self, skeletons: Any, device: torch.device | str = "cpu") -> None:
        """In cached mode, build or open the feature cache of ``skeletons`` (a SkeletonSet)."""
        if not self.cache or self.features is not None:
            return
        from purls_pl.models.feature_cache import FeatureCache

        self.features = FeatureCache.build_or_open(self, skeletons, device=device, cache_dir=self.cache_dir)

    def forward(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """Node features ``(N, S, n)``: from the cache by sample ``index`` when prepared, else online."""
        if self.features is not None and index is not None:
            return self.features.read(index).to(device=x.device, dtype=torch.float32)
        return self.encode(x)
