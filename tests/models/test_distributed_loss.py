"""The contrastive loss over 2 gloo processes equals one process on the concatenated batch.

Each worker (this file run as a script, on 127.0.0.1 only) holds one shard of a global batch, projects
it with a replicated linear layer, computes :class:`PartAwareContrastiveLoss` (which gathers V and the
targets with gradients) and back-propagates; it then averages the parameter gradients over the
processes as DDP does. The test checks, against one process on the whole batch:

* the loss value in every process is the global loss;
* the DDP-averaged gradients of the projection, the temperatures and the α log-variances are the
  single-process gradients, and the temperature/α gradients are already equal in each process;
* each process's ``V.grad`` is ``world_size ×`` its rows of the single-process ``V.grad``: every process
  computes the same global loss and the all-gather backward sums their contributions; this factor is
  exactly what DDP's averaging divides out (so per-process V gradients equal to the single-process ones
  would make the projection's DDP gradient ``1/world_size`` too small).

Shards of equal and of unequal size are covered, with classes shared across processes (their
text -> skeleton terms mask same-class samples of the other process too).

End to end (``slow``): a tiny demo fit with ``Trainer(strategy="ddp", devices=2)`` on CPU (Lightning launches
the second process by re-running this file) ends with the weights of a one-process fit on the same global
batches, and writes ``results.json`` with the GZSL record (the callbacks' collectives run in every process).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from purls_pl.models.losses import PartAwareContrastiveLoss

FIELDS = ("head", "hands", "global")
K, M, IN = 5, 6, 7
WORLD = 2
#: Per-process batch sizes: equal shards, and unequal ones (padded for the all-gather, then trimmed).
CASES = {"equal": [4, 4], "unequal": [5, 3]}


def _inputs(sizes: list[int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = sum(sizes)
    return {
        "x": torch.randn(n, len(FIELDS), IN, generator=g, dtype=torch.float64),
        "w": torch.randn(IN, M, generator=g, dtype=torch.float64),
        "text": F.normalize(torch.randn(K, len(FIELDS), M, generator=g, dtype=torch.float64), dim=-1),
        "y": torch.tensor([0, 1, 2, 0, 3, 1, 4, 2][:n]),
        "log_scale": torch.tensor([2.0, 2.5, 3.0], dtype=torch.float64),
        "log_var": torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64),
    }


def _step(inputs: dict[str, torch.Tensor], rows: slice, gather: bool) -> dict[str, torch.Tensor]:
    """Loss and gradients of one process holding ``rows`` of the batch."""
    w = inputs["w"].clone().requires_grad_(True)
    crit = PartAwareContrastiveLoss(FIELDS, alpha="learnable", distributed=gather).double()
    with torch.no_grad():
        crit.log_scale.copy_(inputs["log_scale"])
        crit.log_var.copy_(inputs["log_var"])
    v = F.normalize(inputs["x"][rows] @ w, dim=-1)
    v.retain_grad()
    loss = crit(v, inputs["text"], inputs["y"][rows])["loss"]
    loss.backward()
    return {
        "loss": loss.detach(),
        "v_grad": v.grad,
        "w_grad": w.grad,
        "log_scale_grad": crit.log_scale.grad,
        "log_var_grad": crit.log_var.grad,
    }


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        for name, sizes in CASES.items():
            start = sum(sizes[:rank])
            result = _step(_inputs(sizes), slice(start, start + sizes[rank]), gather=True)
            for key in ("w_grad", "log_scale_grad", "log_var_grad"):  # what DDP does with parameter gradients
                averaged = result[key].clone()
                dist.all_reduce(averaged)
                result[f"ddp_{key}"] = averaged / WORLD
            torch.save(result, Path(out) / f"{name}_rank{rank}.pt")
        dist.barrier()  # leave together: a process group torn down while the peer still talks can abort
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> Path:
    """Run both cases in 2 worker processes (one launch); their results' directory."""
    out = tmp_path_factory.mktemp("ddp_loss")
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(port), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD)
    ]
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_equal_one_process_on_the_concatenated_batch(ranks, case):
    sizes = CASES[case]
    inputs = _inputs(sizes)
    single = _step(inputs, slice(0, sum(sizes)), gather=False)
    tight = {"rtol": 1e-10, "atol": 1e-12}  # float64 parameters: only summation order may differ
    start = 0
    for rank in range(WORLD):
        got = torch.load(ranks / f"{case}_rank{rank}.pt", weights_only=True)
        rows = slice(start, start + sizes[rank])
        start += sizes[rank]
        torch.testing.assert_close(got["loss"], single["loss"], **tight)
        torch.testing.assert_close(got["v_grad"], WORLD * single["v_grad"][rows], **tight)
        for key in ("w_grad", "log_scale_grad", "log_var_grad"):
            torch.testing.assert_close(got[f"ddp_{key}"], single[key], **tight)
        for key in ("log_scale_grad", "log_var_grad"):  # replicated parameters: equal before averaging too
            torch.testing.assert_close(got[key], single[key], **tight)


def _demo_fit(devices: int, out: Path, clip: str, backbone: str) -> dict:
    """A tiny demo fit with a global batch of 30 (``30 / devices`` per process), no dropout or augmentation."""
    import functools

    from pytorch_lightning import Trainer, seed_everything

    from purls_pl.data.demo.motion import DemoSource
    from purls_pl.eval.callbacks import GeneralizedZeroShotEvaluation, ZeroShotEvaluation
    from purls_pl.models.features import FrozenBackbone
    from purls_pl.models.partition import AdaptivePartitioner
    from purls_pl.models.purls_module import PurlsModule
    from purls_pl.text.encoder import TextEncoder
    from purls_pl.train.datamodule import ZeroShotDataModule

    seed_everything(0)
    dm = ZeroShotDataModule(
        DemoSource(samples_per_class=8, num_frames=12),
        "demo_15_5",
        descriptions="demo",
        text_encoder=TextEncoder(clip),
        batch_size=30 // devices,
        eval_batch_size=7,
        unseen_from="all",
    )
    part = functools.partial(AdaptivePartitioner, attn_dim=16)
    model = PurlsModule(
        dm.class_text, dm.layout, FrozenBackbone(backbone), partitioner=part, proj_hidden=32, proj_dropout=0.0, lr=3e-3
    )
    evaluation = ZeroShotEvaluation(figures=False)
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=out,
        callbacks=[evaluation, GeneralizedZeroShotEvaluation(figures=False)],
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    result = {"state": model.state_dict(), "test": evaluation.last["test"], "step": trainer.global_step}
    if trainer.is_global_zero:
        torch.save(result, out / f"fit{devices}.pt")
    return result


@pytest.mark.slow
def test_ddp_fit_matches_one_process(tmp_path, tiny_clip, tiny_backbone):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env["MASTER_ADDR"] = "127.0.0.1"
    cmd = [sys.executable, __file__, "fit", str(tmp_path), str(tiny_clip), str(tiny_backbone)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    ddp = torch.load(tmp_path / "fit2.pt", weights_only=True)
    single = _demo_fit(1, tmp_path, str(tiny_clip), str(tiny_backbone))
    assert ddp["step"] == single["step"] == 6
    for key, value in single["state"].items():  # fp32: the global batch is summed in another order
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert ddp["test"] == single["test"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert "gzsl" in results and results["test/zsl_top1"] == ddp["test"]["test/zsl_top1"]


def test_single_process_path_is_unchanged():
    """Without torch.distributed, ``distributed=True`` gathers nothing: bit-identical to ``False``."""
    inputs = _inputs([8])
    a = _step(inputs, slice(0, 8), gather=True)
    b = _step(inputs, slice(0, 8), gather=False)
    for key in a:
        assert torch.equal(a[key], b[key]), key


if __name__ == "__main__":
    if sys.argv[1] == "fit":  # Lightning re-runs this command line for rank 1
        _demo_fit(2, Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    # Results are on disk; skip interpreter teardown, where gloo's background threads can make the
    # C++ runtime abort ("terminate called without an active exception") after a successful run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
