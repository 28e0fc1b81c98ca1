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
    reference: Global (label-only text)         # optional: every row's paired difference to this row
    rows:
      - {name: Global (label-only text), select: global}
      - {name: PURLS (selected), select: purls}
      - {name: Static partitioning, select: purls, args: [--model.partitioner=...]}   # an ablation

For every split (paper and fold splits) and every selection a row names, the settings are chosen on
validation classes by :mod:`purls_pl.apps.select` unless ``experiments/selected/<split>/<name>.yaml``
exists (``--reselect`` re-derives them); a row runs with its selection's method and settings plus its
own ``args``. Then stage 1 runs per (split, seed) and every (split, row, seed) run writes its own
directory, ``--jobs`` of them side by side with ``--threads`` torch threads each
(:mod:`purls_pl.apps.run_pool`). A run whose request (what it computes: its arguments without where it
writes and where the data lie, its config files, backbone and the package's code) is unchanged is not
repeated, so an interrupted table resumes; one whose request changed is moved aside
(``*.stale-<time>``) and rerun. The aggregate is written by :mod:`purls_pl.apps.table_report`.

A table is planned (:func:`plan_table`: its splits resolved once, its selections and the
:class:`~purls_pl.apps.run_request.RunRequest` of every run), run (:func:`run_plan`) and collected
(:func:`collect_records`); its command line is generated from :class:`TableOptions`
(:mod:`purls_pl.apps.options`).

Overrides (``common``, ``--set``) are stage 2's; those that say which data a run reads reach stage 1
too (:data:`~purls_pl.apps.experiments.STAGE1_SHARED`); ``pretrain`` is stage 1's own. A signal (SIGTERM,
SIGINT) stops the table with exit status 128 + its number and stops its workers; what was running reruns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purls_pl.apps.experiments import selection_file
from purls_pl.apps.options import option, parse_options, positional
from purls_pl.apps.run_pool import Job, PoolOptions, Progress, RunPool, exit_on_signals
from purls_pl.apps.run_request import RunRequest, backbone_request, take_data_root
from purls_pl.apps.select import SelectOptions, select, write_selection
from purls_pl.apps.table_report import aggregate, replace_block, summary
from purls_pl.apps.table_spec import Row, SplitUnit, TableSpec
from purls_pl.data.splits import ZeroShotSplit
from purls_pl.eval.metrics import TEST_TOP1
from purls_pl.eval.results import latest_results
from purls_pl.models.features import load_backbone


@dataclass(frozen=True)
class TableOptions:
    """What ``python -m purls_pl table`` runs and where it publishes (with :class:`PoolOptions`).

    Attributes:
        spec: table spec YAML, e.g. experiments/tables/nw-ucla.yaml
        out: run directory (resumable), e.g. lightning_logs/tables/nw-ucla
        set: extra CLI override for every run (repeatable), e.g. --set=--data.source.init_args.root=DIR
        reselect: re-derive the selections even where they exist
        publish: also copy table.md/.csv to DIR/<spec name>.{md,csv}
        readme: replace the README block between <!-- table:NAME --> and <!-- /table:NAME -->
    """

    spec: str = positional()
    out: str
    set: tuple[str, ...] = option((), metavar="--KEY=VALUE")
    reselect: bool = False
    publish: str | None = option(None, metavar="DIR")
    readme: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    """A stage-2 run of the table: its cell (split, row), its seed and its request."""

    split: ZeroShotSplit
    row: str
    seed: int
    request: RunRequest

    @property
    def what(self) -> str:
        """Its progress label."""
        return f"{self.split.name} | {self.row} | seed {self.seed}"


@dataclass(frozen=True)
class TablePlan:
    """Everything a table runs, before anything runs (:func:`plan_table`).

    Attributes:
        spec: The table spec.
        units: Its splits, resolved once (:meth:`TableSpec.resolve`).
        out: Its run directory.
        extra: Overrides for every stage-2 run (its data ones reach stage 1 too,
            :func:`~purls_pl.apps.experiments.stage1_overrides`).
        selections: The selections to make first, each with its split resolved.
        stage1: A stage-1 request per (split, seed).
        runs: A stage-2 run per (split, row, seed); its selection's settings are composed when it runs.
    """

    spec: TableSpec
    units: tuple[SplitUnit, ...]
    out: Path
    extra: tuple[str, ...]
    selections: tuple[tuple[SelectOptions, ZeroShotSplit], ...]
    stage1: dict[tuple[str, int], RunRequest]
    runs: tuple[PlannedRun, ...]


def plan_table(spec: TableSpec, out: str | Path, extra: Sequence[str] = (), reselect: bool = False) -> TablePlan:
    """The selections, stage-1 and stage-2 runs of ``spec``, its splits resolved once (nothing runs yet).

    Args:
        spec: The table spec.
        out: Run directory.
        extra: Overrides for every stage-2 run (its data ones reach stage 1 too,
            :func:`~purls_pl.apps.experiments.stage1_overrides`).
        reselect: Re-derive selections that exist.
    """
    out = Path(out)
    units = spec.resolve(extra)
    names = list(dict.fromkeys(r.select for r in spec.rows if r.select))
    selections = tuple(
        (selection_options(spec, u, name, out, extra), u.split)
        for u in units
        for name in names
        if reselect or not selection_file(u.split.name, name, spec.experiments).is_file()
    )
    stage1 = {
        (u.split.name, seed): backbone_request(
            u.split, seed, out, spec.pretrain, [*spec.common, *extra], None, spec.experiments, spec.recipe
        )
        for u in units
        for seed in u.seeds
    }
    runs = tuple(
        PlannedRun(
            u.split, row.name, seed, final_request(spec, row, u.split, seed, out, extra, stage1[u.split.name, seed])
        )
        for u in units
        for seed in u.seeds
        for row in spec.rows
    )
    return TablePlan(spec, tuple(units), out, tuple(extra), selections, stage1, runs)


def final_request(
    spec: TableSpec, row: Row, split: ZeroShotSplit, seed: int, out: Path, extra: Sequence[str], stage1: RunRequest
) -> RunRequest:
    """The stage-2 run of ``row`` on ``split`` with ``seed`` in ``<out>/<split>/<row slug>/seed<seed>``, reading
    ``stage1``'s export: the row's selection's files and settings, the spec's ``common``, the row's and
    the selection's ``args``, then ``extra``."""
    stage, row_args = spec.stage_and_args(row)
    overrides, data_root = take_data_root([*spec.common, *row_args, *extra])
    return RunRequest(
        stage,  # type: ignore[arg-type]
        split,
        seed,
        out / split.name / row.slug / f"seed{seed}",
        overrides,
        backbone=stage1.export_path,
        data_root=data_root,
        experiments=Path(spec.experiments),
        recipe=None if spec.recipe is None else Path(spec.recipe),
        selected=row.select,
    )


def selection_options(spec: TableSpec, unit: SplitUnit, name: str, out: Path, extra: Sequence[str]) -> SelectOptions:
    """The selection ``name`` of the spec on ``unit``'s split: its method, the spec's ``select`` settings (a
    random class fold runs ``fold_split_folds`` validation folds), trials under ``<out>/select``."""
    method, opts = spec.selections[name], spec.select
    return SelectOptions(
        split=unit.split.name,
        stage=method.stage,  # type: ignore[arg-type]
        name=name,
        folds=int(opts.get("folds" if unit.fold_of is None else "fold_split_folds", 1)),
        seed=int(opts.get("seed", 0)),
        max_epochs=int(opts.get("max_epochs", 20)),
        search=method.search or None,
        out=str(out / "select"),
        experiments=spec.experiments,
        recipe=spec.recipe,
        set=(*spec.common, *method.args, *extra),
        pretrain=tuple(spec.pretrain),  # select adds the data.source ones of set
    )


def run_plan(plan: TablePlan, log: Callable[[str], None], pool: RunPool) -> None:
    """Make (and write) the plan's selections, then run its stage-1 runs, then its stage-2 runs (finished ones
    are reused)."""
    for options, split in plan.selections:
        write_selection(select(options, split, pool, log), options.experiments)
    progress = Progress(len(plan.stage1) + len(plan.runs), log, pool.jobs)
    pool.run([Job(r, f"{split} | stage 1 | seed {seed}") for (split, seed), r in plan.stage1.items()], progress)
    directories = {run.what: run.request.directory for run in plan.runs}

    def report(what: str, seconds: float | None) -> None:
        result = latest_results(directories[what])
        progress(what + (f": top-1 {100 * result[TEST_TOP1]:.2f}" if result is not None else ""), seconds)

    pool.run([Job(run.request, run.what) for run in plan.runs], report)


def collect_records(plan: TablePlan) -> list[dict[str, Any]]:
    """One record per finished stage-2 run: its split, row, seed, seconds, stage-1 export record and results."""
    stage1 = {unit: load_backbone(r.export_path)[1] for unit, r in plan.stage1.items()}
    records: list[dict[str, Any]] = []
    for run in plan.runs:
        directory = run.request.directory
        result = latest_results(directory)
        if result is None:
            raise RuntimeError(f"run {directory} finished without results.json")
        done = json.loads((directory / "done").read_text())
        meta = stage1[run.split.name, run.seed]
        records.append(
            {"split": run.split.name, "row": run.row, "seed": run.seed, "seconds": done["seconds"], "stage1": meta}
            | result
        )
    return records


def run_table(
    spec: TableSpec,
    out: str | Path,
    extra: Sequence[str] = (),
    reselect: bool = False,
    log: Callable[[str], None] = print,
    pool: RunPool | None = None,
) -> list[dict[str, Any]]:
    """Plan, run and collect a table (:func:`plan_table`, :func:`run_plan`, :func:`collect_records`).

    Args:
        spec, out, extra, reselect: As :func:`plan_table` takes them (``out`` is resumable).
        log: Progress lines.
        pool: Runs side by side (default: one at a time in this process, torch's default threads).

    Returns:
        One record per (split, row, seed) run.
    """
    plan = plan_table(spec, out, extra, reselect)
    run_plan(plan, log, pool or RunPool(1, threads=None))
    return collect_records(plan)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl table <spec> --out DIR ...`` (module docstring; the options of :class:`TableOptions`
    and :class:`PoolOptions`); a signal exits with 128 + its number."""
    options, pool = parse_options(
        argv, (TableOptions, PoolOptions), "python -m purls_pl table", __doc__.splitlines()[0]
    )
    start = time.perf_counter()
    with exit_on_signals():
        plan = plan_table(TableSpec.load(options.spec), options.out, options.set, options.reselect)
        run_plan(plan, print, pool.pool())
        markdown, _ = aggregate(plan.spec, plan.units, collect_records(plan), options.out)
    print("\n" + markdown)
    print(f"total wall time {time.perf_counter() - start:.0f} s; written to {Path(options.out) / 'table.md'}")
    publish(options, markdown)


def publish(options: TableOptions, markdown: str) -> None:
    """Copy the table to ``--publish DIR`` and its means into the ``--readme`` block, as the options ask."""
    stem = Path(options.spec).stem
    if options.publish:
        target = Path(options.publish)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{stem}.md").write_text(markdown)
        (target / f"{stem}.csv").write_text((Path(options.out) / "table.csv").read_text())
    if options.readme:  # the means only; the per-run listing stays in the published (or --out) table.md
        listing = Path(options.publish) / f"{stem}.md" if options.publish else Path(options.out) / "table.md"
        replace_block(Path(options.readme), f"table:{stem}", summary(markdown) + f"\nPer-run values: `{listing}`.\n")
