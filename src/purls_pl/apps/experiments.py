"""Which experiment files make up a run: ``python -m purls_pl configs <split> [--stage ...]``.

A run composes a base (``purls.yaml``, or ``backbone.yaml`` for stage 1), the recipe of the split's
dataset, for the paper's Global baseline ``global.yaml``, and the settings selected on the split's
validation classes when they exist (``selected/<split>/<stage>.yaml``, written by
:mod:`purls_pl.apps.select`); the split itself is one override::

    experiments/purls.yaml + experiments/<recipe>.yaml [+ experiments/global.yaml]
        [+ experiments/selected/<split>/<stage>.yaml] + --data.split=<split>
    experiments/backbone.yaml + experiments/<recipe>_backbone.yaml + --data.split=<split>

The recipe of a dataset is named after the dataset whose class list it uses (NTU-60 runs the
``ntu120`` recipe, Kinetics-200 the ``kinetics400`` one; see :mod:`purls_pl.data.catalog`). The
Makefile, the table runner and the tests all ask this module, so the composition is written once.
"""

from __future__ import annotations

import argparse
import json
import pydoc
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from purls_pl.data.catalog import card, class_names
from purls_pl.data.splits import ZeroShotSplit, get_split, resolve_split, split_value
from purls_pl.train.paths import backbone_export_path, variant_file, variants

#: A stage: ``purls``, a variant of the experiments folder (:func:`stage2_stages`) or ``backbone`` (stage 1).
Stage = str
EXPERIMENTS = Path("experiments")


def stage2_stages(root: str | Path = EXPERIMENTS) -> tuple[str, ...]:
    """The stage-2 stages of the experiments folder ``root``: PURLS and its variants
    (:func:`~purls_pl.train.paths.variants`: ``global``, each method's experiment file)."""
    return ("purls", *variants(root))


def stages(root: str | Path = EXPERIMENTS) -> tuple[str, ...]:
    """Every stage of ``root``: :func:`stage2_stages` and ``backbone``."""
    return (*stage2_stages(root), "backbone")


def recipe_name(split: str | ZeroShotSplit) -> str:
    """The recipe file stem of ``split``'s dataset (``ntu120`` for ``ntu60_55_5``); a name is looked up."""
    entry = card((get_split(split) if isinstance(split, str) else split).dataset)
    return entry.parent or entry.key


#: Stage-2 overrides that reach stage 1 as well: which data a run reads (its source, its split, its
#: validation classes: a selection backbone must be trained without the trial's validation classes) and
#: how they are loaded (DataLoader workers, pinned memory). Everything else (text, model, batch sizes,
#: epochs, holdout, augmentation, trainer) is stage 2's own; stage 1 takes its own from a table's
#: ``pretrain:`` or ``select --pretrain``.
STAGE1_SHARED = ("--data.source", "--data.split", "--data.val_classes", "--data.num_workers", "--data.pin_memory")


def stage1_overrides(extra: Sequence[str]) -> list[str]:
    """The overrides of a stage-2 run that also apply to its stage 1 (:data:`STAGE1_SHARED`)."""
    return [a for a in extra if a.startswith(STAGE1_SHARED)]


def _recipe_data(recipe: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The recipe's ``data`` section (its ``source`` read from the file it names), with the
    ``--data.source.init_args.<key>=`` and ``--data.split=`` overrides applied."""
    if not recipe.is_file():
        raise FileNotFoundError(f"{recipe}: the recipe file does not exist; give the stage-2 recipe of your dataset")
    data = dict((yaml.safe_load(recipe.read_text()) or {}).get("data") or {})
    source = data.get("source")
    if isinstance(source, str):  # a source file, relative to the recipe (as jsonargparse reads it)
        source = yaml.safe_load((recipe.parent / source).read_text())
    if not isinstance(source, dict) or "class_path" not in source:
        raise ValueError(
            f"{recipe}: data.source is not set; give the dataset's reader there "
            "(data.source: {class_path: purls_pl.data.readers.CustomSource, init_args: {root: ..., dataset: ...}})"
        )
    init_args = json.loads(json.dumps(source.get("init_args") or {}))
    for arg in overrides:
        dotted, _, value = arg.removeprefix("--").partition("=")
        if dotted == "data.split":
            data["split"] = yaml.safe_load(value)
        elif dotted.startswith("data.source.init_args."):
            *parents, leaf = dotted.removeprefix("data.source.init_args.").split(".")
            node = init_args
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
    return {**data, "source": {**source, "init_args": init_args}}


def run_split(split: str | None, recipe: str | Path | None = None, overrides: Sequence[str] = ()) -> ZeroShotSplit:
    """The split a table or selection runs, resolved (and registered by name) in this process.

    Args:
        split: A split name: registered, ``<dataset>_random<K>_seed<S>``, or the name of the recipe's own
            ``data.split``; ``None``: the recipe's ``data.split``.
        recipe: The stage-2 recipe of a dataset of your own; its ``data.source`` gives the class list and
            its ``data.split`` (unseen classes by name or index, with or without a ``name``) the split.
        overrides: Run overrides (``--data.source.init_args.root=DIR``, ``--data.split=...``) applied first.

    Raises:
        KeyError: an unknown split name without a recipe. ValueError: naming the recipe, the field and the fix.
    """
    if recipe is None:
        if split is None:
            raise ValueError("no split given: name a registered split, or give the recipe whose data.split to run")
        return get_split(split)
    recipe = Path(recipe)
    data = _recipe_data(recipe, overrides)
    reader = pydoc.locate(data["source"]["class_path"])
    if not callable(reader):
        raise ValueError(f"{recipe}: data.source.class_path {data['source']['class_path']!r} is not importable; fix it")
    source = reader(**data["source"]["init_args"])
    classes = list(getattr(source, "class_names", None) or class_names(source.dataset))
    own = resolve_split(data["split"], source.dataset, classes) if data.get("split") is not None else None
    if split is None or (own is not None and split == own.name):
        if own is None:
            raise ValueError(
                f"{recipe}: data.split is not set; give the unseen classes there (data.split: {{unseen: [names]}}) "
                "or name the split to run"
            )
        return own
    try:
        return resolve_split(split, source.dataset, classes)
    except KeyError as err:
        mine = f"the recipe's data.split is named {own.name!r}" if own else "the recipe has no data.split"
        raise ValueError(
            f"{recipe}: split {split!r} is not a split of dataset {source.dataset!r} ({mine}); name the "
            f"recipe's split, {source.dataset}_random<K>_seed<S>, or a registered split ({err.args[0]})"
        ) from None


def split_option(split: str | ZeroShotSplit) -> str:
    """``--data.split=<value>`` that gives ``split`` in a fresh process (:func:`~purls_pl.data.splits.split_value`)."""
    value = split if isinstance(split, str) else split_value(split)
    return f"--data.split={value if isinstance(value, str) else json.dumps(value)}"


#: ``selected=`` default of :func:`experiment_files`: the selection named after the stage.
STAGE_SELECTION = "<stage>"


def selection_file(split: str, name: str, root: str | Path = EXPERIMENTS) -> Path:
    """Where the settings selected for ``split`` under ``name`` live: ``<root>/selected/<split>/<name>.yaml``."""
    return Path(root) / "selected" / split / f"{name}.yaml"


def recipe_files(
    split: str | ZeroShotSplit, recipe: str | Path | None = None, root: str | Path = EXPERIMENTS
) -> tuple[Path, Path]:
    """The stage-2 and stage-1 recipe files of ``split``: ``<root>/<recipe_name(split)>.yaml`` and its
    ``_backbone`` sibling, or, for a dataset of your own, the given stage-2 ``recipe`` file and the
    ``<stem>_backbone.yaml`` beside it."""
    if recipe is None:
        purls = Path(root) / f"{recipe_name(split)}.yaml"
    else:
        purls = Path(recipe)
    return purls, purls.with_name(f"{purls.stem}_backbone.yaml")


def experiment_files(
    split: str | ZeroShotSplit,
    stage: Stage = "purls",
    root: str | Path = EXPERIMENTS,
    selected: str | None = STAGE_SELECTION,
    recipe: str | Path | None = None,
) -> list[Path]:
    """The ``--config`` files of ``stage`` for ``split``, in composition order.

    Args:
        split: A registered split (or, with ``recipe``, any split the recipe's data resolve, as
            :func:`run_split` gives it).
        stage: ``purls``, a variant (``global``, ``cada_vae``, ...: :func:`stage2_stages`) or ``backbone``.
        root: The experiments folder (bases, recipes, selections).
        selected: The selection whose settings come last, when its file exists (default: the one named
            after the stage); ``None``: none (what a selection trial itself runs).
        recipe: The stage-2 recipe of a dataset the catalog does not know (its ``_backbone`` sibling is
            stage 1's); default the catalogued dataset's recipe in ``root``.

    Raises:
        FileNotFoundError: when a file is missing, naming it.
    """
    root = Path(root)
    if stage not in stages(root):
        raise ValueError(
            f"stage must be one of {stages(root)}, got {stage!r}: a method's stage is its experiment file "
            f"{root / (stage + '.yaml')} (see the README's Methods section)"
        )
    purls_recipe, backbone_recipe = recipe_files(split, recipe, root)
    split = split if isinstance(split, str) else split.name
    if stage == "backbone":
        files = [root / "backbone.yaml", backbone_recipe]
    else:
        files = [root / "purls.yaml", purls_recipe, *([variant_file(stage, root)] if stage != "purls" else [])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"experiment files {missing} of split {split!r} ({stage}) do not exist")
    if selected is not None and stage != "backbone":
        chosen = selection_file(split, stage if selected == STAGE_SELECTION else selected, root)
        files += [chosen] if chosen.is_file() else []
    return files


def experiment_args(
    split: str | ZeroShotSplit,
    stage: Stage = "purls",
    root: str | Path = EXPERIMENTS,
    selected: str | None = STAGE_SELECTION,
    recipe: str | Path | None = None,
) -> list[str]:
    """``["--config", <file>, ..., "--data.split=<split>"]`` for a LightningCLI of ``stage``
    (:func:`experiment_files`; the split as :func:`split_option` writes it)."""
    args = [a for f in experiment_files(split, stage, root, selected, recipe) for a in ("--config", str(f))]
    return [*args, split_option(split)]


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Print the arguments of a run (or, with ``--backbone-path``, where its stage-1 export goes)."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl configs",
        description="The --config arguments that make up a run of a registered split (as `make train` runs it).",
    )
    parser.add_argument("split", help="a registered split, e.g. ntu120_96_24 or nw-ucla_random5_seed0")
    parser.add_argument("--stage", default="purls", help=f"which run: {', '.join(stages())} (default: %(default)s)")
    parser.add_argument("--root", default=str(EXPERIMENTS), help="experiments folder (default: %(default)s)")
    parser.add_argument("--backbone-path", action="store_true", help="print the stage-1 export path instead")
    parser.add_argument("--recipe", action="store_true", help="print the dataset recipe's name instead")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stage-1 run (with --backbone-path)")
    args = parser.parse_args(argv)
    if args.backbone_path:
        out = [str(backbone_export_path(get_split(args.split).name, args.seed))]
    elif args.recipe:
        out = [recipe_name(args.split)]
    else:
        try:
            out = experiment_args(args.split, args.stage, args.root)
        except ValueError as error:
            parser.error(str(error))
    print(shlex.join(out))
    return out
