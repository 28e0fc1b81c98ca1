"""Experiment composition: base + dataset recipe (+ variant) + split, for every registered split, as the
``configs`` command and ``make train`` use it; and no two experiment files that differ only in a name."""

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from purls_pl.apps.experiments import experiment_args, experiment_files, main, recipe_name
from purls_pl.data.splits import builtin_splits

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
SPLIT_NAME = re.compile("|".join(sorted(map(re.escape, builtin_splits()), key=len, reverse=True)))


def test_recipes_are_shared_by_datasets_with_one_class_list():
    assert recipe_name("ntu60_55_5") == recipe_name("ntu120_96_24") == "ntu120"
    assert recipe_name("kinetics200_180_20") == "kinetics400" and recipe_name("nw-ucla_random5_seed0") == "nw-ucla"


@pytest.mark.parametrize("split", builtin_splits())
def test_every_split_has_all_its_experiment_files(split):
    for stage in ("purls", "global", "backbone"):
        files = experiment_files(split, stage, EXPERIMENTS)
        assert all(f.is_file() for f in files)
    assert experiment_args(split, "global", EXPERIMENTS)[-1] == f"--data.split={split}"


def test_no_experiment_file_names_a_split_and_none_differs_only_in_a_name():
    texts = {p: p.read_text() for p in EXPERIMENTS.rglob("*.yaml") if p.parent.name not in ("sweeps", "tables")}
    for path, text in texts.items():
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert not SPLIT_NAME.search(body), f"{path} names a split: the split is one --data.split override"
    written = {p: t for p, t in texts.items() if "selected" not in p.relative_to(EXPERIMENTS).parts}
    for (a, ta), (b, tb) in itertools.combinations(written.items(), 2):  # selections may coincide
        strip = lambda t: re.sub(r"#.*", "", t).split()  # noqa: E731
        assert strip(ta) != strip(tb), f"{a} and {b} have the same settings"


def test_configs_command_prints_the_arguments(capsys):
    out = main(["nw-ucla_8_2", "--stage", "global"])
    printed = capsys.readouterr().out.strip()
    assert printed == " ".join(out) and out[-1] == "--data.split=nw-ucla_8_2"
    files = [a for a in out if a.endswith(".yaml")]
    assert files[:3] == ["experiments/purls.yaml", "experiments/nw-ucla.yaml", "experiments/global.yaml"]
    assert files[3:] in ([], ["experiments/selected/nw-ucla_8_2/global.yaml"]), "then the committed selection"
    assert main(["demo_15_5", "--backbone-path", "--seed", "2"]) == ["lightning_logs/backbones/demo_15_5/seed2.pt"]
    with pytest.raises(KeyError, match="unknown zero-shot split"):
        main(["nope_1_1"])


@pytest.mark.skipif(not (REPO / ".venv" / ".installed").is_file() or not shutil.which("make"), reason="no .venv")
@pytest.mark.parametrize(
    "split", [s if s == "demo_15_5" else pytest.param(s, marks=pytest.mark.slow) for s in builtin_splits()]
)
def test_make_train_print_config_resolves(split):
    """``make train SPLIT=<split> ARGS=--print_config`` prints all three resolved configs (every split: slow)."""
    run = subprocess.run(
        ["make", "--no-print-directory", "train", f"SPLIT={split}", "SEED=4", "ARGS=--print_config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("seed_everything: 4") == 3  # stage 1, PURLS, Global
    assert run.stdout.count(f"split: {split}") == 3


def test_every_stage_list_names_the_same_stages():
    """The stages are spelled as Literals for the command lines; they all follow VARIANTS."""
    import typing

    from purls_pl.apps import select
    from purls_pl.apps.experiments import STAGE2, STAGES, Stage
    from purls_pl.train.paths import VARIANTS

    assert STAGE2 == ("purls", *VARIANTS) and set(STAGES) == {*STAGE2, "backbone"} == set(typing.get_args(Stage))
    hints = typing.get_type_hints(select.SelectOptions)
    assert set(typing.get_args(hints["stage"])) == set(STAGE2) == set(select.SEARCHES)
