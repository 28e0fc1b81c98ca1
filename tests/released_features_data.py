"""Generated released features whose zero-shot structure is known: each class's feature is a fixed linear map
of its own text embedding plus noise, so a method that learns the map on the seen classes recognises the unseen
ones (and one that does not, stays at chance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.splits import get_split
from purls_pl.text.encoder import TextEncoder
from purls_pl.text.fields import FIELDS, GLOBAL
from purls_pl.train.datamodule import ZeroShotDataModule

Part = tuple[np.ndarray, np.ndarray]


def class_text(split: str, clip: Path | str) -> np.ndarray:
    """``(K, m)`` the global text of every class as the Global baseline's run embeds it (label-only text)."""
    dm = ZeroShotDataModule(
        RandomSkeletonSource(dataset=get_split(split).dataset),
        split,
        descriptions="labels",
        templates="label",
        text_encoder=TextEncoder(model=str(clip)),
    )
    return dm.class_text.embeddings[:, FIELDS.index(GLOBAL)].numpy()


def separable_parts(
    split: str, clip: Path | str, dim: int = 32, train_per_class: int = 16, test_per_class: int = 6, seed: int = 0
) -> dict[str, Part]:
    """``{"train", "zsl", "gzsl"}`` parts of ``split``: features ``(N, dim)`` float32 = text @ W + noise, labels
    ``(N,)`` class indices of the whole dataset (``gzsl``: the seen test samples followed by the ``zsl`` ones)."""
    s = get_split(split)
    text = class_text(split, clip)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(text.shape[1], dim)) / np.sqrt(text.shape[1])
    centre = text @ w
    centre *= np.sqrt(dim) / np.linalg.norm(centre, axis=1, keepdims=True)  # about 1 per channel, as CNN features

    def draw(classes: tuple[int, ...], per_class: int) -> Part:
        y = np.repeat(np.asarray(classes, dtype=np.int64), per_class)
        x = centre[y] + rng.normal(scale=0.05 * np.sqrt(dim), size=(len(y), dim))
        return x.astype(np.float32), y

    train, zsl, seen_test = draw(s.seen, train_per_class), draw(s.unseen, test_per_class), draw(s.seen, 2)
    gzsl = (np.concatenate([seen_test[0], zsl[0]]), np.concatenate([seen_test[1], zsl[1]]))
    return {"train": train, "zsl": zsl, "gzsl": gzsl}
