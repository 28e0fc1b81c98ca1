"""Released pooled features as the frozen backbone: a pass-through in place of stage 1.

A :class:`~purls_pl.data.readers.features.ReleasedFeatureSource` yields each sample's released feature vector
as a ``(1, 1, 1, n)`` "skeleton" (one person, one frame, one node of layout ``pooled``). :class:`ReleasedFeatures`
is the :class:`~purls_pl.models.features.FrozenBackbone` of such a source: its encoder, :class:`PooledInput`,
has no weights and returns the vector as ``(B, 1, n)`` node features, so every method on pooled features (the
Global baseline, CADA-VAE, SA-DVAE, TDSM, SMIE without its temporal term) trains on it as on any backbone's
features, and checkpoints record and rebuild it like any encoder. Methods that need the node grid (PURLS'
adaptive and static partitioners, SMIE's temporal constraint, Skeleton-Cache) refuse it
(:func:`refuse_pooled`), saying why and what to use.
"""

from __future__ import annotations

from torch import Tensor, nn

from purls_pl.data.layouts import POOLED
from purls_pl.models.features import FrozenBackbone

__all__ = ["RELEASED_META", "PooledInput", "ReleasedFeatures", "refuse_pooled"]

#: The ``meta`` of a released-features backbone: no stage-1 record; the source checks that the features'
#: training classes are the split's seen classes (:meth:`ReleasedFeatureSource.check_split`).
RELEASED_META = {"released_features": True}


class PooledInput(nn.Module):
    """The encoder of released pooled features: ``(B, 1, 1, 1, n)`` -> ``(B, n, 1, 1)`` (``L' = J = 1``).

    Args:
        dim: ``n``, the feature width.
    """

    pooled = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"PooledInput dim must be >= 1, got {dim}")
        self.out_channels = int(dim)
        self.layout = POOLED
        self.num_persons = 1
        self.init_args = {"dim": int(dim)}

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or tuple(x.shape[1:]) != (1, 1, 1, self.out_channels):
            raise ValueError(
                f"released pooled features are (B, 1, 1, 1, {self.out_channels}) (one vector per sample), got "
                f"{tuple(x.shape)}: skeletons need a skeleton encoder (stage 1), not model.backbone ReleasedFeatures"
            )
        return x.reshape(x.shape[0], self.out_channels, 1, 1)


class ReleasedFeatures(FrozenBackbone):
    """The backbone of a :class:`~purls_pl.data.readers.features.ReleasedFeatureSource` (module docstring).

    Args:
        dim: ``n``, the released features' width; ``None`` in a config: the CLI reads it from the header of
            ``data.source.init_args.path`` before the model is built.
    """

    def __init__(self, dim: int | None = None) -> None:
        if dim is None:
            raise ValueError(
                "model.backbone.init_args.dim is unset: the command line reads it from data.source.init_args.path "
                "(a ReleasedFeatureSource); in Python pass dim=ReleasedFeatureSource(path).feature_dim"
            )
        # no weights: the identity hashes the (empty) state dict
        self._adopt(PooledInput(dim), RELEASED_META, None, "released features")


def refuse_pooled(backbone: FrozenBackbone, what: str, use: str) -> None:
    """Raise when ``backbone`` gives pooled features (one node per sample) to ``what``, which needs node features.

    Args:
        backbone: The method's backbone.
        what: What needs the nodes and why, e.g. ``"PURLS' AdaptivePartitioner attends over body parts and
            phases"``.
        use: What to run instead.
    """
    if backbone.pooled:
        raise ValueError(
            f"{what}, but released pooled features hold one vector per sample (node features (B, 1, n), no joints "
            f"or frames): {use}, or pre-train a skeleton encoder (stage 1) on the skeletons themselves"
        )
