"""Figures of the text report (:mod:`purls_pl.apps.text_report`): a class x class similarity heatmap per
field, a per-field separability bar chart, and the comparison of several description sets / towers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from purls_pl.eval.figures import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Groups of the separability chart: report key -> legend text.
GROUPS: dict[str, str] = {"all": "all classes", "unseen": "unseen among themselves", "unseen_vs_seen": "unseen vs seen"}


def similarity_figure(sim: np.ndarray, class_names: Sequence[str], field: str, unseen: Sequence[str] = ()) -> Figure:
    """Heatmap of one field's ``(K, K)`` cosine similarities; unseen class names in red.

    Args:
        sim: ``(K, K)`` similarities.
        class_names: ``K`` labels (tick labels).
        field: Field name (title).
        unseen: Labels of the unseen classes (highlighted).
    """
    k = len(class_names)
    size = min(4.0 + 0.28 * k, 24.0)
    fig = new_figure(size + 1.2, size)
    ax = fig.add_subplot(1, 1, 1)
    off = sim[~np.eye(k, dtype=bool)] if k > 1 else np.array([0.0])
    im = ax.imshow(sim, cmap="magma", vmin=float(off.min()), vmax=1.0, interpolation="nearest")
    font = 8 if k <= 30 else 5
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(class_names, rotation=90, fontsize=font)
    ax.set_yticklabels(class_names, fontsize=font)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for tick in ticks:
            if tick.get_text() in set(unseen):
                tick.set_color("tab:red")
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if i != j:
                    ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=6, color="white")
    ax.set_title(f"{field}: cosine similarity between classes" + (" (unseen in red)" if unseen else ""))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return fig


def separability_figure(report: Mapping[str, Any], title: str = "") -> Figure:
    """Per field: relative margin of each group (left) and label retrieval top-1 (right).

    Args:
        report: A report of :func:`purls_pl.text.analysis.analyse_text`.
        title: Figure title.
    """
    fields = list(report["fields"])
    per_field = report["per_field"]
    groups = [g for g in GROUPS if g in per_field[fields[0]]]
    fig = new_figure(12.0, 4.5)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = np.arange(len(fields))
    width = 0.8 / len(groups)
    for n, group in enumerate(groups):
        values = [per_field[f][group]["relative_margin"] for f in fields]
        left.bar(x + (n - (len(groups) - 1) / 2) * width, values, width, label=GROUPS[group])
    left.set_ylabel("relative margin (nearest / mean distance)")
    left.set_title("separability per field (higher = more separable)")
    label_keys = [k for k in ("label", "label_unseen") if k in per_field[fields[0]]]
    for n, key in enumerate(label_keys):
        values = [per_field[f][key]["top1"] for f in fields]
        right.bar(x + (n - (len(label_keys) - 1) / 2) * 0.4, values, 0.4, label=key.replace("_", " "))
    right.set_ylim(0, 1.05)
    right.set_ylabel("label retrieval top-1")
    right.set_title("label information kept per field")
    for ax in (left, right):
        ax.set_xticks(x)
        ax.set_xticklabels(fields, rotation=30)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def comparison_figure(reports: Mapping[str, Mapping[str, Any]], group: str = "all") -> Figure:
    """Relative margin per field of several reports (one bar per report).

    Args:
        reports: Name -> report.
        group: ``all``, ``unseen`` or ``unseen_vs_seen``.
    """
    names = list(reports)
    fields = list(next(iter(reports.values()))["fields"])
    fig = new_figure(max(8.0, 1.2 * len(fields) + 0.4 * len(names)), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(fields))
    width = 0.8 / len(names)
    for n, name in enumerate(names):
        values = [reports[name]["per_field"][f].get(group, {}).get("relative_margin", np.nan) for f in fields]
        ax.bar(x + (n - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(fields, rotation=30)
    ax.set_ylabel("relative margin")
    ax.set_title(f"separability per field ({GROUPS.get(group, group)})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
