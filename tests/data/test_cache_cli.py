"""The data cache as a user meets it, through ``python -m purls_pl pretrain fit`` (each run its own
process, output piped): a full disk is one message and leaves no build folder; the conversion prints
progress lines into a log.

The embedded demo renders in memory and never touches the cache, so these runs use a generated dataset
in the custom format (the ntu25 layout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_fs import tiny_fs

from purls_pl.data.readers.custom import write_custom_dataset

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["wave", "clap", "kick", "squat"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gestures")
    rng = np.random.default_rng(0)
    samples = {f"{c}_{i}": rng.normal(0, 0.1, (12, 25, 3)).astype(np.float32) for c in CLASSES for i in range(5)}
    labels = {sid: sid.split("_")[0] for sid in samples}
    splits = {sid: "test" if sid.endswith("_0") else "train" for sid in samples}
    return write_custom_dataset(root, samples, labels, "ntu25", splits, classes=CLASSES)


def _pretrain(tmp_path: Path, dataset: Path, cache: Path, num_frames: int) -> subprocess.CompletedProcess:
    recipe = {
        "data": {
            "source": {
                "class_path": "purls_pl.data.readers.CustomSource",
                "init_args": {"root": str(dataset), "dataset": "gestures", "layout": "ntu25", "num_frames": num_frames},
            },
            "split": {"unseen": ["squat"]},
            "batch_size": 4,
        },
        "model": {"backbone": {"init_args": {"channels": [8, 16], "strides": [1, 2]}}},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    args = ["--config", "experiments/backbone.yaml", "--config", str(tmp_path / "recipe.yaml")]
    args += ["--trainer.fast_dev_run=true", "--trainer.enable_progress_bar=false"]
    args += [f"--trainer.default_root_dir={tmp_path / 'runs'}", f"--export.path={tmp_path / 'b.pt'}"]
    env = {**os.environ, "PURLS_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "purls_pl", "pretrain", "fit", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_pretrain_on_a_full_cache_disk_fails_with_one_message_and_no_build_folder(dataset, tmp_path):
    """20 samples x 3000 frames x 25 joints x 3 float32 = 18 MB: more than the 4 MB disk."""
    with tiny_fs(tmp_path / "small") as small:
        done = _pretrain(tmp_path, dataset, small, num_frames=3000)
        leftovers = [p.name for p in small.iterdir()]
    assert done.returncode != 0 and leftovers == []
    message = (
        f"{small}: the data cache entry (20, 1, 3000, 25, 3) float32 needs 18.0 MB (18,000,000 bytes) but its file "
        "system has 4.2 MB (4,194,304 bytes) free; set PURLS_CACHE_DIR (or the source's conversion.cache_dir) to a "
        "directory on a disk with enough free space"
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"], done.stderr[-3000:]
    assert not (tmp_path / "b.pt").exists()


def test_pretrain_prints_the_conversion_progress_through_a_pipe(dataset, tmp_path):
    done = _pretrain(tmp_path, dataset, tmp_path / "cache", num_frames=16)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    final = [line for line in lines if line.startswith("converting gestures: 20/20 files (100%), ")]
    assert len(final) == 1 and final[0].endswith(" elapsed, done")
