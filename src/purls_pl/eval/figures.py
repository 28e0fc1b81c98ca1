"""Figures: attention maps of the adaptive partitioner, confusion matrices, accuracy vs. unseen classes,
the GZSL seen/unseen curve (the commands that draw them from files are in :mod:`purls_pl.apps.plot`).

matplotlib is imported lazily (only here) and drawn with the Agg canvas directly (no pyplot state,
no display needed). Every figure has a fixed size (``figsize`` inches x ``DPI``), is saved as PNG by
:func:`save_figure` and, with :func:`log_figure`, also sent to the active loggers (TensorBoard
``add_figure``, W&B ``log_image``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from purls_pl.data.layouts import BODY_PARTS, SkeletonLayout, get_layout
from purls_pl.eval.metrics import TEST_TOP1
from purls_pl.text.fields import PHASE_FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 100
PART_COLORS: dict[str, str] = {"head": "tab:red", "hands": "tab:blue", "torso": "tab:green", "legs": "tab:purple"}


def new_figure(width: float, height: float, layout: str | None = None) -> Figure:
    """A ``width x height`` inch figure on an Agg canvas (``DPI`` dots per inch); ``layout="constrained"``
    places panels, colour bars, labels and an ``outside`` legend so that no text overlaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG (exactly ``figsize x DPI`` pixels) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def log_figure(fig: Figure, tag: str, loggers: Iterable[Any], path: str | Path, step: int = 0) -> Path:
    """Save ``fig`` to ``path`` and log it to every TensorBoard / W&B logger in ``loggers``."""
    path = save_figure(fig, path)
    for logger in loggers:
        kind = type(logger).__name__
        try:
            if kind == "TensorBoardLogger":
                logger.experiment.add_figure(tag, fig, global_step=step, close=False)
            elif kind == "WandbLogger":
                logger.log_image(key=tag, images=[str(path)], step=None)
        except Exception as err:  # a figure must never fail a run
            log.warning("could not log figure %s to %s: %s", tag, kind, err)
    return path


# ------------------------------------------------------------------ attention maps
def joint_order(layout: SkeletonLayout) -> list[int]:
    """Joint indices grouped by body part (head, hands, torso, legs), in index order within a part."""
    return [j for part in BODY_PARTS for j in sorted(layout.parts[part])]


def attention_figure(
    attn: Any, layout: str | SkeletonLayout, fields: Sequence[str], title: str = "", cols: int = 4
) -> Figure:
    """The node weights of each description as a frame x joint heatmap (paper supp. Figures 1-4).

    Args:
        attn: ``(D, S)`` weights over ``S = L'·J`` time-major nodes, one row per field.
        layout: The node grid's layout: x = its joints grouped and coloured by body part.
        fields: The D field names (``head`` ... ``global``), one panel each.
        title: Figure title.
        cols: Panels per row.

    Returns:
        A ``(4·cols) x (3.2·rows + 0.6)`` inch figure; y = the L' frames, split into thirds
        (start / middle / end, as the static partitioner splits them). Each panel has its own colour
        scale (min to max of that field's weights; the colour bar gives the values). The constrained
        layout keeps every label clear of the others (colour bars, the next panel, the legend below).
    """
    from matplotlib.ticker import MaxNLocator

    lay = get_layout(layout)
    weights = np.asarray(attn, dtype=np.float32)
    d, s = weights.shape
    j = lay.num_joints
    if s % j or d != len(fields):
        raise ValueError(f"attention {weights.shape} does not fit {len(fields)} fields x L' frames x {j} joints")
    frames = s // j
    order = joint_order(lay)
    grid = weights.reshape(d, frames, j)[:, :, order]
    cols = min(cols, d)
    rows = math.ceil(d / cols)
    fig = new_figure(4.0 * cols, 3.2 * rows + 0.6, layout="constrained")
    bounds = [len(c) for c in np.array_split(np.arange(frames), len(PHASE_FIELDS))]
    edges = np.cumsum(bounds)[:-1] - 0.5
    centers = np.cumsum(bounds) - np.asarray(bounds) / 2 - 0.5
    part_edges = np.cumsum([len(lay.parts[p]) for p in BODY_PARTS])[:-1] - 0.5
    for k, field in enumerate(fields):
        ax = fig.add_subplot(rows, cols, k + 1)
        im = ax.imshow(grid[k], aspect="auto", cmap="viridis", interpolation="nearest")  # own scale per panel
        ax.set_title(field, fontsize=10)
        ax.set_xticks(range(j))
        ax.set_xticklabels([lay.joint_names[i] for i in order], rotation=90, fontsize=5)
        for tick, joint in zip(ax.get_xticklabels(), order):
            tick.set_color(PART_COLORS[lay.part_of(joint)])
        for x in part_edges:
            ax.axvline(x, color="white", lw=0.8)
        for y in edges:
            ax.axhline(y, color="white", lw=0.8, ls="--")
        ax.set_yticks(centers)
        ax.set_yticklabels(PHASE_FIELDS if frames >= len(PHASE_FIELDS) else [""] * len(centers), fontsize=7)
        if k % cols == 0:
            ax.set_ylabel(f"frames (L' = {frames})", fontsize=7)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=6)
        bar.locator = MaxNLocator(nbins=4)  # few values: the bar's labels stay apart
        bar.update_ticks()
    handles = [_patch(PART_COLORS[p], p) for p in BODY_PARTS]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(BODY_PARTS), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig


def _patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


# ------------------------------------------------------------------ results
def confusion_figure(confusion: Any, class_names: Sequence[str], title: str = "") -> Figure:
    """Row-normalised confusion matrix (rows = true class, columns = predicted), counts annotated.

    Args:
        confusion: ``(K, K)`` counts.
        class_names: The K names.

    Returns:
        A square figure of ``max(4, 0.4·K + 2.5 + 0.08·longest name)`` inches (at most 30).
    """
    counts = np.asarray(confusion, dtype=np.float64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion {counts.shape} does not match {k} class names")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    longest = max((len(str(n)) for n in class_names), default=0)
    side = min(30.0, max(4.0, 0.4 * k + 2.5 + 0.08 * min(longest, 40)))
    fig = new_figure(side, side)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    size = max(4, min(9, 200 // max(k, 1)))
    ax.set_xticklabels(class_names, rotation=90, fontsize=size)
    ax.set_yticklabels(class_names, fontsize=size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for r in range(k):
            for c in range(k):
                if counts[r, c]:
                    color = "white" if rates[r, c] > 0.5 else "black"
                    ax.text(c, r, f"{int(counts[r, c])}", ha="center", va="center", fontsize=size, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    acc = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(title or f"unseen classes: top-1 {100 * acc:.1f}%", fontsize=10)
    fig.tight_layout()
    return fig


def gzsl_curve_figure(gzsl: dict[str, Any], title: str = "") -> Figure:
    """Seen vs. unseen accuracy along the calibrated-stacking curve, with the point at the run's γ (the one
    chosen on validation classes, not on these samples) marked (5 x 4.5 in)."""
    fig = new_figure(5.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    curve = gzsl.get("curve", gzsl)
    ax.plot(100 * np.asarray(curve["unseen"]), 100 * np.asarray(curve["seen"]), "-", color="tab:blue")
    if gzsl.get("seen") is not None and gzsl.get("unseen") is not None and gzsl.get("h") is not None:
        point = (100 * gzsl["unseen"], 100 * gzsl["seen"])
        ax.plot([point[0]], [point[1]], "o", color="tab:red")
        ax.annotate(f"H {100 * gzsl['h']:.1f} at γ={gzsl.get('gamma', 0.0):.3f}", point)
    ax.set_xlabel("unseen-class accuracy %")
    ax.set_ylabel("seen-class accuracy %")
    ausuc = gzsl.get("ausuc")
    ax.set_title(title or (f"GZSL, AUSUC {100 * ausuc:.2f}" if ausuc is not None else "GZSL"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


_RUN = re.compile(r"^(?P<dataset>.+?)_(?P<seen>\d+)_(?P<unseen>\d+)(?:_(?P<variant>.+))?$")


def accuracy_vs_unseen_figure(rows: Sequence[dict[str, Any]], metric: str = TEST_TOP1) -> Figure:
    """Accuracy against the number of unseen classes, one line per dataset (and run variant).

    Args:
        rows: :func:`purls_pl.apps.report.collect` rows (results.json plus ``run``); a run named
            ``<dataset>_<seen>_<unseen>[_<variant>]`` (e.g. ``ntu60_55_5``, ``ntu60_55_5_global``).
        metric: The results key on the y axis.

    Returns:
        A 6 x 4.5 inch figure; the x axis counts classes, so its ticks are whole numbers.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        name = Path(str(row["run"])).name
        match = _RUN.match(name)
        unseen = row.get("num_unseen_classes") or (int(match["unseen"]) if match else None)
        if metric not in row or unseen is None:
            continue
        label = match["dataset"] if match else name
        if match and match["variant"]:
            label += f" ({match['variant']})"
        series.setdefault(label, []).append((int(unseen), 100 * float(row[metric])))
    fig = new_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label)
    counts = sorted({p[0] for points in series.values() for p in points})
    if 0 < len(counts) <= 12:  # a tick at every count measured, none between (a class count is whole)
        ax.set_xticks(counts)
        ax.set_xlim(
            counts[0] - 0.5 - 0.05 * (counts[-1] - counts[0]), counts[-1] + 0.5 + 0.05 * (counts[-1] - counts[0])
        )
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of unseen classes")
    ax.set_ylabel(f"{metric} %")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
