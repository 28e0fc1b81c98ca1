"""The base of a zero-shot method: its classes, its frozen backbone and its evaluation contract.

A method (PURLS, :class:`~purls_pl.models.purls_module.PurlsModule`, is one) subclasses
:class:`ZeroShotMethod` and implements

* ``training_step(batch: SkeletonBatch, batch_idx) -> Tensor``: its loss on seen-class samples
  (:meth:`ZeroShotMethod.seen_targets` maps their labels to seen positions and refuses any other class);
* :meth:`~ZeroShotMethod.score`: the pure scoring function, node features against any candidate classes'
  text (``recognize`` calls it with classes named by the user);
* :meth:`~ZeroShotMethod.evaluate`: one batch scored as :class:`~purls_pl.eval.outputs.ZeroShotScores`
  (every candidate, and the zero-shot classes alone), the only thing the evaluation callbacks read;
* :attr:`~ZeroShotMethod.text_dim` and :meth:`~ZeroShotMethod.full_class_text`, for its checkpoint.

These are abstract: a method that lacks one cannot be built (``TypeError`` naming it).

The base holds the class lists the callbacks read (:class:`~purls_pl.eval.outputs.ScoredClasses`) and
refuses a checkpoint trained on another split.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from pytorch_lightning import LightningModule
from torch import Tensor

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import SkeletonLayout, get_layout
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.models.checkpoint import SPEC_KEY, module_from_checkpoint, module_spec, plain
from purls_pl.models.features import FrozenBackbone, check_backbone_classes
from purls_pl.models.skeleton_cache import SkeletonCache
from purls_pl.text.fields import FIELDS, GLOBAL

Method = TypeVar("Method", bound="ZeroShotMethod")
#: How a method annotates its ``class_text`` argument (a :class:`~purls_pl.text.encoder.ClassText`). The
#: CLI links it from the datamodule; annotated as the dataclass itself, jsonargparse would ask for the
#: dataclass's fields in every config of a method chosen by ``model.class_path``.
LinkedClassText = Any


class LeakageError(RuntimeError):
    """A training batch held a class outside the seen set."""


class ZeroShotMethod(LightningModule, metaclass=ABCMeta):
    """Classes and backbone of a zero-shot method (module docstring).

    Args:
        class_text: The dataset's classes and the seen/unseen split, a
            :class:`~purls_pl.text.encoder.ClassText` (their text is the method's to use).
        layout: The skeleton layout of the node grid (a registered name or the layout itself).
        backbone: The frozen stage-1 encoder; its recorded seen classes must be the split's.

    ``class_text`` and ``layout`` come from the datamodule (linked by the CLI; never set in configs).

    Attributes:
        class_names: Every class, in class-id order.
        layout: The :class:`~purls_pl.data.layouts.SkeletonLayout`.
        seen, unseen, candidates: Dataset class ids (:class:`~purls_pl.eval.outputs.ScoredClasses`).
        zsl_columns: Positions of ``unseen`` among ``candidates``.
        gzsl: Whether the seen classes are candidates too.
        fields: The fields a method scores one by one (``ZeroShotScores.field_scores``); ``()`` if none.
    """

    fields: tuple[str, ...] = ()
    #: What ``select`` searches for a stage running this method when its table or command names no search:
    #: ``{config key: [values]}`` in search order (``model.<init arg>``; see :mod:`purls_pl.apps.select`).
    default_search: ClassVar[dict[str, list[Any]]] = {}
    #: Skeleton-Cache over the evaluation stream (:mod:`purls_pl.models.skeleton_cache`), set by the CLI's
    #: ``test_time_cache`` options; ``None``: scores as the method gives them.
    test_time_cache: SkeletonCache | None = None
    #: The ``checkpoint["purls"]`` record the method was rebuilt from by :meth:`from_checkpoint` (else None).
    checkpoint_spec: dict[str, Any] | None = None

    def __init__(self, class_text: LinkedClassText, layout: str | SkeletonLayout, backbone: FrozenBackbone) -> None:
        super().__init__()
        check_backbone_classes(backbone.meta, class_text)
        self.layout = get_layout(layout)
        self.backbone = backbone
        self.class_names = class_text.class_names
        self.seen = tuple(class_text.seen)
        self.unseen = tuple(class_text.unseen)
        self.gzsl = bool(class_text.gzsl)
        self.candidates: tuple[int, ...] = class_text.candidates
        self.zsl_columns: list[int] = [self.candidates.index(c) for c in self.unseen]
        position = torch.full((len(class_text.class_names),), -1, dtype=torch.long)
        position[list(self.seen)] = torch.arange(len(self.seen))
        self.register_buffer("seen_position", position, persistent=False)

    @property
    def text_fields(self) -> tuple[int, ...]:
        """Which fields of a class's text (indices into :data:`~purls_pl.text.fields.FIELDS`, global last)
        :meth:`score` takes; the global field alone by default."""
        return (FIELDS.index(GLOBAL),)

    @property
    @abstractmethod
    def text_dim(self) -> int:
        """``m``: the size of the text embeddings the method was trained with."""

    @property
    def uses_label_embeddings(self) -> bool:
        """Whether :meth:`score` needs the candidates' label embeddings."""
        return False

    def node_features(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """``(B, S, n)`` node features of skeletons ``x`` ``(B, M, T, J, C)``; ``index`` ``(B,)``: their
        dataset positions, when the backbone's feature cache may serve them (``None``: computed online)."""
        return self.backbone(x, index)

    def seen_targets(self, labels: Tensor) -> Tensor:
        """Map dataset class ids ``(B,)`` to positions among the seen classes; refuse any other class."""
        pos = self.seen_position[labels]
        if bool((pos < 0).any()):
            bad = sorted({self.class_names[i] for i in labels[pos < 0].tolist()})
            raise LeakageError(f"training batch contains non-seen classes {bad}; the loss only sees seen classes")
        return pos

    @abstractmethod
    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """Scores ``(B, K)`` of node features ``(B, S, n)`` against candidate classes given by their text:
        ``(K, m)`` global embeddings or ``(K, D, m)`` per field (global last); ``labels`` ``(K, m)``: their
        label embeddings, for methods that use them. Higher is better; a pure function of its inputs."""

    @abstractmethod
    def evaluate(self, batch: SkeletonBatch) -> ZeroShotScores:
        """The batch scored against every candidate and against the zero-shot classes alone."""

    def adapted(self, batch: SkeletonBatch) -> ZeroShotScores:
        """:meth:`evaluate`, its scores adapted by :attr:`test_time_cache` when one is set (the candidates' and
        the zero-shot classes' scores each over their own cache; see :mod:`purls_pl.models.skeleton_cache`)."""
        out = self.evaluate(batch)
        cache = self.test_time_cache
        if cache is None:
            return out
        nodes = self.node_features(batch.x, batch.index)
        scores = cache.adapt(out.scores, self.candidates, nodes)
        if tuple(self.candidates) == tuple(self.unseen):  # zero-shot only: one stream, adapted once
            return ZeroShotScores(scores, scores, out.labels, out.field_scores)
        # The zero-shot stream holds the zero-shot test set, the samples its metric scores (as the protocol's
        # ZSL test set would); the other rows keep their scores (no metric reads them).
        zsl_rows = torch.isin(out.labels, torch.tensor(self.unseen, device=out.labels.device))
        zsl = out.zsl_scores.clone()
        if bool(zsl_rows.any()):
            zsl[zsl_rows] = cache.adapt(out.zsl_scores[zsl_rows], self.unseen, nodes[zsl_rows])
        return ZeroShotScores(scores, zsl, out.labels, out.field_scores)

    def validation_step(self, batch: SkeletonBatch, batch_idx: int) -> ZeroShotScores:
        return self.adapted(batch)

    def test_step(self, batch: SkeletonBatch, batch_idx: int) -> ZeroShotScores:
        return self.adapted(batch)

    def on_validation_epoch_start(self) -> None:
        if self.test_time_cache is not None:
            self.test_time_cache.reset()

    def on_test_epoch_start(self) -> None:
        if self.test_time_cache is not None:
            self.test_time_cache.reset()

    # ------------------------------------------------------------------ self-contained checkpoints
    @abstractmethod
    def full_class_text(self) -> Tensor:
        """``(K, len(FIELDS), m)`` the class text the method was built with, for its checkpoint (rows or
        fields it never uses may be zeros)."""

    def spec_extra(self) -> dict[str, Any]:
        """The method's own entries of its checkpoint record (plain data; keys left out of ``hparams``)."""
        return {}

    @classmethod
    def init_args_from_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments rebuilt from :meth:`spec_extra`'s entries of a checkpoint record."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what rebuilding and open-vocabulary prediction need under ``checkpoint["purls"]`` (see
        :mod:`purls_pl.models.checkpoint`; the data side's entries, added by the training wiring, are kept)
        and keep the hyper-parameters plain data, so the file loads with ``torch.load(..., weights_only=True)``."""
        checkpoint[SPEC_KEY] = {**checkpoint.get(SPEC_KEY, {}), **module_spec(self)}
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"] = plain(checkpoint["hyper_parameters"])

    @classmethod
    def from_checkpoint(cls: type[Method], path: str | Path, map_location: str | torch.device = "cpu") -> Method:
        """Rebuild the method a checkpoint holds from the checkpoint alone (no config, data or backbone
        export needed; loaded with ``weights_only=True``), in eval mode, with :attr:`checkpoint_spec` set."""
        return module_from_checkpoint(cls, path, map_location)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint trained on another class list or seen/unseen split (e.g. resuming elsewhere)."""
        spec = checkpoint.get(SPEC_KEY)
        if not isinstance(spec, dict) or "class_names" not in spec:
            return
        if (tuple(spec["class_names"]), tuple(spec["seen"]), tuple(spec["unseen"])) != (
            tuple(self.class_names),
            self.seen,
            self.unseen,
        ):
            raise ValueError(
                f"checkpoint was trained on {len(spec['class_names'])} classes with {len(spec['seen'])} seen / "
                f"{len(spec['unseen'])} unseen; this module has {len(self.class_names)} classes with "
                f"{len(self.seen)} / {len(self.unseen)} (or another class order): use the checkpoint's split"
            )
