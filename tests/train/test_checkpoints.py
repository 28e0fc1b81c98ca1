"""Checkpoints and exports under the evaluation protocol: ``last.ckpt`` is the final weights, "best"
checkpoints are chosen on validation classes only, stage 1 exports its final weights per seed."""

from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from purls_pl.apps.experiments import experiment_args
from purls_pl.models.features import load_backbone
from purls_pl.train import cli, pretrain
from purls_pl.train.wiring import FinalCheckpoint

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--data.source.init_args.samples_per_class=6", "--data.source.init_args.num_frames=12"]
TINY = ["--model.backbone.init_args.channels=[8,16]", "--model.backbone.init_args.strides=[1,2]"]


def _stage1(root: Path, seed: int, *args: str) -> Path:
    run = pretrain.main(
        [
            "fit",
            *experiment_args("demo_15_5", "backbone", REPO / "experiments"),
            *DEMO,
            *TINY,
            *args,
            f"--seed_everything={seed}",
            "--trainer.max_epochs=2",
            f"--trainer.default_root_dir={root}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    return Path(run.config_init[run.subcommand]["export"].path)


def test_two_seeds_give_different_stage_one_weights(tmp_path):
    first, second = _stage1(tmp_path, 0), _stage1(tmp_path, 1)
    assert first == tmp_path / "backbones" / "demo_15_5" / "seed0.pt" and second.name == "seed1.pt"
    a, meta = load_backbone(first)
    b, _ = load_backbone(second)
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert meta["epochs"] == 2 and "seen_test_top1" in meta and len(meta["seen_class_names"]) == 15
    assert meta["preprocess"]["format"] == 2 and meta["preprocess"]["layout"] == "ntu25"  # the record, whole
    assert (meta["preprocess"]["num_frames"], meta["preprocess"]["num_persons"]) == (12, 1)
    assert not list(tmp_path.rglob("best-*.ckpt")), "without a holdout stage 1 selects nothing"


@pytest.mark.parametrize("protocol", ["select", "final"])
def test_last_checkpoint_holds_the_final_weights(tmp_path, tiny_clip, protocol):
    backbone = _stage1(tmp_path, 0, f"--data.protocol={protocol}")
    run = cli.main(
        [
            "fit",
            *experiment_args("demo_15_5", root=REPO / "experiments"),
            *DEMO,
            f"--data.protocol={protocol}",
            f"--data.text_encoder.model={tiny_clip}",
            f"--model.backbone.checkpoint={backbone}",
            "--model.lr=0.01",
            "--trainer.max_epochs=4",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    checkpoints = next((tmp_path / "run").rglob("checkpoints"))
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == run.trainer.global_step
    final = run.model.state_dict()
    assert last["state_dict"].keys() == final.keys()
    assert all(torch.equal(last["state_dict"][k], v) for k, v in final.items())
    best = sorted(checkpoints.glob("best-*.ckpt"))
    if protocol == "final":
        assert best == [], "the final run has no validation to choose by"
        assert (checkpoints.parent / "results.json").is_file()
    else:
        assert len(best) == 1 and torch.load(best[0], weights_only=True)["callbacks"]
        monitor = next(v for k, v in last["callbacks"].items() if "FinalCheckpoint" in k)["monitor"]
        assert monitor == "val/zsl_top1" and not (checkpoints.parent / "results.json").exists()


def test_a_selection_run_refuses_the_final_backbone(tmp_path, tiny_clip):
    """The final stage-1 backbone saw the validation classes: a selection run must not use it."""
    backbone = _stage1(tmp_path, 0)
    with pytest.raises(ValueError, match="are not among them"):
        cli.main(
            [
                "fit",
                *experiment_args("demo_15_5", root=REPO / "experiments"),
                *DEMO,
                "--data.protocol=select",
                f"--data.text_encoder.model={tiny_clip}",
                f"--model.backbone.checkpoint={backbone}",
                "--trainer.fast_dev_run=true",
                f"--trainer.default_root_dir={tmp_path / 'run'}",
            ]
        )


class _Tiny(LightningModule):
    """One linear layer on random data: 4 steps per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.log("val_loss", float(self.current_epoch))  # worse every epoch: only epoch 0 is a top-k one

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Killed(Exception):
    pass


class _KillAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise _Killed  # as a killed process stops: no on_train_end


@pytest.mark.parametrize("validates", [False, True])
def test_a_run_killed_mid_fit_left_last_ckpt_of_its_last_epoch(tmp_path, validates):
    """A final run keeps no top-k checkpoint (``monitor=None, save_top_k=0``); a selection run's metric
    may stop improving. Either way ``last.ckpt`` is rewritten at each epoch end, so a killed run resumes."""
    data = DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=4)
    kept = {"monitor": "val_loss", "mode": "min"} if validates else {"monitor": None, "save_top_k": 0}
    checkpoint = FinalCheckpoint(dirpath=tmp_path, save_last=True, **kept)
    trainer = Trainer(
        max_epochs=5,
        callbacks=[checkpoint, _KillAt(3)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1 if validates else 0,
        num_sanity_val_steps=0,
    )
    with pytest.raises(_Killed):
        trainer.fit(_Tiny(), data, data if validates else None)
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 12)
