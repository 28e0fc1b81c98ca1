"""Exact resume: a fit interrupted mid-epoch and resumed from its last checkpoint ends where an
uninterrupted fit ends — same weights (``torch.equal``), same optimizer state, same validation metrics.

Tiny demo set in the selection protocol (12 training classes x 6 training samples, batch 12: 6 steps per
epoch, 3 epochs, validation on the 3 validation classes after each), the tiny
random CLIP tower and Shift-GCN of ``conftest.py``, dropout and augmentation on (both draw random
numbers, so the RNG states must be restored too), checkpoints every 3 steps through
:class:`AtomicCheckpointIO`. Two interruptions are checked against the uninterrupted run:

* a crash at step 10 (an exception raised from a callback, as a killed process would stop), resumed
  from the last checkpoint written before it (step 9: epoch 1, batch 3 of 6 — mid-epoch);
* a resume from the uninterrupted run's step-6 checkpoint, written on the last batch of epoch 0 before
  its validation (the epoch-boundary case).

No tolerance is needed: on CPU with ``deterministic=True`` every op is deterministic, and the resumed run
replays the same data order (the sampler state) and random numbers (the RNG states).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from pytorch_lightning import Callback, Trainer, seed_everything
from pytorch_lightning.callbacks import ModelCheckpoint

from purls_pl.data.augment import SkeletonAugment
from purls_pl.data.demo.motion import DemoSource
from purls_pl.eval.callbacks import ZeroShotEvaluation
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.partition import AdaptivePartitioner
from purls_pl.models.purls_module import PurlsModule
from purls_pl.text.encoder import TextEncoder
from purls_pl.train.checkpoint_io import AtomicCheckpointIO
from purls_pl.train.datamodule import ZeroShotDataModule
from purls_pl.train.resumable import ExactResume

EPOCHS, STEPS_PER_EPOCH = 3, 6


class SimulatedCrash(RuntimeError):
    pass


class Crash(Callback):
    """Stop the fit like a killed process: raise before training step ``at`` (nothing is saved then)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.at:
            raise SimulatedCrash(f"step {self.at}")


def _fit(root: Path, clip: Path, backbone: Path, ckpt_path: Path | None = None, crash: int | None = None) -> dict:
    seed_everything(0)
    augment = SkeletonAugment(rotate_degrees=10.0, scale=0.1)
    dm = ZeroShotDataModule(
        DemoSource(samples_per_class=8, num_frames=12),
        "demo_15_5",
        protocol="select",  # validation (on validation classes) runs between the epochs too
        holdout=0.0,
        descriptions="demo",
        text_encoder=TextEncoder(str(clip)),
        batch_size=12,
        eval_batch_size=16,
        augment=augment,
    )
    model = PurlsModule(
        dm.class_text,
        dm.layout,
        FrozenBackbone(str(backbone)),
        partitioner=functools.partial(AdaptivePartitioner, attn_dim=16),
        proj_hidden=32,
        proj_dropout=0.2,
        lr=3e-3,
        cosine=True,
    )
    evaluation = ZeroShotEvaluation(figures=False)
    checkpoints = ModelCheckpoint(root / "ckpt", filename="{step}", every_n_train_steps=3, save_top_k=-1)
    trainer = Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        plugins=[AtomicCheckpointIO()],
        callbacks=[evaluation, checkpoints, ExactResume(), *([Crash(crash)] if crash is not None else [])],
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": trainer.optimizers[0].state_dict(),
        "val": evaluation.history,
        "step": trainer.global_step,
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_clip, tiny_backbone) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("uninterrupted")
    return _fit(root, tiny_clip, tiny_backbone), root


def _assert_same(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] == EPOCHS * STEPS_PER_EPOCH
    assert a["state"].keys() == b["state"].keys()
    for key, value in a["state"].items():
        assert torch.equal(value, b["state"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in pa:
            assert torch.equal(torch.as_tensor(pa[key]), torch.as_tensor(pb[key])), key
    assert a["val"][-1] == b["val"][-1]  # the last epoch's validation (a resumed run has no earlier ones)


def test_crash_mid_epoch_then_resume_matches_uninterrupted(tmp_path, tiny_clip, tiny_backbone, uninterrupted):
    reference, _ = uninterrupted
    with pytest.raises(SimulatedCrash):
        _fit(tmp_path, tiny_clip, tiny_backbone, crash=10)
    saved = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert [p.name for p in saved] == ["step=3.ckpt", "step=6.ckpt", "step=9.ckpt"]
    assert not list((tmp_path / "ckpt").glob(".*.tmp")), "no temporary files left behind"
    state = torch.load(saved[-1], weights_only=True)
    loader_state = state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert (loader_state["epoch"], loader_state["batches"]) == (1, 3)  # mid-epoch: epoch 1, after batch 3 of 6
    _assert_same(_fit(tmp_path, tiny_clip, tiny_backbone, ckpt_path=saved[-1]), reference)


def test_resume_from_the_last_batch_of_an_epoch(tmp_path, tiny_clip, tiny_backbone, uninterrupted):
    reference, root = uninterrupted
    _assert_same(_fit(tmp_path, tiny_clip, tiny_backbone, ckpt_path=root / "ckpt" / "step=6.ckpt"), reference)
