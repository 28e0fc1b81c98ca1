"""Evaluation over 2 gloo processes equals one process over all samples.

Each worker (a forked process — it inherits the imported modules, so no second Lightning import; gloo on
127.0.0.1 only) iterates its shard of an 11-sample test set through
:func:`purls_pl.train.resumable.eval_loader` (which pads the shards to equal length with flagged copies,
as DDP needs equal batch counts) and feeds :class:`ZeroShotEvaluation` and
:class:`GeneralizedZeroShotEvaluation` as the test loop would. torchmetrics synchronises the zero-shot
states at ``compute``; the GZSL callback all-gathers the scores. Every sample must be counted exactly once,
and every metric, the confusion matrix and the GZSL record must equal one process on all samples.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

from purls_pl.data.batch import SkeletonBatch, SkeletonSample
from purls_pl.eval.callbacks import GeneralizedZeroShotEvaluation, ZeroShotEvaluation
from purls_pl.eval.outputs import ZeroShotScores

N, K, WORLD = 11, 6, 2
SEEN, UNSEEN = (0, 1, 2), (3, 4, 5)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(N, K, generator=g)
    labels = torch.randint(0, K - 1, (N,), generator=g)  # class K-1 never occurs
    labels[0] = 3 + scores[0, 3:].argmax()  # sample 0 (the one padding repeats) is an unseen-class hit
    return scores, labels


class Samples(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> SkeletonSample:
        return SkeletonSample(x=torch.zeros(1), y=torch.tensor(-1), index=torch.tensor(i))


class _Module(SimpleNamespace):
    """Stands in for PurlsModule: the class lists the callbacks read, logging, and all_gather over gloo."""

    def __init__(self) -> None:
        super().__init__(
            device=torch.device("cpu"),
            class_names=[f"c{i}" for i in range(K)],
            seen=SEEN,
            unseen=UNSEEN,
            candidates=(*SEEN, *UNSEEN),
            fields=(),
            logged={},
        )

    def log_dict(self, values, **_) -> None:
        self.logged.update({k: float(v) for k, v in values.items()})

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(out, tensor)
        return torch.stack(out)


def _evaluate(trainer: SimpleNamespace, batches: list[SkeletonBatch]) -> dict[str, object]:
    """Feed both callbacks as a test epoch would; return the logged values, confusion and GZSL record."""
    scores, labels = _data()
    module = _Module()
    zsl, gzsl = ZeroShotEvaluation(figures=False), GeneralizedZeroShotEvaluation(figures=False)
    zsl.setup(trainer, module, "test")
    gzsl.on_test_epoch_start(trainer, module)
    for i, batch in enumerate(batches):
        idx = batch.index
        batch = dataclasses.replace(batch, y=labels[idx])
        outputs = ZeroShotScores(scores[idx], scores[idx][:, len(SEEN) :], labels[idx])
        zsl.on_test_batch_end(trainer, module, outputs, batch, i)
        gzsl.on_test_batch_end(trainer, module, outputs, batch, i)
    zsl._log("test", module)
    samples = zsl.tested_samples(trainer, module)
    gzsl.on_test_epoch_end(trainer, module)
    record = {k: v for k, v in gzsl.result.items() if k in ("seen", "unseen", "h", "ausuc", "num_samples")}
    confusion = zsl.per_class(samples, module.unseen, module.class_names)["confusion"]
    return {**module.logged, "confusion": confusion, "samples": sorted(map(tuple, samples.tolist())), "gzsl": record}


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from purls_pl.train.resumable import eval_loader

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        batches = list(eval_loader(Samples(), batch_size=2))
        result = _evaluate(SimpleNamespace(world_size=WORLD, sanity_checking=False), batches)
        result["seen"] = [int(i) for b in batches for i in b.index[b.valid]]
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

    everything = [SkeletonBatch(torch.zeros(1), torch.zeros(1), torch.arange(i, min(i + 2, N))) for i in range(0, N, 2)]
    single = _evaluate(SimpleNamespace(world_size=1, sanity_checking=False), everything)
    assert single["gzsl"]["num_samples"] == N
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    assert sorted(i for r in results for i in r.pop("seen")) == list(range(N))  # each sample once
    for r in results:
        assert r.keys() == single.keys()
        for key, value in single.items():
            if isinstance(value, float):
                assert math.isclose(r[key], value, rel_tol=1e-6, abs_tol=1e-9), key
            else:
                assert r[key] == value, key
