"""Frozen skeleton backbones: export after stage-1 pre-training, reload frozen for PURLS.

A backbone export is one ``torch.save`` file holding only plain data (safe for
``torch.load(weights_only=True)``)::

    {"format": 1, "class_path": "purls_pl.models.backbones.ShiftGCN", "init_args": {...},
     "state_dict": {...}, "meta": {"split": ..., "seen_val_top1": ..., ...}}

**Cached feature mode** (:class:`FeatureCache`).

The features of every sample of a dataset are extracted once and stored as a float16
memory-mapped ``features.npy`` of shape ``(N, S, n)`` (``S = L'·J``, time-major), beside a
``manifest.json`` that records what they were computed from::

    <cache_dir>/features/<key>/features.npy
    <cache_dir>/features/<key>/manifest.json

``key`` hashes the backbone checkpoint's bytes, the temporal pooling and the dataset fingerprint
(:meth:`purls_pl.data.skeletons.SkeletonSet.fingerprint`), so a changed checkpoint or changed data
lands in a new directory and a stale cache is never reused. A build writes into a temporary
directory (``.<key>.<host>_<pidns>.<pid>.<random>``) that is renamed into place only when complete: an
interrupted build never leaves a cache that is taken as valid, and the next build of the same key
removes the folders killed builds left (:func:`purls_pl.storage.remove_stale_builds`). The size is
checked against the free space first and the file's blocks reserved before it is written, so a full
disk is one :class:`~purls_pl.storage.NoSpaceError` (the directory, the bytes needed and free, the fix:
another ``PURLS_CACHE_DIR`` or a smaller ``pool_frames``), never a ``SIGBUS``. Extraction logs progress
lines (:mod:`purls_pl.progress`).

Size: ``N · L' · J · n · 2`` bytes. NTU-120 (114,480 samples, J = 25, n = 256): 110 GB at
L' = 75 (no pooling of 300 frames), 22 GB at ``pool_frames=15``, 7.3 GB at ``pool_frames=5``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from purls_pl.data.layouts import SkeletonLayout, restore_layout
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.integrity import FileRefused, content_digest, load_torch_file, seal
from purls_pl.progress import Progress
from purls_pl.storage import (
    atomic_torch_save,
    cache_space_fix,
    check_free_space,
    default_cache_dir,
    folder_bytes,
    make_build_dir,
    no_space_guard,
    preallocate,
    remove_stale_builds,
)

if TYPE_CHECKING:
    from purls_pl.text.encoder import ClassText

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
CACHE_FORMAT = 1


def init_args_of(module: nn.Module) -> dict[str, Any]:
    """The constructor arguments a backbone was built with (recorded by ``NodeEncoder``), as plain data: a
    layout given as an object is recorded by its name."""
    args = getattr(module, "init_args", None)
    if args is None:
        raise TypeError(
            f"{type(module).__name__} does not record its constructor arguments; subclass "
            "purls_pl.models.backbones.NodeEncoder so it can be exported and reloaded"
        )
    args = dict(args)
    if isinstance(args.get("layout"), SkeletonLayout):
        args["layout"] = args["layout"].name  # the joints themselves travel as the file's "layout" record
    return args


def export_backbone(backbone: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``backbone`` (class, constructor args, weights, its skeleton layout) atomically to ``path``,
    sealed with a checksum of its content (:func:`purls_pl.integrity.seal`)."""
    cls = type(backbone)
    layout = getattr(backbone, "layout", None)
    payload = {
        "format": EXPORT_FORMAT,
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": init_args_of(backbone),
        "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "meta": dict(meta or {}),
        "layout": layout.to_mapping() if isinstance(layout, SkeletonLayout) else None,
    }
    return atomic_torch_save(seal(payload), path)


def require_backbone(path: str | Path) -> None:
    """Refuse a backbone export that does not exist, saying how to make one."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"backbone checkpoint {path} does not exist. Pre-train one on the split's seen classes first: "
            "`make backbone SPLIT=<split>` (`make train` does this automatically), or "
            "`python -m purls_pl pretrain fit $(python -m purls_pl configs <split> --stage backbone)`."
        )


def load_backbone(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported backbone. Only plain data is unpickled (``weights_only=True``); the file's seal
    and finite weights are checked (:func:`purls_pl.integrity.load_torch_file`), and the skeleton layout it
    records is registered when this process does not know it (a dataset's own ``layout.json``)."""
    path = Path(path)
    require_backbone(path)
    payload = load_torch_file(path, what="backbone export")
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FileRefused(
            f"{path}: not a backbone export of format {EXPORT_FORMAT} (found {found!r}); export one with "
            "stage 1 (`make backbone SPLIT=<split>`)"
        )
    init_args = dict(payload["init_args"])
    if payload.get("layout"):
        layout = restore_layout(payload["layout"])
        if init_args.get("layout") == layout.name:
            init_args["layout"] = layout  # the recorded joints, even where another layout has that name
    module_name, _, class_name = payload["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    backbone = cls(**init_args)
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
            (``python -m purls_pl.train.pretrain fit``), e.g. ``lightning_logs/backbones/demo_15_5.pt``.
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
        self._checkpoint_digest: str | None = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]
        freeze(self.encoder)
        self.out_channels: int = int(self.encoder.out_channels)
        self.pool_frames = pool_frames
        self.cache = cache
        self.cache_dir = cache_dir
        self.extract_batch_size = extract_batch_size
        self.features: FeatureCache | None = None  # set by prepare()

    @classmethod
    def from_encoder(
        cls, encoder: nn.Module, meta: dict[str, Any], pool_frames: int | None, checkpoint: str
    ) -> FrozenBackbone:
        """A frozen, uncached backbone around an encoder already built (a checkpoint's: its weights come with
        the module's state dict), without reading or writing a file; ``checkpoint`` says where it came from."""
        backbone = cls.__new__(cls)
        backbone._adopt(encoder, meta, pool_frames, checkpoint)
        return backbone

    def _adopt(self, encoder: nn.Module, meta: dict[str, Any], pool_frames: int | None, checkpoint: str) -> None:
        """Initialise as a frozen, uncached backbone around ``encoder`` (:meth:`from_encoder`, and subclasses whose
        encoder is built rather than loaded)."""
        nn.Module.__init__(self)
        self.checkpoint, self.encoder, self.meta = checkpoint, encoder, dict(meta)
        self._checkpoint_digest = None  # the weights arrive later: hashed when asked (identity)
        freeze(encoder)
        self.out_channels = int(encoder.out_channels)
        self.pool_frames, self.cache, self.cache_dir, self.extract_batch_size = pool_frames, False, None, 64
        self.features = None

    @property
    def identity(self) -> str:
        """Hash of the loaded checkpoint's bytes (of the weights, for :meth:`from_encoder`) and the pooling:
        changes whenever features would."""
        digest = self._checkpoint_digest or content_digest(dict(self.encoder.state_dict()))[:16]
        return f"{digest}-pool{self.pool_frames}"

    @property
    def pooled(self) -> bool:
        """Whether the node features are one pooled vector per sample (released features,
        :mod:`purls_pl.models.pooled`): no joints or frames to partition."""
        return bool(getattr(self.encoder, "pooled", False))

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

    def prepare(self, skeletons: SkeletonSet, device: torch.device | str = "cpu") -> None:
        """In cached mode, build or open the feature cache of ``skeletons``."""
        if not self.cache or self.features is not None:
            return
        self.features = FeatureCache.build_or_open(self, skeletons, device=device, cache_dir=self.cache_dir)

    def forward(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """Node features ``(N, S, n)``: from the cache by sample ``index`` when prepared, else online."""
        if self.features is not None and index is not None:
            return self.features.read(index).to(device=x.device, dtype=torch.float32)
        return self.encode(x)


class FeatureCache:
    """Read access to a built feature cache.

    Args:
        directory: The cache directory holding ``features.npy`` and ``manifest.json``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest: dict[str, Any] = json.loads((self.directory / "manifest.json").read_text())
        self.array = np.load(self.directory / "features.npy", mmap_mode="r")

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, index: Tensor) -> Tensor:
        """Features of the samples ``index`` ``(B,)`` -> ``(B, S, n)`` float16."""
        return torch.from_numpy(np.ascontiguousarray(self.array[index.cpu().numpy()]))

    @staticmethod
    def key(backbone: FrozenBackbone, skeletons: SkeletonSet, fingerprint: str | None = None) -> str:
        """Cache directory name; ``fingerprint`` is ``skeletons.fingerprint()`` if already computed."""
        data = fingerprint or skeletons.fingerprint()
        return hashlib.sha256(f"{CACHE_FORMAT}|{backbone.identity}|{data}".encode()).hexdigest()[:24]

    @classmethod
    def build_or_open(
        cls,
        backbone: FrozenBackbone,
        skeletons: SkeletonSet,
        device: torch.device | str = "cpu",
        cache_dir: str | Path | None = None,
    ) -> FeatureCache:
        """Open the cache of (``backbone``, ``skeletons``), extracting it first if it does not exist."""
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        fingerprint = skeletons.fingerprint()  # reads every sample's first and middle frames: once
        directory = root / "features" / cls.key(backbone, skeletons, fingerprint)
        if (directory / "manifest.json").is_file():
            log.info("features: cache hit %s", directory)
            return cls(directory)
        started = time.time()
        directory.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(directory.parent, f".{directory.name}.", started)
        tmp = make_build_dir(directory.parent, f".{directory.name}.")
        try:
            fix = cls.space_fix(backbone)
            with no_space_guard(directory.parent, "the feature cache", fix, lambda: folder_bytes(tmp)):
                cls._extract(backbone, skeletons, tmp, torch.device(device), fingerprint)
            try:
                os.replace(tmp, directory)
            except OSError:  # another process finished the same cache first
                if not (directory / "manifest.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    @staticmethod
    def space_fix(backbone: FrozenBackbone) -> str:
        """How to make a feature cache fit: another cache directory, or fewer pooled frames."""
        return (
            f"{cache_space_fix('model.backbone.cache_dir')}, or lower model.backbone.pool_frames "
            f"(now {backbone.pool_frames}) to shrink the cache"
        )

    @staticmethod
    def _extract(
        backbone: FrozenBackbone, skeletons: SkeletonSet, out: Path, device: torch.device, fingerprint: str
    ) -> None:
        start = time.perf_counter()
        n = len(skeletons)
        batch = backbone.extract_batch_size
        encoder_device = next(backbone.parameters()).device
        backbone.to(device)
        probe = backbone.encode(torch.from_numpy(np.array(skeletons.data[:1], dtype=np.float32)).to(device))
        shape = (n, *probe.shape[1:])
        what = f"the feature cache {shape} float16"
        check_free_space(out.parent, int(np.prod(shape)) * 2, what, FeatureCache.space_fix(backbone))
        array = np.lib.format.open_memmap(out / "features.npy", mode="w+", dtype=np.float16, shape=shape)
        preallocate(out / "features.npy")
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
        with torch.no_grad(), autocast, Progress(n, "extracting features", "sample") as progress:
            for i in range(0, n, batch):
                x = torch.from_numpy(np.array(skeletons.data[i : i + batch], dtype=np.float32)).to(device)
                array[i : i + batch] = backbone.encode(x).float().cpu().numpy().astype(np.float16)
                progress.update(len(x))
        array.flush()
        del array
        backbone.to(encoder_device)
        manifest = {
            "format": CACHE_FORMAT,
            "checkpoint": str(backbone.checkpoint),
            "backbone": backbone.identity,
            "data": fingerprint,
            "shape": list(shape),
            "dtype": "float16",
            "pool_frames": backbone.pool_frames,
            "seconds": round(time.perf_counter() - start, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        log.info("features: extracted %s in %.1f s into %s", shape, manifest["seconds"], out)


def check_backbone_classes(meta: dict[str, Any], class_text: ClassText) -> None:
    """Refuse a stage-1 backbone that was trained on a class this run does not train on (an unseen or a
    validation class would leak through the features).

    Exports record the names of their seen classes (``meta["seen_class_names"]``); an export without
    that record (written by hand or by an older version) is accepted with a warning.

    Raises:
        ValueError: naming the backbone's classes, the run's seen classes and the offending ones.
    """
    if meta.get("released_features"):  # released pooled features: their source checks the split's classes
        return
    trained = meta.get("seen_class_names")
    if trained is None:
        if "seen_classes" not in meta:
            warnings.warn(
                "the backbone export records no seen classes: it cannot be checked against the split's seen classes",
                stacklevel=3,
            )
            return
        trained = [class_text.class_names[c] for c in meta["seen_classes"] if c < len(class_text.class_names)]
    allowed = [class_text.class_names[c] for c in class_text.seen]
    foreign = sorted(set(trained) - set(allowed))
    if foreign:
        raise ValueError(
            f"the stage-1 backbone was trained on {len(trained)} classes {sorted(trained)}, but this run trains on "
            f"{len(allowed)} seen classes {sorted(allowed)}: {foreign} are not among them, so their features would "
            "leak into zero-shot evaluation. Use the backbone of this split, protocol and validation fold "
            "(model.backbone.checkpoint=auto; make backbone SPLIT=<split>)"
        )
