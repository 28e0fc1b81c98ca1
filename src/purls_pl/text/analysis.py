"""Text diagnostics: how separable the classes' description embeddings are, field by field.

Everything works on unit embeddings and cosine similarity ``s_ij`` between classes ``i`` and ``j``
of one field (no model, no Lightning). With one vector per class a nearest-centroid accuracy is
trivially 100%, so separability is measured by margins:

* **margin** of class ``i``: ``1 - max_{j != i} s_ij``, the cosine distance to its nearest other
  class (0: another class has the same embedding);
* **relative margin** of class ``i``: ``(1 - max_j s_ij) / (1 - mean_j s_ij)``, the nearest distance
  as a share of the average distance. It does not change when a tower squeezes all similarities
  towards 1 (``s -> 1 - c (1 - s)``), so it compares towers; 0 = a duplicate, 1 = the nearest class
  is as far as the average one (always 1 in a group of two classes: read the margin there);
* **close pairs**: the share of class pairs with ``s_ij >= close``;
* **near duplicates**: classes whose text is identical (after case/spacing/full-stop clean-up) or
  whose embedding has ``s_ij >= duplicate`` with another class;
* **label information**: the similarity of each class's field embedding with its own label's
  embedding, the gap to the other labels, and the label retrieval top-1 (the share of classes whose
  field embedding is closest to their own label among the candidate labels).

Groups: ``all`` (every class), ``unseen`` (the unseen classes among themselves: zero-shot inference
only ranks these) and ``unseen_vs_seen`` (each unseen class against the seen ones; the margin is the
distance to the nearest seen class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

#: Default similarity at which two classes count as a close pair.
CLOSE: float = 0.8
#: Default similarity at which two classes' texts count as near duplicates.
DUPLICATE: float = 0.95


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` cosine similarities of the rows of ``x`` (``(K, m)``; normalised here)."""
    x = F.normalize(x.double(), dim=-1)
    return (x @ x.T).clamp(-1.0, 1.0)


def _block(sim: torch.Tensor, rows: Sequence[int], cols: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``rows x cols`` block and a mask of its valid entries (a class is never its own neighbour)."""
    r, c = torch.as_tensor(list(rows)), torch.as_tensor(list(cols))
    return sim[r][:, c], r[:, None] != c[None, :]


def group_stats(
    sim: torch.Tensor, rows: Sequence[int], cols: Sequence[int] | None = None, close: float = CLOSE
) -> dict[str, float]:
    """Similarity structure of ``rows`` against ``cols`` (default: ``rows`` among themselves).

    Args:
        sim: ``(K, K)`` cosine similarities.
        rows: Class indices whose margins are measured.
        cols: Classes they are compared with (self-pairs are skipped).
        close: Similarity from which a pair counts as close.

    Returns:
        ``classes``, ``pairs``, ``mean_similarity``, ``max_similarity``, ``mean_margin``,
        ``min_margin``, ``relative_margin`` (mean over rows) and ``close_pair_fraction``; NaN
        values where there is no pair.
    """
    cols = rows if cols is None else cols
    block, valid = _block(sim, rows, cols)
    within = set(rows) == set(cols)
    pair_mask = valid & (torch.triu(torch.ones_like(valid), diagonal=1) if within else valid)
    nan = float("nan")
    if not bool(valid.any()):
        keys = ("mean_similarity", "max_similarity", "mean_margin", "min_margin", "relative_margin")
        return {"classes": len(rows), "pairs": 0, **dict.fromkeys(keys, nan), "close_pair_fraction": nan}
    pairs = block[pair_mask]
    has = valid.any(dim=1)
    nearest = block.masked_fill(~valid, -2.0).max(dim=1).values[has]
    mean_other = (block * valid).sum(1)[has] / valid.sum(1)[has]
    margin = 1.0 - nearest
    relative = torch.where(1.0 - mean_other > 1e-9, margin / (1.0 - mean_other).clamp_min(1e-9), 0.0)
    return {
        "classes": len(rows),
        "pairs": int(pairs.numel()),
        "mean_similarity": float(pairs.mean()),
        "max_similarity": float(pairs.max()),
        "mean_margin": float(margin.mean()),
        "min_margin": float(margin.min()),
        "relative_margin": float(relative.mean()),
        "close_pair_fraction": float((pairs >= close).double().mean()),
    }


def confusable_pairs(
    sim: torch.Tensor,
    class_names: Sequence[str],
    rows: Sequence[int],
    cols: Sequence[int] | None = None,
    top: int = 5,
) -> list[dict[str, Any]]:
    """The ``top`` most similar class pairs (``rows`` x ``cols``, unordered within one group).

    Args:
        sim: ``(K, K)`` cosine similarities.
        class_names: ``K`` labels.
        rows: First classes of the pairs.
        cols: Second classes (default: ``rows``).
        top: Pairs returned.

    Returns:
        ``[{"a", "b", "similarity"}]``, most similar first.
    """
    cols = rows if cols is None else cols
    seen: set[frozenset[int]] = set()
    found = []
    for i in rows:
        for j in cols:
            if i == j or frozenset((i, j)) in seen:
                continue
            seen.add(frozenset((i, j)))
            found.append((float(sim[i, j]), i, j))
    found.sort(key=lambda t: -t[0])
    return [{"a": class_names[i], "b": class_names[j], "similarity": s} for s, i, j in found[:top]]


def _clean(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(" ".join(t.lower().rstrip(".").split()) for t in texts)


def duplicate_classes(
    texts: Sequence[Sequence[str]], sim: torch.Tensor, class_names: Sequence[str], duplicate: float = DUPLICATE
) -> dict[str, Any]:
    """Classes whose text of one field is identical or nearly identical to another class's.

    Args:
        texts: Per class, the field's answers (compared after lower-casing, collapsing spaces and
            dropping a final full stop).
        sim: ``(K, K)`` cosine similarities of the field's embeddings.
        class_names: ``K`` labels.
        duplicate: Similarity from which two classes are near duplicates.

    Returns:
        ``identical`` (classes with a text-identical twin), ``near`` (classes with a twin at
        ``s >= duplicate``, identical ones included) and ``groups`` (label lists of connected
        near-duplicate classes, largest first).
    """
    k = len(class_names)
    cleaned = [_clean(t) for t in texts]
    same = {(i, j) for i in range(k) for j in range(i + 1, k) if cleaned[i] == cleaned[j]}
    edges = same | {(i, j) for i in range(k) for j in range(i + 1, k) if float(sim[i, j]) >= duplicate}
    parent = list(range(k))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in {i for e in edges for i in e}:
        groups.setdefault(root(i), []).append(i)
    listed = sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))
    return {
        "identical": len({i for e in same for i in e}),
        "near": len({i for e in edges for i in e}),
        "groups": [[class_names[i] for i in g] for g in listed],
    }


def label_agreement(
    field: torch.Tensor, labels: torch.Tensor, candidates: Sequence[int] | None = None
) -> dict[str, float]:
    """How much of its label a field's embedding keeps.

    Args:
        field: ``(K, m)`` one field's embeddings.
        labels: ``(K, m)`` the labels' own embeddings.
        candidates: Classes considered (default: all).

    Returns:
        ``own`` (mean similarity with the own label), ``other`` (mean with the other candidates'
        labels), ``gap`` (``own - other``) and ``top1`` (share of candidates whose nearest candidate
        label is their own).
    """
    idx = torch.as_tensor(list(range(field.shape[0]) if candidates is None else candidates))
    s = F.normalize(field[idx].double(), dim=-1) @ F.normalize(labels[idx].double(), dim=-1).T
    n = len(idx)
    own = s.diagonal()
    other = (s.sum(1) - own) / max(n - 1, 1)
    top1 = (s.argmax(dim=1) == torch.arange(n)).double().mean()
    gap = float((own - other).mean())
    return {"own": float(own.mean()), "other": float(other.mean()), "gap": gap, "top1": float(top1)}


def label_misses(
    field: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], candidates: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """The classes whose field embedding is closer to another candidate's label than to their own.

    Args:
        field: ``(K, m)`` one field's embeddings.
        labels: ``(K, m)`` the labels' own embeddings.
        class_names: ``K`` labels.
        candidates: Classes considered (default: all).

    Returns:
        ``[{"class", "nearest_label", "similarity", "own_similarity"}]`` in class order.
    """
    idx = list(range(field.shape[0]) if candidates is None else candidates)
    s = F.normalize(field[idx].double(), dim=-1) @ F.normalize(labels[idx].double(), dim=-1).T
    out = []
    for row, i in enumerate(idx):
        best = int(s[row].argmax())
        if best != row:
            out.append(
                {
                    "class": class_names[i],
                    "nearest_label": class_names[idx[best]],
                    "similarity": float(s[row, best]),
                    "own_similarity": float(s[row, row]),
                }
            )
    return out


def analyse_text(
    embeddings: torch.Tensor,
    class_names: Sequence[str],
    fields: Sequence[str],
    texts: Sequence[Mapping[str, Sequence[str]]] | None = None,
    labels: torch.Tensor | None = None,
    unseen: Sequence[int] | None = None,
    close: float = CLOSE,
    duplicate: float = DUPLICATE,
    top: int = 5,
) -> dict[str, Any]:
    """The full report of one description set under one text tower.

    Args:
        embeddings: ``(K, D, m)`` class text, ``D = len(fields)``.
        class_names: ``K`` labels.
        fields: The ``D`` field names.
        texts: Per class, ``field -> answers`` (for identical-text detection and the report).
        labels: ``(K, m)`` label embeddings (for the label-information measures).
        unseen: Unseen class indices of a split (adds the ``unseen`` and ``unseen_vs_seen`` groups).
        close: Similarity of a close pair.
        duplicate: Similarity of a near duplicate.
        top: Confusable pairs listed per field and group.

    Returns:
        Plain data: ``classes``, ``fields``, ``unseen``, ``thresholds`` and ``per_field`` (``field ->
        {"all", "unseen", "unseen_vs_seen", "confusable", "confusable_unseen", "confusable_unseen_seen",
        "duplicates", "label", "label_misses", "label_unseen", "nearest"}``).
    """
    k, d = embeddings.shape[:2]
    if len(class_names) != k or len(fields) != d:
        shape = tuple(embeddings.shape)
        raise ValueError(f"embeddings {shape} do not match {len(class_names)} classes x {len(fields)} fields")
    everyone = list(range(k))
    unseen = sorted(unseen or [])
    seen = [i for i in everyone if i not in set(unseen)]
    per_field: dict[str, Any] = {}
    for i, f in enumerate(fields):
        sim = cosine_matrix(embeddings[:, i])
        entry: dict[str, Any] = {
            "all": group_stats(sim, everyone, close=close),
            "confusable": confusable_pairs(sim, class_names, everyone, top=top),
            "nearest": {class_names[c]: _nearest(sim, c, everyone, class_names) for c in everyone},
        }
        if texts is not None:
            entry["duplicates"] = duplicate_classes([t[f] for t in texts], sim, class_names, duplicate)
        if labels is not None:
            entry["label"] = label_agreement(embeddings[:, i], labels)
            entry["label_misses"] = label_misses(embeddings[:, i], labels, class_names)
        if unseen:
            entry["unseen"] = group_stats(sim, unseen, close=close)
            entry["unseen_vs_seen"] = group_stats(sim, unseen, seen, close=close)
            entry["confusable_unseen"] = confusable_pairs(sim, class_names, unseen, top=top)
            entry["confusable_unseen_seen"] = confusable_pairs(sim, class_names, unseen, seen, top=top)
            if labels is not None:
                entry["label_unseen"] = label_agreement(embeddings[:, i], labels, unseen)
        per_field[f] = entry
    return {
        "classes": list(class_names),
        "fields": list(fields),
        "unseen": [class_names[i] for i in unseen],
        "thresholds": {"close": close, "duplicate": duplicate},
        "per_field": per_field,
    }


def _nearest(sim: torch.Tensor, c: int, among: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    others = [j for j in among if j != c]
    if not others:
        return {"class": None, "similarity": float("nan")}
    j = max(others, key=lambda o: float(sim[c, o]))
    return {"class": class_names[j], "similarity": float(sim[c, j])}
