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


def test_keep_the_first_answers_and_count_them():
    ds = DescriptionSet.from_records([_record("wave", head=["nod", "tilt", "turn"]), _record("kick")], name="t")
    assert ds.alternatives_per_field()["head"] == (1, 3)
    two = ds.with_alternatives(2)
    assert two.entries["wave"]["head"] == ("nod", "tilt") and two.entries["kick"]["head"] == ("head of kick",)
    assert two.produced_by["alternatives_kept"] == 2 and ds.entries["wave"]["head"] == ("nod", "tilt", "turn")
    with pytest.raises(ValueError, match="k >= 1"):
        ds.with_alternatives(0)


def test_merge_joins_answers_in_order_and_records_sources(tmp_path):
    from purls_pl.text.descriptions import merge_descriptions

    a = DescriptionSet.from_records([_record("Wave"), _record("kick")], name="a", produced_by={"method": "A"})
    b = DescriptionSet.from_records([_record("wave", head="nod"), _record("jump")], name="b")
    merged = merge_descriptions([a, b])
    assert merged.entries["Wave"]["head"] == ("head of Wave", "nod"), "loose label match, first spelling kept"
    assert merged.entries["Wave"]["legs"] == ("legs of Wave", "legs of wave")
    assert set(merged.entries) == {"Wave", "kick", "jump"} and merged.name == "a"
    assert [s["name"] for s in merged.produced_by["sources"]] == ["a", "b"]
    assert merge_descriptions([a, a]).entries["kick"]["head"] == ("head of kick",), "exact repeats are dropped"
    with pytest.raises(ValueError):
        merge_descriptions([])


def test_resolve_descriptions_auto_labels_and_files(tmp_path, monkeypatch):
    from purls_pl.data.catalog import class_names
    from purls_pl.text.descriptions import resolve_descriptions

    monkeypatch.chdir(tmp_path)  # 'auto' falls back to the checkout's descriptions/
    names = class_names("nw-ucla")
    assert resolve_descriptions("auto", "nw-ucla", names).name == "nw-ucla"
    assert resolve_descriptions("labels", None, names).entries["throw"]["legs"] == ("throw",)
    path = tmp_path / "part.json"
    path.write_text(json.dumps({"name": "p", "classes": [_record("throw")]}))
    with pytest.raises(DescriptionError, match=r"(?s)part\.json.*'carry': no entry"):
        resolve_descriptions(path, "nw-ucla", names)
    with pytest.raises(ValueError, match="no shipped description set for dataset 'demo'"):
        resolve_descriptions("auto", "demo", names)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        resolve_descriptions("missing.json", "nw-ucla", names)


def test_merge_command_writes_a_multi_answer_file(tmp_path, capsys):
    from purls_pl.apps import commands

    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    save_descriptions(DescriptionSet.from_records([_record("wave")], name="a"), a)
    save_descriptions(DescriptionSet.from_records([_record("wave", head="nod")], name="b"), b)
    commands.main(["merge-descriptions", str(a), str(b), "--out", str(out)])
    assert load_descriptions(out).entries["wave"]["head"] == ("head of wave", "nod")
    assert "up to 2 answers per field" in capsys.readouterr().out
    commands.main(["merge-descriptions", str(out), "--out", str(out), "--alternatives", "1"])
    assert load_descriptions(out).entries["wave"]["head"] == ("head of wave",)
