"""One training run as a typed request: the one place where the flags of a run that a command issues are spelled.

A :class:`RunRequest` says what a stage-1 (``backbone``) or stage-2 (``purls``, ``global``) run computes: its
experiment files (:func:`~purls_pl.apps.experiments.experiment_files`), its split (an object, rendered by
:func:`~purls_pl.apps.experiments.split_option`), seed, validation fold, epochs, overrides and the backbone it
reads; and where it goes: its root directory and where the data lie. :meth:`RunRequest.args` renders the
``fit ...`` argument list of ``python -m purls_pl [pretrain]``; :meth:`RunRequest.computed` is that list
without :meth:`RunRequest.volatile` (where a run writes, how it shows progress, where the data lie), which the
run pool's request hash reads (:mod:`purls_pl.apps.run_pool`).

A stage-1 run exports to :func:`~purls_pl.train.paths.backbone_export_path` of its run split (a selection
fold's is ``<split>-val<fold>``), seed and root; a stage-2 request reads one by naming its stage-1 request's
:attr:`RunRequest.export_path`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from purls_pl.apps.experiments import (
    EXPERIMENTS,
    STAGE_SELECTION,
    Stage,
    experiment_files,
    split_option,
    stage1_overrides,
)
from purls_pl.data.splits import ZeroShotSplit, selection_name
from purls_pl.train.paths import backbone_export_path

__all__ = ["DATA_ROOT", "RunRequest", "backbone_request", "take_data_root"]

#: The override that says where a dataset's files lie: which copy of the data a run reads, not what it computes.
DATA_ROOT = "--data.source.init_args.root="


def take_data_root(overrides: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """``overrides`` without the :data:`DATA_ROOT` ones, and the data root they give (the last; ``None``: none)."""
    root = None
    kept = []
    for arg in overrides:
        if arg.startswith(DATA_ROOT):
            root = arg.removeprefix(DATA_ROOT)
        else:
            kept.append(arg)
    return tuple(kept), root


@dataclass(frozen=True)
class RunRequest:
    """One run of either stage, as a command issues it (module docstring).

    Attributes:
        stage: ``backbone`` (stage 1, ``pretrain fit``), ``purls`` or ``global`` (stage 2, ``fit``).
        split: The split, resolved (rendered as ``--data.split=``, :func:`split_option`).
        seed: ``--seed_everything`` (a seed drives both stages).
        root_dir: ``--trainer.default_root_dir``; a stage-2 run's own directory, under which stage 1
            exports (:attr:`export_path`).
        overrides: ``--key=value`` overrides after the fixed flags, in order (a later one wins).
        fold: The validation fold of a selection run (``--data.protocol=select``); ``None``: a final run.
        max_epochs: A selection trial's epochs (``--trainer.max_epochs``), which ``overrides`` may replace.
        backbone: The stage-1 export a stage-2 run reads (``--model.backbone.checkpoint``).
        data_root: Where the dataset's files lie (:data:`DATA_ROOT`), when not the recipe's.
        experiments: The experiments folder the run composes its files from.
        recipe: The stage-2 recipe of a dataset of your own (:func:`experiment_files`).
        selected: The selection whose settings a stage-2 run composes (``None``: none, as a trial runs).
    """

    stage: Stage
    split: ZeroShotSplit
    seed: int
    root_dir: Path
    overrides: tuple[str, ...] = ()
    fold: int | None = None
    max_epochs: int | None = None
    backbone: Path | None = None
    data_root: str | None = None
    experiments: Path = EXPERIMENTS
    recipe: Path | None = None
    selected: str | None = STAGE_SELECTION

    def __post_init__(self) -> None:
        for name in ("root_dir", "experiments", "backbone", "recipe"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        if self.stage == "backbone" and self.backbone is not None:
            raise ValueError("a stage-1 request trains its backbone; it reads none")

    @property
    def command(self) -> Literal["pretrain", "fit"]:
        """``pretrain`` (stage 1) or ``fit`` (stage 2): the ``purls_pl`` command that runs :meth:`args`."""
        return "pretrain" if self.stage == "backbone" else "fit"

    @property
    def run_split(self) -> str:
        """The name of the split the run trains on: the split's, or its selection split's (``<split>-val<fold>``)."""
        return self.split.name if self.fold is None else selection_name(self.split.name, self.fold)

    @property
    def export_path(self) -> Path:
        """Where a stage-1 run exports its backbone (:func:`~purls_pl.train.paths.backbone_export_path`)."""
        if self.stage != "backbone":
            raise ValueError(f"a {self.stage} run exports no backbone")
        return backbone_export_path(self.run_split, self.seed, self.root_dir)

    @property
    def directory(self) -> Path:
        """The run's own directory (the run pool keeps its request record there): a stage-2 run's root, a stage-1
        run's folder beside its export (``.../seed<seed>/`` beside ``seed<seed>.pt``)."""
        if self.stage != "backbone":
            return self.root_dir
        return self.export_path.with_name(self.export_path.stem)

    def config_files(self) -> list[Path]:
        """The ``--config`` files, in composition order (:func:`experiment_files`; missing ones raise)."""
        return experiment_files(self.split, self.stage, self.experiments, self.selected, self.recipe)

    def computed(self) -> tuple[str, ...]:
        """What the run computes, as arguments: ``fit``, the config files, the split, the selection protocol,
        the seed, the epochs, the overrides and the backbone it exports or reads."""
        selection = () if self.fold is None else ("--data.protocol=select", f"--data.val_fold={self.fold}")
        if self.stage == "backbone":
            backbone: tuple[str, ...] = (f"--export.path={self.export_path}",)
        else:
            backbone = () if self.backbone is None else (f"--model.backbone.checkpoint={self.backbone}",)
        return (
            "fit",
            *(a for f in self.config_files() for a in ("--config", str(f))),
            split_option(self.split),
            *selection,
            f"--seed_everything={self.seed}",
            *(() if self.max_epochs is None else (f"--trainer.max_epochs={self.max_epochs}",)),
            *self.overrides,
            *backbone,
        )

    def volatile(self) -> tuple[str, ...]:
        """The arguments that change where the run reads and writes or how it shows progress, not what it computes."""
        return (
            *(() if self.data_root is None else (f"{DATA_ROOT}{self.data_root}",)),
            f"--trainer.default_root_dir={self.root_dir}",
            "--trainer.enable_progress_bar=false",
        )

    def args(self) -> tuple[str, ...]:
        """The full argument list: :meth:`computed`, then :meth:`volatile`."""
        return (*self.computed(), *self.volatile())


def backbone_request(
    split: ZeroShotSplit,
    seed: int,
    root_dir: Path,
    pretrain: Sequence[str],
    overrides: Sequence[str],
    fold: int | None = None,
    experiments: str | Path = EXPERIMENTS,
    recipe: str | Path | None = None,
) -> RunRequest:
    """The stage-1 run whose backbone stage-2 runs with ``overrides`` read: stage 1's own ``pretrain``
    overrides, then those of ``overrides`` that say which data a run reads (:func:`stage1_overrides`);
    ``fold``: a selection fold's backbone, trained without its validation classes."""
    args, data_root = take_data_root([*pretrain, *stage1_overrides(overrides)])
    return RunRequest(
        "backbone",
        split,
        seed,
        root_dir,
        args,
        fold=fold,
        data_root=data_root,
        experiments=Path(experiments),
        recipe=None if recipe is None else Path(recipe),
    )
