"""Importing description tables (.xlsx / .csv), class lists, and the validate-descriptions command."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from purls_pl.text.descriptions import load_descriptions
from purls_pl.text.fields import FIELDS
from purls_pl.text.llm import importers
from purls_pl.text.llm.importers import clean_text, read_description_table, resolve_classes

HEADER = ["ID", "Action Label", "HEAD", "hands ", "Torso", "Legs", "Start", "Middle", "End", "Global Description"]
ROWS = [
    ["A001", "drink water", "Tilt back.", "Lift a cup.", "Stay upright.", "Stand still.", "Grasp the cup.",
     "Tip the cup.", "Lower the cup.", "The person would raise a cup to the mouth."],
    ["A002", "hand waving", "Face forward.", "Swing one hand side to side.", "Stay still.", "Stand.", "Raise a hand.",
     "Wave it.", "Lower it.", "Wave one raised hand from side to side."],
    [None, None, None, None, None, None, None, None, None, None],
    ["A003", "kicking something", "Look at the target.", "Swing for balance.", "Lean back.", "Kick one leg out.",
     "Step forward.", "Swing the leg.", "Strike the target.", "Swing one leg forward to kick an object."],
]  # fmt: skip
EXPECTED_DRINK = {
    "head": ("tilt back",),
    "hands": ("lift a cup",),
    "torso": ("stay upright",),
    "legs": ("stand still",),
    "start": ("grasp the cup",),
    "middle": ("tip the cup",),
    "end": ("lower the cup",),
    "global": ("raise a cup to the mouth",),
}


def write_workbook(path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "NTU-120"
    sheet.append(["GPT-3 descriptions of NTU RGB+D 120"])  # a title row above the header
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    other = book.create_sheet("NW-UCLA")
    other.append(["Label", *FIELDS])
    other.append(["walk around", *[f"{f} text" for f in FIELDS]])
    book.save(path)


def test_xlsx_round_trip_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table, out = tmp_path / "gpt3 desc.xlsx", tmp_path / "ntu.json"
    write_workbook(table)
    importers.import_main([str(table), "--sheet", "ntu120", "--out", str(out), "--name", "ntu-import"])
    loaded = load_descriptions(out)
    assert loaded.name == "ntu-import"
    assert list(loaded.entries) == ["drink water", "hand waving", "kicking something"]
    assert dict(loaded.entries["drink water"]) == EXPECTED_DRINK
    assert loaded.produced_by["sheet"] == "NTU-120" and loaded.produced_by["columns"]["Global Description"] == "global"
    assert "wrote 3 classes" in capsys.readouterr().out
    other = read_description_table(table, sheet="nw-ucla")
    assert other.name == "NW-UCLA" and other.entries["walk around"]["legs"] == ("legs text",)
    with pytest.raises(ValueError, match="choose one with --sheet"):
        read_description_table(table)
    with pytest.raises(ValueError, match="no sheet 'kinetics'"):
        read_description_table(table, sheet="kinetics")


def test_csv_round_trip(tmp_path: Path) -> None:
    first = read_description_table(_write_csv(tmp_path / "a.csv", HEADER, ROWS))
    rows = [[label, *(texts[f][0] for f in FIELDS)] for label, texts in first.entries.items()]
    second = read_description_table(_write_csv(tmp_path / "b.csv", ["label", *FIELDS], rows, delimiter=";"))
    assert {k: dict(v) for k, v in second.entries.items()} == {k: dict(v) for k, v in first.entries.items()}
    assert dict(first.entries["drink water"]) == EXPECTED_DRINK and first.name == "a"


def _write_csv(path: Path, header: list[str], rows: list[list[str | None]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows([["" if c is None else c for c in r] for r in rows])
    return path


def test_bad_tables_name_file_column_and_fix(tmp_path: Path) -> None:
    no_legs = _write_csv(tmp_path / "no_legs.csv", [h for h in HEADER if h != "Legs"], [r[:5] + r[6:] for r in ROWS])
    with pytest.raises(ValueError, match=r"no_legs\.csv.*legs.*header row"):
        read_description_table(no_legs)
    gap = [list(r) for r in ROWS]
    gap[1][7] = ""
    holey = _write_csv(tmp_path / "holey.csv", HEADER, gap)
    with pytest.raises(ValueError, match=r"(?s)row 3 \('hand waving'\): empty middle.*--allow-missing"):
        read_description_table(holey)
    partial = read_description_table(holey, allow_missing=True)
    assert partial.missing(["hand waving", "drink water"]) == {"hand waving": ["middle"]}
    with pytest.raises(ValueError, match="unsupported table format"):
        read_description_table(_write_csv(tmp_path / "x.ods", HEADER, ROWS))


def test_missing_openpyxl_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "t.xlsx"
    table.write_bytes(b"not really a workbook")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(ModuleNotFoundError, match="pip install openpyxl"):
        read_description_table(table)


def test_resolve_classes_from_file_json_and_dataset(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("# my classes\ndrink water\n\n  jump up  \n")
    assert resolve_classes(str(txt)) == (["drink water", "jump up"], "mine")
    js = tmp_path / "list.json"
    js.write_text(json.dumps(["a", "b"]))
    assert resolve_classes(str(js)) == (["a", "b"], "list")
    names, set_name = resolve_classes("nw-ucla")
    assert len(names) == 10 and set_name == "nw-ucla"
    txt.write_text("a\nA\n")
    with pytest.raises(ValueError, match="twice"):
        resolve_classes(str(txt))
    with pytest.raises(ValueError, match="neither an existing file nor a known dataset"):
        resolve_classes("no-such-dataset")


def test_validate_command_lists_missing_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "full.json"
    importers.import_main([str(_write_csv(tmp_path / "t.csv", HEADER, ROWS)), "--out", str(full)])
    classes = tmp_path / "classes.txt"
    classes.write_text("drink water\nhand waving\n")
    capsys.readouterr()
    importers.validate_main([str(full), "--classes", str(classes)])
    assert capsys.readouterr().out.startswith("OK ")
    data = json.loads(full.read_text())
    del data["classes"][1]["torso"]
    full.write_text(json.dumps(data))
    classes.write_text("drink water\nhand waving\nsit down\n")
    with pytest.raises(SystemExit) as info:
        importers.validate_main([str(full), "--classes", str(classes)])
    assert info.value.code == 1
    printed = capsys.readouterr().out
    assert "'hand waving': missing torso" in printed and "'sit down': no entry" in printed
    assert "2 of 3 classes" in printed


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("The person would raise a cup.", "raise a cup"),
        ("  **Turn towards the other person.** ", "turn towards the other person"),
        ("- would: Nod.", "nod"),
        ("TV remote is lifted.", "TV remote is lifted"),
        ("{text}", ""),
        ("...", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_hand_written_json_in_three_shapes_and_its_errors(tmp_path):
    from purls_pl.text.llm.importers import read_description_table

    entry = {f: f"{f} text" for f in FIELDS}
    shapes = {
        "project.json": {"classes": [{"label": "wave", **entry}]},
        "list.json": [{"label": "wave", **entry}],
        "mapping.json": {"wave": entry},
    }
    for name, content in shapes.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        assert read_description_table(path).entries["wave"]["legs"] == ("legs text",)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"label": "wave", **entry, "leg": "typo"}]))
    with pytest.raises(ValueError, match=r"bad\.json, classes\[0\] \('wave'\): unknown keys \['leg'\]"):
        read_description_table(bad)
    bad.write_text(json.dumps([{"label": "wave", "head": "nod"}]))
    with pytest.raises(ValueError, match=r"classes\[0\] \('wave'\): empty hands, torso"):
        read_description_table(bad)
    assert read_description_table(bad, allow_missing=True).entries["wave"]["head"] == ("nod",)
