"""Resumable, seeded data loading for exact mid-epoch resume, and duplicate-free DDP evaluation.

**Training order.** :class:`ResumableSampler` draws each epoch's permutation from its own generator
seeded with ``seed + epoch`` (never from the global RNG) and shards it over the DDP processes (it is a
``DistributedSampler``, so Lightning keeps it instead of injecting its own). :class:`ResumableDataLoader`
counts the batches it has handed out and exposes ``state_dict`` / ``load_state_dict``, which Lightning's
fit loop saves in every checkpoint (``loops.fit_loop.state_dict.combined_loader``) and restores when it
resumes mid-epoch: the resumed epoch replays the same permutation from the first batch not yet trained
on. Loaders get their own ``torch.Generator`` (worker base seeds), so iterating a loader never draws
from the global RNG and validation does not shift the training random stream.

**Random state.** :class:`ExactResume` (attached by :meth:`PurlsModule.configure_callbacks`) stores the
global torch / numpy / python (and CUDA) RNG states in every checkpoint and restores them at
``on_train_start`` of a resumed fit, just before the first batch is fetched — dropout and the main-process
augmentation then continue exactly where the interrupted run was. Limits: with ``num_workers > 0`` the
workers' augmentation streams are seeded per epoch, not per position, so a mid-epoch resume with
augmentation *and* workers is not bit-exact (the data order still is); under DDP every process restores
rank 0's RNG state, which is exact because seeded processes consume identical streams.

**Evaluation under DDP.** Lightning shards val/test loaders with a ``DistributedSampler`` that pads the
last shard with repeated samples (equal batch counts are needed: DDP syncs buffers on every forward),
so a few samples would be scored twice. :func:`eval_loader` pads instead with copies flagged
``valid = False``; :class:`~purls_pl.eval.callbacks.ZeroShotEvaluation` drops those rows before the
(synchronised) metrics, which then equal the single-process metrics over every sample exactly once.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from purls_pl.data.batch import SkeletonSample, collate_samples

STATE_FORMAT = 1


def _dist() -> tuple[int, int]:
    """``(world size, rank)`` of the default process group, ``(1, 0)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def default_seed() -> int:
    """The run's seed: ``$PL_GLOBAL_SEED`` (set by ``seed_everything``), else ``torch.initial_seed()``
    in one process and 0 under DDP (every process must draw the same permutation)."""
    env = os.environ.get("PL_GLOBAL_SEED")
    if env is not None:
        return int(env)
    return torch.initial_seed() % 2**31 if _dist()[0] == 1 else 0


class ResumableSampler(DistributedSampler):
    """Seeded shuffling, sharded over the processes, that can start an epoch at a given position.

    Args:
        dataset: The sized dataset.
        seed: Epoch ``e`` uses the permutation of ``torch.Generator().manual_seed(seed + e)``.
        num_replicas: Processes (default: the torch.distributed world size, 1 without one).
        rank: This process (default: its torch.distributed rank, 0 without one).

    Attributes:
        start: Sample offset within this process's shard at which the next ``__iter__`` begins (reset
            to 0 after use).
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int | None = None, rank: int | None = None) -> None:
        world, me = _dist()
        super().__init__(dataset, num_replicas or world, me if rank is None else rank, shuffle=True, seed=seed)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.start = self.start, 0
        return iter(indices[start:])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` whose position is part of the checkpoint.

    ``state_dict()`` -> ``{"format", "seed", "epoch", "batches"}`` (batches handed out in ``epoch``);
    after ``load_state_dict``, the next iteration of that same epoch skips those batches. ``__len__``
    stays the full epoch length, which is what Lightning's fit loop expects of a resumed loader.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, ResumableSampler) or self.batch_size is None:
            raise TypeError("ResumableDataLoader needs a ResumableSampler and a batch_size")
        self._consumed = 0
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return {"format": STATE_FORMAT, "seed": sampler.seed, "epoch": sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator: the body runs at the first ``next``, after Lightning has called ``set_epoch``.
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        pending, self._pending = self._pending, None
        skip = 0
        if pending and (pending.get("epoch"), pending.get("seed")) == (sampler.epoch, sampler.seed):
            skip = int(pending.get("batches", 0))
            sampler.start = min(skip * int(self.batch_size), len(sampler))  # type: ignore[arg-type]
        self.generator = torch.Generator().manual_seed(sampler.seed * 100_003 + sampler.epoch)  # worker seeds
        self._consumed = skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch


class PaddedEvalSet(Dataset):
    """``dataset`` (of :class:`~purls_pl.data.batch.SkeletonSample`) padded to ``length`` items; padding
    repeats item 0 flagged ``valid = False``."""

    def __init__(self, dataset: Dataset, length: int) -> None:
        self.dataset = dataset
        self.size = len(dataset)  # type: ignore[arg-type]
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> SkeletonSample:
        return self.dataset[i] if i < self.size else self.dataset[0].as_padding()


def train_loader(dataset: Dataset, batch_size: int, seed: int | None = None, **kwargs: Any) -> ResumableDataLoader:
    """A shuffled, resumable training loader of :class:`~purls_pl.data.batch.SkeletonBatch` (``kwargs``:
    ``drop_last``, ``num_workers``, ...)."""
    sampler = ResumableSampler(dataset, default_seed() if seed is None else seed)
    kwargs.setdefault("collate_fn", collate_samples)
    return ResumableDataLoader(dataset, batch_size=batch_size, sampler=sampler, **kwargs)


def eval_loader(dataset: Dataset, batch_size: int, shard: bool = True, **kwargs: Any) -> DataLoader:
    """An evaluation loader in dataset order. Under DDP with ``shard``, each process gets an equal,
    strided share of :class:`PaddedEvalSet` (padding rows flagged ``valid = False``); otherwise the
    whole set. Batches are :class:`~purls_pl.data.batch.SkeletonBatch`. Never draws from the global RNG."""
    world, rank = _dist()
    sampler = None
    if shard and world > 1:
        dataset = PaddedEvalSet(dataset, math.ceil(len(dataset) / world) * world)  # type: ignore[arg-type]
        sampler = DistributedSampler(dataset, world, rank, shuffle=False)
    generator = torch.Generator().manual_seed(0)
    kwargs.setdefault("collate_fn", collate_samples)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, generator=generator, **kwargs)


# ---------------------------------------------------------------- RNG state in checkpoints
def capture_rng() -> dict[str, Any]:
    """The global RNG states as data ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos)},
        "numpy_gauss": [int(has_gauss), float(cached)],
        "python": [int(version), list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the global RNG states captured by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class ExactResume(Callback):
    """Make a resumed fit continue exactly where the checkpointed one was.

    * Saves the global RNG states in every checkpoint (captured when it is written) and puts them back at
      ``on_train_start`` of the resumed fit, the last hook before the first batch is fetched, so the
      resumed run draws the same random numbers (dropout, augmentation) as the uninterrupted one.
    * Hands the saved training-loader position to the loader if Lightning has not: when
      ``configure_optimizers`` asks for ``trainer.estimated_stepping_batches`` (the cosine schedule does),
      the train loader is built before the loop state is restored and Lightning (2.6) never loads the
      saved ``combined_loader`` state into it.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "rng": capture_rng()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict.get("rng")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        fit_loop = trainer.fit_loop
        if getattr(fit_loop, "_combined_loader_states_to_load", None) and fit_loop._combined_loader is not None:
            fit_loop._load_combined_loader_states()  # no-op unless restarting mid-epoch
        if self._pending is not None:
            restore_rng(self._pending)
            self._pending = None
