"""Figures: valid PNGs of the documented size, logged to TensorBoard; the plot-results command."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image as mpimg

from purls_pl.data.layouts import get_layout
from purls_pl.eval import figures as plots
from purls_pl.text.fields import FIELDS


def _png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape


@pytest.mark.parametrize("layout", ["ntu25", "kinect20", "openpose18"])
def test_attention_figure_is_a_png_of_the_documented_size(tmp_path, layout):
    joints, frames = get_layout(layout).num_joints, 7
    attn = np.random.default_rng(0).dirichlet(np.ones(frames * joints), size=len(FIELDS))
    fig = plots.attention_figure(attn, layout, FIELDS, title="sample — true class 'x'")
    path = plots.save_figure(fig, tmp_path / "attn.png")
    # 8 panels in 2 rows of 4: (4·4) x (3.2·2 + 0.6) inches at 100 dpi.
    assert _png_shape(path) == (700, 1600, 4)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[: len(get_layout(layout).parts["head"])] == [
        get_layout(layout).joint_names[j] for j in sorted(get_layout(layout).parts["head"])
    ]


def test_attention_figure_rejects_a_wrong_grid():
    with pytest.raises(ValueError, match="does not fit"):
        plots.attention_figure(np.ones((8, 26)), "ntu25", FIELDS)
    fig = plots.attention_figure(np.ones((1, 50)) / 50, "ntu25", ("global",))  # the Global baseline: one panel
    assert len([ax for ax in fig.axes if ax.get_title() == "global"]) == 1


def test_confusion_accuracy_and_gzsl_figures(tmp_path):
    names = ["pick up with two hands", "sit down", "drink water"]
    confusion = [[3, 1, 0], [0, 4, 0], [2, 0, 2]]
    side = max(4.0, 0.4 * 3 + 2.5 + 0.08 * len(names[0]))
    path = plots.save_figure(plots.confusion_figure(confusion, names), tmp_path / "c.png")
    assert _png_shape(path) == (round(side * 100), round(side * 100), 4)
    rows = [
        {"run": "ntu60_55_5", "test/zsl_top1": 0.6, "num_unseen_classes": 5},
        {"run": "ntu60_48_12", "test/zsl_top1": 0.4, "num_unseen_classes": 12},
        {"run": "ntu60_55_5_global", "test/zsl_top1": 0.5},
    ]
    fig = plots.accuracy_vs_unseen_figure(rows)
    assert sorted(line.get_label() for line in fig.axes[0].get_lines()) == ["ntu60", "ntu60 (global)"]
    assert _png_shape(plots.save_figure(fig, tmp_path / "a.png")) == (450, 600, 4)
    assert list(fig.axes[0].get_xticks()) == [5, 12]
    for one_count in ([rows[0]], [rows[0], {**rows[0], "run": "ntu120_115_5"}]):  # a single count on the axis
        fig = plots.accuracy_vs_unseen_figure(one_count)
        fig.canvas.draw()
        ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
        assert ticks == ["5"], ticks  # not 4.96, 4.98, ...
    gzsl = {
        "curve": {"seen": [0.9, 0.5, 0.0], "unseen": [0.0, 0.4, 0.7]},
        "best": {"gamma": 0.1, "seen": 0.5, "unseen": 0.4, "h": 0.44},
        "ausuc": 0.4,
    }
    assert _png_shape(plots.save_figure(plots.gzsl_curve_figure(gzsl), tmp_path / "g.png")) == (450, 500, 4)


def test_log_figure_saves_and_sends_to_tensorboard(tmp_path):
    from pytorch_lightning.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path, name="run", version=0)
    fig = plots.confusion_figure([[1, 0], [0, 1]], ["a", "b"])
    path = plots.log_figure(fig, "test/confusion", [logger], tmp_path / "confusion.png", step=3)
    logger.experiment.flush()
    assert path.is_file() and list((tmp_path / "run" / "version_0").glob("events.out.tfevents*"))


def _drawn_texts(fig) -> list[tuple[str, object]]:
    """``(text, window bbox)`` of every non-empty text the renderer draws: titles, axis labels, tick labels
    within the axis' view (colour bars included), the legend and the figure title."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts: list[Text] = [fig._suptitle] if fig._suptitle is not None else []
    texts += [t for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            texts += [t.label1 for t in axis.get_major_ticks() if low - 1e-9 <= t.get_loc() <= high + 1e-9]
            texts += [t.label2 for t in axis.get_major_ticks() if low - 1e-9 <= t.get_loc() <= high + 1e-9]
    drawn = [t for t in texts if isinstance(t, Text) and t.get_visible() and t.get_text().strip()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in drawn]


@pytest.mark.parametrize("layout", ["ntu25", "kinect20", "openpose18"])
def test_attention_figure_labels_do_not_overlap(layout):
    joints, frames = get_layout(layout).num_joints, 7
    attn = np.random.default_rng(0).dirichlet(np.ones(frames * joints), size=len(FIELDS))
    title = "S001C001P001R001A001 — true class 'drink water' (queries: the true class's descriptions)"
    fig = plots.attention_figure(attn, layout, FIELDS, title=title)
    texts = _drawn_texts(fig)
    assert len(texts) > 8 * joints  # every joint name of every panel is drawn
    width, height = fig.canvas.get_width_height()
    clashes = [(a, b) for i, (a, box) in enumerate(texts) for b, other in texts[i + 1 :] if box.overlaps(other)]
    assert clashes == []
    outside = [a for a, box in texts if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height]
    assert outside == []


@pytest.mark.parametrize("counts", [[5], [5, 6], [5, 12, 24], [40, 60]])
def test_accuracy_vs_unseen_ticks_are_whole_class_counts(counts):
    rows = [{"run": f"ntu60_{60 - k}_{k}", "test/zsl_top1": 0.5, "num_unseen_classes": k} for k in counts]
    fig = plots.accuracy_vs_unseen_figure(rows)
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert all(low < k < high for k in counts)
