"""A dataset of your own, from YAML alone: a generated 15-joint dataset with its own layout.json,
classes.txt, index.csv (split column) and description file goes through stage 1, stage 2, the table
runner, the report, recognition and the plots with no Python beyond the test's own calls of the
commands; and wrong custom input fails with the file, the field and the fix."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from purls_pl.apps import plot, recognize, report
from purls_pl.apps.table import run_table
from purls_pl.apps.table_spec import TableSpec
from purls_pl.data.layouts import SkeletonLayout
from purls_pl.data.readers import CustomSource, SampleError
from purls_pl.data.readers.custom import write_custom_dataset
from purls_pl.text.descriptions import DescriptionError
from purls_pl.text.fields import FIELDS
from purls_pl.train import cli, pretrain

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["wave", "clap", "kick", "squat", "jump", "spin"]
LAYOUT = SkeletonLayout(
    name="body15",
    joint_names=(
        "head",
        "neck",
        "pelvis",
        "left_shoulder",
        "left_elbow",
        "left_hand",
        "right_shoulder",
        "right_elbow",
        "right_hand",
        "left_hip",
        "left_knee",
        "left_foot",
        "right_hip",
        "right_knee",
        "right_foot",
    ),
    edges=(
        (0, 1),
        (1, 2),
        (1, 3),
        (3, 4),
        (4, 5),
        (1, 6),
        (6, 7),
        (7, 8),
        (2, 9),
        (9, 10),
        (10, 11),
        (2, 12),
        (12, 13),
        (13, 14),
    ),
    center=2,
    parts={"head": (0, 1), "hands": (3, 4, 5, 6, 7, 8), "torso": (2, 9, 12), "legs": (10, 11, 13, 14)},
)


def _rest() -> np.ndarray:
    rest = np.zeros((15, 3))
    rest[[0, 1, 2]] = [[0, 1.7, 0], [0, 1.5, 0], [0, 1.0, 0]]
    for side, x in ((0, 0.2), (1, -0.2)):
        base = 3 + 3 * side
        rest[base : base + 3] = [[x, 1.45, 0], [x * 1.1, 1.2, 0], [x * 1.1, 0.95, 0]]
        base = 9 + 3 * side
        rest[base : base + 3] = [[x / 2, 0.95, 0], [x / 2, 0.5, 0], [x / 2, 0.05, 0.1]]
    return rest


def _sample(c: int, rng: np.random.Generator, frames: int) -> np.ndarray:
    """A class-specific motion: class c moves joint group c with its own rhythm, plus noise."""
    t = np.linspace(0, 2 * np.pi, frames)[:, None]
    seq = np.repeat(_rest()[None], frames, axis=0)
    moving = [[5], [5, 8], [11], [0, 1, 2], [0, 1, 2, 11, 14], [5, 8, 11, 14]][c]
    seq[:, moving, 1] += 0.2 * np.sin((c + 1) * t)
    seq[:, moving, 0] += 0.1 * np.cos((c + 2) * t)
    return (seq + rng.normal(0, 0.01, seq.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gestures")
    rng = np.random.default_rng(0)
    samples, labels, splits = {}, {}, {}
    for c, name in enumerate(CLASSES):
        for i in range(8):
            sid = f"{name}_{i:02d}"
            seq = _sample(c, rng, 20 + i)
            if i == 0:
                seq[3] = 0.0  # an empty frame inside the sequence: dropped, not resampled
            samples[sid], labels[sid], splits[sid] = seq, name, "test" if i % 4 == 0 else "train"
    write_custom_dataset(root, samples, labels, LAYOUT, splits, classes=CLASSES)
    records = [{"label": n, **{f: f"{n} with the {f}" for f in FIELDS}} for n in CLASSES]
    (root / "descriptions.json").write_text(json.dumps({"classes": records}))
    return root


def _recipes(root: Path, dataset: Path, clip: Path) -> Path:
    source = {
        "class_path": "purls_pl.data.readers.CustomSource",
        "init_args": {"root": str(dataset), "dataset": "gestures", "num_frames": 16},
    }
    split = {"unseen": ["jump", "spin"]}
    stage2 = {
        "data": {
            "source": source,
            "split": split,
            "descriptions": str(dataset / "descriptions.json"),
            "text_encoder": {"model": str(clip)},
            "batch_size": 8,
        },
        "model": {"backbone": {"cache": True}, "lr": 0.003},
        "trainer": {"max_epochs": 2, "enable_progress_bar": False},
    }
    stage1 = {
        "data": {"source": source, "split": split, "batch_size": 8},
        "model": {
            "backbone": {
                "class_path": "purls_pl.models.backbones.STGCN",
                "init_args": {"channels": [8, 16], "strides": [1, 2]},
            }
        },
        "trainer": {"max_epochs": 1, "enable_progress_bar": False},
    }
    (root / "gestures.yaml").write_text(yaml.safe_dump(stage2))
    (root / "gestures_backbone.yaml").write_text(yaml.safe_dump(stage1))
    return root / "gestures.yaml"


def test_a_custom_dataset_runs_every_command_from_yaml_alone(dataset, tmp_path, tiny_clip, monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = _recipes(tmp_path, dataset, tiny_clip)
    runs = tmp_path / "runs"
    # make train, spelled out: stage 1 (backbone.yaml + the recipe), then PURLS (purls.yaml + the recipe)
    pretrain.main(
        [
            "fit",
            "--config",
            "experiments/backbone.yaml",
            "--config",
            str(recipe.with_name("gestures_backbone.yaml")),
            f"--trainer.default_root_dir={runs}",
        ]
    )
    exports = list((runs / "backbones").rglob("seed0.pt"))
    assert len(exports) == 1 and exports[0].parent.name.startswith("gestures_unseen2-")
    cli.main(
        ["fit", "--config", "experiments/purls.yaml", "--config", str(recipe), f"--trainer.default_root_dir={runs}"]
    )
    result = json.loads(next(runs.rglob("results.json")).read_text())
    assert result["unseen_classes"] == ["jump", "spin"] and result["num_test_samples"] == 4
    assert 0.0 <= result["test/zsl_top1"] <= 1.0

    rows = report.collect([runs / exports[0].parent.name])
    assert rows and rows[0]["test/zsl_top1"] == result["test/zsl_top1"]
    ckpt = next((runs / exports[0].parent.name).rglob("last.ckpt"))
    ranked = recognize.recognize(ckpt, [_sample(4, np.random.default_rng(1), 20)], ["jump", "spin", "wave"])
    assert sorted(n for n, _ in ranked[0]) == ["jump", "spin", "wave"] and all(math.isfinite(s) for _, s in ranked[0])
    figures = plot.plot_results_main([str(runs / exports[0].parent.name), "--out", str(tmp_path / "figs" / "acc.png")])
    assert figures[0].is_file()

    for name in ("purls.yaml", "global.yaml", "backbone.yaml"):  # the table's own experiments folder
        (tmp_path / "exp" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "exp" / name).write_text((REPO / "experiments" / name).read_text())
    spec_file = tmp_path / "table.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "name": "gestures",
                "splits": ["gestures_random2_seed0"],
                "seeds": [0],
                "experiments": str(tmp_path / "exp"),
                "recipe": str(recipe),
                "select": {"folds": 1, "max_epochs": 1},
                "selections": {"purls": {"stage": "purls", "search": {"model.lr": [0.003]}}},
                "rows": [{"name": "PURLS", "select": "purls"}],
            }
        )
    )
    records = run_table(TableSpec.load(spec_file), tmp_path / "table", log=lambda line: None)
    assert len(records) == 1 and records[0]["split"] == "gestures_random2_seed0"
    assert (tmp_path / "exp" / "selected" / "gestures_random2_seed0" / "purls.yaml").is_file()


def test_wrong_custom_input_names_the_file_the_field_and_the_fix(dataset, tmp_path, tiny_clip):
    from purls_pl.data.readers import Conversion
    from purls_pl.train.datamodule import ZeroShotDataModule

    root = tmp_path / "bad"
    root.mkdir()
    for f in dataset.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    (root / "classes.txt").write_text("\n".join(CLASSES[:-1]) + "\n")  # "spin" is missing
    with pytest.raises(
        SampleError, match=r"spin_00\.npy: label 'spin' \(index\.csv\) is not a class of .*classes\.txt; add the class"
    ):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    source = CustomSource(str(root), "gestures", num_frames=16, conversion=Conversion(cache=False))
    with pytest.raises(KeyError, match=r"data\.split\.unseen.*'jumpp' \(close: 'jump'\).*class list: .*classes\.txt"):
        ZeroShotDataModule(source, {"unseen": ["jumpp"]})  # type: ignore[arg-type]
    short = {"classes": [{"label": n, **{f: n for f in FIELDS}} for n in CLASSES[:-1]]}
    (root / "short.json").write_text(json.dumps(short))
    dm = ZeroShotDataModule(source, {"unseen": ["jump"]}, descriptions=str(root / "short.json"))  # type: ignore[arg-type]
    with pytest.raises(DescriptionError, match=r"(?s)short\.json.*'spin': no entry.*Add the entries"):
        _ = dm.class_text
    np.save(root / "wave_01.npy", np.zeros((10, 14, 3), np.float32) + 1)
    with pytest.raises(SampleError, match=r"wave_01\.npy: shape \(1, 10, 14, 3\).*J = 15 joints of layout 'body15'"):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()


def test_a_joint_order_that_contradicts_the_layout_is_reported(dataset, tmp_path):
    from purls_pl.data.readers import Conversion

    root = tmp_path / "swapped"
    root.mkdir()
    for f in dataset.iterdir():
        data = f.read_bytes()
        if f.suffix == ".npy":
            arr = np.load(f)
            arr[:, [4, 11]] = arr[:, [11, 4]]  # left elbow and left foot swapped in every file
            np.save(root / f.name, arr)
        else:
            (root / f.name).write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
    messages = [str(w.message) for w in caught if "contradict layout" in str(w.message)]
    assert messages and "left_elbow" in " ".join(messages) and "joint_names order" in messages[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the correct order raises nothing
        CustomSource(str(dataset), conversion=Conversion(cache=False)).load()


# ---------------------------------------------------------------- the README block, each command its own process
#: What the test changes in the README's block: the data folder, and fewer epochs.
README_SUBSTITUTIONS = {"/data/gestures": None, "max_epochs: 30": "max_epochs: 2"}


def _readme_block() -> tuple[dict[str, str], list[str]]:
    """The recipes (path -> text) and the commands of README's "A dataset of your own"."""
    section = (REPO / "README.md").read_text().split("### A dataset of your own", 1)[1].split("\n## ", 1)[0]
    recipes = {m.group(1): m.group(0) for m in re.finditer(r"(?<=```yaml\n)# (\S+)\n.*?(?=```)", section, re.S)}
    commands = re.findall(r"```bash\n(.*?)```", section, re.S)[0].strip().splitlines()
    return recipes, commands


def run_command(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One command line as a user runs it: its own process, output piped (not a terminal)."""
    args = shlex.split(line)
    assert args[:3] == ["python", "-m", "purls_pl"], line
    return subprocess.run([sys.executable, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def readme_runs(dataset, tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, subprocess.CompletedProcess]]:
    """Run README's block verbatim (but the data folder and the epochs) in a fresh directory."""
    work = tmp_path_factory.mktemp("readme")
    (work / "experiments").symlink_to(REPO / "experiments")
    substitutions = {**README_SUBSTITUTIONS, "/data/gestures": str(dataset)}
    recipes, commands = _readme_block()
    assert sorted(recipes) == ["my/gestures.yaml", "my/gestures_backbone.yaml"]
    for name, text in recipes.items():
        for old, new in substitutions.items():
            text = text.replace(old, new)
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    env = {**os.environ, "PURLS_CACHE_DIR": str(work / "cache")}
    done: dict[str, subprocess.CompletedProcess] = {}
    for line in commands:
        for old, new in substitutions.items():
            line = line.replace(old, new)
        done[line.split()[3]] = result = run_command(line, work, env)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    return work, env, done


def test_the_readme_block_runs_each_command_in_its_own_process(readme_runs):
    work, _, done = readme_runs
    result = json.loads((work / "lightning_logs/gestures_4_2/version_0/results.json").read_text())
    assert result["unseen_classes"] == ["jump", "spin"] and result["num_test_samples"] == 4
    assert "gestures_4_2" in done["report"].stdout
    assert {"jump", "spin", "wave"} <= set(done["recognize"].stdout.split())
    assert "records no seen classes" not in done["recognize"].stderr  # the checkpoint keeps stage 1's record
    assert (work / "figs" / "gestures.png").is_file()
    fit = done["fit"].stdout + done["fit"].stderr
    # progress in a log that is not a terminal, and no library noise above it
    assert re.search(r"epoch 2/2 done 1/1 \[.*step.*samples/s, run left 00:00 train/loss=", fit), fit
    assert "litlogger" not in fit and "log_every_n_steps" not in fit


def _flip_bytes(path: Path, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    for i in range(64):
        data[len(data) // 2 + 7 * i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_corrupted_exports_and_checkpoints_are_refused_with_the_file_and_the_fix(readme_runs, dataset):
    work, env, _ = readme_runs
    export = work / "lightning_logs/backbones/gestures_4_2/seed0.pt"
    ckpt = work / "lightning_logs/gestures_4_2/version_0/checkpoints/last.ckpt"
    bad_export = _flip_bytes(export, work / "bad_export.pt")
    bad_ckpt = _flip_bytes(ckpt, work / "bad.ckpt")
    commands = [
        f"python -m purls_pl fit --config experiments/purls.yaml --config my/gestures.yaml "
        f"--model.backbone.checkpoint={bad_export} --trainer.default_root_dir={work / 'bad_runs'}",
        f"python -m purls_pl fit --config experiments/purls.yaml --config my/gestures.yaml --ckpt_path={bad_ckpt} "
        f"--model.backbone.checkpoint={export} --trainer.default_root_dir={work / 'bad_runs'}",
        f"python -m purls_pl recognize --ckpt {bad_ckpt} --candidates jump,spin {dataset / 'jump_00.npy'}",
    ]
    for line, bad in zip(commands, (bad_export, bad_ckpt, bad_ckpt), strict=True):
        result = run_command(line, work, env)
        assert result.returncode == 2, result.stderr
        first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
        assert first.startswith(f"error: {bad}: the content does not match the checksum"), result.stderr
        assert "Traceback" not in result.stderr and "weights_only" not in result.stderr
    assert not list((work / "bad_runs").rglob("results.json"))


def test_a_missing_data_folder_is_named_not_taken_for_an_unknown_dataset(readme_runs):
    work, env, _ = readme_runs
    line = "python -m purls_pl fit --config experiments/purls.yaml --config my/gestures.yaml"
    result = run_command(f"{line} --data.source.init_args.root={work / 'elsewhere'}", work, env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert f"{work / 'elsewhere' / 'index.csv'} does not exist" in error and "unknown dataset" not in error
