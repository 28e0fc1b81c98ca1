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
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from purls_pl.data.catalog import card
from purls_pl.data.splits import get_split
from purls_pl.train.paths import backbone_export_path

Stage = Literal["purls", "global", "backbone"]
STAGES: tuple[str, ...] = ("purls", "global", "backbone")
EXPERIMENTS = Path("experiments")


def recipe_name(split: str) -> str:
    """The recipe file stem of ``split``'s dataset (``ntu120`` for ``ntu60_55_5``)."""
    entry = card(get_split(split).dataset)
    return entry.parent or entry.key


#: ``selected=`` default of :func:`experiment_files`: the selection named after the stage.
STAGE_SELECTION = "<stage>"


def selection_file(split: str, name: str, root: str | Path = EXPERIMENTS) -> Path:
    """Where the settings selected for ``split`` under ``name`` live: ``<root>/selected/<split>/<name>.yaml``."""
    return Path(root) / "selected" / split / f"{name}.yaml"


def recipe_files(split: str, recipe: str | Path | None = None, root: str | Path = EXPERIMENTS) -> tuple[Path, Path]:
    """The stage-2 and stage-1 recipe files of ``split``: ``<root>/<recipe_name(split)>.yaml`` and its
    ``_backbone`` sibling, or, for a dataset of your own, the given stage-2 ``recipe`` file and the
    ``<stem>_backbone.yaml`` beside it."""
    if recipe is None:
        purls = Path(root) / f"{recipe_name(split)}.yaml"
    else:
        purls = Path(recipe)
    return purls, purls.with_name(f"{purls.stem}_backbone.yaml")


def experiment_files(
    split: str,
    stage: Stage = "purls",
    root: str | Path = EXPERIMENTS,
    selected: str | None = STAGE_SELECTION,
    recipe: str | Path | None = None,
) -> list[Path]:
    """The ``--config`` files of ``stage`` for ``split``, in composition order.

    Args:
        split: A registered split (or, with ``recipe``, any split name the recipe's data resolve).
        stage: ``purls``, ``global`` or ``backbone``.
        root: The experiments folder (bases, recipes, selections).
        selected: The selection whose settings come last, when its file exists (default: the one named
            after the stage); ``None``: none (what a selection trial itself runs).
        recipe: The stage-2 recipe of a dataset the catalog does not know (its ``_backbone`` sibling is
            stage 1's); default the catalogued dataset's recipe in ``root``.

    Raises:
        FileNotFoundError: when a file is missing, naming it.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    root = Path(root)
    purls_recipe, backbone_recipe = recipe_files(split, recipe, root)
    if stage == "backbone":
        files = [root / "backbone.yaml", backbone_recipe]
    else:
        files = [root / "purls.yaml", purls_recipe, *([root / "global.yaml"] if stage == "global" else [])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"experiment files {missing} of split {split!r} ({stage}) do not exist")
    if selected is not None and stage != "backbone":
        chosen = selection_file(split, stage if selected == STAGE_SELECTION else selected, root)
        files += [chosen] if chosen.is_file() else []
    return files


def experiment_args(
    split: str,
    stage: Stage = "purls",
    root: str | Path = EXPERIMENTS,
    selected: str | None = STAGE_SELECTION,
    recipe: str | Path | None = None,
) -> list[str]:
    """``["--config", <file>, ..., "--data.split=<split>"]`` for a LightningCLI of ``stage``
    (:func:`experiment_files`)."""
    args = [a for f in experiment_files(split, stage, root, selected, recipe) for a in ("--config", str(f))]
    return [*args, f"--data.split={split}"]


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Print the arguments of a run (or, with ``--backbone-path``, where its stage-1 export goes)."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl configs",
        description="The --config arguments that make up a run of a registered split (as `make train` runs it).",
    )
    parser.add_argument("split", help="a registered split, e.g. ntu120_96_24 or nw-ucla_random5_seed0")
    parser.add_argument("--stage", choices=STAGES, default="purls", help="which run (default: %(default)s)")
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
        out = experiment_args(args.split, args.stage, args.root)
    print(shlex.join(out))
    return out
