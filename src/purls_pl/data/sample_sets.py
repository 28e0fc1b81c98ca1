"""Which samples train, select and test: the evaluation protocol as one pure function.

Two independent cuts place a sample. The zero-shot **split** decides whether its *class* is seen or
unseen (:mod:`purls_pl.data.splits`); the dataset's own **protocol** decides whether the *sample* is
``"train"`` or ``"test"`` (``SkeletonSet.partition``, set by the reader: NTU cross-subject, NW-UCLA
views 1-2 vs 3, ...). :func:`sample_sets` combines them for one of two run protocols:

``final`` — the run that is reported. Its split is the real one.

* ``train``: seen classes, train partition (minus ``holdout``);
* ``holdout``: a share of the seen classes' train-partition samples, by subject where the dataset
  records subjects (stage 1 may watch its accuracy; nothing else uses it);
* ``seen_test``: seen classes, test partition (generalised zero-shot evaluation; stage-1 report);
* ``unseen_eval``: unseen classes, test partition (or every unseen sample with ``unseen_from="all"``) —
  read once, by the final test.

``select`` — model selection. Its split is a selection split (:meth:`ZeroShotSplit.selection`): the
validation classes play the unseen classes and the real unseen classes are excluded. **Only
train-partition samples are used**, so no test-protocol sample and no unseen-class sample can
influence a choice:

* ``train``: the remaining seen classes, train partition, minus ``holdout``;
* ``holdout``: their held-out share (seen-class samples nobody trained on, for calibrating
  generalised zero-shot scores);
* ``seen_test``: empty;
* ``unseen_eval``: the validation classes, train partition.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import ZeroShotSplit

__all__ = ["SET_NAMES", "Protocol", "holdout_mask", "sample_sets"]

Protocol = Literal["final", "select"]
SET_NAMES: tuple[str, ...] = ("train", "holdout", "seen_test", "unseen_eval")
#: The per-sample metadata that groups samples by performer, where a reader records it.
GROUP_KEY = "subject"


def _rank(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def holdout_mask(skeletons: SkeletonSet, index: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """``(len(index),)`` bool: which of the samples ``index`` are held out.

    With ``meta["subject"]`` the held-out share is whole subjects (ranked by ``sha256(salt:subject)``, taken
    until ``fraction`` of the samples is reached), so no performer is on both sides; otherwise a
    ``fraction`` of each class's samples (ranked by ``sha256(salt:sample id)``). Deterministic.

    Args:
        skeletons: The dataset.
        index: ``(n,)`` sample positions to split.
        fraction: Share to hold out, in ``[0, 1)``.
        salt: Makes the choice specific to a split (e.g. its name).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout must lie in [0, 1), got {fraction}")
    out = np.zeros(len(index), dtype=bool)
    if fraction == 0.0 or len(index) == 0:
        return out
    if GROUP_KEY in skeletons.meta:
        groups = np.asarray(skeletons.meta[GROUP_KEY])[index]
        taken = 0
        for group in sorted(np.unique(groups).tolist(), key=lambda g: _rank(f"{salt}:{g}")):
            if taken >= fraction * len(index):
                break
            member = groups == group
            if taken + member.sum() >= len(index):  # always keep some training samples
                break
            out |= member
            taken += int(member.sum())
        return out
    labels = skeletons.labels[index]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        count = round(fraction * len(members))
        if count >= len(members):
            count = len(members) - 1
        order = sorted(members.tolist(), key=lambda i: _rank(f"{salt}:{skeletons.sample_ids[index[i]]}"))
        out[order[:count]] = True
    return out


def sample_sets(
    skeletons: SkeletonSet,
    split: ZeroShotSplit,
    protocol: Protocol = "final",
    unseen_from: Literal["test", "all"] = "test",
    holdout: float = 0.0,
) -> dict[str, np.ndarray]:
    """Sample positions of each set (module docstring) for ``split`` under ``protocol``.

    Args:
        skeletons: The loaded dataset.
        split: The run's split (a selection split for ``protocol="select"``).
        protocol: ``"final"`` or ``"select"``.
        unseen_from: ``"test"`` or ``"all"`` (final protocol only).
        holdout: Share of the seen classes' train-partition samples held out of training.

    Returns:
        ``{"train", "holdout", "seen_test", "unseen_eval"}`` -> ``(n,)`` int64 positions, sorted.
    """
    if protocol not in ("final", "select"):
        raise ValueError(f"protocol must be 'final' or 'select', got {protocol!r}")
    labels, partition = skeletons.labels, skeletons.partition
    seen = np.isin(labels, split.seen)
    unseen = np.isin(labels, split.unseen)
    train = partition == "train"
    pool = np.flatnonzero(seen & train)
    held = holdout_mask(skeletons, pool, holdout, split.name)
    if protocol == "final":
        evaluate = unseen & ((partition == "test") if unseen_from == "test" else True)
        seen_test = np.flatnonzero(seen & (partition == "test"))
    else:
        evaluate = unseen & train  # validation classes, training protocol only
        seen_test = np.zeros(0, dtype=np.int64)
    sets = {
        "train": pool[~held],
        "holdout": pool[held],
        "seen_test": seen_test,
        "unseen_eval": np.flatnonzero(evaluate),
    }
    excluded = np.isin(labels, split.excluded)
    for name, idx in sets.items():
        assert not excluded[idx].any(), f"{name}: an excluded class leaked in"
        assert not (np.isin(labels[idx], split.unseen).any() and name != "unseen_eval"), f"{name}: unseen leaked"
    return {name: idx.astype(np.int64) for name, idx in sets.items()}
