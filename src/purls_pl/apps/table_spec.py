"""The table spec: what a table runs (the YAML form is in :mod:`purls_pl.apps.table`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from purls_pl.apps.experiments import EXPERIMENTS, run_split, stage2_stages
from purls_pl.data.splits import ZeroShotSplit

__all__ = ["Row", "SelectionSpec", "SplitUnit", "TableSpec"]


def read_spec(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The spec file's keys, after those of the spec it ``extends`` (module docstring of the table runner)."""
    if path.resolve() in _seen:
        raise ValueError(f"table spec {path}: 'extends' forms a cycle through {[str(p) for p in _seen]}")
    if not path.is_file():
        raise FileNotFoundError(f"table spec {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base = read_spec(path.parent / base_name, (*_seen, path.resolve()))
    selections = {**(base.get("selections") or {}), **(raw.get("selections") or {})}
    return {**base, **raw, "selections": selections}


@dataclass
class SelectionSpec:
    """A method whose settings are chosen on validation classes: its experiment files (``stage``), its own
    overrides and the search (``{config key: values}``, in search order)."""

    stage: str = "purls"
    args: list[str] = field(default_factory=list)
    search: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class Row:
    """One line of the table: the selection it takes its method and settings from, plus its own overrides
    (an ablation of the selected method). Without a selection: the recipe's settings, ``stage`` purls."""

    name: str
    select: str | None = None
    args: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "".join(c if c.isascii() and c.isalnum() else "_" for c in self.name.lower()).strip("_")


@dataclass(frozen=True)
class SplitUnit:
    """A split a table runs, resolved: its seeds and, for a random class fold, the paper split it goes with.

    Attributes:
        split: The split (rendered into each run's ``--data.split``).
        seeds: The seeds of its runs (a seed drives both stages).
        fold_of: The paper split whose random class fold this is (``None``: a paper split).
    """

    split: ZeroShotSplit
    seeds: tuple[int, ...]
    fold_of: ZeroShotSplit | None = None


@dataclass
class TableSpec:
    """What to run (see the module docstring for the YAML form)."""

    name: str
    splits: list[str]
    seeds: list[int]
    rows: list[Row]
    folds: dict[str, int] = field(default_factory=dict)
    fold_seeds: list[int] = field(default_factory=lambda: [0])
    select: dict[str, Any] = field(default_factory=dict)
    selections: dict[str, SelectionSpec] = field(default_factory=dict)
    common: list[str] = field(default_factory=list)
    pretrain: list[str] = field(default_factory=list)
    experiments: str = str(EXPERIMENTS)
    recipe: str | None = None
    note: str = ""
    reference: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> TableSpec:
        """Read a spec; ``extends: <spec file>`` (relative to this one) starts from another spec's keys,
        which this file's keys replace (``selections`` are merged by name)."""
        raw = read_spec(Path(path))
        required = ("name", "seeds", "rows") if raw.get("recipe") else ("name", "splits", "seeds", "rows")
        missing = [k for k in required if k not in raw]
        if missing:
            raise ValueError(f"table spec {path} is missing {missing}; see purls_pl.apps.table's docstring")
        selections = {}
        known = stage2_stages(raw.get("experiments", EXPERIMENTS))
        for name, s in (raw.get("selections") or {}).items():
            unknown = sorted(set(s) - {"stage", "args", "search"})
            if unknown:
                raise ValueError(f"table spec {path}: selections.{name} has unknown keys {unknown}")
            if s.get("stage", "purls") not in known:
                raise ValueError(
                    f"table spec {path}: selections.{name}.stage is {s.get('stage')!r}; the stages of "
                    f"{raw.get('experiments', EXPERIMENTS)} are {known} (a method's stage is its experiment file)"
                )
            selections[str(name)] = SelectionSpec(
                str(s.get("stage", "purls")), list(s.get("args", [])), s.get("search", {})
            )
        rows = []
        for i, r in enumerate(raw["rows"]):
            unknown = sorted(set(r) - {"name", "select", "args"})
            if unknown:
                raise ValueError(f"table spec {path}: rows[{i}] has unknown keys {unknown}")
            if r.get("select") is not None and r["select"] not in selections:
                raise ValueError(
                    f"table spec {path}: rows[{i}] selects {r['select']!r}, not one of {sorted(selections)}"
                )
            rows.append(Row(str(r["name"]), r.get("select"), list(r.get("args", []))))
        reference = raw.get("reference")
        if reference is not None and reference not in [r.name for r in rows]:
            raise ValueError(
                f"table spec {path}: reference {reference!r} is not a row; name one of {[r.name for r in rows]}"
            )
        return cls(
            name=str(raw["name"]),
            splits=list(raw.get("splits") or []),
            seeds=[int(s) for s in raw["seeds"]],
            rows=rows,
            folds={str(k): int(v) for k, v in (raw.get("folds") or {}).items()},
            fold_seeds=[int(s) for s in raw.get("fold_seeds", [0])],
            select=dict(raw.get("select") or {}),
            selections=selections,
            common=list(raw.get("common", [])),
            pretrain=list(raw.get("pretrain", [])),
            experiments=str(raw.get("experiments", EXPERIMENTS)),
            recipe=raw.get("recipe"),
            note=str(raw.get("note", "")),
            reference=None if reference is None else str(reference),
        )

    def resolve(self, overrides: Sequence[str] = ()) -> list[SplitUnit]:
        """Every split the table runs, resolved (and registered by name) once, in this process
        (:func:`~purls_pl.apps.experiments.run_split`; without ``splits``, the recipe's ``data.split``): the
        paper splits with ``seeds``, then the random class folds of each (``folds``) with ``fold_seeds``.

        Args:
            overrides: The table's ``--set`` overrides (``common`` ones are added), e.g. the data root.
        """
        options = [*self.common, *overrides]
        papers = [run_split(s, self.recipe, options) for s in self.splits or [None]]
        folds = [
            SplitUnit(paper.random_fold(f), tuple(self.fold_seeds), paper)
            for paper in papers
            for f in range(self.folds.get(paper.name, 0))
        ]
        return [SplitUnit(paper, tuple(self.seeds)) for paper in papers] + folds

    def stage_and_args(self, row: Row) -> tuple[str, list[str]]:
        """A row's experiment stage and overrides: its selection's, then its own."""
        if row.select is None:
            return "purls", list(row.args)
        chosen = self.selections[row.select]
        return chosen.stage, [*chosen.args, *row.args]
