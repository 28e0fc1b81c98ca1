"""The table runner: selections on validation classes, stage 1 per seed, every (split, row, seed) run,
random class folds, resumable with request hashes, aggregated with intervals and chance levels."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from purls_pl.apps.experiments import stage2_stages
from purls_pl.apps.options import parse_options, render_options
from purls_pl.apps.run_pool import PoolOptions, RunPool
from purls_pl.apps.table import TableOptions, plan_table, run_table
from purls_pl.apps.table_report import aggregate, summary
from purls_pl.apps.table_spec import TableSpec
from purls_pl.data.splits import get_split
from purls_pl.train import cli, pretrain

REPO = Path(__file__).resolve().parents[2]
TINY_DATA = ["--data.source.init_args.samples_per_class=6", "--data.source.init_args.num_frames=12"]
TINY_BACKBONE = [
    "--trainer.max_epochs=1",
    "--data.batch_size=8",
    "--model.backbone.init_args.channels=[8,16]",
    "--model.backbone.init_args.strides=[1,2]",
]


def _spec(tmp_path: Path, tiny_clip: Path) -> TableSpec:
    spec = {
        "name": "demo table",
        "splits": ["demo_15_5"],
        "seeds": [0, 1],
        "folds": {"demo_15_5": 1},
        "fold_seeds": [0],
        "experiments": str(tmp_path / "experiments"),
        "select": {"folds": 1, "fold_split_folds": 1, "max_epochs": 2, "seed": 0},
        "selections": {
            "global": {"stage": "global", "search": {"model.lr": [0.001, 0.003]}},
            "purls": {"stage": "purls", "search": {"model.lr": [0.001]}},
        },
        "common": [f"--data.text_encoder.model={tiny_clip}", "--data.batch_size=8", "--trainer.max_epochs=1"],
        "pretrain": TINY_BACKBONE,
        "note": "Not comparable with the paper: different setup.",
        "rows": [
            {"name": "Global (labels)", "select": "global"},
            {"name": "PURLS", "select": "purls"},
            {
                "name": "Static",
                "select": "purls",
                "args": ["--model.partitioner=purls_pl.models.partition.StaticPartitioner"],
            },
        ],
    }
    for name in ("purls.yaml", "global.yaml", "backbone.yaml", "demo.yaml", "demo_backbone.yaml", "sources/demo.yaml"):
        target = tmp_path / "experiments" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO / "experiments" / name).read_text())
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return TableSpec.load(path)


def test_table_selects_runs_resumes_and_aggregates(tmp_path, tiny_clip, monkeypatch):
    monkeypatch.chdir(REPO)
    spec = _spec(tmp_path, tiny_clip)
    units = spec.resolve(TINY_DATA)  # the splits, resolved once: paper splits, then their random class folds
    assert [(u.split.name, u.seeds, u.fold_of) for u in units] == [
        ("demo_15_5", (0, 1), None),
        ("demo_random5_seed0", (0,), get_split("demo_15_5")),
    ]
    out = tmp_path / "out"
    lines: list[str] = []
    records = run_table(spec, out, TINY_DATA, log=lines.append, pool=RunPool(jobs=2, threads=1))
    assert len(records) == 3 * 3  # (2 seeds + 1 fold) x 3 rows
    for split in ("demo_15_5", "demo_random5_seed0"):
        chosen = yaml.safe_load((tmp_path / "experiments" / "selected" / split / "global.yaml").read_text())
        assert chosen["model"]["lr"] in (0.001, 0.003) and 1 <= chosen["trainer"]["max_epochs"] <= 2
        record = json.loads((tmp_path / "experiments" / "selected" / split / "purls.json").read_text())
        assert record["split"] == split and len(record["folds"]) == 1
    assert (out / "backbones" / "demo_15_5" / "seed1.pt").is_file()  # stage 1 per seed
    assert any("[select]" in line for line in lines) and any("min left" in line for line in lines)
    seeds = {r["seed"]: r for r in records if r["split"] == "demo_15_5" and r["row"] == "PURLS"}
    assert seeds[0]["stage1"] != seeds[1]["stage1"] or seeds[0]["test/zsl_top1"] != seeds[1]["test/zsl_top1"]

    def must_not_run(*args, **kwargs):
        raise AssertionError("finished runs are not repeated")

    monkeypatch.setattr(cli, "main", must_not_run)
    monkeypatch.setattr(pretrain, "main", must_not_run)
    again = run_table(spec, out, TINY_DATA, log=lines.append)
    assert [r["test/zsl_top1"] for r in again] == [r["test/zsl_top1"] for r in records]

    monkeypatch.undo()
    monkeypatch.chdir(REPO)
    alone = run_table(spec, tmp_path / "alone", TINY_DATA, log=lines.append, pool=RunPool(jobs=1, threads=1))
    assert [r["test/zsl_top1"] for r in alone] == [r["test/zsl_top1"] for r in records], "side by side = alone"

    markdown, rows = aggregate(spec, units, again, out)
    assert "| *chance level* | 20.00 | 20.00 |" in markdown and "| *test samples* |" in markdown
    assert "5 unseen: demo_15_5 + 1 random folds" in markdown and "Not comparable" in markdown
    assert "± " in markdown and "[" in markdown and "Per run (top-1 %)" in markdown
    means = summary(markdown)  # what the README shows: the means, the note, no per-run listing
    assert "Not comparable" in means and "| PURLS |" in means and "Per run" not in means
    assert "| PURLS | demo_15_5 |" in markdown and "| PURLS | demo_15_5 |" not in means
    purls = [r for r in rows if r["row"] == "PURLS"]
    assert [r["runs"] for r in purls] == [2, 3] and all(r["top5_mean"] is None for r in purls)  # 5 candidates
    assert all(r["top1_ci_low"] <= r["top1_mean"] <= r["top1_ci_high"] for r in purls)
    assert next(csv.DictReader((out / "table.csv").open()))["column"] == "demo_15_5"


def test_spec_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"name": "t", "splits": ["demo_15_5"], "seeds": [0], "rows": [{"name": "r", "select": "x"}]})
    )
    with pytest.raises(ValueError, match=r"rows\[0\] selects 'x', not one of \[\]"):
        TableSpec.load(bad)
    bad.write_text(
        yaml.safe_dump({"name": "t", "splits": ["demo_15_5"], "seeds": [0], "rows": [{"name": "r", "paper": 1}]})
    )
    with pytest.raises(ValueError, match=r"rows\[0\] has unknown keys \['paper'\]"):
        TableSpec.load(bad)


def test_nw_ucla_table_spec_on_real_data(tmp_path, tiny_clip, monkeypatch):
    """The committed NW-UCLA spec, end to end on a subset of the real skeletons (1 epoch, tiny search)."""
    from conftest import shared_path

    root = shared_path("data", "nw-ucla", "all_sqe")
    monkeypatch.chdir(REPO)
    spec = TableSpec.load(REPO / "experiments" / "tables" / "nw-ucla.yaml")
    assert [(u.split.name, u.seeds) for u in spec.resolve()[2:]] == [
        (f"nw-ucla_random5_seed{f}", (0,)) for f in range(3)
    ]
    spec.splits, spec.seeds, spec.folds = ["nw-ucla_8_2"], [0], {}
    spec.rows = [spec.rows[0], spec.rows[-1]]
    spec.experiments = str(tmp_path / "experiments")
    for f in [*(REPO / "experiments").glob("*.yaml"), *(REPO / "experiments" / "sources").glob("*.yaml")]:
        target = tmp_path / "experiments" / f.relative_to(REPO / "experiments")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.read_text())
    for selection in spec.selections.values():
        selection.search = {k: v[:1] for k, v in list(selection.search.items())[:1]}
    spec.select.update(folds=1, max_epochs=1)
    spec.common = [f"--data.text_encoder.model={tiny_clip}", "--trainer.max_epochs=1"]
    spec.pretrain = TINY_BACKBONE[:1] + TINY_BACKBONE[2:]
    data = [
        f"--data.source.init_args.root={root}",
        "--data.source.init_args.conversion.max_samples=300",
        f"--data.source.init_args.conversion.cache_dir={tmp_path / 'cache'}",
    ]
    records = run_table(spec, tmp_path / "out", data, log=lambda line: None)
    assert {(r["split"], r["row"]) for r in records} == {("nw-ucla_8_2", r.name) for r in spec.rows}
    for r in records:
        assert 0.0 <= r["test/zsl_top1"] <= 1.0 and r["num_unseen_classes"] == 2
    markdown, _ = aggregate(spec, spec.resolve(data), records, tmp_path / "out")
    assert "| *chance level* | 50.00 |" in markdown and "Not comparable with the paper" in markdown


@pytest.mark.parametrize("path", sorted((REPO / "experiments" / "tables").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_committed_table_spec_loads(path):
    spec = TableSpec.load(path)
    assert spec.rows and spec.resolve()
    for row in spec.rows:  # every row's stage and arguments resolve
        stage, _ = spec.stage_and_args(row)
        assert stage in stage2_stages(spec.experiments)
    if "methods" in path.stem:  # a methods table: every method's stage, compared against label-only Global
        stages = {spec.stage_and_args(r)[0] for r in spec.rows}
        assert {"purls", "global", "cada_vae", "sa_dvae", "smie", "tdsm"} <= stages
        assert spec.reference == "Global (label-only text)"
    if "levers" in path.stem:  # a lever table: one row per lever, the all-levers selection last
        assert spec.rows[-1].select == "purls" and "selected" in spec.rows[-1].name
        plain = [r for r in spec.rows if r.select == "purls-plain" and r.args]
        assert len(plain) >= 9 and len({tuple(r.args) for r in plain}) == len(plain)


def test_extends_starts_from_another_spec(tmp_path):
    base = {"name": "b", "splits": ["demo_15_5"], "seeds": [0], "selections": {"g": {"stage": "global"}}}
    base["rows"] = [{"name": "r", "select": "g"}]
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    child = {"extends": "base.yaml", "name": "c", "selections": {"p": {"stage": "purls"}}}
    child["rows"] = [{"name": "r", "select": "g"}, {"name": "s", "select": "p"}]
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(child))
    spec = TableSpec.load(tmp_path / "child.yaml")
    assert spec.name == "c" and spec.splits == ["demo_15_5"] and set(spec.selections) == {"g", "p"}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({**base, "extends": "child.yaml"}))
    with pytest.raises(ValueError, match="cycle"):
        TableSpec.load(tmp_path / "child.yaml")


def test_a_table_plan_names_its_runs_before_running(tmp_path, tiny_clip):
    spec = _spec(tmp_path, tiny_clip)
    data = ["--data.source.init_args.root=/d", "--data.num_workers=0"]
    plan = plan_table(spec, tmp_path / "out", data)
    assert [u.split.name for u in plan.units] == ["demo_15_5", "demo_random5_seed0"]
    assert [(o.split, o.name, o.folds) for o, _ in plan.selections] == [
        (s, n, 1) for s in ("demo_15_5", "demo_random5_seed0") for n in ("global", "purls")
    ]
    options, split = plan.selections[0]
    assert split is plan.units[0].split and options.out == str(tmp_path / "out" / "select")
    assert options.set == (*spec.common, *data) and options.pretrain == tuple(spec.pretrain)
    assert list(plan.stage1) == [("demo_15_5", 0), ("demo_15_5", 1), ("demo_random5_seed0", 0)]
    stage1 = plan.stage1["demo_15_5", 1]
    assert stage1.data_root == "/d" and stage1.overrides == (*spec.pretrain, "--data.num_workers=0")
    assert len(plan.runs) == 3 * 3 and plan.runs[1].what == "demo_15_5 | PURLS | seed 0"
    static = plan.runs[2].request
    assert static.backbone == plan.stage1["demo_15_5", 0].export_path and static.selected == "purls"
    assert static.overrides == (*spec.common, *spec.rows[2].args, "--data.num_workers=0")
    assert static.root_dir == tmp_path / "out" / "demo_15_5" / "static" / "seed0"
    again = plan_table(spec, tmp_path / "out", data)
    assert again == plan, "planning runs nothing and reads only the spec and the experiments folder"


def test_the_table_command_line_is_generated_from_its_options(capsys):
    argv = ["t.yaml", "--out", "o", "--set=--a=1", "--set=--b=2", "--reselect", "--publish", "results"]
    options, pool = parse_options([*argv, "--threads", "0"], (TableOptions, PoolOptions), "table", "")
    assert options == TableOptions("t.yaml", "o", ("--a=1", "--b=2"), True, "results", None)
    assert pool.pool().threads is None, "0: torch's default"
    assert render_options(options) == argv, "rendered as it was given"
    assert parse_options(render_options(options), (TableOptions,), "table", "")[0] == options
    with pytest.raises(SystemExit):
        parse_options(["t.yaml"], (TableOptions,), "table", "")
    assert "the following arguments are required: --out" in capsys.readouterr().err
