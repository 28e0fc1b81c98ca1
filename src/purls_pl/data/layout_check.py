"""Does a dataset's joint order match its declared layout? Two cheap pieces of evidence, one pass.

A skeleton's bones keep their length while the person moves; a joint order that does not match the
layout turns some declared "bones" into pairs of unrelated joints whose distance changes all the time.
And a body is roughly symmetric: a declared left bone and its right counterpart (joint names that differ
only in ``left``/``right``) have similar lengths; swapped or shifted joints break that.

:func:`check_layout` measures both on the valid frames (both ends of a bone non-zero) of a sample of
the data and returns one message per contradiction, with the numbers, so a reader can warn before any
training. It is a plausibility check, not a proof: a correct layout with very noisy data can trip it,
and a wrong one can pass if the mistakes happen to keep lengths.
"""

from __future__ import annotations

import numpy as np

from purls_pl.data.layouts import SkeletonLayout

__all__ = ["check_layout"]

#: A bone whose length varies more than this (std / mean over frames) is implausible for a rigid bone...
MAX_VARIATION = 0.5
#: ...when it also varies this many times more than the layout's typical bone.
VARIATION_RATIO = 3.0
#: Mirror bones whose mean lengths differ by more than this factor contradict left/right symmetry.
MAX_ASYMMETRY = 1.6


def _mirror(name: str) -> str | None:
    for a, b in (("left", "right"), ("right", "left"), ("l_", "r_"), ("r_", "l_")):
        if a in name:
            return name.replace(a, b, 1)
    return None


def check_layout(data: np.ndarray, layout: SkeletonLayout, max_samples: int = 200) -> list[str]:
    """Contradictions between skeleton data and the layout's bones (module docstring).

    Args:
        data: ``(N, M, T, J, C)`` skeletons (all-zero joints are missing); the first ``min(C, 3)`` channels
            are coordinates.
        layout: The declared layout.
        max_samples: Samples read (evenly spaced), to keep the check fast on big datasets.

    Returns:
        Messages naming each implausible bone or asymmetric pair with its figures; empty when none.
    """
    if data.shape[3] != layout.num_joints:
        return [f"the data have {data.shape[3]} joints but layout {layout.name!r} has {layout.num_joints}"]
    pick = np.unique(np.linspace(0, len(data) - 1, min(len(data), max_samples)).round().astype(int))
    coords = np.asarray(data[pick], dtype=np.float64)[..., : min(data.shape[-1], 3)]
    coords = coords.reshape(-1, layout.num_joints, coords.shape[-1])  # every person-frame
    present = np.abs(coords).sum(axis=-1) > 0
    stats: dict[tuple[int, int], tuple[float, float]] = {}
    for a, b in layout.edges:
        ok = present[:, a] & present[:, b]
        if ok.sum() < 10:
            continue
        length = np.linalg.norm(coords[ok, a] - coords[ok, b], axis=-1)
        mean = float(length.mean())
        if mean > 0:
            stats[(a, b)] = (mean, float(length.std() / mean))
    if not stats:
        return []
    names = layout.joint_names
    problems = []
    typical = float(np.median([v for _, v in stats.values()]))
    for (a, b), (_, variation) in stats.items():
        if variation > MAX_VARIATION and variation > VARIATION_RATIO * typical:
            problems.append(
                f"bone {names[a]}-{names[b]} ({a}-{b}) changes length by {100 * variation:.0f}% over the frames "
                f"(typical bone: {100 * typical:.0f}%): the two joints may not be neighbours in the data"
            )
    index = {n: i for i, n in enumerate(names)}
    done: set[tuple[int, int]] = set()
    for (a, b), (mean, _) in stats.items():
        ma, mb = _mirror(names[a]), _mirror(names[b])
        if ma is None and mb is None:
            continue
        pair = (index.get(ma or names[a]), index.get(mb or names[b]))
        if None in pair:
            continue
        other = stats.get(pair) or stats.get(pair[::-1])  # type: ignore[arg-type]
        key = tuple(sorted((tuple(sorted((a, b))), tuple(sorted(pair)))))  # type: ignore[arg-type]
        if other is None or key in done or set(pair) == {a, b}:
            continue
        done.add(key)  # type: ignore[arg-type]
        ratio = max(mean, other[0]) / min(mean, other[0])
        if ratio > MAX_ASYMMETRY:
            problems.append(
                f"bones {names[a]}-{names[b]} and {ma or names[a]}-{mb or names[b]} differ in length by x{ratio:.1f} "
                f"({mean:.3g} vs {other[0]:.3g}): left and right may be swapped or shifted in the joint order"
            )
    return problems
