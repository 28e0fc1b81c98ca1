"""The table report's paired differences to a reference row, on made-up run records."""

import csv

import pytest

from purls_pl.apps.table_report import aggregate, summary
from purls_pl.apps.table_spec import Row, TableSpec

#: top-1 per (row, seed) on demo_15_5; B beats A by 2, 4, 6 points on seeds 0, 1, 2.
TOP1 = {"A": [0.50, 0.60, 0.40], "B": [0.52, 0.64, 0.46], "C": [0.50]}


def _records() -> list[dict]:
    return [
        {
            "split": "demo_15_5",
            "row": row,
            "seed": seed,
            "test/zsl_top1": value,
            "test/zsl_mean_class": value,
            "num_unseen_classes": 5,
            "num_test_samples": 240,
            "seconds": 1.0,
        }
        for row, values in TOP1.items()
        for seed, value in enumerate(values)
    ]


def test_every_row_gets_its_paired_difference_to_the_reference(tmp_path):
    spec = TableSpec("demo", ["demo_15_5"], [0, 1, 2], [Row("A"), Row("B"), Row("C")], reference="A")
    markdown, rows = aggregate(spec, spec.resolve(), _records(), tmp_path)
    assert "Paired difference to *A*" in summary(markdown)  # the README shows it beside the means
    assert "| B | +4.00 [-1.0, +9.0] (n=3) |" in markdown and "| C | +0.00 (n=1) |" in markdown
    assert "| A | +" not in markdown  # the reference has no row of its own there
    b = next(r for r in rows if r["row"] == "B")
    assert (b["diff_mean"], b["diff_pairs"]) == (4.0, 3) and b["diff_ci_low"] == pytest.approx(-0.968, abs=1e-3)
    written = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [r["diff_mean"] for r in written] == ["", "4.0", "0.0"]


def test_without_a_reference_the_report_is_as_before(tmp_path):
    spec = TableSpec("demo", ["demo_15_5"], [0, 1, 2], [Row("A"), Row("B"), Row("C")])
    markdown, rows = aggregate(spec, spec.resolve(), _records(), tmp_path)
    assert "Paired difference" not in markdown and all("diff_mean" not in r for r in rows)


def test_a_reference_that_is_not_a_row_is_refused(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nsplits: [demo_15_5]\nseeds: [0]\nreference: Z\nrows: [{name: A}]\n")
    with pytest.raises(ValueError, match=r"reference 'Z' is not a row; name one of \['A'\]"):
        TableSpec.load(path)
