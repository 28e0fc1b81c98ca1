import numpy as np
import pytest
import torch

from purls_pl.data.demo.motion import DemoSource
from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.splits import get_split
from purls_pl.text.encoder import TextEncoder
from purls_pl.train.datamodule import PretrainDataModule, ZeroShotDataModule


@pytest.fixture(scope="module")
def demo() -> DemoSource:
    return DemoSource(samples_per_class=8, num_frames=12)


def test_sets_respect_the_split_and_the_protocol(demo):
    dm = PretrainDataModule(demo, "demo_15_5", batch_size=4)
    dm.setup()
    split = get_split("demo_15_5")
    labels, part = dm.skeletons.labels, dm.skeletons.partition
    train, val = dm.sets["seen_train"].index, dm.sets["seen_test"].index
    unseen = dm.sets["unseen_test"].index
    assert set(labels[train]) == set(split.seen) and (part[train] == "train").all()
    assert set(labels[val]) <= set(split.seen) and (part[val] == "test").all()
    assert set(labels[unseen]) == set(split.unseen) and (part[unseen] == "test").all()
    assert not set(train) & set(val) and not set(train) & set(unseen)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (4, 1, 12, 25, 3) and batch["x"].dtype == torch.float32
    assert np.isin(batch["y"].numpy(), split.seen).all()


def test_zero_shot_loaders_and_class_text(demo, tiny_clip):
    dm = ZeroShotDataModule(demo, "demo_15_5", descriptions="demo", text_encoder=TextEncoder(str(tiny_clip)))
    ct = dm.class_text
    assert ct.embeddings.shape == (20, 8, 24) and ct.seen == get_split("demo_15_5").seen
    torch.testing.assert_close(ct.embeddings.norm(dim=-1), torch.ones(20, 8))
    assert dm.layout == "ntu25"
    val = next(iter(dm.val_dataloader()))
    assert np.isin(val["y"].numpy(), ct.unseen).all()
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


def test_unseen_from_all_needs_no_test_partition():
    src = RandomSkeletonSource("nw-ucla", "kinect20", samples_per_class=2, num_persons=1)
    dm = PretrainDataModule(src, "nw-ucla_8_2", unseen_from="all")
    dm.setup()
    assert len(dm.sets["unseen_test"]) == 2 * 2


def test_augmentation_only_on_training_samples_and_reproducible(demo):
    from purls_pl.data.augment import SkeletonAugment

    dm = PretrainDataModule(demo, "demo_15_5", augment=SkeletonAugment(rotate_degrees=30, scale=0.1))
    dm.setup()
    train, val = dm.sets["seen_train"], dm.sets["seen_test"]
    raw = torch.from_numpy(np.asarray(dm.skeletons.data[train.index[0]]))
    torch.manual_seed(0)
    first = train[0]["x"]
    torch.manual_seed(0)
    again = train[0]["x"]
    assert not torch.allclose(first, raw) and torch.equal(first, again)
    torch.testing.assert_close(val[0]["x"], torch.from_numpy(np.asarray(dm.skeletons.data[val.index[0]])))
