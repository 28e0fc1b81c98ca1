"""The command-line entry points and their errors for users."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from purls_pl.apps import commands, report
from purls_pl.apps.experiments import experiment_args
from purls_pl.text.fields import FIELDS
from purls_pl.train import cli, pretrain

REPO = Path(__file__).resolve().parents[2]


def test_missing_dataset_names_the_path_and_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    args = experiment_args("ntu120_96_24", "backbone")
    with pytest.raises(FileNotFoundError, match=r"data/ntu/nturgb\+d_skeletons.*ROSE"):
        pretrain.main(["fit", *args, f"--trainer.default_root_dir={tmp_path}"])


def test_missing_backbone_says_to_run_stage_1(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = experiment_args("ntu120_96_24", root=REPO / "experiments")
    with pytest.raises(FileNotFoundError, match=r"make backbone SPLIT=<split>.*configs <split> --stage backbone"):
        cli.main(["fit", *args])


def test_user_errors_print_one_line_and_exit_2(capsys):
    def fail():
        raise FileNotFoundError("data/x does not exist; download it")

    with pytest.raises(SystemExit) as stop:
        commands.exit_on_user_error(fail)
    assert stop.value.code == 2
    first, hint = capsys.readouterr().err.strip().splitlines()
    assert first == "error: data/x does not exist; download it" and "--debug" in hint


def _write_run(root: Path, name: str, top1: float, fields: dict[str, float] | None = None) -> None:
    run = root / name / "version_0"
    run.mkdir(parents=True)
    (run / "results.json").write_text(
        json.dumps(
            {
                "test/zsl_top1": top1,
                "test/zsl_top5": 1.0,
                "test/zsl_mean_class": top1,
                "epoch": 3,
                "num_unseen_classes": 5,
                **{f"test/field_top1_{k}": v for k, v in (fields or {}).items()},
            }
        )
    )


def test_report_table_through_the_entry_point(tmp_path):
    _write_run(tmp_path, "purls", 0.9)
    _write_run(tmp_path, "global", 0.5)
    (tmp_path / "purls" / "version_1").mkdir()  # an unfinished newer run has no results and is skipped
    out = subprocess.run(
        [sys.executable, "-m", "purls_pl", "report", str(tmp_path), "--csv", str(tmp_path / "t.csv")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "| purls | 90.00 | – | 90.00 | – | 3 |" in out  # no top-5 among 5 candidates
    assert "| global | 50.00 |" in out
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("run,test/zsl_top1")
    rows = report.collect([tmp_path])
    assert [r["run"] for r in rows] == ["global", "purls"]


def test_report_leaves_out_runs_moved_aside_by_a_newer_request(tmp_path):
    from purls_pl.storage import move_aside

    _write_run(tmp_path, "seed0", 0.3)
    moved = move_aside(tmp_path / "seed0")  # the table re-ran seed0 with changed settings
    _write_run(tmp_path, "seed0", 0.7)
    assert moved.exists() and (moved / "version_0").is_dir()  # kept, never deleted
    assert [(r["run"], r["test/zsl_top1"]) for r in report.collect([tmp_path])] == [("seed0", 0.7)]


def test_report_fields_lists_each_fields_top1_and_their_mean(tmp_path):
    _write_run(tmp_path, "seed0", 0.5, {f: 0.2 for f in FIELDS} | {"legs": 0.4})
    _write_run(tmp_path, "seed1", 0.5, {f: 0.6 for f in FIELDS})
    _write_run(tmp_path, "old", 0.5)  # a run from before per-field metrics: dashes, left out of the mean
    table = report.field_markdown(report.collect([tmp_path]))
    lines = table.splitlines()
    assert lines[0] == "| run | " + " | ".join(FIELDS) + " |"
    assert "| old | " + " | ".join(["–"] * len(FIELDS)) + " |" in lines
    mean = dict(zip(FIELDS, lines[-1].split(" | ")[1:], strict=True))
    assert lines[-1].startswith("| *mean* |")
    assert mean["head"] == "40.00" and mean["legs"] == "50.00" and mean["global"].rstrip(" |") == "40.00"


def test_report_per_class_averages_each_rows_seeds_through_the_entry_point(tmp_path):
    def run(name: str, per_class: dict[str, float]) -> None:
        (tmp_path / name / "version_0").mkdir(parents=True)
        record = {"test/zsl_top1": 0.5, "test/zsl_mean_class": 0.5, "epoch": 1, "num_unseen_classes": 2}
        (tmp_path / name / "version_0" / "results.json").write_text(json.dumps({**record, "per_class": per_class}))

    run("global/seed0", {"jump": 0.2, "spin": 0.0})
    run("global/seed1", {"jump": 0.4, "spin": 1.0})
    run("purls/seed0", {"jump": 1.0, "wave": 0.5})  # another fold's classes: dashes where a row has none
    out = subprocess.run(
        [sys.executable, "-m", "purls_pl", "report", str(tmp_path), "--per-class"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    table = out[out.index("Each unseen class") :].splitlines()
    assert "| run | n | jump | spin | wave |" in table
    assert "| global | 2 | 30.0 | 50.0 | – |" in table
    assert "| purls | 1 | 100.0 | – | 50.0 |" in table


def _purls(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "purls_pl", *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}
    )


def test_a_mistyped_command_lists_every_command_and_the_closest():
    run = _purls("repot", "lightning_logs")
    assert run.returncode == 2
    assert run.stderr.startswith("error: purls-pl: unknown command 'repot'; did you mean 'report'")
    assert all(name in run.stderr for name in [*commands.LIGHTNING_COMMANDS, *commands.COMMANDS])
    run = _purls("pretrain", "fti")
    assert run.returncode == 2 and "unknown command 'fti'; did you mean 'fit'?" in run.stderr


def test_help_lists_every_command_with_what_it_does():
    run = _purls("--help")
    assert run.returncode == 0
    for name, (_, what) in commands.COMMANDS.items():
        assert f"  {name} " in run.stderr and what in run.stderr
    assert "train PURLS (stage 2)" in run.stderr


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "nothing.json"
    run = _purls("validate-descriptions", str(missing))  # a command with its own message
    assert run.returncode != 0 and "Traceback" not in run.stderr
    args = ["fit", "--config", "experiments/purls.yaml", "--config", "experiments/demo.yaml", "--data.split=demo_15_5"]
    args += [f"--trainer.default_root_dir={tmp_path}"]  # no backbone there
    run = _purls(*args)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert next(line for line in run.stderr.splitlines() if line.startswith("error:")).startswith("error: backbone")
    for debug in (_purls(*args, "--debug"), _purls(*args, PURLS_DEBUG="1")):
        assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError: backbone" in debug.stderr


def test_fit_checks_the_description_file_before_anything_heavy(tmp_path):
    records = [{"label": f"class {i}", **dict.fromkeys(FIELDS, "text")} for i in range(20)]
    records[3]["legs"] = "  "  # an empty field
    bad = tmp_path / "descriptions.json"
    bad.write_text(json.dumps({"classes": records}))
    args = ["fit", "--config", "experiments/purls.yaml", "--config", "experiments/demo.yaml", "--data.split=demo_15_5"]
    run = _purls(*args, f"--data.descriptions={bad}", f"--trainer.default_root_dir={tmp_path}")  # and no backbone
    assert run.returncode == 2
    error = next(line for line in run.stderr.splitlines() if line.startswith("error:"))
    assert "descriptions.json" in error and "backbone" not in run.stderr
    assert "'class 3': missing legs" in run.stderr


def test_a_hand_written_description_file_names_the_converting_command(tmp_path):
    from purls_pl.text.descriptions import DescriptionError, load_descriptions

    hand = tmp_path / "mine.json"
    hand.write_text(json.dumps({"wave": dict.fromkeys(FIELDS, "a wave")}))
    with pytest.raises(DescriptionError, match=r"mine\.json: .*purls_pl import-descriptions .*mine\.json --out"):
        load_descriptions(hand)
