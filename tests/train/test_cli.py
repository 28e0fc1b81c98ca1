"""Every registered split's run composes and parses, and a fast_dev_run of both stages runs for every
dataset recipe (on stand-in data with the dataset's class list and layout)."""

import json
from pathlib import Path

import pytest
import yaml

from purls_pl.apps.experiments import experiment_args
from purls_pl.data.catalog import card, known_datasets
from purls_pl.data.splits import builtin_splits, get_split
from purls_pl.text.fields import FIELDS
from purls_pl.train import cli, pretrain

REPO = Path(__file__).resolve().parents[2]
#: One split per dataset: the fast_dev_run covers every recipe and both class lists of a shared recipe.
ONE_SPLIT_PER_DATASET = sorted({get_split(s).dataset: s for s in builtin_splits()}.values())


@pytest.mark.parametrize("split", builtin_splits())
def test_every_split_resolves_in_every_stage(split, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    for stage, run in (("purls", cli.main), ("global", cli.main), ("backbone", pretrain.main)):
        with pytest.raises(SystemExit) as stop:
            run(["fit", *experiment_args(split, stage), "--print_config"])
        assert stop.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["data"]["split"] == split
        linked = ("class_text", "layout") if stage != "backbone" else ("seen_classes", "input_format", "class_names")
        assert not set(linked) & set(printed["model"]), "values the data determine must not be configurable"
        monitors = [printed["checkpoint"]["monitor"], *(str(c) for c in printed["trainer"]["callbacks"] or [])]
        assert not any("test/" in str(m) for m in monitors), "nothing may be chosen on the unseen test samples"
        assert printed["checkpoint"]["monitor"] in ("val/zsl_top1", "val/seen_top1")
        if stage == "backbone":
            assert not {"layout", "in_channels", "num_persons"} & set(printed["model"]["backbone"]["init_args"])


def _stand_in(split: str) -> list[str]:
    dataset = get_split(split).dataset
    if dataset == "demo":
        return ["--data.source.init_args.samples_per_class=4", "--data.source.init_args.num_frames=12"]
    return [
        "--data.source=purls_pl.data.random_source.RandomSkeletonSource",
        f"--data.source.init_args.dataset={dataset}",
        f"--data.source.init_args.num_persons={1 if card(dataset).layout in ('kinect20', 'penn13') else 2}",
        "--data.source.init_args.num_frames=12",
    ]


def test_every_dataset_is_covered():
    assert {get_split(s).dataset for s in ONE_SPLIT_PER_DATASET} == set(known_datasets())


@pytest.mark.parametrize("split", ONE_SPLIT_PER_DATASET)
def test_fast_dev_run_both_stages(split, tmp_path, monkeypatch, tiny_clip):
    monkeypatch.chdir(REPO)
    export = tmp_path / "backbone.pt"
    common = ["--trainer.fast_dev_run=true", "--trainer.precision=32-true", f"--trainer.default_root_dir={tmp_path}"]
    common += ["--data.batch_size=4", "--data.num_workers=0", *_stand_in(split)]
    pretrain.main(
        [
            "fit",
            *experiment_args(split, "backbone"),
            *common,
            f"--export.path={export}",
            "--model.backbone.init_args.channels=[8,16]",
            "--model.backbone.init_args.strides=[1,2]",
        ]
    )
    assert export.is_file()
    for stage in ("purls", "global"):
        cli.main(
            [
                "fit",
                *experiment_args(split, stage),
                *common,
                f"--model.backbone.checkpoint={export}",
                f"--data.text_encoder.model={tiny_clip}",
                "--data.eval_batch_size=8",
            ]
        )
        results = tmp_path / "results.json"  # fast_dev_run logs nowhere: the results land in the root dir
        result = json.loads(results.read_text())
        results.unlink()
        assert 0.0 <= result["test/zsl_top1"] <= 1.0 and result["num_unseen_classes"] == len(get_split(split).unseen)
        if stage == "purls":  # each field's own ranking; the global field's is the prediction (cosine, λ = 0)
            assert {f"test/field_top1_{f}" for f in FIELDS} <= set(result)
            assert result["test/field_top1_global"] == pytest.approx(result["test/zsl_top1"])


def test_auto_backbone_path_follows_the_split_and_the_seed(tmp_path, monkeypatch, tiny_clip):
    """``export.path: auto`` (stage 1) and ``model.backbone.checkpoint: auto`` (stage 2) meet at one file."""
    monkeypatch.chdir(REPO)
    common = ["--trainer.fast_dev_run=true", f"--trainer.default_root_dir={tmp_path}", "--seed_everything=3"]
    common += ["--data.batch_size=4", *_stand_in("demo_15_5")]
    tiny = ["--model.backbone.init_args.channels=[8,16]", "--model.backbone.init_args.strides=[1,2]"]
    pretrain.main(["fit", *experiment_args("demo_15_5", "backbone"), *common, *tiny])
    assert (tmp_path / "backbones" / "demo_15_5" / "seed3.pt").is_file()
    assert cli.backbone_export_path("demo_15_5", 3, tmp_path) == tmp_path / "backbones" / "demo_15_5" / "seed3.pt"
    cli.main(["fit", *experiment_args("demo_15_5"), *common, f"--data.text_encoder.model={tiny_clip}"])
    assert (tmp_path / "results.json").is_file()  # it found the export (fast_dev_run writes into the root)


def test_fast_dev_run_under_bf16_autocast(tmp_path, monkeypatch, tiny_clip, tiny_backbone):
    """Mixed precision (the GPU configs use bf16-mixed): the same path under CPU autocast."""
    monkeypatch.chdir(REPO)
    cli.main(
        [
            "fit",
            *experiment_args("demo_15_5"),
            "--trainer.fast_dev_run=true",
            "--trainer.precision=bf16-mixed",
            f"--trainer.default_root_dir={tmp_path}",
            "--data.batch_size=4",
            *_stand_in("demo_15_5"),
            f"--model.backbone.checkpoint={tiny_backbone}",
            f"--data.text_encoder.model={tiny_clip}",
            "--data.eval_batch_size=8",
        ]
    )
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert 0.0 <= results["test/zsl_top1"] <= 1.0


def test_a_run_composing_a_variant_file_is_named_after_it():
    """The variant file (``experiments/global.yaml``) is one :func:`~purls_pl.train.paths.variants` finds:
    ``experiment_files`` composes it and ``run_name`` suffixes the run with it, from one definition; a selection
    file of the same name (``selected/<split>/global.yaml``) is no variant."""
    from jsonargparse import Namespace

    from purls_pl.apps.experiments import experiment_files
    from purls_pl.train.paths import variant_file, variant_of, variants

    assert {"global", "cada_vae"} <= set(variants(REPO / "experiments"))
    assert variant_file("global", REPO / "experiments") == REPO / "experiments/global.yaml"
    assert variant_of(REPO / "experiments/selected/nw-ucla_8_2/global.yaml") is None
    files = experiment_files("nw-ucla_8_2", "global", REPO / "experiments", selected=None)
    assert files[-1] == variant_file("global", REPO / "experiments") and variant_of(files[-1]) == "global"
    assert variant_of(files[0]) is None and variant_of("elsewhere/purls.yaml") is None
    config = Namespace(config=[str(f) for f in files], data=Namespace(split="nw-ucla_8_2", source=None))
    assert cli.run_name(config) == "nw-ucla_8_2-global"
    with pytest.raises(ValueError, match="not a variant"):
        variant_file("purls", REPO / "experiments")
