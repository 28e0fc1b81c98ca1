"""The datamodules' loaders under both protocols, class text, errors, augmentation."""

import numpy as np
import pytest
import torch

from purls_pl.data.demo import DemoSource
from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.splits import get_split
from purls_pl.text.encoder import TextEncoder
from purls_pl.train.datamodule import PretrainDataModule, ZeroShotDataModule


@pytest.fixture(scope="module")
def demo() -> DemoSource:
    return DemoSource(samples_per_class=8, num_frames=12)


def _labels_and_partitions(dm, loader) -> tuple[np.ndarray, np.ndarray]:
    index = np.concatenate([b.index.numpy() for b in loader])
    return dm.skeletons.labels[index], dm.skeletons.partition[index]


def test_stage_one_trains_on_seen_classes_and_tests_their_test_samples(demo):
    dm = PretrainDataModule(demo, "demo_15_5", batch_size=4)
    split = get_split("demo_15_5")
    labels, part = _labels_and_partitions(dm, dm.train_dataloader())
    assert set(labels) == set(split.seen) and (part == "train").all()
    assert dm.val_dataloader() == [], "no validation without a holdout"
    labels, part = _labels_and_partitions(dm, dm.test_dataloader())
    assert set(labels) == set(split.seen) and (part == "test").all()
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (4, 1, 12, 25, 3) and batch.x.dtype == torch.float32


@pytest.mark.parametrize("split_name", ["demo_15_5", "nw-ucla_random5_seed2"])
def test_stage_one_selection_data_hold_no_test_protocol_sample(split_name):
    source = RandomSkeletonSource(get_split(split_name).dataset, samples_per_class=6, num_frames=4, num_persons=1)
    dm = PretrainDataModule(source, split_name, protocol="select", holdout=0.3, batch_size=4)
    split = get_split(split_name)
    val_classes = split.selection().unseen
    assert dm.seen_classes == [c for c in split.seen if c not in val_classes]
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        labels, part = _labels_and_partitions(dm, loader)
        assert (part == "train").all() and set(labels) <= set(dm.seen_classes)
    with pytest.raises(RuntimeError, match="never tests"):
        dm.test_dataloader()


def test_zero_shot_loaders_per_protocol(demo, tiny_clip):
    split = get_split("demo_15_5")
    final = ZeroShotDataModule(demo, "demo_15_5", descriptions="demo", text_encoder=TextEncoder(str(tiny_clip)))
    assert final.val_dataloader() == [], "the final run selects nothing"
    labels, part = _labels_and_partitions(final, final.test_dataloader())
    assert (part == "test").all() and set(labels) == set(range(20))  # unseen + seen test samples (GZSL)
    select = ZeroShotDataModule(
        demo, "demo_15_5", "select", descriptions="demo", text_encoder=TextEncoder(str(tiny_clip)), gzsl=False
    )
    val_classes = split.selection().unseen
    labels, part = _labels_and_partitions(select, select.val_dataloader())
    assert set(labels) == set(val_classes) and (part == "train").all(), "validation classes, training protocol"
    assert select.class_text.unseen == val_classes and not set(select.class_text.seen) & set(split.unseen)
    with pytest.raises(RuntimeError, match="never tests"):
        select.test_dataloader()
    gzsl = ZeroShotDataModule(
        demo, "demo_15_5", "select", descriptions="demo", text_encoder=TextEncoder(str(tiny_clip))
    )
    labels, part = _labels_and_partitions(gzsl, gzsl.val_dataloader())
    assert (part == "train").all() and not np.isin(labels, split.unseen).any()
    assert set(labels) - set(val_classes) <= set(gzsl.seen_classes), "plus held-out training-class samples"


def test_class_text(demo, tiny_clip):
    dm = ZeroShotDataModule(demo, "demo_15_5", descriptions="demo", text_encoder=TextEncoder(str(tiny_clip)))
    ct = dm.class_text
    assert ct.embeddings.shape == (20, 8, 24) and ct.seen == get_split("demo_15_5").seen
    torch.testing.assert_close(ct.embeddings.norm(dim=-1), torch.ones(20, 8))
    assert dm.layout == "ntu25" and ct.candidates == (*ct.seen, *ct.unseen)
    labels = ZeroShotDataModule(demo, "demo_15_5", descriptions="labels", text_encoder=TextEncoder(str(tiny_clip)))
    assert not torch.allclose(labels.class_text.embeddings, ct.embeddings)


def test_text_levers_options(demo, tiny_clip):
    from purls_pl.text.levers import TextOptions, embed_class_text

    enc = TextEncoder(str(tiny_clip))
    base = ZeroShotDataModule(demo, "demo_15_5", descriptions="demo", text_encoder=enc)
    assert base.text_options == TextOptions() and base.checkpoint_record()["text_options"]["label_mix"] == 0.0
    dm = ZeroShotDataModule(
        demo, "demo_15_5", descriptions="demo", templates="labelled", text_encoder=enc, label_mix=0.3, alternatives=1
    )
    options = TextOptions(0.3, ("global",), 1)
    expected = embed_class_text(enc, dm.description_set(), dm.class_names, "labelled", options)
    torch.testing.assert_close(dm.class_text.embeddings, expected)
    assert not torch.allclose(dm.class_text.embeddings[:, -1], base.class_text.embeddings[:, -1])
    assert dm.checkpoint_record()["text_options"] == options.record()
    with pytest.raises(ValueError, match="label_mix"):
        ZeroShotDataModule(demo, "demo_15_5", label_mix=2.0)


def test_mismatched_split_and_missing_descriptions(demo, tiny_clip):
    dm = PretrainDataModule(demo, "nw-ucla_8_2")
    with pytest.raises(ValueError, match="nw-ucla"):
        dm.setup()
    dm = ZeroShotDataModule(demo, "demo_15_5", descriptions="auto", text_encoder=TextEncoder(str(tiny_clip)))
    with pytest.raises(ValueError, match="no shipped description set"):
        _ = dm.class_text
    with pytest.raises(KeyError, match="unknown zero-shot split"):
        PretrainDataModule(demo, "ntu999_1_1")
    with pytest.raises(ValueError, match="data.protocol must be 'final' or 'select'"):
        PretrainDataModule(demo, "demo_15_5", protocol="tune")  # type: ignore[arg-type]


def test_unseen_from_all_needs_no_test_partition():
    src = RandomSkeletonSource("nw-ucla", "kinect20", samples_per_class=2, num_persons=1)
    dm = PretrainDataModule(src, "nw-ucla_8_2", unseen_from="all")
    dm.setup()
    assert len(dm.sets["unseen_eval"]) == 2 * 2


def test_augmentation_only_on_training_samples_and_reproducible(demo):
    from purls_pl.data.augment import SkeletonAugment

    dm = PretrainDataModule(demo, "demo_15_5", augment=SkeletonAugment(rotate_degrees=30, scale=0.1))
    dm.setup()
    train, test = dm.sets["train"], dm.sets["seen_test"]
    raw = torch.from_numpy(np.asarray(dm.skeletons.data[train.index[0]]))
    torch.manual_seed(0)
    first = train[0].x
    torch.manual_seed(0)
    again = train[0].x
    assert not torch.allclose(first, raw) and torch.equal(first, again)
    torch.testing.assert_close(test[0].x, torch.from_numpy(np.asarray(dm.skeletons.data[test.index[0]])))
