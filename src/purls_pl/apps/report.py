"""Results tables from finished runs: ``python -m purls_pl.apps.report lightning_logs/<split> [...]``.

Every ``fit`` writes ``<run>/version_<k>/results.json`` (zero-shot test metrics of the final
weights). This module collects them — the newest version of each run directory — and prints a
Markdown table; ``--csv`` writes the same rows as CSV; ``--fields`` adds each field's own zero-shot
top-1 (``test/field_top1_<field>``: the candidates ranked by that field alone) and their mean over the runs.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

from purls_pl.eval.metrics import (
    FIELD_TOP1,
    RESULTS_FILE,
    TEST,
    TEST_MEAN_CLASS,
    TEST_TOP1,
    TEST_TOP5,
    key,
    reports_top5,
)
from purls_pl.storage import is_stale
from purls_pl.text.fields import FIELDS

COLUMNS = (TEST_TOP1, TEST_TOP5, TEST_MEAN_CLASS)
HEADERS = ("top-1 %", "top-5 %", "mean class %")


def _version(path: Path) -> int:
    name = path.parent.name
    return int(name.split("_")[-1]) if name.startswith("version_") and name.split("_")[-1].isdigit() else -1


def collect(roots: Sequence[str | Path]) -> list[dict[str, object]]:
    """One row per run directory (newest ``version_*`` with a ``results.json``), named by its path; runs
    that a newer request moved aside (:func:`~purls_pl.storage.move_aside`) (``*.stale-*``) are left out."""
    rows = []
    for root in map(Path, roots):
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist: no runs to report (train first: make train SPLIT=...)")
        latest: dict[Path, Path] = {}
        for result in root.rglob(RESULTS_FILE):
            if is_stale(result.relative_to(root)):  # a run replaced by a newer request is not reported
                continue
            run = result.parent.parent
            if run not in latest or _version(result) > _version(latest[run]):
                latest[run] = result
        for run, result in sorted(latest.items()):
            record = json.loads(result.read_text())
            rows.append({"run": str(run.relative_to(root)) if run != root else run.name, "path": str(result), **record})
    return rows


def _gzsl_h(row: dict[str, object]) -> str:
    gzsl = row.get("gzsl")
    h = gzsl.get("h") if isinstance(gzsl, dict) else None
    return f"{100 * float(h):.2f}" if h is not None else "–"


def markdown(rows: Sequence[dict[str, object]]) -> str:
    """The rows as a Markdown table of percentages (GZSL H at calibration γ of the run, when recorded; no top-5
    with 5 or fewer candidates)."""
    lines = ["| run | " + " | ".join(HEADERS) + " | GZSL H % | epochs |", "|---|" + "---:|" * (len(HEADERS) + 2)]
    for row in rows:
        top5 = "num_unseen_classes" not in row or reports_top5(int(row["num_unseen_classes"]))
        values = [f"{100 * float(row[c]):.2f}" if c in row and (top5 or c != TEST_TOP5) else "–" for c in COLUMNS]
        lines.append(f"| {row['run']} | " + " | ".join(values) + f" | {_gzsl_h(row)} | {row.get('epoch', '–')} |")
    return "\n".join(lines)


def field_markdown(rows: Sequence[dict[str, object]]) -> str:
    """Each field's own top-1 % per run (``test/field_top1_<field>``) and the mean over the runs that have it."""
    keys = [key(TEST, f"{FIELD_TOP1}_{field}") for field in FIELDS]
    lines = ["| run | " + " | ".join(FIELDS) + " |", "|---|" + "---:|" * len(FIELDS)]
    for row in rows:
        lines.append(
            f"| {row['run']} | " + " | ".join(f"{100 * float(row[k]):.2f}" if k in row else "–" for k in keys) + " |"
        )
    means = []
    for k in keys:
        values = [float(row[k]) for row in rows if k in row]
        means.append(f"{100 * sum(values) / len(values):.2f}" if values else "–")
    lines.append("| *mean* | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", help="run directories, e.g. lightning_logs/demo_15_5")
    parser.add_argument("--csv", help="also write the rows to this CSV file")
    parser.add_argument("--fields", action="store_true", help="also each field's own top-1 (ranked by that field)")
    args = parser.parse_args(argv)
    rows = collect(args.roots)
    if not rows:
        raise SystemExit(f"no results.json under {', '.join(args.roots)}")
    unseen = rows[0].get("num_unseen_classes")
    print(f"\nZero-shot accuracy on the {unseen} unseen classes (final weights):\n")
    print(markdown(rows))
    if args.fields:
        print("\nEach field's own top-1 % (the unseen candidates ranked by that field alone):\n")
        print(field_markdown(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["run", *COLUMNS, "epoch", "path"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":  # pragma: no cover
    main()
