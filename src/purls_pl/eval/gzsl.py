"""Generalised zero-shot (GZSL) metrics as pure functions.

Every sample (of a seen or an unseen class) is scored against ALL classes. Accuracy is reported
separately on seen-class and unseen-class samples, with their harmonic mean H (Xian et al., 2018).
Calibrated stacking (Chao et al., 2016) subtracts γ from the seen classes' scores before the argmax;
sweeping γ traces the seen/unseen trade-off curve whose area is AUSUC.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def calibrated_stacking(scores: Tensor, seen_mask: Tensor, gamma: float) -> Tensor:
    """``scores - γ·1[class is seen]`` (Chao et al., 2016).

    Args:
        scores: ``(N, K)`` scores over all K candidate classes.
        seen_mask: ``(K,)`` bool, True for the seen classes.
        gamma: Calibration γ; larger values favour the unseen classes.

    Returns:
        ``(N, K)`` calibrated scores.
    """
    return scores - gamma * seen_mask.to(device=scores.device, dtype=scores.dtype)


def _sample_weights(targets: Tensor, group: Tensor, per_class: bool) -> Tensor:
    """``(N,)`` weights summing to 1 over the samples of ``group`` (bool ``(N,)``), 0 elsewhere.

    ``per_class``: every class present in the group weighs the same (mean per-class accuracy);
    otherwise every sample does.
    """
    weights = torch.zeros(len(targets), dtype=torch.float64)
    if not bool(group.any()):
        return weights
    if not per_class:
        weights[group] = 1.0 / int(group.sum())
        return weights
    classes, counts = targets[group].unique(return_counts=True)
    per_target = torch.zeros(int(targets.max()) + 1, dtype=torch.float64)
    per_target[classes] = 1.0 / (counts.double() * len(classes))
    weights[group] = per_target[targets[group]]
    return weights


def harmonic_mean(seen: float, unseen: float) -> float:
    """``H = 2·S·U / (S + U)``; 0 when both are 0, NaN when either is NaN (an empty group)."""
    if math.isnan(seen) or math.isnan(unseen):
        return math.nan
    return 0.0 if seen + unseen == 0 else 2.0 * seen * unseen / (seen + unseen)


def gzsl_accuracies(
    scores: Tensor, targets: Tensor, seen_mask: Tensor, gamma: float = 0.0, per_class: bool = True
) -> dict[str, float]:
    """Seen, unseen accuracy and H of the calibrated argmax over all classes.

    Args:
        scores: ``(N, K)`` scores of N samples against all K classes.
        targets: ``(N,)`` target positions among the K classes.
        seen_mask: ``(K,)`` bool, True for the seen classes.
        gamma: Calibrated-stacking γ (0: the plain argmax).
        per_class: Average the accuracy over the classes of each group (the usual GZSL protocol)
            rather than over its samples.

    Returns:
        ``{"seen", "unseen", "h"}``; a group without samples gives NaN (and NaN H).
    """
    pred = calibrated_stacking(scores.float(), seen_mask, gamma).argmax(dim=-1).cpu()
    targets = targets.cpu()
    seen_mask = seen_mask.cpu()
    hit = (pred == targets).double()
    out = {}
    for name, group in (("seen", seen_mask[targets]), ("unseen", ~seen_mask[targets])):
        out[name] = float((_sample_weights(targets, group, per_class) * hit).sum()) if bool(group.any()) else math.nan
    out["h"] = harmonic_mean(out["seen"], out["unseen"])
    return out


def gzsl_curve(
    scores: Tensor, targets: Tensor, seen_mask: Tensor, gammas: Tensor | None = None, per_class: bool = True
) -> dict[str, Tensor]:
    """Seen and unseen accuracy for many γ at once, exactly, in ``O(N log N + G log N)``.

    A sample is predicted as its best seen class when ``γ <= c`` with ``c = max_seen − max_unseen``
    of its scores, else as its best unseen class (ties go to the seen class). Sorting the ``c``
    gives both accuracies for any γ by prefix sums.

    Args:
        scores: ``(N, K)``; targets: ``(N,)`` positions among K; seen_mask: ``(K,)`` bool
            (at least one seen and one unseen class).
        gammas: ``(G,)`` values to evaluate; default every change point of the curve plus one
            point past the last (all samples predicted unseen), ascending — the complete curve.
        per_class: As in :func:`gzsl_accuracies`.

    Returns:
        ``{"gamma": (G,), "seen": (G,), "unseen": (G,), "h": (G,)}`` float64; seen falls and
        unseen rises monotonically with γ. Empty groups give NaN.
    """
    scores, targets, seen_mask = scores.detach().double().cpu(), targets.cpu(), seen_mask.cpu()
    if bool(seen_mask.all()) or not bool(seen_mask.any()):
        raise ValueError("gzsl_curve needs at least one seen and one unseen class")
    neg = torch.finfo(scores.dtype).min
    best_seen, seen_pred = scores.masked_fill(~seen_mask, neg).max(dim=-1)
    best_unseen, unseen_pred = scores.masked_fill(seen_mask, neg).max(dim=-1)
    margin = best_seen - best_unseen  # (N,)
    is_seen = seen_mask[targets]
    w_seen = _sample_weights(targets, is_seen, per_class) * (seen_pred == targets)
    w_unseen = _sample_weights(targets, ~is_seen, per_class) * (unseen_pred == targets)
    order = margin.argsort()
    margin = margin[order]
    zero = torch.zeros(1, dtype=torch.float64)
    seen_from = torch.cat([w_seen[order].flip(0).cumsum(0).flip(0), zero])  # [i]: weight of sorted samples >= i
    unseen_below = torch.cat([zero, w_unseen[order].cumsum(0)])  # [i]: weight of sorted samples < i
    if gammas is None:
        points = margin.unique()
        gammas = torch.cat([points, torch.nextafter(points[-1:], torch.tensor([math.inf], dtype=torch.float64))])
    gammas = torch.as_tensor(gammas, dtype=torch.float64).cpu()
    below = torch.searchsorted(margin, gammas, side="left")
    seen = seen_from[below]
    unseen = unseen_below[below]
    if not bool(is_seen.any()):
        seen = torch.full_like(seen, math.nan)
    if bool(is_seen.all()):
        unseen = torch.full_like(unseen, math.nan)
    h = torch.where(seen + unseen > 0, 2 * seen * unseen / (seen + unseen), torch.zeros_like(seen))
    h = h.masked_fill(seen.isnan() | unseen.isnan(), math.nan)
    return {"gamma": gammas, "seen": seen, "unseen": unseen, "h": h}


def ausuc(seen: Tensor, unseen: Tensor) -> float:
    """Area under the seen-unseen accuracy curve (Chao et al., 2016): ``∫ seen d(unseen)``.

    Args:
        seen, unseen: ``(G,)`` accuracies along a γ sweep that covers both ends (all samples
            predicted seen, all predicted unseen), e.g. :func:`gzsl_curve` with default γ.
    """
    x, y = unseen.double(), seen.double()
    order = torch.argsort(x, stable=True)
    return float(torch.trapezoid(y[order], x[order]))


def gzsl_sweep(
    scores: Tensor,
    targets: Tensor,
    seen_mask: Tensor,
    gammas: Tensor | list[float] | None = None,
    per_class: bool = True,
) -> dict[str, object]:
    """Calibrated-stacking sweep: accuracies per γ, the γ of the best H, and AUSUC.

    Args:
        scores, targets, seen_mask, per_class: As in :func:`gzsl_curve`.
        gammas: The γ values to sweep; default the complete curve (every change point).

    Returns:
        ``{"gamma", "seen", "unseen", "h"}`` lists over the swept γ, ``"best"`` (``{"gamma",
        "seen", "unseen", "h"}`` at the highest H; of equal ones, the γ closest to 0) and ``"ausuc"`` (from the
        complete curve, whatever ``gammas`` is).
    """
    full = gzsl_curve(scores, targets, seen_mask, None, per_class)
    swept = (
        full
        if gammas is None
        else gzsl_curve(scores, targets, seen_mask, torch.as_tensor(gammas, dtype=torch.float64), per_class)
    )
    h = torch.nan_to_num(swept["h"], nan=-1.0)
    ties = torch.nonzero(h == h.max()).flatten()
    i = int(ties[swept["gamma"][ties].abs().argmin()])  # among equal H, the γ closest to 0
    keys = ("gamma", "seen", "unseen", "h")
    return {
        **{k: swept[k].tolist() for k in keys},
        "best": {k: float(swept[k][i]) for k in keys},
        "ausuc": ausuc(full["seen"], full["unseen"]),
    }
