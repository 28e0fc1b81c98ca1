"""Impossible numeric options are refused when the command line is parsed, naming the option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from jsonargparse import Namespace

from purls_pl.train.ranges import RANGES, OptionError, Range, check_ranges, range_errors

REPO = Path(__file__).resolve().parents[2]


def _config(**values) -> Namespace:
    config = Namespace(data=Namespace(batch_size=64), model=Namespace(init_args=Namespace(lr=1e-3)))
    config.trainer = Namespace(max_epochs=5)
    for key, value in values.items():
        config[key] = value
    return config


def test_ranges_admit_their_bounds_and_extra_values():
    assert Range(1, integer=True, also=(-1,)).admits(-1) and not Range(1, integer=True).admits(0)
    assert Range(0, 1, open_high=True).admits(0) and not Range(0, 1, open_high=True).admits(1)
    assert not Range(0, open_low=True).admits(0) and not Range(1, integer=True).admits(1.5)
    assert Range(0, 1).describe() == ">= 0 and <= 1"


def test_every_out_of_range_option_is_named_at_once():
    assert range_errors(_config()) == []
    config = _config(**{"data.batch_size": 0, "trainer.max_epochs": 0})
    config.model.init_args.lr = 0.0  # behind init_args, as a class_path config holds it
    errors = range_errors(config)
    assert errors == [
        "--data.batch_size=0 is out of range: the training batch size must be an integer >= 1",
        "--model.lr=0.0 is out of range: the learning rate must be > 0",
        "--trainer.max_epochs=0 is out of range: the training epochs (-1: no limit) must be an integer >= 1 (or -1)",
    ]
    with pytest.raises(OptionError, match="set on the command line or in a --config file"):
        check_ranges(config)
    assert range_errors(_config(**{"trainer.max_epochs": -1})) == []
    assert all(key.split(".")[0] in ("data", "model", "trainer") for key in RANGES)


@pytest.mark.parametrize(
    ("stage", "flag", "option"),
    [("fit", "--data.batch_size=0", "--data.batch_size=0"), ("pretrain", "--model.lr=0", "--model.lr=0.0")],
)
def test_the_cli_refuses_an_impossible_value_in_one_line(stage, flag, option, tmp_path):
    args = [sys.executable, "-m", "purls_pl", *(["pretrain"] if stage == "pretrain" else []), "fit"]
    configs = subprocess.run(
        [
            sys.executable,
            "-m",
            "purls_pl",
            "configs",
            "demo_15_5",
            "--stage",
            "backbone" if stage == "pretrain" else "purls",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.split()
    run = subprocess.run(
        [*args, *configs, flag, f"--trainer.default_root_dir={tmp_path}"], capture_output=True, text=True, cwd=REPO
    )
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {option} is out of range: "), run.stderr
    assert "Traceback" not in run.stderr
    assert not list(tmp_path.rglob("*.ckpt"))
