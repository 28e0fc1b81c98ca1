"""The aggregate of a table's runs: ``table.md`` and ``table.csv`` (see :mod:`purls_pl.apps.table`).

Columns are the paper splits, each alone, and for a split with random class folds a group "``K`` unseen:
the paper split + ``N`` random folds" averaging all of them. A cell is the mean ± standard deviation of
top-1 over its runs (seeds, and folds) with a 95% bootstrap interval over test samples
(:mod:`purls_pl.eval.stats`); the chance level and the number of test samples head each column, the
per-run values follow in their own table, and mean-class accuracy (and top-5, when a column has more
than 5 candidates) in the CSV. With a ``reference`` row in the spec, a second table gives every other
row's paired difference to it: the mean per-run difference of top-1 (runs paired by split and seed) with
a 95% t-interval over runs (:func:`~purls_pl.eval.stats.paired_difference`), which compares rows despite
the wide spread of each cell over folds. Numbers from papers are never put beside these: their setups differ, and
the spec's ``note`` says how.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.apps.table_spec import SplitUnit, TableSpec
from purls_pl.eval.metrics import TEST_MEAN_CLASS, TEST_TOP1, TEST_TOP5, reports_top5
from purls_pl.eval.stats import bootstrap_interval, mean_std, paired_difference

#: Heads the per-run listing that follows the table of means (the README shows the means only).
PER_RUN_HEADING = "Per run (top-1 %):"


def columns(units: Sequence[SplitUnit]) -> list[tuple[str, list[str]]]:
    """``(heading, member splits)``: every paper split, then its fold group (paper split + folds)."""
    papers = [u.split for u in units if u.fold_of is None]
    out = [(p.name, [p.name]) for p in papers]
    for paper in papers:
        folds = [u.split.name for u in units if u.fold_of == paper]
        if folds:
            out.append((f"{len(paper.unseen)} unseen: {paper.name} + {len(folds)} random folds", [paper.name, *folds]))
    return out


def _hits(record: dict[str, Any]) -> np.ndarray:
    samples = record["samples"]
    return np.asarray(samples["label"]) == np.asarray(samples["prediction"])


def cell(records: list[dict[str, Any]], metric: str = TEST_TOP1) -> dict[str, Any]:
    """Mean, std, bootstrap interval (top-1) and per-run values of ``metric`` over ``records``."""
    values = [100 * r[metric] for r in records]
    mean, std = mean_std(values)
    out: dict[str, Any] = {"mean": mean, "std": std, "values": values, "runs": len(records)}
    if metric == TEST_TOP1 and all("samples" in r for r in records):
        low, high = bootstrap_interval([(r["split"], _hits(r)) for r in records])
        out["ci"] = (100 * low, 100 * high)
    return out


def aggregate(
    spec: TableSpec, units: Sequence[SplitUnit], records: list[dict[str, Any]], out: str | Path
) -> tuple[str, list[dict[str, Any]]]:
    """Write ``table.md`` / ``table.csv`` under ``out``; return the Markdown and the CSV rows.

    Args:
        spec: The table spec (its name, seeds, rows and note).
        units: Its splits, resolved (:meth:`TableSpec.resolve`): the columns.
        records: One per run (:func:`purls_pl.apps.table.collect_records`).
        out: Where the table files go.
    """
    cols = columns(units)
    by_split: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_split.setdefault(r["split"], []).append(r)
    chance, counts = column_heads(cols, by_split)
    lines = [_title(spec), "", "| row | " + " | ".join(h for h, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    lines.append("| *chance level* | " + " | ".join(chance) + " |")
    lines.append("| *test samples* | " + " | ".join(counts) + " |")
    rows_csv: list[dict[str, Any]] = []
    for row in spec.rows:
        cells = []
        for (heading, members), k, n in zip(cols, chance, counts, strict=True):
            mine = [r for s in members for r in by_split.get(s, []) if r["row"] == row.name]
            if not mine:
                cells.append("–")
                continue
            top1 = cell(mine)
            cells.append(_cell_text(top1))
            rows_csv.append(_csv_row(heading, row.name, mine, top1, k, n))
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    if spec.reference is not None:
        lines += paired_lines(spec, cols, by_split, rows_csv)
    lines += _timing(records)
    if spec.note:
        lines += ["", spec.note.strip()]
    markdown = "\n".join(lines + _per_run(spec, records)) + "\n"
    _write(Path(out), markdown, rows_csv)
    return markdown, rows_csv


def paired(mine: list[dict[str, Any]], reference: list[dict[str, Any]]) -> tuple[float, float, float, int] | None:
    """Top-1 points of runs ``mine`` minus the ``reference`` row's, paired by (split, seed): the mean
    difference, its 95% interval over runs and the number of pairs (``None`` without a pair)."""
    ref = {(r["split"], r["seed"]): 100 * r[TEST_TOP1] for r in reference}
    pairs = [(100 * r[TEST_TOP1], ref[(r["split"], r["seed"])]) for r in mine if (r["split"], r["seed"]) in ref]
    if not pairs:
        return None
    mean, low, high = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
    return mean, low, high, len(pairs)


def paired_lines(
    spec: TableSpec,
    cols: Sequence[tuple[str, list[str]]],
    by_split: dict[str, list[dict[str, Any]]],
    rows_csv: list[dict[str, Any]],
) -> list[str]:
    """The table of paired differences to ``spec.reference`` (each cell: mean [95% t-interval] over the
    ``n`` paired runs), adding ``diff_*`` fields to the cells' CSV rows."""
    lines = [
        "",
        f"Paired difference to *{spec.reference}* (top-1 points; runs paired by split and seed; "
        "mean [95% t-interval over runs], n pairs):",
        "",
        "| row | " + " | ".join(h for h, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    csv_rows = {(c["column"], c["row"]): c for c in rows_csv}
    for row in spec.rows:
        if row.name == spec.reference:
            continue
        cells = []
        for heading, members in cols:
            runs = [r for s in members for r in by_split.get(s, [])]
            diff = paired([r for r in runs if r["row"] == row.name], [r for r in runs if r["row"] == spec.reference])
            if diff is None:
                cells.append("–")
                continue
            mean, low, high, n = diff
            interval = f" [{low:+.1f}, {high:+.1f}]" if np.isfinite(low) else ""
            cells.append(f"{mean:+.2f}{interval} (n={n})")
            if (heading, row.name) in csv_rows:
                csv_rows[(heading, row.name)].update(
                    diff_mean=round(mean, 3),
                    diff_ci_low=round(low, 3) if np.isfinite(low) else None,
                    diff_ci_high=round(high, 3) if np.isfinite(high) else None,
                    diff_pairs=n,
                )
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    return lines


def _title(spec: TableSpec) -> str:
    return (
        f"**{spec.name}** — zero-shot top-1 (%) on the unseen classes: mean ± std over runs (seeds {spec.seeds}"
        + (f"; fold splits: seeds {spec.fold_seeds}" if spec.folds else "")
        + "; a seed drives both stages), [95% bootstrap interval over test samples]"
    )


def column_heads(
    cols: Sequence[tuple[str, list[str]]], by_split: dict[str, list[dict[str, Any]]]
) -> tuple[list[str], list[str]]:
    """Per column, its chance level (% of one unseen class, "–" when its splits differ) and its test sample
    counts (``"+"``-joined over its splits)."""
    chance, counts = [], []
    for _, members in cols:
        first = [by_split[s][0] for s in members if by_split.get(s)]
        k = [r["num_unseen_classes"] for r in first]
        chance.append(f"{100 / k[0]:.2f}" if k and len(set(k)) == 1 else "–")
        counts.append("+".join(str(r.get("num_test_samples", "?")) for r in first) or "–")
    return chance, counts


def _cell_text(c: dict[str, Any]) -> str:
    ci = f" [{c['ci'][0]:.1f}–{c['ci'][1]:.1f}]" if "ci" in c else ""
    return f"{c['mean']:.2f} ± {c['std']:.2f}{ci}"


def _csv_row(
    heading: str, row: str, mine: list[dict[str, Any]], c: dict[str, Any], chance: str, counts: str
) -> dict[str, Any]:
    """The CSV line of one cell (its runs ``mine``, their top-1 :func:`cell` ``c``): top-1 (mean, std,
    interval, per run), mean-class, top-5 and timing."""
    mean_class = cell(mine, TEST_MEAN_CLASS)
    top5 = cell(mine, TEST_TOP5) if reports_top5(min(r["num_unseen_classes"] for r in mine)) else None
    return {
        "column": heading,
        "row": row,
        "runs": c["runs"],
        "top1_mean": round(c["mean"], 3),
        "top1_std": round(c["std"], 3),
        "top1_ci_low": round(c["ci"][0], 3) if "ci" in c else None,
        "top1_ci_high": round(c["ci"][1], 3) if "ci" in c else None,
        "top1_runs": " ".join(f"{v:.2f}" for v in c["values"]),
        "mean_class_mean": round(mean_class["mean"], 3),
        "mean_class_std": round(mean_class["std"], 3),
        "top5_mean": round(top5["mean"], 3) if top5 else None,
        "chance": chance,
        "test_samples": counts,
        "seconds_per_run": round(sum(r["seconds"] for r in mine) / len(mine), 1),
    }


def _per_run(spec: TableSpec, records: list[dict[str, Any]]) -> list[str]:
    """The per-run listing that follows the table (row by row, each sorted by split and seed)."""
    lines = ["", PER_RUN_HEADING, "", "| row | split | seed | top-1 | mean-class | stage-1 seen top-1 |"]
    lines.append("|---|---|---:|---:|---:|---:|")
    for row in spec.rows:
        for r in sorted((r for r in records if r["row"] == row.name), key=lambda r: (r["split"], r["seed"])):
            stage1 = r.get("stage1", {}).get("seen_test_top1")
            s1 = f"{100 * stage1:.2f}" if stage1 is not None else "–"
            lines.append(
                f"| {row.name} | {r['split']} | {r['seed']} | {100 * r[TEST_TOP1]:.2f} | "
                f"{100 * r[TEST_MEAN_CLASS]:.2f} | {s1} |"
            )
    return lines


def _write(out: Path, markdown: str, rows_csv: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown)
    with open(out / "table.csv", "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in rows_csv for k in row)) or ["column"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows_csv)


def summary(markdown: str) -> str:
    """The table of means of an :func:`aggregate` Markdown, without its per-run listing."""
    return markdown.split("\n" + PER_RUN_HEADING, 1)[0].rstrip() + "\n"


def _timing(records: list[dict[str, Any]]) -> list[str]:
    seconds = [r["seconds"] for r in records]
    each = sum(seconds) / max(1, len(seconds))
    return ["", f"Stage-2 runs: {len(records)}, {sum(seconds):.0f} s in all ({each:.1f} s each)."]


def replace_block(path: Path, marker: str, content: str) -> None:
    """Replace the text between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``path``."""
    text = path.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text or end not in text:
        raise ValueError(
            f"{path} has no {start} ... {end} block to fill; add the two marker lines where the table goes"
        )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{content.rstrip()}\n{end}{tail}")
