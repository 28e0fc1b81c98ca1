"""Collectives for the contrastive loss under Lightning's DDP (no home-made distribution).

Under ``Trainer(strategy="ddp")`` every process holds one shard of the global batch. The contrastive
loss needs the *global* batch: the text -> skeleton term of a class competes against every sample of
every process. :func:`gather_with_grad` all-gathers a tensor along the batch axis, keeping the
autograd graph (``torch.distributed.nn.functional.all_gather``: the backward pass sums, over the
processes, the gradients flowing into each process's own rows), and handles shards of different
sizes by padding to the largest one.

Gradient bookkeeping (what makes the distributed loss exact): every process computes the *same*
global loss ``L`` over the gathered batch, so the all-gather backward hands each process
``W · ∂L/∂V_r`` for its own rows (``W`` = world size) and ``∂L/∂θ`` for replicated parameters used
directly in the loss (temperatures, α). DDP then *averages* parameter gradients over the ``W``
processes, which gives exactly ``∂L/∂θ`` for every parameter — the gradient of a single process on
the concatenated batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

#: ``(B_local, ...) -> (B_global, ...)``: gathers a tensor over the processes along dim 0.
Gather = Callable[[Tensor], Tensor]


def world_size() -> int:
    """Number of processes of the default group (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: Tensor) -> Tensor:
    """All-gather ``x`` ``(B_r, ...)`` from every process into ``(Σ_r B_r, ...)``, rank order.

    Floating-point tensors keep their autograd graph (gradients flow back to the owning process);
    integer tensors are gathered without one. Shards may differ in size along dim 0 (one extra
    collective exchanges the sizes). Returns ``x`` unchanged in a single process.
    """
    n = world_size()
    if n == 1:
        return x
    size = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(n)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    largest = max(counts)
    if x.shape[0] < largest:
        pad = x.new_zeros((largest - x.shape[0], *x.shape[1:]))
        x = torch.cat([x, pad])
    if x.is_floating_point() and x.requires_grad:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # torch >= 2.10 marks it deprecated; it is what Lightning's sync_grads uses
            warnings.filterwarnings("ignore", message=r".*all_gather is deprecated", category=FutureWarning)
            parts = list(all_gather(x))
    else:
        parts = [torch.empty_like(x) for _ in range(n)]
        dist.all_gather(parts, x.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def default_gather() -> Gather | None:
    """:func:`gather_with_grad` when torch.distributed runs more than one process, else ``None``."""
    return gather_with_grad if world_size() > 1 else None
