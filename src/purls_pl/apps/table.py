"""Experiment tables under the evaluation protocol: ``python -m purls_pl table <spec.yaml> --out DIR``.

A table spec (YAML) names the splits, the seeds, random class folds, the selections and the rows::

    name: NW-UCLA
    splits: [nw-ucla_8_2, nw-ucla_5_5]        # each run with every seed in `seeds`
    seeds: [0, 1, 2]                            # a seed drives both stages (stage 1 per seed)
    folds: {nw-ucla_5_5: 3}                     # + nw-ucla_random5_seed0..2 (random unseen classes)
    fold_seeds: [0]                             # seeds of the fold splits
    select: {folds: 3, fold_split_folds: 1, max_epochs: 20, seed: 0}
    selections:                                 # methods whose settings are chosen on validation classes
      purls: {stage: purls, search: {model.lr: [0.001, 0.0003, 0.003], model.queries: [true_class, candidates]}}
      global: {stage: global, search: {model.lr: [0.001, 0.0003, 0.003]}}
    recipe: my/my-gestures.yaml                 # a dataset of your own: its stage-2 recipe (+ _backbone.yaml)
    common: [--data.text_encoder.model=minilm]  # every stage-2 run
    pretrain: [--trainer.max_epochs=30]          # every stage-1 run
    note: "The paper's numbers (different setup: ...)"
    rows:
      - {name: Global (label-only text), select: global}
      - {name: PURLS (selected), select: purls}
      - {name: Static partitioning, select: purls, args: [--model.partitioner=...]}   # an ablation

For every split (paper and fold splits) and every selection a row names, the settings are chosen on
validation classes by :mod:`purls_pl.apps.select` unless ``experiments/selected/<split>/<name>.yaml``
exists (``--reselect`` re-derives them); a row runs with its selection's method and settings plus its
own ``args``. Then stage 1 runs
per (split, seed) and every (split, row, seed) run writes its own directory. A run whose request (its
arguments, the contents of its config files and its backbone) is unchanged is not repeated, so an
interrupted table resumes; one whose request changed is moved aside (``*.stale-<time>``) and rerun.
The aggregate is written by :mod:`purls_pl.apps.table_report`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from purls_pl.apps.experiments import experiment_args, selection_file
from purls_pl.apps.select import select, write_selection
from purls_pl.apps.table_report import aggregate, replace_block
from purls_pl.apps.table_spec import TableSpec
from purls_pl.eval.metrics import TEST_TOP1
from purls_pl.eval.results import latest_results
from purls_pl.models.features import load_backbone
from purls_pl.storage import atomic_write_json
from purls_pl.train import cli, pretrain
from purls_pl.train.paths import backbone_export_path

#: Overrides that change where a run writes or how it shows progress, not what it computes.
VOLATILE = ("--trainer.default_root_dir=", "--trainer.enable_progress_bar=", "--data.source.init_args.root=")


def extra_data(extra: Sequence[str]) -> list[str]:
    """The overrides that also apply to stage 1 (those of ``data.source``)."""
    return [a for a in extra if a.startswith("--data.source")]


def request_hash(args: Sequence[str], backbone: Path | None = None) -> str:
    """What a run computes: its arguments (without :data:`VOLATILE` ones), the contents of its ``--config``
    files and of its backbone export."""
    h = hashlib.sha256()
    args = list(args)
    for i, a in enumerate(args):
        if a.startswith(VOLATILE):
            continue
        h.update(a.encode() + b"\0")
        if i > 0 and args[i - 1] == "--config":
            h.update(Path(a).read_bytes())
    if backbone is not None:
        h.update(backbone.read_bytes())
    return h.hexdigest()[:20]


class Progress:
    """One line per run with its time, the elapsed total and an estimate of what is left."""

    def __init__(self, total: int, log: Callable[[str], None]) -> None:
        self.total, self.done, self.log, self.start = total, 0, log, time.perf_counter()
        self.seconds: list[float] = []

    def __call__(self, what: str, seconds: float | None) -> None:
        self.done += 1
        if seconds is not None:
            self.seconds.append(seconds)
        elapsed = time.perf_counter() - self.start
        per_run = sum(self.seconds) / len(self.seconds) if self.seconds else 0.0
        left = per_run * (self.total - self.done)
        took = f"{seconds:.0f} s" if seconds is not None else "done before"
        self.log(
            f"[{self.done}/{self.total}] {what} ({took}; elapsed {elapsed / 60:.1f} min, ~{left / 60:.1f} min left)"
        )


def _run_once(directory: Path, args: list[str], backbone: Path | None, run: Callable[[], None]) -> float | None:
    """Run unless ``directory`` holds a finished run of the same request; return its seconds (None: reused)."""
    request = request_hash(args, backbone)
    record = directory / "request.json"
    if record.is_file() and json.loads(record.read_text()).get("hash") == request and (directory / "done").exists():
        return None
    if directory.exists():
        directory.rename(directory.with_name(f"{directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"))
    directory.mkdir(parents=True)
    atomic_write_json(record, {"hash": request, "args": args})
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    atomic_write_json(directory / "done", {"seconds": round(seconds, 2)})
    return seconds


def ensure_selections(spec: TableSpec, out: Path, extra: Sequence[str], reselect: bool, log: Callable) -> None:
    """Select (on validation classes) every setting a row needs that is not yet in ``experiments/selected``."""
    opts = spec.select
    for split, _ in spec.units():
        folds = int(opts.get("folds", 1)) if split in spec.splits else int(opts.get("fold_split_folds", 1))
        for name in dict.fromkeys(r.select for r in spec.rows if r.select):
            if selection_file(split, name, spec.experiments).is_file() and not reselect:
                continue
            method = spec.selections[name]
            chosen = select(
                split,
                method.stage,  # type: ignore[arg-type]
                method.search or None,
                name,
                folds,
                int(opts.get("seed", 0)),
                int(opts.get("max_epochs", 20)),
                out / "select",
                [*spec.common, *method.args, *extra],
                [*spec.pretrain, *extra_data(extra)],
                log,
                spec.recipe,
            )
            write_selection(chosen, spec.experiments)


def run_table(
    spec: TableSpec, out: str | Path, extra: Sequence[str] = (), reselect: bool = False, log: Callable = print
) -> list[dict[str, Any]]:
    """Select where needed, then run every missing stage-1 and (split, row, seed) run; one record per run."""
    out = Path(out)
    ensure_selections(spec, out, extra, reselect, log)
    units = spec.units()
    progress = Progress(sum(len(seeds) * (1 + len(spec.rows)) for _, seeds in units), log)
    records: list[dict[str, Any]] = []
    for split, seeds in units:
        for seed in seeds:
            backbone = backbone_export_path(split, seed, out)
            stage1 = [
                "fit",
                *experiment_args(split, "backbone", spec.experiments, recipe=spec.recipe),
                f"--seed_everything={seed}",
                *spec.pretrain,
                *extra_data(extra),
                f"--export.path={backbone}",
                f"--trainer.default_root_dir={out}",
                "--trainer.enable_progress_bar=false",
            ]
            seconds = _run_once(backbone.with_suffix(""), stage1, None, lambda a=stage1: pretrain.main(a))
            progress(f"{split} | stage 1 | seed {seed}", seconds)
            _, meta = load_backbone(backbone)
            for row in spec.rows:
                run_dir = out / split / row.slug / f"seed{seed}"
                stage, row_args = spec.stage_and_args(row)
                args = [
                    "fit",
                    *experiment_args(split, stage, spec.experiments, row.select, spec.recipe),  # type: ignore[arg-type]
                    *spec.common,
                    *row_args,
                    *extra,
                    f"--seed_everything={seed}",
                    f"--model.backbone.checkpoint={backbone}",
                    f"--trainer.default_root_dir={run_dir}",
                    "--trainer.enable_progress_bar=false",
                ]
                seconds = _run_once(run_dir, args, backbone, lambda a=args: cli.main(a))
                result = latest_results(run_dir)
                if result is None:
                    raise RuntimeError(f"run {run_dir} finished without results.json")
                progress(f"{split} | {row.name} | seed {seed}: top-1 {100 * result[TEST_TOP1]:.2f}", seconds)
                done = json.loads((run_dir / "done").read_text())
                records.append(
                    {
                        "split": split,
                        "row": row.name,
                        "seed": seed,
                        "seconds": done["seconds"],
                        "stage1": meta,
                        **result,
                    }
                )
    return records


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m purls_pl table", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="table spec YAML, e.g. experiments/tables/nw-ucla.yaml")
    parser.add_argument("--out", required=True, help="run directory (resumable), e.g. lightning_logs/tables/nw-ucla")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="--KEY=VALUE",
        help="extra CLI override for every run (repeatable), e.g. --set=--data.source.init_args.root=DIR",
    )
    parser.add_argument("--reselect", action="store_true", help="re-derive the selections even where they exist")
    parser.add_argument("--publish", metavar="DIR", help="also copy table.md/.csv to DIR/<spec name>.{md,csv}")
    parser.add_argument(
        "--readme", help="replace the README block between <!-- table:NAME --> and <!-- /table:NAME -->"
    )
    args = parser.parse_args(argv)
    spec = TableSpec.load(args.spec)
    start = time.perf_counter()
    records = run_table(spec, args.out, args.set, args.reselect)
    markdown, _ = aggregate(spec, records, args.out)
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
