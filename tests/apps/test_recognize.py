"""Self-contained checkpoints and open-vocabulary recognition (+ the attention plot command)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NW_UCLA_STAND_IN, shared_path

from purls_pl.apps import plot
from purls_pl.apps import recognize as predict
from purls_pl.apps.experiments import experiment_args
from purls_pl.data.readers import Conversion
from purls_pl.data.skeletons import preprocessing_record
from purls_pl.models.checkpoint import module_from_checkpoint
from purls_pl.models.purls_module import PurlsModule
from purls_pl.text.descriptions import DescriptionSet, save_descriptions
from purls_pl.train import cli

REPO = Path(__file__).resolve().parents[2]
SPLIT = "nw-ucla_8_2"
#: Names the model never trained on: a foreign action and nw-ucla_8_2's two unseen classes.
NEW_NAMES = ["drink water", "pick up with two hands", "sit down"]
DATA = list(NW_UCLA_STAND_IN)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_clip) -> dict:
    """A tiny PURLS trained for 2 epochs on NW-UCLA-shaped data (kinect20, 1 person) via the CLI."""
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    net = ShiftGCN(layout="kinect20", num_persons=1, channels=[8, 16], strides=[1, 2])
    export = export_backbone(net, root / "kinect20.pt")
    text = f"--data.text_encoder.model={tiny_clip}"
    cli.main(
        [
            "fit",
            *experiment_args(SPLIT),
            *DATA,
            text,
            f"--model.backbone.checkpoint={export}",
            f"--trainer.default_root_dir={root}",
            "--trainer.max_epochs=2",
            "--trainer.precision=32-true",
            "--data.batch_size=8",
            "--data.eval_batch_size=16",
            "--zero_shot.figures=false",
            "--gzsl.figures=false",
        ]
    )
    ckpt = next(root.rglob("last.ckpt"))
    export.unlink()  # the checkpoint alone must suffice
    return {"ckpt": ckpt, "root": root, "text": text}


def _check_ranking(ranking, names):
    assert sorted(n for n, _ in ranking) == sorted(names)
    scores = [s for _, s in ranking]
    assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)


def test_checkpoint_is_self_contained_and_weights_only(trained, tiny_clip):
    checkpoint = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    spec = checkpoint["purls"]
    assert spec["layout"]["name"] == "kinect20" and spec["text"]["model"] == str(tiny_clip)
    assert spec["preprocess"] | {"approximate": False} == spec["preprocess"]
    assert (spec["preprocess"]["num_frames"], spec["preprocess"]["num_persons"]) == (12, 1)
    assert spec["backbone"]["class_path"].endswith("ShiftGCN") and spec["templates"] == "paper"
    module = PurlsModule.from_checkpoint(trained["ckpt"])
    assert not module.training and module.checkpoint_spec["split"] == "nw-ucla_8_2"
    seen_names = {module.class_names[i] for i in module.seen}
    assert not seen_names & set(NEW_NAMES)
    fields = list(module.partitioner.field_index)
    torch.testing.assert_close(module.seen_text, spec["class_text"][list(module.seen)][:, fields])
    other = dict(checkpoint, purls={**spec, "unseen": spec["unseen"][::-1]})
    with pytest.raises(ValueError, match="split"):
        module.on_load_checkpoint(other)


def test_saved_without_a_datamodule_still_loads_weights_only(trained, tmp_path):
    module = PurlsModule.from_checkpoint(trained["ckpt"])  # hparams now hold a functools.partial
    record = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(record)
    torch.save(record, tmp_path / "bare.ckpt")
    loaded = torch.load(tmp_path / "bare.ckpt", weights_only=True)
    assert loaded["hyper_parameters"]["partitioner"]["class_path"].endswith("AdaptivePartitioner")
    again = module_from_checkpoint(PurlsModule, tmp_path / "bare.ckpt")
    assert again.checkpoint_spec["text"] is None
    with pytest.raises(ValueError, match="preprocessing"):
        predict.recognize(again, [np.zeros((5, 20, 3))], NEW_NAMES)


def test_recognize_arrays_and_npy_with_names_not_used_in_training(trained, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(30, 20, 3)).astype(np.float32)
    np.save(tmp_path / "clip.npy", rng.normal(size=(1, 17, 20, 3)))
    ranked = predict.recognize(trained["ckpt"], [array, tmp_path / "clip.npy"], NEW_NAMES)
    assert len(ranked) == 2
    for ranking in ranked:
        _check_ranking(ranking, NEW_NAMES)
    with pytest.raises(ValueError, match="joints"):
        predict.recognize(trained["ckpt"], [np.ones((10, 25, 3))], NEW_NAMES)


def test_recognize_a_real_nw_ucla_file(trained, capsys):
    path = sorted(shared_path("data", "nw-ucla", "all_sqe").glob("a*_v03.json"))[0]
    ranked = predict.recognize(trained["ckpt"], [path], NEW_NAMES)
    _check_ranking(ranked[0], NEW_NAMES)
    predict.main([str(path), "--ckpt", str(trained["ckpt"]), "--candidates", ",".join(NEW_NAMES), "--json"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["sample"] == str(path) and [n for n, _ in line["ranking"]] == [n for n, _ in ranked[0]]


def test_a_file_of_another_layout_is_refused(trained, capsys):
    ntu = sorted(shared_path("data", "ntu-samples").glob("*.skeleton"))[0]
    with pytest.raises(SystemExit) as stop:
        predict.main([str(ntu), "--ckpt", str(trained["ckpt"]), "--candidates", "sit down"])
    assert stop.value.code == 2 and "ntu25 skeleton" in capsys.readouterr().err


def test_file_preprocessing_matches_the_reader(tmp_path):
    from purls_pl.data.readers import UCLASource

    root = shared_path("data", "nw-ucla", "all_sqe")
    source = UCLASource(
        str(root),
        num_frames=12,
        conversion=Conversion(max_samples=2, cache_dir=str(tmp_path)),
    )
    skeletons = source.load()
    spec = preprocessing_record(source, skeletons.data.shape)
    for i, sample_id in enumerate(skeletons.sample_ids):
        ours = predict.prepare_sample(root / f"{sample_id}.json", spec)
        np.testing.assert_allclose(ours, skeletons.data[i], atol=1e-6)


def test_candidate_descriptions_file_generation_and_label_only(tmp_path, monkeypatch):
    described = {"label": "sit down", **{f: f"{f} text" for f in ("head", "hands", "torso", "legs")}}
    described |= {"start": "stands", "middle": "bends", "end": "sits", "global": "sits down on a chair"}
    path = tmp_path / "d.json"
    save_descriptions(DescriptionSet.from_records([described], name="mine"), path)
    with pytest.warns(UserWarning, match="drink water"):
        merged = predict.candidate_descriptions(["sit down", "drink water"], path)
    assert merged.entries["sit down"]["global"] == ("sits down on a chair",)
    assert merged.entries["drink water"]["global"] == ("drink water",)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.warns(UserWarning, match="label-only"):
        predict.candidate_descriptions(["sit down"], tmp_path / "missing.json")
    calls = []

    def fake_generate(names, out, client, progress=None):
        calls.append((list(names), Path(out)))
        return DescriptionSet.from_records([described], name="gen")

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unused")
    monkeypatch.setattr("purls_pl.apps.recognize.generate_descriptions", fake_generate)
    monkeypatch.setattr("purls_pl.apps.recognize.make_client", lambda: object())
    generated = predict.candidate_descriptions(["sit down"], tmp_path / "new.json")
    assert calls == [(["sit down"], tmp_path / "new.json")] and generated.entries["sit down"]["end"] == ("sits",)


def test_plot_attention_command(trained, tmp_path, monkeypatch):
    mpimg = pytest.importorskip("matplotlib.image")
    monkeypatch.chdir(REPO)
    out = tmp_path / "figs"
    args = ["--ckpt", str(trained["ckpt"]), "--split", SPLIT, "--samples", "0,1", "--out", str(out)]
    written = plot.plot_attention_main([*args, *DATA, trained["text"]])
    assert len(written) == 2
    for path in written:
        assert path.parent == out and mpimg.imread(path).shape == (700, 1600, 4)


@pytest.mark.parametrize(
    ("folder", "pattern", "layout", "joints"),
    [
        ("ntu-samples", "*.skeleton", "ntu25", 25),
        ("kinetics-samples", "*.json", "openpose18", 18),
        (("nw-ucla", "all_sqe"), "*.json", "kinect20", 20),
    ],
    ids=["ntu", "kinetics", "nw-ucla"],
)
def test_every_file_format_is_read_and_fitted(folder, pattern, layout, joints):
    folder = (folder,) if isinstance(folder, str) else folder
    path = sorted(p for p in shared_path("data", *folder).glob(pattern) if not p.name.endswith("_label.json"))[0]
    spec = {"layout": layout, "num_frames": 20, "temporal": "resample", "center": True, "num_persons": 2}
    spec["normalize_kinetics"] = layout == "openpose18"
    sample = predict.prepare_sample(path, spec)
    assert sample.shape == (2, 20, joints, 3) and np.isfinite(sample).all() and np.abs(sample).sum() > 0


def test_label_fusion_reaches_recognition_and_the_checkpoint(trained, tmp_path):
    rng = np.random.default_rng(1)
    samples = [rng.normal(size=(30, 20, 3)).astype(np.float32) for _ in range(3)]
    plain = predict.recognize(trained["ckpt"], samples, NEW_NAMES)
    module = PurlsModule.from_checkpoint(trained["ckpt"])
    module.hparams.label_fusion = 1.0  # score against the labels' own embeddings alone
    fused = predict.recognize(module, samples, NEW_NAMES)
    assert [dict(r) for r in fused] != [dict(r) for r in plain]
    record = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "purls": module.checkpoint_spec,
    }
    module.on_save_checkpoint(record)
    assert record["purls"]["class_labels"].shape == (len(module.class_names), module.candidate_text.shape[-1])


def test_a_label_field_checkpoint_rebuilds_and_recognizes(tmp_path, tiny_clip):
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    torch.manual_seed(0)
    export = export_backbone(ShiftGCN(layout="kinect20", num_persons=1, channels=[8], strides=[1]), tmp_path / "b.pt")
    args = [*experiment_args(SPLIT), *DATA, f"--data.text_encoder.model={tiny_clip}"]
    args += [f"--model.backbone.checkpoint={export}", f"--trainer.default_root_dir={tmp_path}"]
    cli.main(["fit", *args, "--model.label_field=0.5", "--trainer.max_epochs=1", "--zero_shot.figures=false"])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    saved = torch.load(ckpt, weights_only=True)
    module = PurlsModule.from_checkpoint(ckpt)
    assert module.hparams.label_field == 0.5 and module.label_head is not None
    for name, value in saved["state_dict"].items():
        torch.testing.assert_close(module.state_dict()[name], value)
    assert saved["purls"]["class_labels"] is not None
    rng = np.random.default_rng(1)
    results = predict.recognize(module, [rng.normal(size=(30, 20, 3)).astype(np.float32)], NEW_NAMES)
    assert len(results) == 1


def test_recognition_prepares_a_custom_file_as_its_reader_did(tmp_path):
    """A custom source drops empty frames inside a sequence; its record makes recognition do the same."""
    from purls_pl.data.readers import CustomSource
    from purls_pl.data.readers.custom import write_custom_dataset

    seq = np.random.default_rng(0).normal(size=(10, 25, 3)).astype(np.float32)
    seq[4:6] = 0.0  # the tracker lost the person for two frames
    root = write_custom_dataset(tmp_path, {"gap": seq}, {"gap": "wave"}, "ntu25")
    source = CustomSource(str(root), layout="ntu25", num_frames=8, center=False, conversion=Conversion(cache=False))
    skeletons = source.load()
    spec = preprocessing_record(source, skeletons.data.shape)
    assert spec["empty_frames"] == "all"
    prepared = predict.prepare_sample(root / "gap.npy", spec)
    np.testing.assert_allclose(prepared, skeletons.data[0], rtol=1e-6)
    kept = predict.prepare_sample(root / "gap.npy", spec | {"empty_frames": "trailing"})
    assert not np.allclose(kept, skeletons.data[0])  # the old record resampled the gap into the clip
