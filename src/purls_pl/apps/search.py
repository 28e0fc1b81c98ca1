"""The coordinate search of a selection (:mod:`purls_pl.apps.select`): trials, their scores and the choice.

The search runs the given keys in order, starting from each key's first value: each key in turn takes the
value with the best validation accuracy, the others held at their current choice. A trial's score is the
best epoch of its validation curve averaged over the folds; that epoch count is selected with it (ties: the
earlier epoch, the earlier value).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from purls_pl.eval.metrics import VAL, VAL_TOP1, key

__all__ = ["GAMMA", "Trial", "best_trial", "coordinate_search", "slug"]

GAMMA = key(VAL, "gzsl_gamma")


@dataclass
class Trial:
    """One setting evaluated on every fold: its validation curves (``val/…`` per epoch) per fold."""

    overrides: dict[str, Any]
    curves: list[list[dict[str, float]]]

    def mean(self, metric: str = VAL_TOP1) -> list[float]:
        """``metric`` per epoch, averaged over the folds (the shortest curve's length)."""
        length = min(len(c) for c in self.curves)
        # rounded: float32 metrics averaged in another order must not break ties between equal accuracies
        return [round(sum(c[e][metric] for c in self.curves) / len(self.curves), 6) for e in range(length)]

    @property
    def best(self) -> tuple[int, float]:
        """``(epochs, mean validation top-1)`` at the best epoch (the earliest of equal ones)."""
        curve = self.mean()
        epoch = max(range(len(curve)), key=lambda e: (curve[e], -e))
        return epoch + 1, curve[epoch]

    def gamma(self, epochs: int) -> float | None:
        """The validation-chosen calibration γ after ``epochs``, averaged over the folds."""
        values = [c[epochs - 1].get(GAMMA) for c in self.curves]
        values = [v for v in values if v is not None and v == v]
        return sum(values) / len(values) if values else None


def slug(overrides: dict[str, Any]) -> str:
    """A short stable hash of ``overrides`` (a trial's key)."""
    return hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:12]


def coordinate_search(
    search: dict[str, list[Any]], evaluate: Callable[[list[dict[str, Any]]], list[Trial]]
) -> list[Trial]:
    """Trials of a one-pass coordinate search (module docstring); the last trial chosen is the selection.

    Args:
        search: Ordered ``{config key: candidate values}``; the first value is the starting point.
        evaluate: Runs (or recalls) several settings, independent of each other (they may run side by
            side), and returns their trials in the same order.

    Returns:
        Every distinct trial, in the order run; ``trials[-1]`` is not necessarily the best — see
        :func:`best_trial`.
    """
    current = {k: values[0] for k, values in search.items()}
    seen: dict[str, Trial] = {}

    def run(candidates: list[dict[str, Any]]) -> list[Trial]:
        missing = list({slug(o): dict(o) for o in candidates if slug(o) not in seen}.values())
        if missing:
            seen.update({slug(o): t for o, t in zip(missing, evaluate(missing), strict=True)})
        return [seen[slug(o)] for o in candidates]

    for name, values in search.items():
        trials = run([{**current, name: v} for v in values])
        scores = [(t.best[1], -i, v) for i, (t, v) in enumerate(zip(trials, values, strict=True))]
        current[name] = max(scores, key=lambda s: (s[0], s[1]))[2]
    run([current])
    return list(seen.values())


def best_trial(trials: Sequence[Trial], search: dict[str, list[Any]]) -> Trial:
    """The coordinate search's final choice: the trial whose overrides equal the settled setting."""
    current = {k: values[0] for k, values in search.items()}
    by_slug = {slug(t.overrides): t for t in trials}
    for name, values in search.items():
        scored = [(by_slug[slug({**current, name: v})].best[1], -i, v) for i, v in enumerate(values)]
        current[name] = max(scored, key=lambda s: (s[0], s[1]))[2]
    return by_slug[slug(current)]
