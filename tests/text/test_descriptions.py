import json

import pytest

from purls_pl.text.descriptions import DescriptionError, DescriptionSet, load_descriptions, save_descriptions
from purls_pl.text.fields import FIELDS


def _record(label: str, **override: str) -> dict:
    return {"label": label, **{f: f"{f} of {label}" for f in FIELDS}, **override}


def test_validation_lists_exactly_what_is_missing(tmp_path):
    rec = _record("wave")
    del rec["legs"], rec["end"]
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"name": "t", "classes": [rec, _record("kick")]}))
    ds = load_descriptions(path)
    assert ds.missing(["wave", "kick", "jump"]) == {"wave": ["legs", "end"], "jump": list(FIELDS)}
    with pytest.raises(DescriptionError) as err:
        ds.validate(["wave", "kick", "jump"])
    msg = str(err.value)
    assert str(path) in msg and "'wave': missing legs, end" in msg and "'jump': no entry" in msg
    assert "2 of 3 classes" in msg


def test_labels_match_loosely_and_order_follows_the_request():
    ds = DescriptionSet.from_records([_record("Grab other person’s stuff"), _record("kick")], name="t")
    texts = ds.texts_for(["kick", "grab other person's stuff"])
    assert texts[0]["head"] == ("head of kick",)
    assert texts[1]["global"] == ("global of Grab other person’s stuff",)


def test_alternatives_and_empty_fields():
    ds = DescriptionSet.from_records([_record("wave", head=["nod", "tilt"], hands="  ")], name="t")
    assert ds.entries["wave"]["head"] == ("nod", "tilt")
    assert ds.missing(["wave"]) == {"wave": ["hands"]}


def test_label_only_and_round_trip(tmp_path):
    ds = DescriptionSet.label_only(["a b", "c"])
    assert all(ds.entries["c"][f] == ("c",) for f in FIELDS)
    save_descriptions(ds, tmp_path / "x.json")
    again = load_descriptions(tmp_path / "x.json")
    assert again.entries == ds.entries and again.produced_by["method"].startswith("label-only")


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="describe"):
        load_descriptions(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DescriptionError, match="bad.json"):
        load_descriptions(bad)
    bad.write_text(json.dumps({"classes": [{"head": "x"}]}))
    with pytest.raises(DescriptionError, match="entry #0 has no 'label'"):
        load_descriptions(bad)
    bad.write_text(json.dumps({"classes": [_record("a"), _record("a")]}))
    with pytest.raises(DescriptionError, match="twice"):
        load_descriptions(bad)
