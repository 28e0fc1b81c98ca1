"""Results tables from runs: ``python -m purls_pl.apps.report lightning_logs/<split> [...]``.

Every ``fit`` writes ``<run>/version_<k>/results.json`` (zero-shot test metrics of the final
weights). This module lists every version of every run below the roots with its status
(:func:`purls_pl.eval.results.run_status`: finished, incomplete, running or killed, not tested,
fast_dev_run) and prints a Markdown table; ``--csv`` writes the same rows as CSV; ``--fields`` adds each
field's own zero-shot top-1 (``test/field_top1_<field>``: the candidates ranked by that field alone) and
their mean; ``--per-class`` adds each unseen class's top-1, averaged over the finished runs of each group
(the first folder of a run's path below the root: a table row, whose runs are its seeds). Aggregates (the
field means, the per-class means, the plots) use finished runs only, the newest version of each.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Iterator, Sequence
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
from purls_pl.eval.results import FINISHED, INCOMPLETE, run_status
from purls_pl.storage import is_stale
from purls_pl.text.fields import FIELDS

COLUMNS = (TEST_TOP1, TEST_TOP5, TEST_MEAN_CLASS)
HEADERS = ("top-1 %", "top-5 %", "mean class %")
#: A PURLS run's saved config has the zero-shot evaluation's section (stage-1 runs have none).
_ZERO_SHOT_RUN = re.compile(r"^zero_shot:", re.MULTILINE)
#: Statuses whose rows carry measured test metrics.
_MEASURED = (FINISHED, INCOMPLETE)


def _version(directory: Path) -> int | None:
    match = re.fullmatch(r"version_(\d+)", directory.name)
    return int(match[1]) if match else None


def _is_run(directory: Path) -> bool:
    """Whether a ``version_<k>`` folder is a PURLS run: it has results, or a PURLS config."""
    if (directory / RESULTS_FILE).is_file():
        return True
    config = directory / "config.yaml"
    return config.is_file() and bool(_ZERO_SHOT_RUN.search(config.read_text(errors="replace")))


def _run_directories(root: Path) -> Iterator[Path]:
    """Every run directory below ``root``: ``version_<k>`` folders of PURLS runs, and folders holding a
    ``results.json`` outside one (``fast_dev_run``, ``logger=False``); moved-aside ones left out."""
    found = {p for p in root.rglob("version_*") if p.is_dir() and _version(p) is not None and _is_run(p)}
    found |= {p.parent for p in root.rglob(RESULTS_FILE) if _version(p.parent) is None}
    for directory in sorted(found):
        if not is_stale(directory.relative_to(root)):
            yield directory


def collect(roots: Sequence[str | Path]) -> list[dict[str, object]]:
    """One row per run version below ``roots``: ``run`` (its path below the root, or the root's name),
    ``version`` (``k``, or ``None`` outside a ``version_<k>`` folder), ``status``, ``path`` and the
    ``results.json`` record. Runs that a newer request moved aside (:func:`~purls_pl.storage.move_aside`)
    (``*.stale-*``) and empty version folders are left out."""
    rows = []
    for root in map(Path, roots):
        if not root.exists():
            raise FileNotFoundError(f"{root}: does not exist, no runs to report; train first: make train SPLIT=...")
        for directory in _run_directories(root):
            version = _version(directory)
            run = directory.parent if version is not None else directory
            name = str(run.relative_to(root)) if run != root and run.is_relative_to(root) else run.name
            status, record = run_status(directory)
            path = directory / RESULTS_FILE if record else directory
            rows.append({"run": name, "version": version, "status": status, "path": str(path), **record})
    return sorted(rows, key=lambda r: (str(r["run"]), -1 if r["version"] is None else int(r["version"])))


def finished(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The rows to aggregate: finished runs only, the newest finished version of each run."""
    newest: dict[object, dict[str, object]] = {}
    for row in rows:
        if row["status"] == FINISHED:
            newest[row["run"]] = row  # rows are sorted by version
    return list(newest.values())


def _gzsl_h(row: dict[str, object]) -> str:
    gzsl = row.get("gzsl")
    h = gzsl.get("h") if isinstance(gzsl, dict) else None
    return f"{100 * float(h):.2f}" if h is not None else "–"


def markdown(rows: Sequence[dict[str, object]]) -> str:
    """The rows as a Markdown table of percentages (GZSL H at calibration γ of the run, when recorded; no top-5
    with 5 or fewer candidates), each with its version and status; only finished and incomplete runs show
    metrics, an incomplete one's status in bold."""
    header = "| run | " + " | ".join(HEADERS) + " | GZSL H % | epochs | version | status |"
    lines = [header, "|---|" + "---:|" * (len(HEADERS) + 3) + "---|"]
    for row in rows:
        top5 = "num_unseen_classes" not in row or reports_top5(int(row["num_unseen_classes"]))
        measured = row.get("status", FINISHED) in _MEASURED
        values = [
            f"{100 * float(row[c]):.2f}" if measured and c in row and (top5 or c != TEST_TOP5) else "–" for c in COLUMNS
        ]
        gzsl, epoch = (_gzsl_h(row), row.get("epoch", "–")) if measured else ("–", "–")
        version = "–" if row.get("version") is None else row["version"]
        status = row.get("status", FINISHED)
        status = status if status == FINISHED else f"**{status}**"
        lines.append(f"| {row['run']} | " + " | ".join(values) + f" | {gzsl} | {epoch} | {version} | {status} |")
    return "\n".join(lines)


def field_markdown(rows: Sequence[dict[str, object]]) -> str:
    """Each field's own top-1 % per finished run (``test/field_top1_<field>``; :func:`finished`) and the mean
    over the runs that have it."""
    rows = finished(rows)
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


def _group(run: object) -> str:
    return str(run).split("/", 1)[0]


def per_class_markdown(rows: Sequence[dict[str, object]]) -> str:
    """Each unseen class's top-1 % (``per_class`` of ``results.json``), the mean over the finished runs of each
    group (:func:`_group`; ``n`` runs), one row per group in first-seen order; ``–`` where a group's runs do
    not test the class."""
    groups: dict[str, list[dict[str, float]]] = {}
    classes: list[str] = []
    for row in finished(rows):
        per_class = row.get("per_class")
        if not isinstance(per_class, dict):
            continue
        groups.setdefault(_group(row["run"]), []).append({str(k): float(v) for k, v in per_class.items()})
        classes.extend(c for c in map(str, per_class) if c not in classes)
    lines = ["| run | n | " + " | ".join(classes) + " |", "|---|---:|" + "---:|" * len(classes)]
    for name, runs in groups.items():
        cells = []
        for c in classes:
            values = [r[c] for r in runs if c in r]
            cells.append(f"{100 * sum(values) / len(values):.1f}" if values else "–")
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", help="run directories, e.g. lightning_logs/demo_15_5")
    parser.add_argument("--csv", help="also write the rows to this CSV file")
    parser.add_argument("--fields", action="store_true", help="also each field's own top-1 (ranked by that field)")
    parser.add_argument(
        "--per-class", action="store_true", help="also each unseen class's top-1, averaged over each group's runs"
    )
    args = parser.parse_args(argv)
    rows = collect(args.roots)
    if not rows:
        raise FileNotFoundError(f"{', '.join(args.roots)}: no runs found; train first: make train SPLIT=...")
    unseen = next((row["num_unseen_classes"] for row in rows if "num_unseen_classes" in row), "?")
    print(f"\nZero-shot accuracy on the {unseen} unseen classes (final weights):\n")
    print(markdown(rows))
    unfinished = sum(row["status"] != FINISHED for row in rows)
    if unfinished:
        print(f"\n{unfinished} of {len(rows)} runs are not finished (see status): aggregates leave them out.")
    if args.fields:
        print("\nEach field's own top-1 % (the unseen candidates ranked by that field alone):\n")
        print(field_markdown(rows))
    if args.per_class:
        print("\nEach unseen class's top-1 % (mean over the finished runs of each group; n runs):\n")
        print(per_class_markdown(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            fieldnames = ["run", *COLUMNS, "epoch", "path", "version", "status"]
            writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":  # pragma: no cover
    main()
