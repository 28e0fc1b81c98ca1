"""The evaluation protocol as sample sets, for every registered split and a random one: no unseen-class
sample and no test-protocol sample reaches training or model selection, validation uses validation
classes of the training protocol only, and the unseen classes are read only by the final test.

Each split gets stand-in data shaped like its dataset (RandomSkeletonSource: the real class list and
layout, 4 samples per class, two per protocol partition, 4 frames).
"""

from __future__ import annotations

import numpy as np
import pytest

from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.sample_sets import holdout_mask, sample_sets
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import builtin_splits, get_split

SPLITS = [*builtin_splits(), "nw-ucla_random5_seed1"]


def _data(dataset: str) -> SkeletonSet:
    return RandomSkeletonSource(dataset, samples_per_class=4, num_frames=4, num_persons=1).load()


@pytest.fixture(scope="module")
def datasets() -> dict[str, SkeletonSet]:
    return {d: _data(d) for d in {get_split(s).dataset for s in SPLITS}}


@pytest.mark.parametrize("unseen_from", ["test", "all"])
@pytest.mark.parametrize("name", SPLITS)
def test_final_protocol_trains_on_seen_and_tests_unseen(name, unseen_from, datasets):
    split = get_split(name)
    data = datasets[split.dataset]
    labels, part = data.labels, data.partition
    sets = sample_sets(data, split, "final", unseen_from)
    train, seen_test, unseen = sets["train"], sets["seen_test"], sets["unseen_eval"]
    assert set(labels[train]) == set(split.seen) and (part[train] == "train").all()
    assert set(labels[seen_test]) == set(split.seen) and (part[seen_test] == "test").all()
    assert set(labels[unseen]) == set(split.unseen)
    assert (part[unseen] == "test").all() if unseen_from == "test" else len(unseen) == 4 * len(split.unseen)
    assert len(sets["holdout"]) == 0 and set(train).isdisjoint(set(seen_test) | set(unseen))


@pytest.mark.parametrize("name", SPLITS)
def test_selection_reads_validation_classes_of_the_training_protocol_only(name, datasets):
    split = get_split(name)
    data = datasets[split.dataset]
    labels, part = data.labels, data.partition
    selection = split.selection()  # validation classes "auto", fold 0
    val = set(selection.unseen)
    assert val <= set(split.seen) and set(selection.excluded) == set(split.unseen)
    sets = sample_sets(data, selection, "select", holdout=0.25)
    every = np.concatenate(list(sets.values()))
    assert (part[every] == "train").all(), "a test-protocol sample reached model selection"
    assert not np.isin(labels[every], split.unseen).any(), "an unseen class reached model selection"
    assert set(labels[sets["unseen_eval"]]) == val, "validation is the validation classes' samples"
    for name_ in ("train", "holdout"):
        assert not np.isin(labels[sets[name_]], list(val)).any(), f"a validation class in {name_}"
    assert set(labels[sets["train"]]) == set(split.seen) - val and len(sets["seen_test"]) == 0
    assert not set(sets["train"]) & set(sets["holdout"])


def test_holdout_takes_whole_subjects_when_recorded():
    data = _data("nw-ucla")
    data.meta["subject"] = np.arange(len(data)) % 5  # 5 subjects
    index = np.flatnonzero(data.partition == "train")
    held = holdout_mask(data, index, 0.2, "s")
    subjects = data.meta["subject"][index]
    assert set(subjects[held]).isdisjoint(set(subjects[~held])) and held.any()
    assert np.array_equal(held, holdout_mask(data, index, 0.2, "s")), "deterministic"
    del data.meta["subject"]
    per_class = holdout_mask(data, index, 0.5, "s")
    assert all(per_class[data.labels[index] == c].sum() == 1 for c in range(10))  # 2 train samples per class
    with pytest.raises(ValueError, match=r"holdout must lie in \[0, 1\)"):
        holdout_mask(data, index, 1.0, "s")
