"""Skeleton graphs for graph-convolutional backbones.

Adjacency construction from a :class:`~purls_pl.data.layouts.SkeletonLayout`, following ST-GCN
(Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018) and its reference ``net/utils/graph.py``:

* :func:`adjacency_matrix` — binary, symmetric ``(J, J)`` adjacency, optionally with self links;
* :func:`hop_distance` — ``(J, J)`` shortest-path hop counts (``inf`` beyond ``max_hop``);
* :func:`normalize_digraph` / :func:`normalize_undigraph` — ``A D^-1`` and ``D^-1/2 A D^-1/2``;
* :func:`build_adjacency` — the ``(K, J, J)`` partitioned adjacency for the ``"uniform"``,
  ``"distance"`` and ``"spatial"`` strategies. ``"spatial"`` splits each neighbourhood into the
  root (same hop distance to ``layout.center`` as the node), centripetal (closer to the center)
  and centrifugal (farther) subsets; the subsets sum to the normalised adjacency.

Convention (as in ST-GCN): ``A[k, v, w]`` is the weight of the message from joint ``v`` to
joint ``w``; a feature map ``x (N, C, T, V)`` is aggregated as ``einsum("nctv,vw->nctw", x, A[k])``.
:func:`normalize_digraph` makes every column sum to 1, so each joint averages its neighbours.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from purls_pl.data.layouts import SkeletonLayout, get_layout

Strategy = Literal["uniform", "distance", "spatial"]
STRATEGIES: tuple[str, ...] = ("uniform", "distance", "spatial")


def adjacency_matrix(layout: str | SkeletonLayout, self_links: bool = True) -> Tensor:
    """Binary symmetric adjacency of the skeleton.

    Args:
        layout: Layout name or instance.
        self_links: Put ones on the diagonal.

    Returns:
        ``(J, J)`` float64 tensor with ``A[i, j] = A[j, i] = 1`` for every bone ``(i, j)``.
    """
    lay = get_layout(layout)
    j = lay.num_joints
    a = torch.zeros(j, j, dtype=torch.float64)
    for u, v in lay.edges:
        a[u, v] = 1.0
        a[v, u] = 1.0
    if self_links:
        a.fill_diagonal_(1.0)
    return a


def hop_distance(layout: str | SkeletonLayout, max_hop: int = 1) -> Tensor:
    """Shortest-path hop count between joints, up to ``max_hop``.

    Returns:
        ``(J, J)`` float64 tensor; ``0`` on the diagonal, ``d`` for joints ``d <= max_hop`` bones
        apart, ``inf`` otherwise.
    """
    a = adjacency_matrix(layout, self_links=False)
    j = a.shape[0]
    dist = torch.full((j, j), float("inf"), dtype=torch.float64)
    walk = torch.eye(j, dtype=torch.float64)  # walk[v, w] > 0: a walk of exactly d bones joins v and w
    for d in range(max_hop + 1):
        dist[(walk > 0) & torch.isinf(dist)] = float(d)
        walk = ((walk @ a) > 0).to(torch.float64)
    return dist


def normalize_digraph(a: Tensor) -> Tensor:
    """Column-normalise: ``A @ D^-1`` with ``D_ii = sum_k A[k, i]`` (zero columns stay zero).

    Args:
        a: ``(J, J)`` non-negative adjacency.

    Returns:
        ``(J, J)`` tensor whose non-empty columns sum to 1.
    """
    deg = a.sum(dim=0)
    inv = torch.where(deg > 0, 1.0 / deg.clamp_min(1e-12), torch.zeros_like(deg))
    return a * inv[None, :]


def normalize_undigraph(a: Tensor) -> Tensor:
    """Symmetric normalisation ``D^-1/2 A D^-1/2`` (zero-degree joints stay zero).

    Args:
        a: ``(J, J)`` non-negative symmetric adjacency.

    Returns:
        ``(J, J)`` symmetric tensor.
    """
    deg = a.sum(dim=0)
    inv = torch.where(deg > 0, deg.clamp_min(1e-12).rsqrt(), torch.zeros_like(deg))
    return inv[:, None] * a * inv[None, :]


def build_adjacency(
    layout: str | SkeletonLayout,
    strategy: Strategy = "spatial",
    max_hop: int = 1,
    dilation: int = 1,
    legacy_center_distance: bool = False,
) -> Tensor:
    """Partitioned, normalised adjacency as used by ST-GCN.

    Args:
        layout: Layout name or instance; ``layout.center`` roots the ``"spatial"`` partition.
        strategy: ``"uniform"`` (one subset), ``"distance"`` (one subset per hop distance) or
            ``"spatial"`` (root / centripetal / centrifugal).
        max_hop: Neighbourhood radius in bones.
        dilation: Keep every ``dilation``-th hop distance (``range(0, max_hop + 1, dilation)``).
        legacy_center_distance: Reproduce the reference st-gcn code exactly, which measures the
            distance to the center with the same ``max_hop`` cut-off (so every joint farther than
            ``max_hop`` bones from the center counts as ``inf`` and most pairs land in the root
            subset). ``False`` (default) uses the true hop distance, as the paper describes.

    Returns:
        ``(K, J, J)`` float32 tensor. ``K`` is 1 (uniform), ``len(valid_hops)`` (distance) or
        ``1 + 2 * (len(valid_hops) - 1)`` (spatial; 3 for ``max_hop=1``). The subsets always sum
        to ``normalize_digraph`` of the self-linked ``max_hop`` neighbourhood.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown graph strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    lay = get_layout(layout)
    hops = list(range(0, max_hop + 1, dilation))
    dist = hop_distance(lay, max_hop)
    j = lay.num_joints
    neighbourhood = torch.zeros(j, j, dtype=torch.float64)
    for hop in hops:
        neighbourhood[dist == hop] = 1.0
    norm = normalize_digraph(neighbourhood)

    if strategy == "uniform":
        return norm[None].float()
    if strategy == "distance":
        return torch.stack([torch.where(dist == hop, norm, torch.zeros_like(norm)) for hop in hops]).float()

    center_dist = dist if legacy_center_distance else hop_distance(lay, max_hop=j)
    to_center = center_dist[:, lay.center]  # (J,) hop distance of every joint to the center
    subsets: list[Tensor] = []
    for hop in hops:
        at_hop = dist == hop  # at_hop[v, w]: v and w are `hop` bones apart
        # st-gcn convention: a_root[v, w] if v, w equidistant from the center, a_close if v is farther
        # than w (message flows towards the center: centripetal), a_further otherwise (centrifugal).
        dv, dw = to_center[:, None], to_center[None, :]
        zero = torch.zeros_like(norm)
        root = torch.where(at_hop & (dv == dw), norm, zero)
        close = torch.where(at_hop & (dv > dw), norm, zero)
        further = torch.where(at_hop & (dv < dw), norm, zero)
        if hop == 0:
            subsets.append(root)
        else:
            subsets.extend([root + close, further])
    return torch.stack(subsets).float()
