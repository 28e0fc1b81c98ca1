"""Experiment composition: base + dataset recipe (+ variant) + split, for every registered split, as the
``configs`` command and ``make train`` use it; and no two experiment files that differ only in a name."""

import itertools
import json
import re
import shutil
import subprocess
import sys
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


def test_a_method_file_dropped_into_experiments_is_a_stage_of_every_command(tmp_path):
    """The stages are found, not listed: a new method's experiment file becomes a stage of ``configs``,
    ``select`` (with its class's ``default_search``) and table specs; recipes, bases and selections are not."""
    from purls_pl.apps import select
    from purls_pl.apps.experiments import stage2_stages, stages
    from purls_pl.apps.table_spec import TableSpec
    from purls_pl.models.cada_vae import CadaVae

    root = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS, root, ignore=shutil.ignore_patterns("selected", "tables"))
    before = stage2_stages(root)
    assert before[0] == "purls" and {"global", "cada_vae"} <= set(before)
    assert not {"nw-ucla", "demo", "backbone", "nw-ucla_backbone"} & set(before) and stages(root)[-1] == "backbone"
    (root / "my_method.yaml").write_text("model:\n  class_path: purls_pl.models.cada_vae.CadaVae\n")
    assert set(stage2_stages(root)) == {*before, "my_method"}
    assert experiment_files("nw-ucla_8_2", "my_method", root, selected=None)[-1] == root / "my_method.yaml"
    configs = [sys.executable, "-m", "purls_pl", "configs", "nw-ucla_8_2", "--root", str(root), "--stage"]
    done = subprocess.run([*configs, "my_method"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stdout.split()[-2].endswith("my_method.yaml"), done.stderr
    bad = subprocess.run([*configs, "nope"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "stage must be one of" in bad.stderr and "nope.yaml" in bad.stderr
    assert select.default_search("my_method", root) == CadaVae.default_search
    assert select.default_search("global", root) == select.GLOBAL_SEARCH
    assert select.SelectOptions("nw-ucla_8_2", stage="my_method", experiments=str(root)).stage == "my_method"
    with pytest.raises(ValueError, match="stage is one of"):
        select.SelectOptions("nw-ucla_8_2", stage="not_a_method", experiments=str(root))
    (root / "bare.yaml").write_text("model:\n  class_path: purls_pl.models.purls_module.PurlsModule\n")
    with pytest.raises(ValueError, match="bare.yaml.*declares no default_search.*--search"):
        select.default_search("bare", root)
    spec = tmp_path / "t.yaml"
    table = {"name": "t", "splits": ["nw-ucla_8_2"], "seeds": [0], "experiments": str(root)}
    rows = {"rows": [{"name": "mine", "select": "m"}]}
    spec.write_text(json.dumps({**table, **rows, "selections": {"m": {"stage": "my_method"}}}))
    assert TableSpec.load(spec).selections["m"].stage == "my_method"
    spec.write_text(json.dumps({**table, **rows, "selections": {"m": {"stage": "nope"}}}))
    with pytest.raises(ValueError, match="selections.m.stage is 'nope'"):
        TableSpec.load(spec)
