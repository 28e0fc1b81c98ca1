"""Tests of the embedded demo dataset (procedural skeleton motions, their descriptions and split)."""

from __future__ import annotations

import numpy as np
import pytest

from purls_pl.data.catalog import class_names
from purls_pl.data.demo import DemoSource, demo_descriptions, generate_demo
from purls_pl.data.demo import motion as synthetic
from purls_pl.data.demo.programs import CLASS_PROGRAMS, DEMO_CLASS_NAMES, PRIMITIVES, UNSEEN_DEFAULT, segments
from purls_pl.data.layouts import NTU25
from purls_pl.data.skeletons import SkeletonSet, SkeletonSource
from purls_pl.data.splits import get_split
from purls_pl.text.descriptions import DescriptionSet
from purls_pl.text.fields import FIELDS

SPLIT = get_split("demo_15_5")

SMALL = {"samples_per_class": 6, "num_frames": 24}


@pytest.fixture(scope="module")
def default_set() -> SkeletonSet:
    return DemoSource().load()


def _primitives(c: int) -> set[str]:
    return {name for phase in CLASS_PROGRAMS[c][1] for name in phase}


def test_source_protocol_shapes_and_dtypes(default_set: SkeletonSet) -> None:
    source = DemoSource()
    assert isinstance(source, SkeletonSource)
    assert (source.dataset, source.layout) == ("demo", "ntu25")
    ds = default_set
    n = 60 * len(DEMO_CLASS_NAMES)
    assert ds.data.shape == (n, 1, 48, 25, 3) and ds.data.dtype == np.float32
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
    assert np.array_equal(np.bincount(ds.labels), np.full(len(DEMO_CLASS_NAMES), 60))
    assert ds.sample_ids[0] == "demo_c00_s000" and "demo_c03_s017" in ds.sample_ids
    assert len(set(ds.sample_ids)) == n
    assert ds.class_names == list(DEMO_CLASS_NAMES) and len(DEMO_CLASS_NAMES) == 20
    assert np.all(ds.lengths == 48)
    assert np.isfinite(ds.data).all()
    height = ds.data[..., 1]
    assert -0.1 < height.min() and height.max() < 2.6  # floor at y=0, arms raised at most ~2.3 m


def test_deterministic_given_seed() -> None:
    a, b = DemoSource(seed=3, **SMALL).load(), DemoSource(seed=3, **SMALL).load()
    assert np.array_equal(a.data, b.data)
    assert np.array_equal(a.partition, b.partition)
    c = DemoSource(seed=4, **SMALL).load()
    assert not np.allclose(a.data, c.data)


def test_partition_is_stratified(default_set: SkeletonSet) -> None:
    ds = default_set
    for c in range(len(DEMO_CLASS_NAMES)):
        part = ds.partition[ds.labels == c]
        assert (part == "test").sum() == 15 and (part == "train").sum() == 45
    half = DemoSource(test_fraction=0.5, **SMALL).load()
    assert all((half.partition[half.labels == c] == "test").sum() == 3 for c in range(len(DEMO_CLASS_NAMES)))


def _bone_lengths(data: np.ndarray) -> np.ndarray:
    a, b = np.array(NTU25.edges).T
    return np.linalg.norm(data[:, 0, :, a] - data[:, 0, :, b], axis=-1)  # (E, N, T) after fancy indexing


def test_bone_lengths_constant_over_time() -> None:
    clean, _ = generate_demo(joint_noise=(0.0, 0.0), **SMALL)
    lengths = _bone_lengths(clean.astype(np.float64))
    assert lengths.std(axis=-1).max() < 1e-5  # rigid up to float32 rounding
    assert lengths.min() > 0.02
    noisy = DemoSource(**SMALL).load().data
    lengths = _bone_lengths(noisy.astype(np.float64))
    assert lengths.std(axis=-1).max() < 0.04  # only the 1-2 cm joint noise changes them
    assert np.median(lengths.std(axis=-1)) < 0.03


def test_body_size_is_plausible() -> None:
    clean, _ = generate_demo(joint_noise=(0.0, 0.0), **SMALL)
    first = clean[:, 0, 0]
    height = first[:, NTU25.joint_names.index("head"), 1] - first[:, :, 1].min(axis=1)
    assert 0.85 * 1.55 < height.min() and height.max() < 1.15 * 1.7


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_moves_its_body_part(name: str) -> None:
    part = PRIMITIVES[name].part
    u = np.linspace(-0.1, 1.1, 40)[None]
    one = np.ones((1, 1))
    local: list[np.ndarray | None] = [None] * 25
    synthetic._apply(local, synthetic.MOTIONS[name](u, one, one), slice(None), u.shape)
    moved = np.abs(synthetic._forward_kinematics(local)[0] - synthetic._REST).max(axis=(0, 2))
    joints = set(NTU25.parts[part])
    if part == "torso":  # the spine carries head and arms along (a twist shows mostly at the shoulders)
        assert moved[sorted(joints)].max() > 0.0
        joints |= set(NTU25.parts["head"]) | set(NTU25.parts["hands"])
    assert moved[sorted(joints)].max() > 0.03, "the movement is visible"
    others = sorted(set(range(25)) - joints)
    assert moved[others].max() < 1e-9, "other parts stay put (before grounding)"


def test_unseen_classes_recombine_seen_primitives() -> None:
    seen, unseen = list(SPLIT.seen), list(SPLIT.unseen)
    assert len(seen) == 15 and len(unseen) == 5
    assert sorted(seen + unseen) == list(range(20))
    seen_sets = [_primitives(c) for c in seen]
    seen_all = set().union(*seen_sets)
    assert seen_all == set(PRIMITIVES), "every primitive is trained on"
    for c in unseen:
        prims = _primitives(c)
        assert prims <= seen_all, DEMO_CLASS_NAMES[c]
        assert not any(prims <= s for s in seen_sets), f"{DEMO_CLASS_NAMES[c]} is no new combination"
        assert len({PRIMITIVES[p].part for p in prims}) == len(prims) >= 2


def test_split_registry_and_class_names() -> None:
    split = get_split("demo_15_5")
    assert split.dataset == "demo" and split.num_classes == 20
    assert split.unseen == UNSEEN_DEFAULT
    assert class_names("demo") == list(DEMO_CLASS_NAMES)


def test_descriptions_complete_and_faithful() -> None:
    records = demo_descriptions()
    assert [r["label"] for r in records] == list(DEMO_CLASS_NAMES)
    for record, (_, program) in zip(records, CLASS_PROGRAMS, strict=True):
        assert set(record) == {"label", *FIELDS}
        for field in FIELDS:
            text = record[field]
            assert text and text == text.strip() and text == text.lower() and not text.endswith("."), (field, text)
        for name, _, _ in segments(program):
            prim = PRIMITIVES[name]
            assert prim.base in record[prim.part]
    assert records[0]["head"] == "nod the head up and down"
    assert records[0]["torso"] == "stay upright and still"
    DescriptionSet.from_records(records, name="demo").validate(DEMO_CLASS_NAMES)


def test_nearest_class_mean_is_learnable_but_not_trivial(default_set: SkeletonSet) -> None:
    ds = default_set
    seen = np.array(SPLIT.seen)
    x = ds.data[:, 0].astype(np.float64)
    feats = (x - x.mean(axis=(1, 2), keepdims=True)).reshape(len(x), -1)  # centred, flattened
    in_seen = np.isin(ds.labels, seen)
    train, test = in_seen & (ds.partition == "train"), in_seen & (ds.partition == "test")
    means = np.stack([feats[train & (ds.labels == c)].mean(axis=0) for c in seen])
    dist = ((feats[test][:, None] - means[None]) ** 2).sum(axis=-1)
    accuracy = float((seen[dist.argmin(axis=1)] == ds.labels[test]).mean())
    print(f"nearest-class-mean accuracy over {len(seen)} seen classes: {accuracy:.3f}")
    assert accuracy > 2.0 / len(seen)
    assert accuracy < 1.0
