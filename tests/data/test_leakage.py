"""No unseen-class sample reaches training or model selection, for every registered split.

Each split gets stand-in data shaped like its dataset (RandomSkeletonSource: the real class list and
layout, 2 samples per class, one per protocol partition, 4 frames).
"""

from __future__ import annotations

import numpy as np
import pytest

from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.splits import available_splits, get_split
from purls_pl.train.datamodule import PretrainDataModule, ZeroShotDataModule


@pytest.mark.parametrize("unseen_from", ["test", "all"])
@pytest.mark.parametrize("name", available_splits())
def test_no_unseen_class_in_training_or_model_selection(name: str, unseen_from: str) -> None:
    split = get_split(name)
    source = RandomSkeletonSource(split.dataset, samples_per_class=2, num_frames=4, num_persons=1)
    seen, unseen = np.array(split.seen), np.array(split.unseen)
    for module in (PretrainDataModule, ZeroShotDataModule):
        dm = module(source, name, unseen_from=unseen_from)  # type: ignore[arg-type]
        dm.setup()
        labels, part = dm.skeletons.labels, dm.skeletons.partition
        train, select, evaluate = (dm.sets[k].index for k in ("seen_train", "seen_test", "unseen_test"))
        assert not np.isin(labels[train], unseen).any(), "unseen class in training"
        assert not np.isin(labels[select], unseen).any(), "unseen class in model selection"
        assert np.isin(labels[evaluate], unseen).all(), "seen class in the zero-shot evaluation"
        assert (part[train] == "train").all() and (part[select] == "test").all()
        if unseen_from == "test":
            assert (part[evaluate] == "test").all()
        assert not (set(train) | set(select)) & set(evaluate) and not set(train) & set(select)
        assert set(labels[train]) == set(seen.tolist()) and set(labels[evaluate]) == set(unseen.tolist())
