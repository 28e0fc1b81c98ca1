"""Datamodules: seen-class pre-training and zero-shot training/evaluation over one split.

Two independent cuts decide where a sample goes. The zero-shot **split** (``split=``, see
:mod:`purls_pl.data.splits`) says whether its *class* is seen or unseen; the dataset's own
**protocol** (``SkeletonSet.partition``, set by the reader) says whether the *sample* is
``"train"`` or ``"test"``:

=================  ===========================================================================
NTU RGB+D 60/120   ``protocol="xsub"`` (default): the cross-subject training performers train
                   (NTU-60: 20 of 40, NTU-120: 53 of 106; lists in
                   :mod:`purls_pl.data.readers.ntu_protocol`), the others test;
                   ``"xview"`` (NTU-60): cameras 2 and 3 train, camera 1 tests; ``"xset"``
                   (NTU-120): even setup ids train, odd ones test; ``"all"``: every sample train.
                   Processed files: their ``train`` arrays train, ``test`` / ``val`` arrays test.
Kinetics-skeleton  ``kinetics_train/`` clips train, ``kinetics_val/`` clips test (the val set is
                   the test set, as in st-gcn; ``split="val"`` reads only it).
NW-UCLA            views 1 and 2 train, view 3 tests.
custom             the ``split`` column of ``index.csv`` (``train`` / ``test``; empty = train).
demo / random      demo: a stratified share of each class is test (``test_fraction``);
                   ``RandomSkeletonSource``: the first half of each class's samples train.
=================  ===========================================================================

Sample sets:

* ``seen_train`` — seen classes, ``partition == "train"``: the only samples any training sees;
* ``seen_test`` — seen classes, ``partition == "test"``: stage-1 validation / model selection;
* ``unseen_test`` — unseen classes, ``partition == "test"`` (or every unseen sample with
  ``unseen_from="all"``): zero-shot validation and test.

Samples of seen classes in the test partition never train, and unseen-class samples in the train
partition are never used (unless ``unseen_from="all"`` evaluates them too). Stage 1
(:class:`PretrainDataModule`) trains on ``seen_train`` and validates on ``seen_test``; PURLS
(:class:`ZeroShotDataModule`) trains on ``seen_train`` and validates on ``unseen_test``; its test
set is ``unseen_test`` plus, with ``gzsl`` (default), ``seen_test`` for generalised zero-shot
evaluation (the zero-shot metrics count only the unseen-class samples).

Leakage guarantee: by construction ``seen_train`` and ``seen_test`` hold no unseen-class sample
and ``unseen_test`` only unseen classes (``setup`` asserts the first; ``tests/data/test_leakage.py``
checks all three for every registered split); the PURLS module only ever receives the seen
classes' text for its loss.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from purls_pl.data.augment import SkeletonAugment
from purls_pl.data.catalog import card, class_names
from purls_pl.data.demo import demo_descriptions
from purls_pl.data.preprocess import preprocessing_record
from purls_pl.data.skeletons import SkeletonFormat, SkeletonSet, SkeletonSource
from purls_pl.data.splits import ZeroShotSplit, classes_without_samples, get_split
from purls_pl.models.checkpoint import class_path, plain
from purls_pl.text.descriptions import DescriptionSet, load_descriptions
from purls_pl.text.encoder import ClassText, TextEncoder
from purls_pl.text.levers import TextOptions, embed_class_text
from purls_pl.train import resumable

log = logging.getLogger(__name__)


def project_root() -> Path:
    """The repository root when running from a checkout (``src/purls_pl/train/`` -> root)."""
    return Path(__file__).resolve().parents[3]


class SkeletonDataset(Dataset):
    """Samples ``index`` of a :class:`SkeletonSet` as ``{"x": (M, T, J, C), "y": (), "index": ()}``.

    ``augment`` (training sets only) draws its randomness from torch's generator, so runs are
    reproducible under ``seed_everything`` and DataLoader workers get distinct streams.
    """

    def __init__(self, skeletons: SkeletonSet, index: np.ndarray, augment: SkeletonAugment | None = None) -> None:
        self.skeletons = skeletons
        self.index = np.asarray(index, dtype=np.int64)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = int(self.index[i])
        if self.augment is not None:  # returns a new float32 array
            x = self.augment(self.skeletons.data[j], np.random.default_rng(int(torch.randint(0, 2**62, ()).item())))
        else:  # a copy: the cache is a read-only memmap
            x = np.array(self.skeletons.data[j], dtype=np.float32)
        return {
            "x": torch.from_numpy(x),
            "y": torch.tensor(int(self.skeletons.labels[j])),
            "index": torch.tensor(j),
        }


class SkeletonDataModule(LightningDataModule):
    """Loads a skeleton source and cuts it by a zero-shot split.

    Args:
        source: Where the skeletons come from (``class_path`` of a reader, or the synthetic demo).
        split: Zero-shot split name, e.g. ``ntu120_96_24``, ``nw-ucla_8_2``, ``demo_15_5``.
        batch_size: Training batch size.
        eval_batch_size: Batch size for evaluation loaders.
        num_workers: DataLoader worker processes.
        unseen_from: Which unseen-class samples are evaluated: ``test`` (the protocol's test
            partition) or ``all``.
        pin_memory: Pin host memory (useful on GPU).
        augment: Random augmentation of training samples (rotation, scale, shear, temporal crop).
    """

    def __init__(
        self,
        source: SkeletonSource,
        split: str,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        unseen_from: Literal["test", "all"] = "test",
        pin_memory: bool = False,
        augment: SkeletonAugment | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.split: ZeroShotSplit = get_split(split)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.unseen_from = unseen_from
        self.pin_memory = pin_memory
        self.augment = augment
        self.skeletons: SkeletonSet | None = None
        self.sets: dict[str, SkeletonDataset] = {}

    @property
    def layout(self) -> str:
        """The skeleton layout of the samples (the source's; a custom source may need to read its folder)."""
        return getattr(self.source, "layout", "") or self.load().layout

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names in class-index order (the source's, else its catalog card's)."""
        names = getattr(self.source, "class_names", None)
        return list(names) if names else class_names(self.split.dataset)

    @property
    def input_format(self) -> SkeletonFormat:
        """Layout, persons, channels and frames of the samples (what a backbone is built for)."""
        return SkeletonFormat.of(self.load())

    def load(self) -> SkeletonSet:
        """The whole dataset, read once (through the source's cache) and cut into the sample sets."""
        self.setup()
        assert self.skeletons is not None
        return self.skeletons

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
        seen = np.isin(skeletons.labels, self.split.seen)
        unseen = np.isin(skeletons.labels, self.split.unseen)
        train = skeletons.partition == "train"
        test = skeletons.partition == "test"
        index = {
            "seen_train": np.flatnonzero(seen & train),
            "seen_test": np.flatnonzero(seen & test),
            "unseen_test": np.flatnonzero(unseen & (test if self.unseen_from == "test" else True)),
        }
        assert not np.isin(skeletons.labels[index["seen_train"]], self.split.unseen).any(), "unseen class leaked"
        for name, idx in index.items():
            if len(idx) == 0:
                raise ValueError(
                    f"split {self.split.name!r} leaves no {name.replace('_', ' ')} samples in "
                    f"{type(self.source).__name__}; check the source's protocol/partition or use unseen_from='all'"
                )
        empty = {
            k: v
            for k, v in classes_without_samples(
                self.split, skeletons.labels, skeletons.partition, self.unseen_from
            ).items()
            if v
        }
        for name, classes in empty.items():
            names = [skeletons.class_names[c] for c in classes]
            log.warning("split %s: %d classes have no %s samples: %s", self.split.name, len(names), name, names)
        self.skeletons = skeletons
        self.sets = {
            name: SkeletonDataset(skeletons, idx, self.augment if name == "seen_train" else None)
            for name, idx in index.items()
        }
        log.info("split %s: %s", self.split.name, {k: len(v) for k, v in self.sets.items()})

    def _loader(self, name: str, train: bool, shard: bool = True) -> DataLoader:
        """Training: seeded, resumable, sharded under DDP; evaluation: in order, under DDP sharded without
        double-counted samples unless ``shard=False`` (see :mod:`purls_pl.train.resumable`)."""
        if not self.sets:
            self.setup()
        common = {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
        }
        if train:
            drop_last = len(self.sets[name]) > self.batch_size
            return resumable.train_loader(self.sets[name], self.batch_size, drop_last=drop_last, **common)
        return resumable.eval_loader(self.sets[name], self.eval_batch_size, shard=shard, **common)


class PretrainDataModule(SkeletonDataModule):
    """Stage 1: supervised training on ``seen_train``, selection on ``seen_test``."""

    @property
    def seen_classes(self) -> list[int]:
        """The class ids stage 1 trains on (its classification head's classes)."""
        return list(self.split.seen)

    def train_dataloader(self) -> DataLoader:
        return self._loader("seen_train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("seen_test", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("seen_test", train=False)


class ZeroShotDataModule(SkeletonDataModule):
    """Stage 2: PURLS on ``seen_train``; zero-shot validation and test on ``unseen_test``.

    Args:
        source: Where the skeletons come from.
        split: Zero-shot split name.
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
        unseen_from: ``test`` or ``all`` unseen-class samples are evaluated.
        pin_memory: Pin host memory (useful on GPU).
        augment: Random augmentation of training samples (rotation, scale, shear, temporal crop).
        gzsl: Also test the seen classes' test samples, every sample scored against all classes
            (generalised zero-shot; the zero-shot metrics still count only unseen-class samples).
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
        split: str,
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
        super().__init__(source, split, batch_size, eval_batch_size, num_workers, unseen_from, pin_memory, augment)
        self.gzsl = gzsl
        self.text_options = TextOptions(label_mix, tuple(label_mix_fields or ["global"]), alternatives)
        self.descriptions = descriptions
        self.templates = templates
        self.text_encoder = text_encoder or TextEncoder()
        self._class_text: ClassText | None = None

    def description_set(self) -> DescriptionSet:
        """Resolve the ``descriptions`` argument to a validated set."""
        names = self.class_names
        if self.descriptions == "labels":
            return DescriptionSet.label_only(names)
        if self.descriptions == "demo":
            return DescriptionSet.from_records(demo_descriptions(), name="demo", source="purls_pl.data.demo")
        path = Path(self.descriptions)
        if self.descriptions == "auto":
            file = card(self.split.dataset).descriptions
            if file is None:
                raise ValueError(
                    f"no shipped description set for dataset {self.split.dataset!r}; pass descriptions=<file.json>"
                )
            path = Path("descriptions") / file
            if not path.is_file():
                path = project_root() / "descriptions" / file
        descriptions = load_descriptions(path)
        descriptions.validate(names)
        return descriptions

    @property
    def class_text(self) -> ClassText:
        """Description embeddings ``(K, 8, m)`` of all classes with the split (computed once, cached on disk)."""
        if self._class_text is None:
            embeddings = embed_class_text(
                self.text_encoder, self.description_set(), self.class_names, self.templates, self.text_options
            )
            self._class_text = ClassText(
                tuple(self.class_names), embeddings, self.split.seen, self.split.unseen, gzsl=self.gzsl
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
                "source": {"class_path": class_path(source), "init_args": args},
                "preprocess": preprocessing_record(source, shape),
            }
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("seen_train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("unseen_test", train=False)

    def test_dataloader(self) -> DataLoader:
        """``unseen_test``, plus ``seen_test`` with ``gzsl`` (one loader; the callbacks sort the rows)."""
        skeletons = self.load()
        if not self.gzsl:
            return self._loader("unseen_test", train=False)
        if "test" not in self.sets:
            index = np.concatenate([self.sets["unseen_test"].index, self.sets["seen_test"].index])
            self.sets["test"] = SkeletonDataset(skeletons, index)
        return self._loader("test", train=False)
