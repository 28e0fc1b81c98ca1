"""Model selection on validation classes: ``python -m purls_pl select <split> [--stage purls|global|<method>]``.

Settings that matter for zero-shot accuracy (learning rate, query mode, α mode, temperature, scoring,
and the number of epochs) are chosen here, **on validation classes only**: every trial is a
``data.protocol=select`` run (:mod:`purls_pl.train.datamodule`) that trains on the seen classes minus
the validation classes of a fold, on training-protocol samples, with a stage-1 backbone trained
without those classes, and measures zero-shot accuracy on the validation classes (also
training-protocol samples) after every epoch. Unseen classes and test-protocol samples are never read.

The search is a coordinate search in the given key order, starting from the recipe's values
(:mod:`purls_pl.apps.search`): each key in turn takes the value with the best validation accuracy, the
others held at their current choice. A trial's score is the best epoch of its validation curve averaged
over the folds; that epoch count is selected with it (ties: the earlier epoch, the earlier value). The
generalised zero-shot calibration γ
is the selected trial's ``val/gzsl_gamma`` (best harmonic mean on the validation data) at that epoch,
averaged over the folds.

The choice is written as a config delta, ``experiments/selected/<split>/<name>.yaml``, which
``make train`` and the table runner compose after the recipe, with the whole search record in its
comments and beside it in ``<name>.json``. A selection is planned (:func:`plan_selection`: its stage-1
and trial requests), run (:func:`run_selection`: the search) and collected (:func:`collect_selection`: the
choice and its record); its command line is generated from :class:`SelectOptions`
(:mod:`purls_pl.apps.options`).
"""

from __future__ import annotations

import json
import pydoc
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from purls_pl.apps.experiments import EXPERIMENTS, run_split, selection_file, stage2_stages
from purls_pl.apps.options import option, parse_options, positional, render_options
from purls_pl.apps.run_pool import Job, PoolOptions, RunPool, exit_on_signals
from purls_pl.apps.run_request import RunRequest, backbone_request, take_data_root
from purls_pl.apps.search import GAMMA, Trial, best_trial, coordinate_search, slug
from purls_pl.data.splits import ZeroShotSplit
from purls_pl.eval.metrics import VAL_CURVE_FILE
from purls_pl.storage import atomic_write_json, atomic_write_text
from purls_pl.train.paths import variant_file
from purls_pl.train.provenance import git_state

__all__ = [
    "GAMMA",
    "SelectOptions",
    "Selection",
    "SelectionPlan",
    "Trial",
    "best_trial",
    "collect_selection",
    "coordinate_search",
    "default_search",
    "plan_selection",
    "run_selection",
    "select",
    "write_selection",
]

#: The default search of a PURLS (adaptive) run; a Global run searches the learning rate only.
PURLS_SEARCH: dict[str, list[Any]] = {
    "model.lr": [0.0003, 0.001, 0.003],
    "model.queries": ["true_class", "candidates"],
    "model.alpha": ["learnable", "uniform"],
    "model.temperature_init": [0.07, 0.2],
    "model.scoring": ["cosine", "eq5"],
}
GLOBAL_SEARCH: dict[str, list[Any]] = {"model.lr": [0.0003, 0.001, 0.003]}
#: The searches of the stages run by PURLS' own module: PURLS and the paper's Global baseline. Every other
#: stage is a method's experiment file, and its search is its class's ``default_search`` (:func:`default_search`).
BUILTIN_SEARCHES: dict[str, dict[str, list[Any]]] = {"purls": PURLS_SEARCH, "global": GLOBAL_SEARCH}


def default_search(stage: str, experiments: str | Path = EXPERIMENTS) -> dict[str, list[Any]]:
    """The search of ``stage`` when a selection names none: :data:`BUILTIN_SEARCHES`, else the
    ``default_search`` of the method class its experiment file names (``model.class_path``), so a new method's
    search lives in its own module.

    Raises:
        ValueError: naming the file and the fix, when the stage is not one of ``experiments`` or its method
            declares no search.
    """
    if stage in BUILTIN_SEARCHES:
        return dict(BUILTIN_SEARCHES[stage])
    path = variant_file(stage, experiments)
    model = (yaml.safe_load(path.read_text()) or {}).get("model")
    class_path = model.get("class_path") if isinstance(model, dict) else None
    method = pydoc.locate(class_path) if isinstance(class_path, str) else None
    search = getattr(method, "default_search", None)
    if not search:
        raise ValueError(
            f"{path}: model.class_path {class_path!r} declares no default_search; give the method class a "
            "`default_search: ClassVar[dict[str, list]]` ({config key: [values]}) or pass --search"
        )
    return {str(k): list(v) for k, v in search.items()}


@dataclass(frozen=True)
class SelectOptions:
    """What a selection runs: the options of ``python -m purls_pl select`` (:mod:`purls_pl.apps.options`).

    Attributes:
        split: a registered split, e.g. nw-ucla_8_2 (default with --recipe: the recipe's data.split)
        stage: which run: purls, global or a method's experiment file (e.g. cada_vae), as the trials compose it
        name: the selection's name (its file under experiments/selected/<split>/); default the stage
        folds: validation folds (class-level cross-validation: accuracy is averaged over them)
        seed: seed of every trial and selection backbone
        max_epochs: epochs per trial (the selected count is at most this)
        search: YAML/JSON mapping {config key: [values]}, searched in its order (default: the stage's)
        out: trial directory, resumable (trials and selection backbones)
        experiments: experiments folder: the trials' files and where selected/ goes
        recipe: stage-2 recipe of your own dataset (its _backbone.yaml beside it); its data.split is the default
            split
        set: override for every trial (repeatable), e.g. the data root
        pretrain: override for every stage-1 run (repeatable)
    """

    split: str | None = positional(None)
    stage: str = "purls"
    name: str | None = None
    folds: int = 1
    seed: int = 0
    max_epochs: int = 20
    search: dict[str, list[Any]] | None = None
    out: str = "lightning_logs/select"
    experiments: str = str(EXPERIMENTS)
    recipe: str | None = None
    set: tuple[str, ...] = option((), metavar="--KEY=VALUE")
    pretrain: tuple[str, ...] = option((), metavar="--KEY=VALUE")

    def __post_init__(self) -> None:
        if self.split is None and self.recipe is None:
            raise ValueError("name a split, or give --recipe whose data.split to select on")
        for name in ("experiments", "recipe"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else str(value))
        if self.stage not in stage2_stages(self.experiments):
            raise ValueError(
                f"a selection's stage is one of {stage2_stages(self.experiments)} (the stage-2 files of "
                f"{self.experiments}), got {self.stage!r}"
            )
        object.__setattr__(self, "out", str(Path(self.out)))
        object.__setattr__(self, "set", tuple(self.set))
        object.__setattr__(self, "pretrain", tuple(self.pretrain))


@dataclass
class Selection:
    """The outcome: the chosen overrides (epochs and γ included) and the search record."""

    split: str
    name: str
    overrides: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectionPlan:
    """A selection's runs, before any runs (:func:`plan_selection`).

    Attributes:
        options: The selection's options with its split, name and search filled in (its record's command).
        split: The split, resolved.
        stage1: A stage-1 request per validation fold: a backbone trained without the fold's validation classes.
        trial_overrides: Every trial's overrides after its setting (``set`` without the data root).
        data_root: Where the data lie (the ``--data.source.init_args.root`` of ``set``), when given.
    """

    options: SelectOptions
    split: ZeroShotSplit
    stage1: tuple[RunRequest, ...]
    trial_overrides: tuple[str, ...]
    data_root: str | None

    @property
    def search(self) -> dict[str, list[Any]]:
        """``{config key: values}`` in search order."""
        return dict(self.options.search or {})

    def trial(self, setting: dict[str, Any], fold: int) -> RunRequest:
        """The trial of ``setting`` (``{config key: value}``) on validation fold ``fold``."""
        o = self.options
        # keyed by what the trial computes, so selections of one stage share their common trials
        key = slug({**setting, "//args": list(self.trial_overrides)})
        return RunRequest(
            o.stage,
            self.split,
            o.seed,
            Path(o.out) / self.split.name / o.stage / key / f"fold{fold}",
            (*(f"--{k}={v}" for k, v in setting.items()), *self.trial_overrides),
            fold=fold,
            max_epochs=o.max_epochs,
            backbone=self.stage1[fold].export_path,
            data_root=self.data_root,
            experiments=Path(o.experiments),
            recipe=None if o.recipe is None else Path(o.recipe),
            selected=None,
        )


def plan_selection(options: SelectOptions, split: ZeroShotSplit | None = None) -> SelectionPlan:
    """The stage-1 runs and the trials of a selection (nothing runs yet).

    Args:
        options: What to select (:class:`SelectOptions`); ``search`` defaults to the stage's
            (:func:`default_search`), ``name`` to the stage.
        split: ``options.split`` already resolved (a table resolves its splits once); default: resolved here,
            with the recipe and ``set`` (:func:`~purls_pl.apps.experiments.run_split`).
    """
    split = split or run_split(options.split, options.recipe, options.set)
    search = dict(options.search or default_search(options.stage, options.experiments))
    options = replace(options, split=split.name, name=options.name or options.stage, search=search)
    stage1 = tuple(
        backbone_request(
            split,
            options.seed,
            Path(options.out),
            options.pretrain,
            options.set,
            f,
            options.experiments,
            options.recipe,
        )
        for f in range(options.folds)
    )
    trial_overrides, data_root = take_data_root(options.set)
    return SelectionPlan(options, split, stage1, trial_overrides, data_root)


def run_selection(plan: SelectionPlan, pool: RunPool, log: Callable[[str], None] = print) -> list[Trial]:
    """Run the plan's selection backbones, then its coordinate search (resumable: finished runs are reused).

    Returns:
        Every distinct trial, in the order run (:func:`~purls_pl.apps.search.coordinate_search`).
    """
    folds, name = plan.options.folds, plan.options.name
    pool.run(
        [Job(r, f"[select] {plan.split.name} fold {r.fold}: stage 1") for r in plan.stage1],
        lambda what, seconds: log(f"{what} ({'done before' if seconds is None else f'{seconds:.0f} s'})"),
    )
    count = 0

    def evaluate(settings: list[dict[str, Any]]) -> list[Trial]:
        nonlocal count
        jobs = [Job(plan.trial(s, fold), f"{s} fold {fold}") for s in settings for fold in range(folds)]
        seconds = pool.run(jobs, lambda what, s: None)
        trials = []
        for i, setting in enumerate(settings):
            mine = jobs[i * folds : (i + 1) * folds]
            curves = [
                json.loads(next(iter(sorted(j.request.directory.rglob(VAL_CURVE_FILE)))).read_text()) for j in mine
            ]
            trial = Trial(setting, curves)
            took = [t for t in seconds[i * folds : (i + 1) * folds] if t is not None]
            status = f"{sum(took):.0f} s" if took else "done before"
            epochs, top1 = trial.best
            count += 1
            score = f"val top-1 {100 * top1:.2f} at {epochs} ep. ({status})"
            log(f"[select] {plan.split.name} {name} #{count} {setting}: {score}")
            trials.append(trial)
        return trials

    return coordinate_search(plan.search, evaluate)


def collect_selection(plan: SelectionPlan, trials: Sequence[Trial], threads: int | None = None) -> Selection:
    """The choice of a finished search and its record (``threads``: the runs' torch threads, for its command)."""
    o = plan.options
    chosen = best_trial(trials, plan.search)
    epochs, top1 = chosen.best
    overrides = {**chosen.overrides, "trainer.max_epochs": epochs}
    gamma = chosen.gamma(epochs)
    if gamma is not None:
        overrides["gzsl.gamma"] = round(gamma, 6)
    threads_args = render_options(PoolOptions(1, threads), fields=["threads"]) if threads else []
    record = {
        "split": plan.split.name,
        "name": o.name,
        "stage": o.stage,
        "folds": [list(plan.split.selection(fold=f).unseen) for f in range(o.folds)],
        "seed": o.seed,
        "max_epochs": o.max_epochs,
        "search": plan.search,
        "selected": overrides,
        "val_top1": top1,
        "trials": [{"overrides": t.overrides, "val_top1": t.mean(), "best": list(t.best)} for t in trials],
        "recipe": o.recipe,
        "command": ["python", "-m", "purls_pl", "select", *render_options(o), *threads_args],
        **git_state(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return Selection(plan.split.name, str(o.name), overrides, list(trials), record)


def select(
    options: SelectOptions,
    split: ZeroShotSplit | None = None,
    pool: RunPool | None = None,
    log: Callable[[str], None] = print,
) -> Selection:
    """Choose a stage's settings for a split on validation classes (module docstring): plan, run, collect.

    Args:
        options: What to select (:class:`SelectOptions`, :func:`plan_selection`).
        split: ``options.split`` already resolved (default: resolved here).
        pool: Runs side by side (default: one at a time in this process, torch's default threads). Trials
            and backbones are resumable by request (:func:`~purls_pl.apps.run_pool.run_once`).
        log: Progress lines.
    """
    pool = pool or RunPool(1, threads=None)
    plan = plan_selection(options, split)
    return collect_selection(plan, run_selection(plan, pool, log), pool.threads)


def nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"model.lr": 0.001}`` -> ``{"model": {"lr": 0.001}}``."""
    out: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def write_selection(selection: Selection, root: str | Path = EXPERIMENTS) -> Path:
    """Write the config delta (with the search record as comments) and ``<name>.json``; return the YAML."""
    path = selection_file(selection.split, selection.name, root)
    record = selection.record
    # a record from before commands were recorded names the split and selection only
    command = record.get("command") or ["python", "-m", "purls_pl", "select", selection.split, "--name", selection.name]
    lines = [
        f"# Selected on validation classes of {selection.split} ({record['stage']}), never on its unseen classes:",
        f"#   {shlex.join(command)}",
        f"# validation classes per fold: {record['folds']}; commit {record['git_commit']}; {record['date']}",
        "# trials (coordinate search; mean validation top-1 at the best epoch):",
        *(f"#   {t['overrides']}: {100 * t['best'][1]:.2f} % at {t['best'][0]} epochs" for t in record["trials"]),
    ]
    atomic_write_text(path, "\n".join(lines) + "\n" + yaml.safe_dump(nested(selection.overrides), sort_keys=True))
    atomic_write_json(path.with_suffix(".json"), record)
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    """``python -m purls_pl select [<split>] [--recipe FILE] [--stage STAGE] [--folds N] ...`` (the options
    of :class:`SelectOptions` and :class:`~purls_pl.apps.run_pool.PoolOptions`); a signal (SIGTERM, SIGINT) stops
    it with exit status 128 + its number (:func:`~purls_pl.apps.run_pool.exit_on_signals`)."""
    options, pool = parse_options(
        argv, (SelectOptions, PoolOptions), "python -m purls_pl select", __doc__.splitlines()[0]
    )
    with exit_on_signals():
        selection = select(options, pool=pool.pool())
        path = write_selection(selection, options.experiments)
    print(f"selected {selection.overrides} -> {path}")
    return path
