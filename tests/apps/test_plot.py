"""The figure commands: plot-results over results files (plot-attention: tests/apps/test_recognize.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image as mpimg

from purls_pl.apps import plot


def _png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape


def test_plot_results_command(tmp_path, capsys):
    for name, unseen, top1 in (("ntu60_55_5", 5, 0.7), ("ntu60_48_12", 12, 0.5)):
        run = tmp_path / name / "version_0"
        run.mkdir(parents=True)
        names = [f"class {i}" for i in range(unseen)]
        record = {
            "test/zsl_top1": top1,
            "num_unseen_classes": unseen,
            "unseen_classes": names,
            "confusion": np.eye(unseen, dtype=int).tolist(),
            "gzsl": {"curve": {"seen": [0.8, 0.0], "unseen": [0.0, 0.6]}, "best": None, "ausuc": 0.2},
        }
        (run / "results.json").write_text(json.dumps(record))
    out = tmp_path / "figs" / "acc_vs_unseen.png"
    written = plot.plot_results_main([str(tmp_path / "ntu60_55_5"), str(tmp_path / "ntu60_48_12"), "--out", str(out)])
    assert written[0] == out and _png_shape(out) == (450, 600, 4)
    assert {p.name for p in written[1:]} == {
        "confusion_ntu60_55_5.png",
        "confusion_ntu60_48_12.png",
        "gzsl_ntu60_55_5.png",
        "gzsl_ntu60_48_12.png",
    }
    assert str(out) in capsys.readouterr().out


def test_plot_results_leaves_out_unfinished_runs(tmp_path):
    record = {
        "test/zsl_top1": 0.5,
        "num_unseen_classes": 5,
        "confusion": [[1, 0], [0, 1]],
        "unseen_classes": ["a", "b"],
    }
    for run, complete in (("ntu60_55_5", True), ("ntu60_50_10", False)):
        (tmp_path / run / "version_0").mkdir(parents=True)
        (tmp_path / run / "version_0" / "results.json").write_text(json.dumps({**record, "complete": complete}))
    written = plot.plot_results_main([str(tmp_path), "--out", str(tmp_path / "figs" / "acc.png")])
    assert sorted(p.name for p in written) == ["acc.png", "confusion_ntu60_55_5.png"]  # not the incomplete run
