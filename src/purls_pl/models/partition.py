"""Partitioners: turn node features G and description embeddings F into representations R.

All partitioners map ``G: (B, S, n)`` (``S = L'·J`` nodes, time-major) and ``F: (B, D, m)``
(one embedding per active description field) to ``R: (B, D, n)`` and the node weights
``A: (B, D, S)`` with ``R = A·G`` (paper Eq. 2):

* :class:`AdaptivePartitioner` — cross-attention, ``A = softmax(F W_Q (G W_K)ᵀ / √h)`` (Eq. 1);
* :class:`StaticPartitioner` — fixed ``A``: uniform over a body part's joints (all frames), over a
  third of the frames (all joints), or over everything for the global field;
* :class:`GlobalPartitioner` — only the global field, the mean of all nodes.

They are built by the LightningModule as ``partitioner(text_dim, node_dim, layout)`` so configs only
carry their own hyper-parameters (``class_path`` + ``init_args``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from purls_pl.data.layouts import SkeletonLayout, get_layout
from purls_pl.text.fields import BODY_PART_FIELDS, FIELDS, GLOBAL, PHASE_FIELDS, field_indices


class Partitioner(nn.Module, ABC):
    """Base class. ``fields`` are the description fields it produces, in :data:`FIELDS` order.

    Args:
        text_dim: m, the text embedding size.
        node_dim: n, the node feature size.
        layout: Skeleton layout (name or object) of the node grid.
        fields: Description fields to represent; must include ``global`` (they are kept in
            :data:`~purls_pl.text.fields.FIELDS` order, so the global field is the last row of R).
    """

    #: Whether R depends on the text (then zero-shot scoring conditions on each candidate class).
    text_conditioned: bool = False

    def __init__(
        self, text_dim: int, node_dim: int, layout: str | SkeletonLayout, fields: Sequence[str] = FIELDS
    ) -> None:
        super().__init__()
        self.text_dim = text_dim
        self.node_dim = node_dim
        self.layout = get_layout(layout)
        self.field_index = field_indices(fields)
        self.fields = tuple(FIELDS[i] for i in self.field_index)

    @abstractmethod
    def forward(self, nodes: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """Args: nodes ``(B, S, n)``; text ``(B, D, m)`` for the ``D = len(fields)`` fields.

        Returns: ``R (B, D, n)`` and ``A (B, D, S)``.
        """

    @abstractmethod
    def global_representation(self, nodes: Tensor, candidates: Tensor) -> Tensor:
        """Global representation for zero-shot scoring.

        Args:
            nodes: ``(B, S, n)``.
            candidates: ``(K, m)`` global text embeddings of the candidate classes.

        Returns:
            ``(B, K, n)`` if the partitioner is text-conditioned (one representation per candidate
            class, each queried with that class's own description), else ``(B, 1, n)``.
        """


class AdaptivePartitioner(Partitioner):
    """Cross-attention partitioning (paper Eq. 1-2).

    Args:
        text_dim: m (set by the module).
        node_dim: n (set by the module).
        layout: Node grid layout (set by the module).
        attn_dim: h, the query/key projection size (paper: 150).
        num_heads: Attention heads; each has its own ``W_Q, W_K`` of size h and the weights are
            averaged over heads, so R stays a convex combination of node features.
        fields: Description fields to represent (Table 6 ablations drop parts or phases).
    """

    text_conditioned = True

    def __init__(
        self,
        text_dim: int,
        node_dim: int,
        layout: str | SkeletonLayout,
        attn_dim: int = 150,
        num_heads: int = 1,
        fields: Sequence[str] = FIELDS,
    ) -> None:
        super().__init__(text_dim, node_dim, layout, fields)
        self.attn_dim = attn_dim
        self.num_heads = num_heads
        self.w_q = nn.Linear(text_dim, attn_dim * num_heads, bias=False)
        self.w_k = nn.Linear(node_dim, attn_dim * num_heads, bias=False)
        nn.init.xavier_uniform_(self.w_q.weight)
        nn.init.xavier_uniform_(self.w_k.weight)

    def attention(self, nodes: Tensor, text: Tensor) -> Tensor:
        """``A = mean_heads softmax(Q Kᵀ / √h)``: ``(B, S, n), (B, D, m) -> (B, D, S)``."""
        b, s, _ = nodes.shape
        d = text.shape[1]
        q = self.w_q(text).view(b, d, self.num_heads, self.attn_dim).transpose(1, 2)  # (B, H, D, h)
        k = self.w_k(nodes).view(b, s, self.num_heads, self.attn_dim).transpose(1, 2)  # (B, H, S, h)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.attn_dim)
        return logits.float().softmax(dim=-1).mean(dim=1).to(nodes.dtype)

    def forward(self, nodes: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        attn = self.attention(nodes, text)
        return attn @ nodes, attn

    def global_representation(self, nodes: Tensor, candidates: Tensor) -> Tensor:
        text = candidates.to(nodes.dtype).unsqueeze(0).expand(nodes.shape[0], -1, -1)
        return self.forward(nodes, text)[0]


class StaticPartitioner(Partitioner):
    """Fixed partitions: body parts by the layout's joint groups, phases by equal time thirds.

    Args:
        text_dim: m (set by the module; unused).
        node_dim: n (set by the module).
        layout: Node grid layout whose ``parts`` define the body-part groups (set by the module).
        fields: Description fields to represent.
    """

    def __init__(
        self, text_dim: int, node_dim: int, layout: str | SkeletonLayout, fields: Sequence[str] = FIELDS
    ) -> None:
        super().__init__(text_dim, node_dim, layout, fields)
        self._weights: dict[int, Tensor] = {}

    def weights(self, num_nodes: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The fixed ``(D, S)`` averaging matrix for ``S = L'·J`` time-major nodes."""
        j = self.layout.num_joints
        if num_nodes % j:
            raise ValueError(f"{num_nodes} nodes is not a multiple of the {j} joints of layout {self.layout.name!r}")
        if num_nodes not in self._weights:
            frames = num_nodes // j
            rows = []
            for f in self.fields:
                mask = torch.zeros(frames, j)
                if f in BODY_PART_FIELDS:
                    mask[:, list(self.layout.parts[f])] = 1
                elif f in PHASE_FIELDS:
                    chunk = torch.tensor_split(torch.arange(frames), len(PHASE_FIELDS))[PHASE_FIELDS.index(f)]
                    if len(chunk) == 0:
                        raise ValueError(f"static phases need L' >= {len(PHASE_FIELDS)} frames, got {frames}")
                    mask[chunk] = 1
                else:
                    mask[:] = 1
                rows.append(mask.flatten() / mask.sum())
            self._weights[num_nodes] = torch.stack(rows)
        return self._weights[num_nodes].to(device=device, dtype=dtype)

    def forward(self, nodes: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        attn = self.weights(nodes.shape[1], nodes.device, nodes.dtype).expand(nodes.shape[0], -1, -1)
        return attn @ nodes, attn

    def global_representation(self, nodes: Tensor, candidates: Tensor) -> Tensor:
        return nodes.mean(dim=1, keepdim=True)


class GlobalPartitioner(StaticPartitioner):
    """Only the global field: the mean of all node features (the paper's "Global" baseline).

    Args:
        text_dim: m (set by the module; unused).
        node_dim: n (set by the module).
        layout: Node grid layout (set by the module).
    """

    def __init__(self, text_dim: int, node_dim: int, layout: str | SkeletonLayout) -> None:
        super().__init__(text_dim, node_dim, layout, fields=(GLOBAL,))


#: What configs inject: a partitioner class (plus its own init args); the module supplies the rest.
PartitionerFactory = Callable[[int, int, str], Partitioner]
