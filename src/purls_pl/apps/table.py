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
    recipe: my/my-gestures.yaml                 # a dataset of your own: its stage-2 recipe (+ _backbone.yaml);
                                                # `splits` may then name its data.split, or be left out for it
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
own ``args``. Then stage 1 runs per (split, seed) and every (split, row, seed) run writes its own
directory, ``--jobs`` of them side by side with ``--threads`` torch threads each
(:mod:`purls_pl.apps.run_pool`). A run whose request (its arguments, config files, backbone and the
package's code) is unchanged is not repeated, so an interrupted table resumes; one whose request
changed is moved aside (``*.stale-<time>``) and rerun. The aggregate is written by
:mod:`purls_pl.apps.table_report`.

Overrides (``common``, ``--set``) are stage 2's; those that say which data a run reads reach stage 1
too (:data:`~purls_pl.apps.experiments.STAGE1_SHARED`); ``pretrain`` is stage 1's own. A signal (SIGTERM,
SIGINT) stops the table with exit status 128 + its number and stops its workers; what was running reruns.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from purls_pl.apps.experiments import selection_file, stage1_overrides
from purls_pl.apps.run_pool import Job, Progress, RunPool, default_jobs, exit_on_signals
from purls_pl.apps.run_request import RunRequest, take_data_root
from purls_pl.apps.select import select, write_selection
from purls_pl.apps.table_report import aggregate, replace_block, summary
from purls_pl.apps.table_spec import TableSpec
from purls_pl.data.splits import get_split
from purls_pl.eval.metrics import TEST_TOP1
from purls_pl.eval.results import latest_results
from purls_pl.models.features import load_backbone


def ensure_selections(
    spec: TableSpec, out: Path, extra: Sequence[str], reselect: bool, log: Callable, pool: RunPool | None = None
) -> None:
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
                spec.pretrain,  # select adds the data.source ones of extra
                log,
                spec.recipe,
                pool,
                spec.experiments,
            )
            write_selection(chosen, spec.experiments)


def run_table(
    spec: TableSpec,
    out: str | Path,
    extra: Sequence[str] = (),
    reselect: bool = False,
    log: Callable = print,
    pool: RunPool | None = None,
) -> list[dict[str, Any]]:
    """Select where needed, then run every missing stage-1 and (split, row, seed) run; one record per run.

    Args:
        spec: The table spec (its splits are resolved here, :meth:`TableSpec.resolved`).
        out: Run directory (resumable).
        extra: Overrides for every stage-2 run (those of :func:`stage1_overrides` reach stage 1 too).
        reselect: Re-derive selections that exist.
        log: Progress lines.
        pool: Runs side by side (default: one at a time in this process, torch's default threads).
    """
    out = Path(out)
    pool = pool or RunPool(1, threads=None)
    spec = spec.resolved(extra)
    ensure_selections(spec, out, extra, reselect, log, pool)
    units = [(split, seed) for split, seeds in spec.units() for seed in seeds]
    progress = Progress(len(units) * (1 + len(spec.rows)), log, pool.jobs)
    stage1_args, stage1_root = take_data_root([*spec.pretrain, *stage1_overrides([*spec.common, *extra])])
    stage1 = {
        (split, seed): RunRequest(
            "backbone",
            get_split(split),
            seed,
            out,
            stage1_args,
            data_root=stage1_root,
            experiments=spec.experiments,
            recipe=spec.recipe,
        )
        for split, seed in units
    }
    pool.run([Job(r, f"{split} | stage 1 | seed {seed}") for (split, seed), r in stage1.items()], progress)
    runs: list[tuple[str, int, str, Job]] = []
    for split, seed in units:
        for row in spec.rows:
            stage, row_args = spec.stage_and_args(row)
            overrides, data_root = take_data_root([*spec.common, *row_args, *extra])
            request = RunRequest(
                stage,  # type: ignore[arg-type]
                get_split(split),
                seed,
                out / split / row.slug / f"seed{seed}",
                overrides,
                backbone=stage1[split, seed].export_path,
                data_root=data_root,
                experiments=spec.experiments,
                recipe=spec.recipe,
                selected=row.select,
            )
            runs.append((split, seed, row.name, Job(request, f"{split} | {row.name} | seed {seed}")))

    def report(what: str, seconds: float | None) -> None:
        result = latest_results(next(j.directory for *_, j in runs if j.what == what))
        top1 = f": top-1 {100 * result[TEST_TOP1]:.2f}" if result is not None else ""
        progress(what + top1, seconds)

    pool.run([job for *_, job in runs], report)
    stage1_meta = {unit: load_backbone(r.export_path)[1] for unit, r in stage1.items()}
    records: list[dict[str, Any]] = []
    for split, seed, row, job in runs:
        result = latest_results(job.directory)
        if result is None:
            raise RuntimeError(f"run {job.directory} finished without results.json")
        done = json.loads((job.directory / "done").read_text())
        meta = stage1_meta[split, seed]
        records.append({"split": split, "row": row, "seed": seed, "seconds": done["seconds"], "stage1": meta, **result})
    return records


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl table <spec> --out DIR ...`` (module docstring); a signal exits with 128 + its number."""
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
    parser.add_argument(
        "--jobs", type=int, default=default_jobs(), help="runs side by side (default: CPU cores; 1 on a GPU)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per run (default: %(default)s; numbers depend on it, not on --jobs; 0: torch's default)",
    )
    parser.add_argument("--publish", metavar="DIR", help="also copy table.md/.csv to DIR/<spec name>.{md,csv}")
    parser.add_argument(
        "--readme", help="replace the README block between <!-- table:NAME --> and <!-- /table:NAME -->"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pool = RunPool(args.jobs, args.threads or None)
    with exit_on_signals():
        spec = TableSpec.load(args.spec).resolved(args.set)
        records = run_table(spec, args.out, args.set, args.reselect, pool=pool)
        markdown, _ = aggregate(spec, records, args.out)
    print("\n" + markdown)
    print(f"total wall time {time.perf_counter() - start:.0f} s; written to {Path(args.out) / 'table.md'}")
    stem = Path(args.spec).stem
    if args.publish:
        target = Path(args.publish)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{stem}.md").write_text(markdown)
        (target / f"{stem}.csv").write_text((Path(args.out) / "table.csv").read_text())
    if args.readme:  # the means only; the per-run listing stays in the published (or --out) table.md
        listing = Path(args.publish) / f"{stem}.md" if args.publish else Path(args.out) / "table.md"
        replace_block(Path(args.readme), f"table:{stem}", summary(markdown) + f"\nPer-run values: `{listing}`.\n")
