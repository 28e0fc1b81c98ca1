"""The shipped description sets cover every class of the paper's datasets with real, specific texts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from purls_pl.data.catalog import class_names
from purls_pl.text.descriptions import DescriptionSet, load_descriptions
from purls_pl.text.fields import FIELDS

DESCRIPTIONS = Path(__file__).resolve().parents[2] / "descriptions"
#: Shipped file -> datasets whose classes it must cover (ntu60 and kinetics200 are prefixes of the larger sets).
SHIPPED = {
    "ntu120": ("ntu120", "ntu60"),
    "kinetics400": ("kinetics400", "kinetics200"),
    "nw-ucla": ("nw-ucla",),
    "nw-ucla-multi": ("nw-ucla",),
    "penn-action": ("penn-action",),
}
#: A text shared by more classes than this is a template, not a description.
MAX_SHARED = 5


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split()).rstrip(".")


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request: pytest.FixtureRequest) -> tuple[str, DescriptionSet]:
    return request.param, load_descriptions(DESCRIPTIONS / f"{request.param}.json")


def test_every_class_has_all_eight_fields(shipped: tuple[str, DescriptionSet]) -> None:
    name, descriptions = shipped
    for dataset in SHIPPED[name]:
        names = class_names(dataset)
        descriptions.validate(names)  # raises, listing every missing class and field
        texts = descriptions.texts_for(names)
        assert all(t for entry in texts for f in FIELDS for t in entry[f]), f"{name}: empty text for {dataset}"


def test_provenance_is_recorded(shipped: tuple[str, DescriptionSet]) -> None:
    name, descriptions = shipped
    assert descriptions.produced_by.get("method"), f"descriptions/{name}.json: produced_by.method is missing"
    assert descriptions.produced_by.get("date"), f"descriptions/{name}.json: produced_by.date is missing"


def test_no_field_is_a_trivial_template(shipped: tuple[str, DescriptionSet]) -> None:
    name, descriptions = shipped
    problems: list[str] = []
    for f in FIELDS:
        counts = Counter(_norm(t) for texts in descriptions.entries.values() for t in texts.get(f, ()))
        problems += [f"{f} {text!r} is used by {n} classes" for text, n in counts.items() if n > MAX_SHARED]
    for label, texts in descriptions.entries.items():
        problems += [f"{label!r}.{f} is just the label" for f in FIELDS if _norm(label) in map(_norm, texts[f])]
    assert not problems, f"descriptions/{name}.json:\n" + "\n".join(problems[:20])


def test_multi_answer_set_extends_the_single_one() -> None:
    multi = load_descriptions(DESCRIPTIONS / "nw-ucla-multi.json")
    single = load_descriptions(DESCRIPTIONS / "nw-ucla.json")
    assert set(multi.alternatives_per_field().values()) == {(3, 3)}, "three answers in every field of every class"
    first = multi.with_alternatives(1)
    assert {k: dict(v) for k, v in first.entries.items()} == {k: dict(v) for k, v in single.entries.items()}
    repeated = [(c, f) for c, texts in multi.entries.items() for f, v in texts.items() if len(set(map(_norm, v))) < 3]
    assert not repeated, f"answers repeat within a field: {repeated}"
