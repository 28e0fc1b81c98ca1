"""Split registry: the paper's splits, user-defined splits (names, indices, seeded random), lookups."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from purls_pl.data.catalog import class_names, known_datasets
from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.splits import (
    ZeroShotSplit,
    available_splits,
    builtin_splits,
    classes_without_samples,
    get_split,
    random_split,
    random_split_name,
)
from purls_pl.train.datamodule import PretrainDataModule


@pytest.mark.parametrize("name", builtin_splits())
def test_builtin_split_is_a_partition_of_the_classes(name: str) -> None:
    split = get_split(name)
    assert split.name == name and split.num_classes == len(class_names(split.dataset))
    assert all(0 <= c < split.num_classes for c in (*split.seen, *split.unseen))
    assert sorted((*split.seen, *split.unseen)) == list(range(split.num_classes))  # each class exactly once
    seen, unseen = (int(x) for x in name.rsplit("_", 2)[1:])
    assert (len(split.seen), len(split.unseen)) == (seen, unseen)


def test_splits_json_stores_only_unseen_classes_of_catalogued_datasets() -> None:
    raw = json.loads(resources.files("purls_pl.data").joinpath("splits.json").read_text())["splits"]
    assert all(set(s) == {"dataset", "unseen"} for s in raw.values()), "seen classes are derived, never stored"
    assert {s["dataset"] for s in raw.values()} <= set(known_datasets())
    assert set(raw) | {"demo_15_5"} == set(builtin_splits())


def test_unknown_split_lists_available_names() -> None:
    with pytest.raises(KeyError, match=r"'ntu120_96_42' \(did you mean \['ntu120_96_24'.*available: .*nw-ucla_8_2"):
        get_split("ntu120_96_42")
    with pytest.raises(KeyError, match="_random<K>_seed<S>"):
        get_split("mydata_random3_seed0")  # no class list for 'mydata'


def test_from_names_validates_with_close_matches() -> None:
    split = ZeroShotSplit.from_names("ucla_mine", "nw-ucla", ["walk around", "carry"])
    assert split.unseen == (3, 9) and split.seen == (0, 1, 2, 4, 5, 6, 7, 8) and split.dataset == "nw-ucla"
    with pytest.raises(KeyError, match=r"'walk arround' \(close: 'walk around'\).*'teleport' \(close: none\)"):
        ZeroShotSplit.from_names("bad", "nw-ucla", ["walk arround", "teleport", "carry"])
    custom = ZeroShotSplit.from_names("g", "gestures", ["jump"], classes=["wave", "jump", "sit"])
    assert (custom.num_classes, custom.seen, custom.unseen) == (3, (0, 2), (1,))


def test_from_indices() -> None:
    split = ZeroShotSplit.from_indices("n60_mine", "ntu60", [59, 0])
    assert split.unseen == (0, 59) and split.seen == tuple(range(1, 59))
    with pytest.raises(ValueError, match=r"outside 0\.\.9"):
        ZeroShotSplit.from_indices("bad", "nw-ucla", [10])
    with pytest.raises(ValueError, match="at least one unseen and one seen"):
        ZeroShotSplit.from_indices("bad", "nw-ucla", [])
    with pytest.raises(ValueError, match="at least one unseen and one seen"):
        ZeroShotSplit.from_indices("bad", "nw-ucla", range(10))
    with pytest.raises(ValueError, match="listed twice"):
        ZeroShotSplit.from_indices("bad", "nw-ucla", [1, 1])


def test_random_split_is_seeded_named_and_registered() -> None:
    a = random_split("ntu120", 24, seed=0)
    assert a.name == random_split_name("ntu120", 24, 0) == "ntu120_random24_seed0"
    assert a.name in available_splits() and get_split(a.name) == a
    assert len(a.unseen) == 24 and sorted((*a.seen, *a.unseen)) == list(range(120))
    assert random_split("ntu120", 24, seed=0) == a and random_split("ntu120", 24, seed=1).unseen != a.unseen
    assert random_split("nw-ucla", 2, seed=0).unseen == (0, 3)  # pinned: the ranking must never change
    with pytest.raises(ValueError, match=r"num_unseen must lie in 1\.\.9"):
        random_split("nw-ucla", 10)
    fold = get_split("nw-ucla_5_5").random_fold(2)  # a table's random class fold beside a paper split
    assert fold == get_split("nw-ucla_random5_seed2") and fold.name in available_splits()
    custom = ZeroShotSplit.from_indices("mine_4_2", "mine", [0, 1], num_classes=6)  # no catalogued class list
    assert custom.random_fold(0) == random_split("mine", 2, 0, classes=list("abcdef"))


def test_random_split_names_work_from_configs() -> None:
    split = get_split("kinetics200_random40_seed7")  # built on the fly, no registration needed
    assert (split.dataset, len(split.seen), len(split.unseen)) == ("kinetics200", 160, 40)
    source = RandomSkeletonSource("nw-ucla", "kinect20", samples_per_class=2, num_frames=4, num_persons=1)
    dm = PretrainDataModule(source, "nw-ucla_random3_seed5")
    dm.setup()
    assert set(dm.skeletons.labels[dm.sets["unseen_eval"].index]) == set(get_split("nw-ucla_random3_seed5").unseen)


def test_classes_without_samples() -> None:
    split = get_split("nw-ucla_8_2")
    labels = [c for c in range(10) for _ in range(2)]
    partition = ["train", "test"] * 10
    assert classes_without_samples(split, labels, partition) == {"seen_train": (), "unseen_test": ()}
    keep = [i for i, c in enumerate(labels) if c not in (split.seen[0], split.unseen[0]) or partition[i] == "train"]
    missing = classes_without_samples(split, [labels[i] for i in keep], [partition[i] for i in keep])
    assert missing == {"seen_train": (), "unseen_test": (split.unseen[0],)}
    assert classes_without_samples(split, [labels[i] for i in keep], [partition[i] for i in keep], "all") == {
        "seen_train": (),
        "unseen_test": (),
    }


def test_validation_classes_are_deterministic_folds_of_the_seen_classes() -> None:
    split = get_split("nw-ucla_8_2")
    folds = [split.validation_classes("auto", f) for f in range(4)]
    assert all(len(f) == 2 and set(f) <= set(split.seen) for f in folds)  # max(2, min(2 unseen, 8 // 4))
    assert len(set().union(*folds)) == 8, "four folds of two cover the eight seen classes once"
    assert folds[0] == split.validation_classes() == (3, 6)  # pinned: the ranking must never change
    assert split.validation_classes(3) != split.validation_classes(3, fold=1)
    assert split.validation_classes(["stand up", "throw"]) == (5, 8) and split.validation_classes("none") == ()
    assert get_split("ntu60_55_5").validation_classes() == (0, 6, 12, 52, 59)
    with pytest.raises(ValueError, match="not seen classes"):
        split.validation_classes(["sit down"])  # an unseen class of nw-ucla_8_2
    with pytest.raises(ValueError, match="leave 1 of its 8 seen classes"):
        split.validation_classes(7)
    with pytest.raises(ValueError, match="'auto', 'none', a count"):
        split.validation_classes("most")


def test_selection_split_excludes_the_unseen_classes() -> None:
    split = get_split("nw-ucla_5_5")
    selection = split.selection(fold=1)
    assert selection.name == "nw-ucla_5_5-val1" and selection.excluded == split.unseen
    assert set(selection.seen) | set(selection.unseen) == set(split.seen)
    assert not set(selection.seen) & set(split.unseen)
    with pytest.raises(ValueError, match="needs validation classes"):
        split.selection("none")
