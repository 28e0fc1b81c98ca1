"""The table runner: stage 1 once per split, every (row, seed) run, resumable, aggregated."""

import csv
from pathlib import Path

import yaml

from purls_pl.apps.table import TableSpec, aggregate, run_table
from purls_pl.train import cli

REPO = Path(__file__).resolve().parents[2]
TINY_DATA = ["--data.source.init_args.samples_per_class=4", "--data.source.init_args.num_frames=12"]


def _spec(tmp_path: Path, tiny_clip: Path) -> TableSpec:
    spec = {
        "name": "demo table",
        "splits": ["demo_15_5"],
        "seeds": [0, 1],
        "experiments": str(REPO / "experiments"),
        "common": [f"--data.text_encoder.model={tiny_clip}", "--trainer.max_epochs=1", "--data.batch_size=8"],
        "pretrain": [
            "--trainer.max_epochs=1",
            "--data.batch_size=8",
            "--model.backbone.init_args.channels=[8,16]",
            "--model.backbone.init_args.strides=[1,2]",
        ],
        "rows": [
            {
                "name": "Global (labels)",
                "args": [
                    "--data.descriptions=labels",
                    "--model.partitioner=purls_pl.models.partition.GlobalPartitioner",
                ],
            },
            {"name": "PURLS", "args": [], "paper": {"demo_15_5": 50.0}},
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return TableSpec.load(path)


def test_table_runs_resumes_and_aggregates(tmp_path, tiny_clip, monkeypatch):
    monkeypatch.chdir(REPO)
    spec = _spec(tmp_path, tiny_clip)
    out = tmp_path / "out"
    lines: list[str] = []
    records = run_table(spec, out, TINY_DATA, log=lines.append)
    assert len(records) == 4 and (out / "backbones" / "demo_15_5" / "seed0.pt").is_file()
    assert any(line.startswith("[stage 1]") for line in lines) and lines[-1].startswith("[4/4]")

    def must_not_run(*args, **kwargs):
        raise AssertionError("finished runs are not repeated")

    monkeypatch.setattr(cli, "main", must_not_run)
    again = run_table(spec, out, TINY_DATA, log=lines.append)
    assert [r["test/zsl_top1"] for r in again] == [r["test/zsl_top1"] for r in records]
    table = aggregate(spec, again, out)
    assert "| PURLS |" in table and "50.00" in table and "± " in table
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["row"] for r in rows] == ["Global (labels)", "PURLS"] and rows[0]["seeds"] == "2"


def test_nw_ucla_table_wiring_on_real_data(tmp_path, tiny_clip, monkeypatch):
    """The committed NW-UCLA table spec, end to end on a subset of the real skeletons (1 epoch, 1 seed)."""
    from conftest import shared_path

    root = shared_path("data", "nw-ucla", "all_sqe")
    monkeypatch.chdir(REPO)
    spec = TableSpec.load(REPO / "experiments" / "tables" / "nw-ucla.yaml")
    spec.seeds = [0]
    spec.rows = [spec.rows[0], spec.rows[-1]]
    spec.common = [f"--data.text_encoder.model={tiny_clip}", "--trainer.max_epochs=1"]
    spec.pretrain = [
        "--trainer.max_epochs=1",
        "--model.backbone.init_args.channels=[8,16]",
        "--model.backbone.init_args.strides=[1,2]",
    ]
    data = [
        f"--data.source.init_args.root={root}",
        "--data.source.init_args.conversion.max_samples=240",
        f"--data.source.init_args.conversion.cache_dir={tmp_path / 'cache'}",
    ]
    records = run_table(spec, tmp_path / "out", data, log=lambda line: None)
    assert {(r["split"], r["row"]) for r in records} == {(s, r.name) for s in spec.splits for r in spec.rows}
    for r in records:
        assert 0.0 <= r["test/zsl_top1"] <= 1.0 and r["num_unseen_classes"] == int(r["split"].rsplit("_", 1)[1])
    table = aggregate(spec, records, tmp_path / "out")
    assert "75.84" in table and "nw-ucla_5_5 top-1" in table
