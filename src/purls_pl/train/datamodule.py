"""Datamodules: stage-1 pre-training and PURLS training/evaluation over one split, under a protocol.

Where each sample goes is decided by :func:`purls_pl.data.sample_sets.sample_sets` (the split's class
cut combined with the dataset's train/test protocol); the datamodules turn those sets into loaders:

=================  =================================  ==================================================
protocol           ``final`` (default: the reported run)  ``select`` (model selection)
=================  =================================  ==================================================
split              the split itself                   ``split.selection(val_classes, val_fold)``: the
                                                      validation classes play the unseen classes, the
                                                      real unseen classes are excluded
stage 1 train      seen classes, train partition      the remaining seen classes, train partition
stage 1 validate   ``holdout`` of the train partition (by subject where recorded); none by default
stage 1 test       seen classes, test partition       (never)
PURLS train        seen classes, train partition      the remaining seen classes, train partition,
                                                      minus ``holdout``
PURLS validate     (none: nothing is selected)        validation classes, train partition (+ the
                                                      held-out seen samples, for GZSL calibration)
PURLS test         unseen classes, test partition     (never: a selection run does not test)
                   (+ seen test samples with ``gzsl``)
=================  =================================  ==================================================

So ``val/…`` metrics always mean validation classes of the training protocol, and the unseen classes
appear only under ``test/…``, once, after the final fit. Validation classes are carved from the seen
classes deterministically (:meth:`purls_pl.data.splits.ZeroShotSplit.validation_classes`); several
folds (``val_fold``) give class-level cross-validation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from purls_pl.data.augment import SkeletonAugment
from purls_pl.data.batch import SkeletonSample
from purls_pl.data.catalog import class_names
from purls_pl.data.preprocessing import class_path
from purls_pl.data.sample_sets import Protocol, sample_sets
from purls_pl.data.skeletons import SkeletonFormat, SkeletonSet, SkeletonSource, preprocessing_record
from purls_pl.data.splits import SplitSpec, ValidationSpec, ZeroShotSplit, classes_without_samples, resolve_split
from purls_pl.models.checkpoint import plain
from purls_pl.text.descriptions import DescriptionSet, resolve_descriptions
from purls_pl.text.encoder import ClassText, TextEncoder
from purls_pl.text.levers import TextOptions, embed_class_text, label_embeddings
from purls_pl.train import resumable

log = logging.getLogger(__name__)


class SkeletonDataset(Dataset):
    """Samples ``index`` of a :class:`SkeletonSet` as :class:`~purls_pl.data.batch.SkeletonSample`.

    ``augment`` (training sets only) draws its randomness from torch's generator, so runs are
    reproducible under ``seed_everything`` and DataLoader workers get distinct streams.
    """

    def __init__(self, skeletons: SkeletonSet, index: np.ndarray, augment: SkeletonAugment | None = None) -> None:
        self.skeletons = skeletons
        self.index = np.asarray(index, dtype=np.int64)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> SkeletonSample:
        j = int(self.index[i])
        if self.augment is not None:  # returns a new float32 array
            x = self.augment(self.skeletons.data[j], np.random.default_rng(int(torch.randint(0, 2**62, ()).item())))
        else:  # a copy: the cache is a read-only memmap
            x = np.array(self.skeletons.data[j], dtype=np.float32)
        return SkeletonSample(
            x=torch.from_numpy(x), y=torch.tensor(int(self.skeletons.labels[j])), index=torch.tensor(j)
        )


class SkeletonDataModule(LightningDataModule):
    """Loads a skeleton source and cuts it by a zero-shot split under a protocol (module docstring).

    Args:
        source: Where the skeletons come from (``class_path`` of a reader, or the demo).
        split: The zero-shot split: a registered name (``ntu120_96_24``, ``nw-ucla_8_2``, ``demo_15_5``),
            ``<dataset>_random<K>_seed<S>``, or, in a config, the unseen classes themselves
            (``{unseen: [names]}``, ``{unseen_indices: [...]}`` or ``{random_unseen: K, seed: S}``).
        protocol: ``final`` (train on all seen classes; the PURLS fit ends with the one test on the
            unseen classes) or ``select`` (model selection on validation classes of the training
            protocol; never tests).
        val_classes: The validation classes of ``select``: ``auto``, a count, a list of class names,
            or ``none`` (see :meth:`~purls_pl.data.splits.ZeroShotSplit.validation_classes`).
        val_fold: Which validation fold (class-level cross-validation over the seen classes).
        holdout: Share of the seen classes' train-partition samples held out of training (whole
            subjects where the dataset records them).
        batch_size: Training batch size.
        eval_batch_size: Batch size for evaluation loaders.
        num_workers: DataLoader worker processes.
        unseen_from: Which unseen-class samples the final test reads: ``test`` (the protocol's test
            partition) or ``all``.
        pin_memory: Pin host memory (useful on GPU).
        augment: Random augmentation of training samples (rotation, scale, shear, temporal crop).
    """

    def __init__(
        self,
        source: SkeletonSource,
        split: str | SplitSpec,
        protocol: Protocol = "final",
        val_classes: ValidationSpec = "auto",
        val_fold: int = 0,
        holdout: float = 0.0,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        unseen_from: Literal["test", "all"] = "test",
        pin_memory: bool = False,
        augment: SkeletonAugment | None = None,
    ) -> None:
        super().__init__()
        if protocol not in ("final", "select"):
            raise ValueError(f"data.protocol must be 'final' or 'select', got {protocol!r}")
        self.source = source
        try:
            self.split: ZeroShotSplit = resolve_split(split, source.dataset, self.class_names)
        except KeyError as err:
            where = getattr(source, "class_list_file", None)
            raise KeyError(f"{err.args[0]}{f' (the class list: {where})' if where else ''}") from None
        self.protocol = protocol
        self.val_classes = val_classes
        self.val_fold = val_fold
        self.holdout = holdout
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.unseen_from = unseen_from
        self.pin_memory = pin_memory
        self.augment = augment
        self.skeletons: SkeletonSet | None = None
        self.sets: dict[str, SkeletonDataset] = {}
        self._run_split: ZeroShotSplit | None = None

    @property
    def run_split(self) -> ZeroShotSplit:
        """The split this run trains and evaluates on: the split itself, or its selection split."""
        if self._run_split is None:
            if self.protocol == "final":
                self._run_split = self.split
            else:
                self._run_split = self.split.selection(self.val_classes, self.val_fold, self.class_names)
        return self._run_split

    @property
    def layout(self) -> str:
        """The skeleton layout of the samples (the source's; a custom source may need to read its folder)."""
        return getattr(self.source, "layout", "") or self.load().layout

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names in class-index order (the source's, else its catalog card's)."""
        names = getattr(self.source, "class_names", None)
        return list(names) if names else class_names(self.source.dataset)

    @property
    def input_format(self) -> SkeletonFormat:
        """Layout, persons, channels and frames of the samples (what a backbone is built for)."""
        return SkeletonFormat.of(self.load())

    @property
    def seen_classes(self) -> list[int]:
        """The class ids this run trains on (stage 1's classification head, the PURLS loss)."""
        return list(self.run_split.seen)

    def load(self) -> SkeletonSet:
        """The whole dataset, read once (through the source's cache) and cut into the sample sets."""
        self.setup()
        assert self.skeletons is not None
        return self.skeletons

    def _holdout(self) -> float:
        """The share held out of training in this run."""
        return self.holdout

    def setup(self, stage: str | None = None) -> None:
        if self.skeletons is not None:
            return
        skeletons = self.source.load()
        if len(skeletons.class_names) != self.split.num_classes:
            raise ValueError(
                f"split {self.split.name!r} is defined over {self.split.num_classes} classes of "
                f"{self.split.dataset!r}, but the source {type(self.source).__name__} yields "
                f"{len(skeletons.class_names)} classes ({skeletons.class_names[:3]}...); pick a split of that dataset"
            )
        check_split = getattr(self.source, "check_split", None)
        if check_split is not None:  # a source released for one split (pooled features) refuses another
            check_split(self.split)
        split = self.run_split
        index = sample_sets(skeletons, split, self.protocol, self.unseen_from, self._holdout())
        for name in ("train", "unseen_eval"):
            if len(index[name]) == 0:
                raise ValueError(
                    f"split {split.name!r} ({self.protocol}) leaves no {name.replace('_', ' ')} samples in "
                    f"{type(self.source).__name__}; check the source's protocol/partition or use unseen_from='all'"
                )
        if self.protocol == "final":
            empty = classes_without_samples(split, skeletons.labels, skeletons.partition, self.unseen_from)
            for name, classes in empty.items():
                if classes:
                    names = [skeletons.class_names[c] for c in classes]
                    log.warning("split %s: %d classes have no %s samples: %s", split.name, len(names), name, names)
        self.skeletons = skeletons
        self.sets = {
            name: SkeletonDataset(skeletons, idx, self.augment if name == "train" else None)
            for name, idx in index.items()
        }
        log.info("split %s (%s): %s", split.name, self.protocol, {k: len(v) for k, v in self.sets.items()})

    def _loader(self, names: str | tuple[str, ...], train: bool = False) -> DataLoader:
        """One loader over the concatenated sets ``names``. Training: seeded, resumable, sharded under DDP;
        evaluation: in order, sharded without double-counted samples (see :mod:`purls_pl.train.resumable`)."""
        self.load()
        names = (names,) if isinstance(names, str) else names
        if len(names) == 1:
            dataset = self.sets[names[0]]
        else:
            index = np.concatenate([self.sets[n].index for n in names])
            dataset = SkeletonDataset(self.load(), index)
        common = {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
        }
        if train:
            drop_last = len(dataset) > self.batch_size
            return resumable.train_loader(dataset, self.batch_size, drop_last=drop_last, **common)
        return resumable.eval_loader(dataset, self.eval_batch_size, **common)

    def _never_tested(self) -> None:
        if self.protocol == "select":
            raise RuntimeError(
                f"a selection run (data.protocol=select) never tests: the unseen classes of {self.split.name!r} "
                "are read once, by the final run (data.protocol=final)"
            )


class PretrainDataModule(SkeletonDataModule):
    """Stage 1: supervised training on the run's seen classes (train partition); validation on the
    ``holdout`` share of them when one is set; test on the seen classes' test partition (final protocol)."""

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        self.load()
        return self._loader("holdout") if len(self.sets["holdout"]) else []

    def test_dataloader(self) -> DataLoader:
        self._never_tested()
        return self._loader("seen_test")


class ZeroShotDataModule(SkeletonDataModule):
    """Stage 2: PURLS on the run's seen classes; zero-shot validation (select) or test (final).

    Args:
        source: Where the skeletons come from.
        split: The zero-shot split: a registered name, ``<dataset>_random<K>_seed<S>``, or the unseen
            classes themselves (see :class:`SkeletonDataModule`).
        protocol: ``final`` or ``select`` (see :class:`SkeletonDataModule`).
        val_classes: Validation classes of ``select``: ``auto``, a count, class names, or ``none``.
        val_fold: Which validation fold.
        holdout: ``select`` only: share of the training classes' train-partition samples held out of
            training and scored with the validation classes (generalised zero-shot calibration).
        descriptions: A description JSON file; ``auto`` (the set shipped for the dataset in
            ``descriptions/``), ``labels`` (label-only text, the "Global (Original)" baseline), or
            ``demo`` (the synthetic demo's generated set).
        templates: Prompt templates: ``paper`` (supplementary Table 3), ``label``, ``plain``,
            ``labelled`` (the paper's with the action name before each description), or a mapping
            field -> template with one ``{}`` (and optionally ``{label}``).
        text_encoder: The frozen text tower (embeddings are cached on disk).
        batch_size: Training batch size.
        eval_batch_size: Batch size for evaluation loaders.
        num_workers: DataLoader worker processes.
        unseen_from: ``test`` or ``all`` unseen-class samples are tested (final protocol).
        pin_memory: Pin host memory (useful on GPU).
        augment: Random augmentation of training samples (rotation, scale, shear, temporal crop).
        gzsl: Also score seen-class samples against all classes (generalised zero-shot): the final
            test adds the seen classes' test samples, selection adds the held-out ones. The zero-shot
            metrics count only the zero-shot classes' samples either way.
        label_mix: ``w`` in ``[0, 1]``: the label's own embedding ``L`` (of "A video of a person:
            <label>.") is mixed into ``label_mix_fields``: ``F_f = normalize((1 - w) F_f + w L)``
            (:mod:`purls_pl.text.levers`); ``0`` (default) leaves the text unchanged.
        label_mix_fields: The fields ``label_mix`` applies to (default: ``["global"]``).
        alternatives: Answers kept per field from a multi-answer set (the first ones; their
            embeddings are averaged); ``0`` (default) keeps all.
    """

    def __init__(
        self,
        source: SkeletonSource,
        split: str | SplitSpec,
        protocol: Protocol = "final",
        val_classes: ValidationSpec = "auto",
        val_fold: int = 0,
        holdout: float = 0.2,
        descriptions: str = "auto",
        templates: str | dict[str, str] = "paper",
        text_encoder: TextEncoder | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        unseen_from: Literal["test", "all"] = "test",
        pin_memory: bool = False,
        augment: SkeletonAugment | None = None,
        gzsl: bool = True,
        label_mix: float = 0.0,
        label_mix_fields: list[str] | None = None,
        alternatives: int = 0,
    ) -> None:
        super().__init__(
            source,
            split,
            protocol,
            val_classes,
            val_fold,
            holdout,
            batch_size,
            eval_batch_size,
            num_workers,
            unseen_from,
            pin_memory,
            augment,
        )
        self.gzsl = gzsl
        self.text_options = TextOptions(label_mix, tuple(label_mix_fields or ["global"]), alternatives)
        self.descriptions = descriptions
        self.templates = templates
        self.text_encoder = text_encoder or TextEncoder()
        self._class_text: ClassText | None = None

    def _holdout(self) -> float:
        """Selection holds seen-class samples out for GZSL calibration; the final run trains on all of them."""
        return self.holdout if self.protocol == "select" else 0.0

    def description_set(self, class_names: Sequence[str] | None = None) -> DescriptionSet:
        """The ``descriptions`` argument as a validated set (``text.descriptions.resolve_descriptions``) for
        ``class_names`` (default: the source's)."""
        return resolve_descriptions(self.descriptions, self.split.dataset, class_names or self.class_names)

    @property
    def class_text(self) -> ClassText:
        """Description embeddings ``(K, 8, m)`` of all classes with the run's seen and zero-shot classes (the
        validation classes in ``select``); computed once, cached on disk."""
        if self._class_text is None:
            names = self.class_names  # a custom source reads its class list on every access
            embeddings = embed_class_text(
                self.text_encoder, self.description_set(names), names, self.templates, self.text_options
            )
            labels = label_embeddings(self.text_encoder, names)  # for the model's label fusion
            split = self.run_split
            self._class_text = ClassText(
                tuple(names), embeddings, split.seen, split.unseen, gzsl=self.gzsl, labels=labels
            )
        return self._class_text

    def checkpoint_record(self) -> dict[str, Any]:
        """What a checkpoint needs to recognise new files as this data were prepared: the text tower, the
        templates and descriptions, the split, the source and its preprocessing (plain data)."""
        encoder = self.text_encoder
        source = self.source
        args = {k: v for k, v in vars(source).items() if not k.startswith("_") and k != "skipped"}
        shape = tuple(self.skeletons.data.shape) if self.skeletons is not None else None
        return plain(
            {
                "text": {"model": encoder.model, "pooling": encoder.pooling, "max_length": encoder.max_length},
                "templates": self.templates,
                "descriptions": self.descriptions if isinstance(self.descriptions, str) else None,
                "text_options": self.text_options.record(),
                "split": self.split.name,
                "protocol": self.protocol,
                "run_split": self.run_split.name,
                "source": {"class_path": class_path(source), "init_args": args},
                "preprocess": preprocessing_record(source, shape),
            }
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """``select``: the validation classes' samples (+ the held-out seen ones with ``gzsl``); ``final``:
        none — the final run selects nothing."""
        if self.protocol == "final":
            return []
        return self._loader(("unseen_eval", "holdout") if self.gzsl else "unseen_eval")

    def test_dataloader(self) -> DataLoader:
        """``final``: the unseen classes' test samples (+ the seen classes' with ``gzsl``), read once."""
        self._never_tested()
        return self._loader(("unseen_eval", "seen_test") if self.gzsl else "unseen_eval")
