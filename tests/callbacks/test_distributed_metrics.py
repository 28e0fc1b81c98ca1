"""Zero-shot metrics over 2 gloo processes equal the single-process metrics over all samples.

Each worker (a forked process — it inherits the imported modules, so no second Lightning import; gloo on
127.0.0.1 only) iterates its shard of an 11-sample evaluation
set through :func:`purls_pl.data.resumable.eval_loader` (which pads the shards to equal length with
flagged copies, as DDP needs equal batch counts) and feeds :class:`ZeroShotEvaluation` as the test loop
would; torchmetrics synchronises the states at ``compute``. Every sample must be counted exactly once,
and top-1 / top-5 / mean-class accuracy and the confusion matrix must equal one process on all samples.
``shard=False`` (the GZSL loader) gives every process the whole set.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

from purls_pl.callbacks.zero_shot import ZeroShotEvaluation, zsl_metrics

N, K, WORLD = 11, 6, 2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(N, K, generator=g)
    targets = torch.randint(0, K - 1, (N,), generator=g)  # class K-1 never occurs
    targets[0] = scores[0].argmax()  # sample 0 (the one padding repeats) is a hit: double counting would show
    return scores, targets


class Samples(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(i)}


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from purls_pl.data.resumable import eval_loader

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        scores, targets = _data()
        module = SimpleNamespace(
            device=torch.device("cpu"), unseen=tuple(range(K)), class_names=[f"c{i}" for i in range(K)]
        )
        callback = ZeroShotEvaluation(figures=False)
        callback.setup(None, module, "test")  # type: ignore[arg-type]
        seen = []
        for i, batch in enumerate(eval_loader(Samples(), batch_size=2)):
            idx = batch["index"]
            outputs = {"scores": scores[idx], "targets": targets[idx]}
            callback.on_test_batch_end(None, module, outputs, batch, i)  # type: ignore[arg-type]
            seen += idx[batch["valid"]].tolist()
        result = {k: v for k, v in callback.metrics["test"].compute().items()}
        result["confusion"] = torch.tensor(callback._per_class(module)["confusion"])  # type: ignore[arg-type]
        result["seen"] = torch.tensor(seen)
        result["whole"] = torch.tensor(len(list(eval_loader(Samples(), batch_size=2, shard=False))))
        torch.save(result, Path(out) / f"rank{rank}.pt")
        dist.barrier()  # leave together: a process group torn down while the peer still talks can abort
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_synced_metrics_equal_single_process_over_all_samples(tmp_path):
    port = _free_port()
    context = mp.get_context("fork")
    procs = [context.Process(target=_worker, args=(rank, port, str(tmp_path))) for rank in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * WORLD

    scores, targets = _data()
    single = {k: v for k, v in zsl_metrics(K).to("cpu").forward(scores, targets).items()}
    confusion = torch.zeros(K, K, dtype=torch.long)
    confusion.index_put_((targets, scores.argmax(-1)), torch.ones(N, dtype=torch.long), accumulate=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert sorted(torch.cat([r["seen"] for r in results]).tolist()) == list(range(N))  # each sample once
    for r in results:
        for key, value in single.items():
            assert torch.equal(r[key], value), key
        assert torch.equal(r["confusion"], confusion)
        assert int(r["whole"]) == (N + 1) // 2  # unsharded: all N samples in batches of 2
