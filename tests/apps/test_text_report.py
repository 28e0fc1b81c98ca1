"""``python -m purls_pl text-report`` end to end on NW-UCLA's classes with the tiny random CLIP."""

import json

import pytest

from purls_pl.apps import commands
from purls_pl.apps.text_report import REPORT_JSON, REPORT_MD, build_report
from purls_pl.text.fields import FIELDS, GLOBAL
from purls_pl.text.levers import TextOptions

UNSEEN = ["pick up with two hands", "walk around", "sit down", "donning", "throw"]  # nw-ucla_5_5


def test_command_compares_label_only_and_descriptions(tiny_clip, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["--dataset", "nw-ucla", "--split", "nw-ucla_5_5", "--text-model", str(tiny_clip), "--out", str(out)]
    reports = commands.main(["text-report", "--descriptions", "labels", "auto", *args, "--no-figures"])
    labels, described = reports["labels_tiny-clip0"], reports["auto_tiny-clip0"]
    assert (out / "comparison.md").is_file() and (out / "auto_tiny-clip0" / REPORT_MD).is_file()
    saved = json.loads((out / "labels_tiny-clip0" / REPORT_JSON).read_text())
    assert saved["unseen"] == UNSEEN and saved["setup"]["templates"] == "label"
    assert described["setup"]["templates"] == "paper" and described["setup"]["alternatives_per_field"]["head"] == [1, 1]
    for f in FIELDS:  # label-only text with the label template is exactly the label embedding
        assert labels["per_field"][f]["label"]["own"] == pytest.approx(1.0)
        assert labels["per_field"][f]["label"]["top1"] == 1.0
        assert labels["per_field"][f]["unseen"]["pairs"] == 10
        assert labels["per_field"][f]["unseen_vs_seen"]["pairs"] == 25
    margins = {labels["per_field"][f]["all"]["relative_margin"] for f in FIELDS}
    assert max(margins) - min(margins) < 1e-9, "label-only text: every field is the same"
    assert "Every field has the same separability" in capsys.readouterr().out
    md = (out / "auto_tiny-clip0" / REPORT_MD).read_text()
    assert "## Unseen classes among themselves" in md and "| donning |" in md and "## Near-duplicate texts" in md
    assert "| labels_tiny-clip0 |" in (out / "comparison.md").read_text()


def test_label_mix_one_replaces_the_global_field_only(tiny_clip):
    plain, _ = build_report("auto", "nw-ucla", str(tiny_clip))
    mixed, emb = build_report("auto", "nw-ucla", str(tiny_clip), options=TextOptions(label_mix=1.0))
    assert mixed["per_field"][GLOBAL]["label"]["own"] == pytest.approx(1.0)
    assert mixed["per_field"][GLOBAL]["label"]["top1"] == 1.0 and mixed["setup"]["options"]["label_mix"] == 1.0
    assert mixed["per_field"]["legs"] == plain["per_field"]["legs"]
    assert emb.shape[:2] == (10, len(FIELDS)) and "unseen" not in mixed["per_field"]["legs"]


def test_figures_and_bad_input(tiny_clip, tmp_path, repo):
    out = tmp_path / "one"
    multi = str(repo / "descriptions" / "nw-ucla-multi.json")
    args = ["--dataset", "nw-ucla", "--text-model", str(tiny_clip), "--templates", "labelled", "--split", "nw-ucla_8_2"]
    commands.main(["text-report", *args, "--alternatives", "2", "--descriptions", multi, "--out", str(out)])
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["setup"]["templates"] == "labelled" and report["setup"]["alternatives_per_field"]["end"] == [2, 2]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted([*(f"similarity_{f}.png" for f in FIELDS), "separability.png"])
    assert all((out / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    with pytest.raises(ValueError, match="split 'demo_15_5' is a split of 'demo'"):
        build_report("labels", "nw-ucla", str(tiny_clip), split="demo_15_5")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_report(str(tmp_path / "nope.json"), "nw-ucla", str(tiny_clip))


def test_a_dataset_of_your_own_with_unseen_names(tiny_clip, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("wave\nkick\njump\n")
    records = [{"label": c, **{f: f"{f} of {c}" for f in FIELDS}} for c in ("wave", "kick", "jump")]
    (tmp_path / "mine.json").write_text(json.dumps({"name": "mine", "classes": records}))
    report, _ = build_report(str(tmp_path / "mine.json"), str(classes), str(tiny_clip), unseen_names=["jump", "wave"])
    assert report["classes"] == ["wave", "kick", "jump"] and report["unseen"] == ["wave", "jump"]
    assert report["per_field"][GLOBAL]["unseen_vs_seen"]["pairs"] == 2
    with pytest.raises(ValueError, match=r"\['run'\] are not classes"):
        build_report("labels", str(classes), str(tiny_clip), unseen_names=["run"])
