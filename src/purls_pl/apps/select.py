"""Model selection on validation classes: ``python -m purls_pl select <split> [--stage purls|global]``.

Settings that matter for zero-shot accuracy (learning rate, query mode, α mode, temperature, scoring,
and the number of epochs) are chosen here, **on validation classes only**: every trial is a
``data.protocol=select`` run (:mod:`purls_pl.train.datamodule`) that trains on the seen classes minus
the validation classes of a fold, on training-protocol samples, with a stage-1 backbone trained
without those classes, and measures zero-shot accuracy on the validation classes (also
training-protocol samples) after every epoch. Unseen classes and test-protocol samples are never read.

The search is a coordinate search in the given key order, starting from the recipe's values: each key
in turn takes the value with the best validation accuracy, the others held at their current choice.
A trial's score is the best epoch of its validation curve averaged over the folds; that epoch count is
selected with it (ties: the earlier epoch, the earlier value). The generalised zero-shot calibration γ
is the selected trial's ``val/gzsl_gamma`` (best harmonic mean on the validation data) at that epoch,
averaged over the folds.

The choice is written as a config delta, ``experiments/selected/<split>/<name>.yaml``, which
``make train`` and the table runner compose after the recipe, with the whole search record in its
comments and beside it in ``<name>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from purls_pl.apps.experiments import EXPERIMENTS, Stage, run_split, selection_file, stage1_overrides
from purls_pl.apps.run_pool import Job, RunPool, default_jobs, exit_on_signals
from purls_pl.apps.run_request import RunRequest, take_data_root
from purls_pl.data.splits import ZeroShotSplit
from purls_pl.eval.metrics import VAL, VAL_CURVE_FILE, VAL_TOP1, key
from purls_pl.storage import atomic_write_json, atomic_write_text
from purls_pl.train.provenance import git_state

#: The default search of a PURLS (adaptive) run; a Global run searches the learning rate only.
PURLS_SEARCH: dict[str, list[Any]] = {
    "model.lr": [0.0003, 0.001, 0.003],
    "model.queries": ["true_class", "candidates"],
    "model.alpha": ["learnable", "uniform"],
    "model.temperature_init": [0.07, 0.2],
    "model.scoring": ["cosine", "eq5"],
}
GLOBAL_SEARCH: dict[str, list[Any]] = {"model.lr": [0.0003, 0.001, 0.003]}
GAMMA = key(VAL, "gzsl_gamma")


@dataclass
class Trial:
    """One setting evaluated on every fold: its validation curves (``val/…`` per epoch) per fold."""

    overrides: dict[str, Any]
    curves: list[list[dict[str, float]]]

    def mean(self, metric: str = VAL_TOP1) -> list[float]:
        """``metric`` per epoch, averaged over the folds (the shortest curve's length)."""
        length = min(len(c) for c in self.curves)
        # rounded: float32 metrics averaged in another order must not break ties between equal accuracies
        return [round(sum(c[e][metric] for c in self.curves) / len(self.curves), 6) for e in range(length)]

    @property
    def best(self) -> tuple[int, float]:
        """``(epochs, mean validation top-1)`` at the best epoch (the earliest of equal ones)."""
        curve = self.mean()
        epoch = max(range(len(curve)), key=lambda e: (curve[e], -e))
        return epoch + 1, curve[epoch]

    def gamma(self, epochs: int) -> float | None:
        """The validation-chosen calibration γ after ``epochs``, averaged over the folds."""
        values = [c[epochs - 1].get(GAMMA) for c in self.curves]
        values = [v for v in values if v is not None and v == v]
        return sum(values) / len(values) if values else None


@dataclass
class Selection:
    """The outcome: the chosen overrides (epochs and γ included) and the search record."""

    split: str
    name: str
    overrides: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def _slug(overrides: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:12]


def coordinate_search(
    search: dict[str, list[Any]], evaluate: Callable[[list[dict[str, Any]]], list[Trial]]
) -> list[Trial]:
    """Trials of a one-pass coordinate search (module docstring); the last trial chosen is the selection.

    Args:
        search: Ordered ``{config key: candidate values}``; the first value is the starting point.
        evaluate: Runs (or recalls) several settings, independent of each other (they may run side by
            side), and returns their trials in the same order.

    Returns:
        Every distinct trial, in the order run; ``trials[-1]`` is not necessarily the best — see
        :func:`best_trial`.
    """
    current = {k: values[0] for k, values in search.items()}
    seen: dict[str, Trial] = {}

    def run(candidates: list[dict[str, Any]]) -> list[Trial]:
        missing = list({_slug(o): dict(o) for o in candidates if _slug(o) not in seen}.values())
        if missing:
            seen.update({_slug(o): t for o, t in zip(missing, evaluate(missing), strict=True)})
        return [seen[_slug(o)] for o in candidates]

    for name, values in search.items():
        trials = run([{**current, name: v} for v in values])
        scores = [(t.best[1], -i, v) for i, (t, v) in enumerate(zip(trials, values, strict=True))]
        current[name] = max(scores, key=lambda s: (s[0], s[1]))[2]
    run([current])
    return list(seen.values())


def best_trial(trials: Sequence[Trial], search: dict[str, list[Any]]) -> Trial:
    """The coordinate search's final choice: the trial whose overrides equal the settled setting."""
    current = {k: values[0] for k, values in search.items()}
    by_slug = {_slug(t.overrides): t for t in trials}
    for name, values in search.items():
        scored = [(by_slug[_slug({**current, name: v})].best[1], -i, v) for i, v in enumerate(values)]
        current[name] = max(scored, key=lambda s: (s[0], s[1]))[2]
    return by_slug[_slug(current)]


def selection_backbone(
    split: ZeroShotSplit,
    fold: int,
    seed: int,
    out: Path,
    extra: Sequence[str],
    recipe: str | Path | None = None,
    root: str | Path = EXPERIMENTS,
) -> RunRequest:
    """The stage-1 run of a selection fold: a backbone trained without the fold's validation classes, at
    ``backbone_export_path(<split>-val<fold>, seed, out)`` (:attr:`RunRequest.export_path`)."""
    overrides, data_root = take_data_root(extra)
    return RunRequest(
        "backbone", split, seed, out, overrides, fold=fold, data_root=data_root, experiments=root, recipe=recipe
    )


def select(
    split: str | ZeroShotSplit | None,
    stage: Stage = "purls",
    search: dict[str, list[Any]] | None = None,
    name: str | None = None,
    folds: int = 1,
    seed: int = 0,
    max_epochs: int = 20,
    out: str | Path = "lightning_logs/select",
    extra: Sequence[str] = (),
    pretrain_extra: Sequence[str] = (),
    log: Callable[[str], None] = print,
    recipe: str | Path | None = None,
    pool: RunPool | None = None,
    root: str | Path = EXPERIMENTS,
) -> Selection:
    """Choose ``stage``'s settings for ``split`` on validation classes (module docstring).

    Args:
        split: A registered split, or with ``recipe`` a split of its dataset (``None``: the recipe's own
            ``data.split``), as :func:`~purls_pl.apps.experiments.run_split` resolves it.
        stage: ``purls`` or ``global`` (the experiment files the trials compose).
        search: ``{config key: values}`` in search order; default :data:`PURLS_SEARCH` (``purls``) or
            :data:`GLOBAL_SEARCH` (``global``).
        name: The selection's name (its file); default the stage.
        folds: Validation folds (class-level cross-validation); accuracy is averaged over them.
        seed: Seed of every trial and selection backbone.
        max_epochs: Epochs each trial runs; the selected count is at most this.
        out: Where trials and selection backbones are written (resumable).
        extra: Overrides for every trial (e.g. the data root).
        pretrain_extra: Overrides for the selection backbones' stage 1.
        log: Progress lines.
        recipe: The stage-2 recipe file of a dataset the catalog does not know (see
            :func:`~purls_pl.apps.experiments.experiment_files`).
        pool: Runs side by side (default: one at a time in this process, torch's default threads). Trials
            and backbones are resumable by request (:func:`~purls_pl.apps.run_pool.run_once`).
        root: The experiments folder the trials compose (bases and recipes), as the final runs do.
    """
    search = dict(search or (GLOBAL_SEARCH if stage == "global" else PURLS_SEARCH))
    name = name or stage
    out = Path(out)
    pool = pool or RunPool(1, threads=None)
    resolved = split if isinstance(split, ZeroShotSplit) else run_split(split, recipe, extra)
    split = resolved.name
    stage1 = [
        selection_backbone(resolved, f, seed, out, [*pretrain_extra, *stage1_overrides(extra)], recipe, root)
        for f in range(folds)
    ]
    pool.run(
        [Job(r, f"[select] {split} fold {r.fold}: stage 1") for r in stage1],
        lambda what, seconds: log(f"{what} ({'done before' if seconds is None else f'{seconds:.0f} s'})"),
    )
    count = 0
    computed, data_root = take_data_root(extra)

    def trial_job(overrides: dict[str, Any], fold: int) -> Job:
        # keyed by what the trial computes, so selections of one stage share their common trials
        run_dir = out / split / stage / _slug({**overrides, "//args": list(computed)}) / f"fold{fold}"
        request = RunRequest(
            stage,
            resolved,
            seed,
            run_dir,
            (*(f"--{k}={v}" for k, v in overrides.items()), *computed),
            fold=fold,
            max_epochs=max_epochs,
            backbone=stage1[fold].export_path,
            data_root=data_root,
            experiments=root,
            recipe=recipe,
            selected=None,
        )
        return Job(request, f"{overrides} fold {fold}")

    def evaluate(settings: list[dict[str, Any]]) -> list[Trial]:
        nonlocal count
        jobs = [trial_job(o, fold) for o in settings for fold in range(folds)]
        seconds = pool.run(jobs, lambda what, s: None)
        trials = []
        for i, overrides in enumerate(settings):
            mine = jobs[i * folds : (i + 1) * folds]
            curves = [json.loads(next(iter(sorted(j.directory.rglob(VAL_CURVE_FILE)))).read_text()) for j in mine]
            trial = Trial(overrides, curves)
            took = [t for t in seconds[i * folds : (i + 1) * folds] if t is not None]
            status = f"{sum(took):.0f} s" if took else "done before"
            epochs, top1 = trial.best
            count += 1
            log(f"[select] {split} {name} #{count} {overrides}: val top-1 {100 * top1:.2f} at {epochs} ep. ({status})")
            trials.append(trial)
        return trials

    trials = coordinate_search(search, evaluate)
    chosen = best_trial(trials, search)
    epochs, top1 = chosen.best
    overrides = {**chosen.overrides, "trainer.max_epochs": epochs}
    gamma = chosen.gamma(epochs)
    if gamma is not None:
        overrides["gzsl.gamma"] = round(gamma, 6)
    record = {
        "split": split,
        "name": name,
        "stage": stage,
        "folds": [list(resolved.selection(fold=f).unseen) for f in range(folds)],
        "seed": seed,
        "max_epochs": max_epochs,
        "search": search,
        "selected": overrides,
        "val_top1": top1,
        "trials": [{"overrides": t.overrides, "val_top1": t.mean(), "best": list(t.best)} for t in trials],
        "recipe": None if recipe is None else str(recipe),
        "command": [
            *("python", "-m", "purls_pl", "select", split, "--stage", stage, "--name", name),
            *("--folds", str(folds), "--seed", str(seed), "--max-epochs", str(max_epochs)),
            *("--search", yaml.safe_dump(search, default_flow_style=True, width=1 << 20).strip()),
            *("--out", str(out), "--experiments", str(root)),
            *(("--recipe", str(recipe)) if recipe is not None else ()),
            *(f"--set={a}" for a in extra),
            *(f"--pretrain={a}" for a in pretrain_extra),
            *(("--threads", str(pool.threads)) if pool.threads else ()),
        ],
        **git_state(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return Selection(split, name, overrides, list(trials), record)


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
    """``python -m purls_pl select [<split>] [--recipe FILE] [--stage purls|global] [--folds N] ...``; a signal
    (SIGTERM, SIGINT) stops it with exit status 128 + its number (:func:`~purls_pl.apps.run_pool.exit_on_signals`)."""
    parser = argparse.ArgumentParser(prog="python -m purls_pl select", description=__doc__.splitlines()[0])
    parser.add_argument(
        "split", nargs="?", help="a registered split, e.g. nw-ucla_8_2 (default with --recipe: the recipe's data.split)"
    )
    parser.add_argument(
        "--recipe",
        help="stage-2 recipe of your own dataset (its _backbone.yaml beside it); its data.split is the default split",
    )
    parser.add_argument("--stage", choices=("purls", "global"), default="purls", help="which run (default: purls)")
    parser.add_argument("--name", help="the selection's name (its file under experiments/selected/<split>/)")
    parser.add_argument("--folds", type=int, default=1, help="validation folds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every trial (default: %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=20, help="epochs per trial (default: %(default)s)")
    parser.add_argument("--search", help="YAML/JSON mapping {config key: [values]} (default: the stage's)")
    parser.add_argument("--out", default="lightning_logs/select", help="trial directory (default: %(default)s)")
    parser.add_argument(
        "--experiments", default=str(EXPERIMENTS), help="experiments folder: the trials' files and where selected/ goes"
    )
    parser.add_argument("--set", action="append", default=[], metavar="--KEY=VALUE", help="override for every trial")
    parser.add_argument(
        "--pretrain", action="append", default=[], metavar="--KEY=VALUE", help="override for every stage-1 run"
    )
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="runs side by side (default: CPU cores)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.split is None and args.recipe is None:
        parser.error("name a split, or give --recipe whose data.split to select on")
    search = yaml.safe_load(args.search) if args.search else None
    with exit_on_signals():
        selection = select(
            args.split,
            args.stage,
            search,
            args.name,
            args.folds,
            args.seed,
            args.max_epochs,
            args.out,
            args.set,
            args.pretrain,
            recipe=args.recipe,
            pool=RunPool(args.jobs, args.threads or None),
            root=args.experiments,
        )
        path = write_selection(selection, args.experiments)
    print(f"selected {selection.overrides} -> {path}")
    return path
