"""A Penn Action checkpoint recognises a Penn Action clip exactly as its test loop scores that sample.

Before the preprocessing record carried the Penn normalisation, ``recognize`` could not read the clip's
``.mat`` file, and an array of its joints was prepared without the person-box normalisation the backbone
was trained on; this test then fails (only the public API of both versions is used).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path

from purls_pl.apps import recognize as predict
from purls_pl.apps.experiments import experiment_args
from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.readers import Conversion, PennActionSource
from purls_pl.integrity import seal
from purls_pl.models.purls_module import PurlsModule
from purls_pl.train import cli

REPO = Path(__file__).resolve().parents[2]
SPLIT = "penn-action_10_5"
MAX_SAMPLES = 150


@pytest.fixture(scope="module")
def penn_checkpoint(tmp_path_factory, tiny_clip) -> Path:
    """A tiny PURLS fitted for one epoch on 150 Penn Action clips (box normalisation) via the CLI."""
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    labels = shared_path("data", "penn-action", "labels")
    root = tmp_path_factory.mktemp("penn")
    torch.manual_seed(0)
    export = export_backbone(ShiftGCN(layout="penn13", num_persons=1, channels=[8, 16], strides=[1, 2]), root / "b.pt")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*file\\(s\\) skipped")
        cli.main(
            [
                "fit",
                *experiment_args(SPLIT),
                f"--data.source.init_args.root={labels}",
                f"--data.source.init_args.conversion.max_samples={MAX_SAMPLES}",
                f"--data.text_encoder.model={tiny_clip}",
                f"--model.backbone.checkpoint={export}",
                "--model.backbone.cache=false",
                f"--trainer.default_root_dir={root}",
                "--trainer.max_epochs=1",
                "--trainer.precision=32-true",
                "--data.batch_size=16",
                "--data.eval_batch_size=32",
                "--zero_shot.figures=false",
                "--gzsl.figures=false",
            ]
        )
    return next(root.rglob("last.ckpt"))


def test_a_penn_clip_is_recognised_as_its_test_loop_scores_it(penn_checkpoint: Path) -> None:
    labels = shared_path("data", "penn-action", "labels")
    record = torch.load(penn_checkpoint, weights_only=True)["purls"]["preprocess"]
    assert record.get("normalization") == "box" and record.get("visibility") is True  # recorded, so replayed
    module = PurlsModule.from_checkpoint(penn_checkpoint)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*file\\(s\\) skipped")
        data = PennActionSource(str(labels), conversion=Conversion(max_samples=MAX_SAMPLES)).load()
    unseen = list(module.unseen)
    names = [module.class_names[c] for c in unseen]
    tests = [i for i in range(len(data)) if data.partition[i] == "test"]
    picks = [next(i for i in tests if data.labels[i] == c) for c in unseen]  # a test clip of each unseen class
    batch = SkeletonBatch(torch.from_numpy(np.asarray(data.data[picks])), torch.from_numpy(data.labels[picks]))
    with torch.no_grad():
        loop = module.test_step(batch, 0).zsl_scores  # (B, K_u): the unseen classes, in ``unseen`` order
    files = [labels / f"{data.sample_ids[i]}.mat" for i in picks]
    ranked = predict.recognize(penn_checkpoint, files, names, REPO / "descriptions" / "penn-action.json")
    for path, row, ranking in zip(files, loop, ranked, strict=True):
        assert [n for n, _ in ranking] == [names[k] for k in row.argsort(descending=True).tolist()], path
        np.testing.assert_allclose([dict(ranking)[n] for n in names], row.numpy(), atol=1e-5, err_msg=str(path))


def test_an_older_penn_checkpoint_is_completed_by_its_recorded_reader(penn_checkpoint: Path, tmp_path: Path) -> None:
    """A checkpoint written before the typed record (a flat record without the normalisation) is prepared
    by the reader its ``source`` record names, so it recognises as the new record does."""
    labels = shared_path("data", "penn-action", "labels")
    checkpoint = torch.load(penn_checkpoint, weights_only=True)
    flat = {"layout": "penn13", "num_frames": 32, "temporal": "resample", "center": False, "align": False}
    flat |= {"per_person": False, "normalize_kinetics": False, "num_person_in": 5, "num_persons": 1, "channels": 3}
    flat |= {"drop_empty_frames": False, "approximate": False}  # exactly what the old code recorded
    checkpoint["purls"]["preprocess"] = flat
    torch.save(seal(checkpoint), tmp_path / "old.ckpt")
    clips = [labels / "0001.mat", labels / "2000.mat"]
    names = ["bowling", "squat", "tennis serve"]
    assert predict.recognize(tmp_path / "old.ckpt", clips, names) == predict.recognize(penn_checkpoint, clips, names)
    del checkpoint["purls"]["source"]
    torch.save(seal(checkpoint), tmp_path / "older.ckpt")  # no source to ask: the flat record is replayed as it is
    assert predict.recognize(tmp_path / "older.ckpt", clips, names) != predict.recognize(penn_checkpoint, clips, names)
