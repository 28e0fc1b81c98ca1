"""Multi-split, multi-row, multi-seed experiment tables: ``python -m purls_pl table <spec.yaml>``.

A table spec (YAML) names the splits, seeds and rows; each row is a list of CLI overrides applied
on top of ``experiments/<split>.yaml``. Stage 1 runs once per split (its backbone is shared by all
rows and seeds); every (split, row, seed) run writes its own directory, and a run whose
``results.json`` exists is not repeated, so an interrupted table resumes where it stopped::

    name: NW-UCLA
    splits: [nw-ucla_8_2, nw-ucla_5_5]
    seeds: [0, 1, 2]
    common: [--data.text_encoder.model=minilm]      # for every stage-2 run
    pretrain: [--trainer.max_epochs=30]              # stage-1 overrides
    rows:
      - name: PURLS
        args: []
        paper: {nw-ucla_8_2: 75.84}

The aggregate (mean ± std over seeds of top-1 and mean-class accuracy, the paper's numbers, wall
times) is written as ``table.md`` and ``table.csv`` in the output directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from purls_pl.apps.experiments import experiment_args
from purls_pl.eval.metrics import TEST_MEAN_CLASS, TEST_TOP1
from purls_pl.eval.results import latest_results
from purls_pl.storage import atomic_write_json
from purls_pl.train import cli, pretrain
from purls_pl.train.paths import backbone_export_path


@dataclass
class Row:
    """One line of the table: a name, CLI overrides, and the paper's numbers per split (optional)."""

    name: str
    args: list[str] = field(default_factory=list)
    paper: dict[str, float] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name.lower()).strip("_")


@dataclass
class TableSpec:
    """What to run: splits x rows x seeds (see the module docstring for the YAML form)."""

    name: str
    splits: list[str]
    seeds: list[int]
    rows: list[Row]
    common: list[str] = field(default_factory=list)
    pretrain: list[str] = field(default_factory=list)
    experiments: str = "experiments"

    @classmethod
    def load(cls, path: str | Path) -> TableSpec:
        raw = yaml.safe_load(Path(path).read_text())
        missing = [k for k in ("name", "splits", "seeds", "rows") if k not in raw]
        if missing:
            raise ValueError(f"table spec {path} is missing {missing}; see purls_pl.apps.table's docstring")
        rows = [Row(str(r["name"]), list(r.get("args", [])), dict(r.get("paper", {}))) for r in raw["rows"]]
        return cls(
            name=str(raw["name"]),
            splits=list(raw["splits"]),
            seeds=[int(s) for s in raw["seeds"]],
            rows=rows,
            common=list(raw.get("common", [])),
            pretrain=list(raw.get("pretrain", [])),
            experiments=str(raw.get("experiments", "experiments")),
        )


def _timed(record: Path, run: Any) -> float:
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    atomic_write_json(record, {"seconds": round(seconds, 2)})
    return seconds


def run_table(spec: TableSpec, out: str | Path, extra: Sequence[str] = (), log: Any = print) -> list[dict[str, Any]]:
    """Run every missing (split, row, seed) of ``spec`` under ``out``; return one record per run."""
    out = Path(out)
    total = len(spec.splits) * len(spec.rows) * len(spec.seeds)
    done = 0
    records: list[dict[str, Any]] = []
    for split in spec.splits:
        backbone = backbone_export_path(split, 0, out)
        if not backbone.is_file():
            log(f"[stage 1] {split}: pre-training the backbone on the seen classes ...")
            stage1 = [
                "fit",
                *experiment_args(split, "backbone", spec.experiments),
                *spec.pretrain,
                *extra_data(extra),
                f"--export.path={backbone}",
                f"--trainer.default_root_dir={out}",  # logs land in <out>/backbones/<split>/version_k
                "--trainer.enable_progress_bar=false",
            ]
            seconds = _timed(backbone.with_suffix(".time.json"), lambda a=stage1: pretrain.main(a))
            log(f"[stage 1] {split}: {seconds:.0f} s")
        for row in spec.rows:
            for seed in spec.seeds:
                done += 1
                run_dir = out / split / row.slug / f"seed{seed}"
                result = latest_results(run_dir)
                status = "done before"
                if result is None:
                    args = [
                        "fit",
                        *experiment_args(split, "purls", spec.experiments),
                        *spec.common,
                        *row.args,
                        *extra,
                        f"--seed_everything={seed}",
                        f"--model.backbone.checkpoint={backbone}",
                        f"--trainer.default_root_dir={run_dir}",
                        "--trainer.enable_progress_bar=false",
                    ]
                    status = f"{_timed(run_dir / 'time.json', lambda a=args: cli.main(a)):.0f} s"
                    result = latest_results(run_dir)
                    if result is None:
                        raise RuntimeError(f"run {run_dir} finished without results.json")
                timing_file = run_dir / "time.json"
                timing = json.loads(timing_file.read_text())["seconds"] if timing_file.is_file() else None
                top1 = 100 * result[TEST_TOP1]
                log(f"[{done}/{total}] {split} | {row.name} | seed {seed}: top-1 {top1:.2f} ({status})")
                records.append({"split": split, "row": row.name, "seed": seed, "seconds": timing, **result})
    return records


def extra_data(extra: Sequence[str]) -> list[str]:
    """The overrides that also apply to stage 1 (those of ``data.source``)."""
    return [a for a in extra if a.startswith("--data.source")]


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def aggregate(spec: TableSpec, records: list[dict[str, Any]], out: str | Path) -> str:
    """Write ``table.md`` / ``table.csv`` (mean ± std over seeds) and return the Markdown."""
    out = Path(out)
    lines = [f"**{spec.name}** — zero-shot accuracy (%) on unseen classes, mean ± std over seeds {spec.seeds}", ""]
    header = "| row | " + " | ".join(f"{s} top-1 | {s} mean-class | {s} paper" for s in spec.splits) + " |"
    lines += [header, "|---|" + "---:|" * (3 * len(spec.splits))]
    rows_csv = []
    for row in spec.rows:
        cells = []
        for split in spec.splits:
            mine = [r for r in records if r["split"] == split and r["row"] == row.name]
            if not mine:
                cells += ["–", "–", "–"]
                continue
            top1 = _mean_std([100 * r[TEST_TOP1] for r in mine])
            mean_class = _mean_std([100 * r[TEST_MEAN_CLASS] for r in mine])
            paper = row.paper.get(split)
            cells += [
                f"{top1[0]:.2f} ± {top1[1]:.2f}",
                f"{mean_class[0]:.2f} ± {mean_class[1]:.2f}",
                f"{paper:.2f}" if paper is not None else "–",
            ]
            seconds = [r["seconds"] for r in mine if r.get("seconds")]
            rows_csv.append(
                {
                    "split": split,
                    "row": row.name,
                    "seeds": len(mine),
                    "top1_mean": round(top1[0], 3),
                    "top1_std": round(top1[1], 3),
                    "mean_class_mean": round(mean_class[0], 3),
                    "mean_class_std": round(mean_class[1], 3),
                    "paper_top1": paper,
                    "seconds_per_run": round(sum(seconds) / len(seconds), 1) if seconds else None,
                }
            )
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    stage1 = []
    for split in spec.splits:
        t = backbone_export_path(split, 0, out).with_suffix(".time.json")
        if t.is_file():
            stage1.append(f"{split} {json.loads(t.read_text())['seconds']:.0f} s")
    run_times = [r["seconds"] for r in records if r.get("seconds")]
    lines += [
        "",
        f"Wall time: stage 1 {', '.join(stage1) or '–'}; stage 2 {sum(run_times):.0f} s over {len(run_times)} runs "
        f"({(sum(run_times) / max(1, len(run_times))):.1f} s per run).",
    ]
    markdown = "\n".join(lines) + "\n"
    (out / "table.md").write_text(markdown)
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows_csv[0]) if rows_csv else ["split"])
        writer.writeheader()
        writer.writerows(rows_csv)
    return markdown


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="purls_pl table", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="table spec YAML, e.g. experiments/tables/nw-ucla.yaml")
    parser.add_argument("--out", required=True, help="run directory (resumable), e.g. lightning_logs/tables/nw-ucla")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="--KEY=VALUE",
        help="extra CLI override for every run (repeatable), e.g. --set=--data.source.init_args.root=DIR",
    )
    parser.add_argument("--publish", metavar="DIR", help="also copy table.md/.csv to DIR/<spec name>.{md,csv}")
    parser.add_argument(
        "--readme", help="replace the README block between <!-- table:NAME --> and <!-- /table:NAME -->"
    )
    args = parser.parse_args(argv)
    spec = TableSpec.load(args.spec)
    start = time.perf_counter()
    records = run_table(spec, args.out, args.set)
    markdown = aggregate(spec, records, args.out)
    print("\n" + markdown)
    print(f"total wall time {time.perf_counter() - start:.0f} s; written to {Path(args.out) / 'table.md'}")
    stem = Path(args.spec).stem
    if args.publish:
        target = Path(args.publish)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{stem}.md").write_text(markdown)
        (target / f"{stem}.csv").write_text((Path(args.out) / "table.csv").read_text())
    if args.readme:
        replace_block(Path(args.readme), f"table:{stem}", markdown)


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


if __name__ == "__main__":  # pragma: no cover
    main()
