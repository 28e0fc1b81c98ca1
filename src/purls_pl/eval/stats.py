"""Uncertainty of reported accuracies: spread over runs and intervals over test samples.

A table cell averages runs (seeds, and random class folds) of one method. Two kinds of uncertainty
are reported separately:

* over runs — the per-run values with their mean and sample standard deviation (:func:`mean_std`): what
  training randomness (both stages' seeds) and the choice of classes (folds) do;
* over test samples — a 95% percentile-bootstrap interval of the cell's mean (:func:`bootstrap_interval`):
  what the finite test set does. Each replicate resamples every split's test samples with replacement
  (the same resample for every run of that split, since all runs test the same samples) and averages
  the runs' accuracies on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_interval", "mean_std", "paired_difference", "top1"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the per-run differences ``values[i] - reference[i]`` (runs paired: the same split and seed)
    and its 95% Student-t interval over runs, ``(mean, low, high)``; the interval is NaN for one pair.

    Pairing removes what both rows share (the fold's classes, the stage-1 backbone of the seed), so two
    rows can differ reliably although each cell's spread over runs is wide.
    """
    if len(values) != len(reference) or not values:
        raise ValueError(f"paired_difference needs equally many values, got {len(values)} and {len(reference)}")
    diffs = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    mean = float(diffs.mean())
    if len(diffs) == 1:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.975, len(diffs) - 1)) * float(diffs.std(ddof=1)) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def top1(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Fraction of samples whose prediction is their label."""
    labels_a, predictions_a = np.asarray(labels), np.asarray(predictions)
    if labels_a.shape != predictions_a.shape or labels_a.size == 0:
        raise ValueError(f"labels and predictions must be equally long and non-empty, got {labels_a.shape}")
    return float((labels_a == predictions_a).mean())


def bootstrap_interval(
    runs: Sequence[tuple[str, np.ndarray]], replicates: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval over test samples of the mean accuracy of ``runs``.

    Args:
        runs: ``(split, hits)`` per run, ``hits`` a ``(N_split,)`` bool array of correct test samples in
            the split's fixed sample order (runs of one split must have equally many samples).
        replicates: Bootstrap replicates.
        level: Coverage of the interval.
        seed: Seed of the resampling (the interval is deterministic).

    Returns:
        ``(low, high)`` accuracies.
    """
    if not runs:
        raise ValueError("bootstrap_interval needs at least one run")
    sizes: dict[str, int] = {}
    for split, hits in runs:
        if sizes.setdefault(split, len(hits)) != len(hits):
            raise ValueError(f"runs of split {split!r} tested {sizes[split]} and {len(hits)} samples")
    rng = np.random.default_rng(seed)
    draws = {split: rng.integers(0, n, size=(replicates, n)) for split, n in sorted(sizes.items())}
    means = np.zeros(replicates)
    for split, hits in runs:
        means += np.asarray(hits, dtype=np.float64)[draws[split]].mean(axis=1)
    means /= len(runs)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
