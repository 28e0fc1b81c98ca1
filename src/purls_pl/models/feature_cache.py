"""Disk cache of frozen-backbone node features ("cached" feature mode).

The features of every sample of a dataset are extracted once and stored as a float16
memory-mapped ``features.npy`` of shape ``(N, S, n)`` (``S = L'·J``, time-major), beside a
``manifest.json`` that records what they were computed from::

    <cache_dir>/features/<key>/features.npy
    <cache_dir>/features/<key>/manifest.json

``key`` hashes the backbone checkpoint's bytes, the temporal pooling and the dataset fingerprint
(:meth:`purls_pl.data.skeletons.SkeletonSet.fingerprint`), so a changed checkpoint or changed data
lands in a new directory and a stale cache is never reused. A build writes into a temporary
directory that is renamed into place only when complete: an interrupted build never leaves a cache
that is taken as valid.

Size: ``N · L' · J · n · 2`` bytes. NTU-120 (114,480 samples, J = 25, n = 256): 110 GB at
L' = 75 (no pooling of 300 frames), 22 GB at ``pool_frames=15``, 7.3 GB at ``pool_frames=5``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from purls_pl.text.encoder import default_cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from purls_pl.data.skeletons import SkeletonSet
    from purls_pl.models.features import FrozenBackbone

log = logging.getLogger(__name__)
FORMAT = 1


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
        return hashlib.sha256(f"{FORMAT}|{backbone.identity}|{data}".encode()).hexdigest()[:24]

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
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
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
        array = np.lib.format.open_memmap(out / "features.npy", mode="w+", dtype=np.float16, shape=shape)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
        with torch.no_grad(), autocast:
            for i in range(0, n, batch):
                x = torch.from_numpy(np.array(skeletons.data[i : i + batch], dtype=np.float32)).to(device)
                array[i : i + batch] = backbone.encode(x).float().cpu().numpy().astype(np.float16)
        array.flush()
        del array
        backbone.to(encoder_device)
        manifest = {
            "format": FORMAT,
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


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
