"""Description sets: the 8 texts per class that PURLS aligns skeletons with.

A description set is a JSON file (``descriptions/<name>.json``)::

    {"name": "ntu120",
     "fields": ["head", "hands", "torso", "legs", "start", "middle", "end", "global"],
     "produced_by": {...how it was written...},
     "classes": [{"label": "drink water", "head": "...", ..., "global": "..."}, ...]}

Each field holds a short verb phrase that reads after "The person would ..." (paper Tables 1-2).
A field may also hold a list of alternative answers; their embeddings are averaged (supplement
Sec. 2.1, Table 2). :meth:`DescriptionSet.with_alternatives` keeps the first ``k`` of them and
:func:`merge_descriptions` joins several sets into one with more answers per field. Loading validates
the set against the class list a run needs and names exactly what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purls_pl.data.catalog import card
from purls_pl.data.demo import demo_descriptions
from purls_pl.storage import atomic_write_json
from purls_pl.text.fields import FIELDS

Texts = tuple[str, ...]


class DescriptionError(ValueError):
    """A description set is malformed or does not cover the classes a run needs."""


def _normalise_label(label: str) -> str:
    return " ".join(label.replace("’", "'").lower().split())


@dataclass(frozen=True)
class DescriptionSet:
    """Descriptions keyed by class label.

    Attributes:
        name: Set name (usually the dataset key).
        entries: ``label -> field -> texts`` (one or more alternative answers per field).
        produced_by: Free-form provenance record kept with the file.
        source: Where the set was loaded from, for error messages.
    """

    name: str
    entries: Mapping[str, Mapping[str, Texts]]
    produced_by: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        name: str,
        produced_by: Mapping[str, Any] | None = None,
        source: str = "<memory>",
    ) -> DescriptionSet:
        """Build a set from ``[{"label": ..., "head": ..., ...}]`` records; fields may be str or list."""
        entries: dict[str, dict[str, Texts]] = {}
        for i, record in enumerate(records):
            if "label" not in record:
                raise DescriptionError(f"{source}: class entry #{i} has no 'label' field")
            label = str(record["label"])
            texts: dict[str, Texts] = {}
            for f in FIELDS:
                value = record.get(f)
                if value is None:
                    continue
                values = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
                values = tuple(v.strip() for v in values if v and v.strip())
                if values:
                    texts[f] = values
            if label in entries:
                raise DescriptionError(f"{source}: class {label!r} appears twice")
            entries[label] = texts
        return cls(name=name, entries=entries, produced_by=dict(produced_by or {}), source=source)

    @classmethod
    def label_only(cls, class_names: Sequence[str], name: str = "labels") -> DescriptionSet:
        """Every field is the label itself: the paper's "Global (Original)" baseline text."""
        records = [{"label": c, **{f: c for f in FIELDS}} for c in class_names]
        return cls.from_records(records, name=name, produced_by={"method": "label-only: every field is the label"})

    def missing(self, class_names: Sequence[str]) -> dict[str, list[str]]:
        """``{label: [missing fields]}`` for every requested class that is not fully described."""
        lookup = {_normalise_label(k): v for k, v in self.entries.items()}
        out: dict[str, list[str]] = {}
        for label in class_names:
            texts = self.entries.get(label) or lookup.get(_normalise_label(label))
            if texts is None:
                out[label] = list(FIELDS)
            else:
                absent = [f for f in FIELDS if f not in texts]
                if absent:
                    out[label] = absent
        return out

    def validate(self, class_names: Sequence[str]) -> None:
        """Raise :class:`DescriptionError` listing every missing class and field."""
        missing = self.missing(class_names)
        if not missing:
            return
        lines = [
            f"  - {label!r}: " + ("no entry" if len(fields) == len(FIELDS) else "missing " + ", ".join(fields))
            for label, fields in missing.items()
        ]
        raise DescriptionError(
            f"description set {self.name!r} ({self.source}) does not cover {len(missing)} of "
            f"{len(class_names)} classes:\n" + "\n".join(lines) + "\nAdd the entries to the file, generate them "
            "with `python -m purls_pl describe`, or use label-only text (`descriptions: labels`)."
        )

    def texts_for(self, class_names: Sequence[str]) -> list[dict[str, Texts]]:
        """The 8 fields of each class, in ``class_names`` order (validated)."""
        self.validate(class_names)
        lookup = {_normalise_label(k): v for k, v in self.entries.items()}
        return [dict(self.entries.get(c) or lookup[_normalise_label(c)]) for c in class_names]

    def with_alternatives(self, k: int) -> DescriptionSet:
        """The set with only the first ``k`` answers of every field (``k >= 1``).

        Args:
            k: Answers kept per field; fields with fewer keep all they have.
        """
        if k < 1:
            raise ValueError(f"keep at least one answer per field (k >= 1); got {k}")
        entries = {label: {f: v[:k] for f, v in texts.items()} for label, texts in self.entries.items()}
        return DescriptionSet(self.name, entries, {**self.produced_by, "alternatives_kept": k}, self.source)

    def alternatives_per_field(self) -> dict[str, tuple[int, int]]:
        """``field -> (fewest, most)`` answers over the classes (fields no class has are left out)."""
        counts: dict[str, list[int]] = {}
        for texts in self.entries.values():
            for f, v in texts.items():
                counts.setdefault(f, []).append(len(v))
        return {f: (min(counts[f]), max(counts[f])) for f in FIELDS if f in counts}

    def to_json(self) -> dict[str, Any]:
        classes = [
            {"label": label, **{f: (v[0] if len(v) == 1 else list(v)) for f, v in texts.items()}}
            for label, texts in self.entries.items()
        ]
        return {"name": self.name, "fields": list(FIELDS), "produced_by": dict(self.produced_by), "classes": classes}


def load_descriptions(path: str | Path) -> DescriptionSet:
    """Read a description set JSON file (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"description file {path} does not exist; shipped sets live in descriptions/ "
            "(ntu120.json, kinetics400.json, nw-ucla.json), or generate one with `python -m purls_pl describe`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DescriptionError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), list):
        raise DescriptionError(
            f"{path}: expected an object with a 'classes' list of {{label, {', '.join(FIELDS)}}}; a file written by "
            "hand ({label: {field: text}}, a list of records, csv or xlsx) converts with "
            f"`python -m purls_pl import-descriptions {path} --out {path.with_name(path.stem + '-set.json')}`"
        )
    return DescriptionSet.from_records(
        raw["classes"], name=str(raw.get("name", path.stem)), produced_by=raw.get("produced_by", {}), source=str(path)
    )


def merge_descriptions(sets: Sequence[DescriptionSet], name: str | None = None) -> DescriptionSet:
    """One set whose every field holds the answers of all ``sets`` in order (exact repeats dropped).

    Args:
        sets: Description sets; labels are matched loosely (case, spacing, apostrophes) and spelt as in
            the first set that has them.
        name: Name of the merged set (default: the first set's).
    """
    if not sets:
        raise ValueError("merge needs at least one description set")
    merged: dict[str, dict[str, list[str]]] = {}
    spelling: dict[str, str] = {}
    for ds in sets:
        for label, texts in ds.entries.items():
            key = _normalise_label(label)
            target = merged.setdefault(spelling.setdefault(key, label), {})
            for f, values in texts.items():
                kept = target.setdefault(f, [])
                kept.extend(v for v in values if v not in kept)
    records = [{"label": label, **texts} for label, texts in merged.items()]
    produced_by = {
        "method": "merged: the answers of each source, in order",
        "sources": [{"name": ds.name, "source": ds.source, "produced_by": dict(ds.produced_by)} for ds in sets],
    }
    return DescriptionSet.from_records(records, name=name or sets[0].name, produced_by=produced_by)


def project_descriptions_dir() -> Path:
    """``descriptions/`` of the checkout (``src/purls_pl/text/`` -> repository root)."""
    return Path(__file__).resolve().parents[3] / "descriptions"


def resolve_descriptions(spec: str | Path, dataset: str | None, class_names: Sequence[str]) -> DescriptionSet:
    """The description set a run or report names, validated against ``class_names``.

    Args:
        spec: A JSON file; ``auto`` (the set shipped for ``dataset`` in ``descriptions/``); ``labels``
            (label-only text: every field is the label); or ``demo`` (the synthetic demo's set).
        dataset: Dataset key, for ``auto``.
        class_names: The classes the set must cover.

    Raises:
        FileNotFoundError: the file does not exist.
        DescriptionError: the set does not cover every class (naming each missing class and field).
    """
    spec = str(spec)
    if spec == "labels":
        return DescriptionSet.label_only(class_names)
    if spec == "demo":
        return DescriptionSet.from_records(demo_descriptions(), name="demo", source="purls_pl.data.demo")
    path = Path(spec)
    if spec == "auto":
        file = card(dataset).descriptions if dataset else None
        if file is None:
            raise ValueError(f"no shipped description set for dataset {dataset!r}; pass a description file instead")
        path = Path("descriptions") / file
        if not path.is_file():
            path = project_descriptions_dir() / file
    descriptions = load_descriptions(path)
    descriptions.validate(class_names)
    return descriptions


def save_descriptions(descriptions: DescriptionSet, path: str | Path) -> None:
    """Write ``descriptions`` as JSON atomically (temp file, then rename)."""
    atomic_write_json(path, descriptions.to_json())
