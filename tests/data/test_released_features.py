"""Released pooled features: the SynSE folder and the Flora .npz round-trip through their writers, become a
pooled source checked against the split's classes, and every bad file is refused naming file, field and fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from purls_pl.data.layouts import POOLED, get_layout
from purls_pl.data.readers import ReleasedFeatureSource
from purls_pl.data.released_features import (
    FeatureFileError,
    feature_dim,
    read_flora_features,
    read_released_features,
    read_synse_features,
    write_flora_features,
    write_synse_features,
)
from purls_pl.data.splits import get_split
from purls_pl.models.pooled import ReleasedFeatures

SPLIT = get_split("ntu60_55_5")


def _parts(dim: int = 8, seed: int = 0, per_class: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random features of every part of ntu60_55_5 (labels: class indices of NTU-60)."""
    rng = np.random.default_rng(seed)

    def part(classes: tuple[int, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.asarray(classes, dtype=np.int64), k)
        return rng.normal(size=(len(y), dim)).astype(np.float32), y

    zsl, seen_test = part(SPLIT.unseen, per_class), part(SPLIT.seen, 1)
    gzsl = (np.concatenate([seen_test[0], zsl[0]]), np.concatenate([seen_test[1], zsl[1]]))
    return {"train": part(SPLIT.seen, per_class), "zsl": zsl, "gzsl": gzsl}


def _synse(tmp_path, parts=None):
    parts = parts or _parts()
    return write_synse_features(tmp_path / "shift_5_r", parts["train"], parts["zsl"], parts["gzsl"]), parts


def test_synse_and_flora_round_trip_every_part(tmp_path):
    parts = _parts()
    folder, _ = _synse(tmp_path, parts)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["train.npy", "train_label.npy", "ztest.npy", "z_label.npy", "gtest.npy", "g_label.npy"]
    )
    npz = write_flora_features(tmp_path / "ntu60_seen55_unseen5.npz", parts["train"], parts["zsl"], parts["gzsl"])
    with np.load(npz) as archive:
        assert sorted(archive.files) == sorted(
            ["train_data", "train_label", "zsl_data", "zsl_label", "gzsl_data", "gzsl_label"]
        )
    for read in (read_synse_features(folder), read_flora_features(npz), read_released_features(npz)):
        assert read.dim == 8 and set(read.parts) == {"train", "zsl", "gzsl"}
        for name, (x, y) in parts.items():
            np.testing.assert_array_equal(read.parts[name][0], x)
            np.testing.assert_array_equal(read.parts[name][1], y)
    assert feature_dim(folder) == feature_dim(npz) == 8
    assert read_synse_features(folder).format == "synse" and read_flora_features(npz).format == "flora"


def test_gzsl_is_optional_and_higher_rank_features_are_pooled(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, 16, 6)).astype(np.float32)  # Flora's (N, persons, frames, n)
    y = np.array([0, 1, 2, 3])
    npz = write_flora_features(tmp_path / "f.npz", (x, y), (x[:2], np.array([10, 11])))
    read = read_flora_features(npz)
    assert set(read.parts) == {"train", "zsl"} and read.dim == 6
    np.testing.assert_allclose(read.parts["train"][0], x.mean(axis=(1, 2)), rtol=1e-6)
    assert feature_dim(npz) == 6


def test_the_source_is_pooled_partitioned_and_checked_against_the_split(tmp_path):
    folder, parts = _synse(tmp_path)
    source = ReleasedFeatureSource(str(folder), dataset="ntu60")
    data = source.load()
    n_train, n_zsl, n_seen_test = len(parts["train"][1]), len(parts["zsl"][1]), len(SPLIT.seen)
    assert data.data.shape == (n_train + n_zsl + n_seen_test, 1, 1, 1, 8) and data.layout == POOLED.name
    assert (data.partition == "train").sum() == n_train and (data.partition == "test").sum() == n_zsl + n_seen_test
    # the gzsl part's unseen rows are the zsl samples: read once, from the zsl part
    assert np.isin(data.labels[data.meta["released_part"] == "gzsl"], SPLIT.unseen).sum() == 0
    np.testing.assert_array_equal(data.data[:n_train, 0, 0, 0], parts["train"][0])
    assert source.feature_dim == 8 and source.preprocessing.approximate
    source.check_split(SPLIT)  # the split the features were made for
    with pytest.raises(FeatureFileError) as err:
        source.check_split(get_split("ntu60_48_12"))
    message = str(err.value)
    assert "ztest.npy" in message and "ntu60_48_12" in message
    names = data.class_names
    assert all(names[c] in message for c in SPLIT.unseen)  # the file's classes, by name
    assert all(names[c] in message for c in get_split("ntu60_48_12").unseen)  # and the split's


def test_train_classes_outside_the_seen_set_are_refused(tmp_path):
    parts = _parts()
    x, y = parts["train"]
    y = y.copy()
    y[0] = SPLIT.unseen[0]  # an unseen class among the training features
    folder = write_synse_features(tmp_path / "f", (x, y), parts["zsl"])
    with pytest.raises(FeatureFileError, match=r"train\.npy: trains on \['.*'\], which are not seen classes"):
        ReleasedFeatureSource(str(folder), dataset="ntu60").check_split(SPLIT)


def test_labels_beyond_the_dataset_name_the_dataset_to_set(tmp_path):
    parts = _parts()
    x, y = parts["train"]
    folder = write_synse_features(tmp_path / "f", (x, y + 60), parts["zsl"])  # NTU-120 indices
    with pytest.raises(FeatureFileError, match=r"labels span .* but ntu60 has 60 classes; set data\.source"):
        ReleasedFeatureSource(str(folder), dataset="ntu60").load()


@pytest.mark.parametrize("fmt", ["synse", "flora"])
def test_rows_and_labels_of_different_lengths_are_refused(tmp_path, fmt):
    parts = _parts()
    x, y = parts["train"]
    bad = (x, y[:-1])
    if fmt == "synse":
        path = write_synse_features(tmp_path / "f", bad, parts["zsl"])
        pattern = r"train\.npy: 165 feature rows but 164 labels in .*train_label\.npy"
    else:
        path = write_flora_features(tmp_path / "f.npz", bad, parts["zsl"])
        pattern = r"f\.npz:train_data: 165 feature rows but 164 labels in .*f\.npz:train_label"
    with pytest.raises(FeatureFileError, match=pattern):
        read_released_features(path)


@pytest.mark.parametrize("fmt", ["synse", "flora"])
def test_nan_features_are_refused_with_their_rows(tmp_path, fmt):
    parts = _parts()
    x, y = parts["zsl"]
    x = x.copy()
    x[3, 2] = np.nan
    x[7, 0] = np.inf
    write = write_synse_features if fmt == "synse" else write_flora_features
    path = write(tmp_path / ("f" if fmt == "synse" else "f.npz"), parts["train"], (x, y))
    pattern = r"(ztest\.npy|zsl_data): 2 of 15 feature rows hold NaN or inf \(first rows \[3, 7\]\)"
    with pytest.raises(FeatureFileError, match=pattern):
        read_released_features(path)


def test_truncated_files_of_both_formats_are_refused(tmp_path):
    folder, parts = _synse(tmp_path)
    target = folder / "ztest.npy"
    target.write_bytes(target.read_bytes()[:200])
    with pytest.raises(FeatureFileError, match=r"ztest\.npy: cannot be read as a \.npy array \(truncated"):
        read_synse_features(folder)
    npz = write_flora_features(tmp_path / "f.npz", parts["train"], parts["zsl"])
    npz.write_bytes(npz.read_bytes()[:-300])
    with pytest.raises(FeatureFileError, match=r"f\.npz: cannot be read as a \.npz archive \(truncated"):
        read_flora_features(npz)


def test_missing_files_and_unknown_names_are_refused_with_what_was_found(tmp_path):
    folder, parts = _synse(tmp_path)
    (folder / "z_label.npy").unlink()
    with pytest.raises(FeatureFileError, match=r"has no \['z_label\.npy'\] \(found \["):
        read_synse_features(folder)
    write_synse_features(folder, parts["train"], parts["zsl"])
    np.save(folder / "val.npy", parts["zsl"][0])
    with pytest.raises(FeatureFileError, match=r"does not know: \['val\.npy'\]"):
        read_synse_features(folder)
    npz = tmp_path / "g.npz"
    np.savez(npz, train_data=parts["train"][0], train_label=parts["train"][1], test_data=parts["zsl"][0])
    with pytest.raises(FeatureFileError, match=r"keys this reader does not know: \['test_data'\]"):
        read_flora_features(npz)
    np.savez(npz, train_data=parts["train"][0], train_label=parts["train"][1])
    with pytest.raises(FeatureFileError, match=r"has no keys \['zsl_data', 'zsl_label'\]"):
        read_flora_features(npz)
    with pytest.raises(FeatureFileError, match=r"nowhere\.npz: does not exist"):
        read_released_features(tmp_path / "nowhere.npz")


def test_the_pass_through_backbone_gives_one_node_per_sample():
    backbone = ReleasedFeatures(dim=8)
    x = torch.randn(3, 1, 1, 1, 8)
    nodes = backbone(x)
    assert nodes.shape == (3, 1, 8) and torch.equal(nodes[:, 0], x[:, 0, 0, 0])
    assert backbone.pooled and backbone.out_channels == 8 and not list(backbone.parameters())
    with pytest.raises(ValueError, match=r"skeletons need a skeleton encoder"):
        backbone(torch.randn(3, 1, 20, 25, 3))
    with pytest.raises(ValueError, match=r"model\.backbone\.init_args\.dim is unset"):
        ReleasedFeatures()
    assert get_layout("pooled").num_joints == 1 and not get_layout("pooled").has_parts


def test_a_selection_run_validates_on_seen_classes_of_the_released_training_features(tmp_path):
    from purls_pl.train.datamodule import ZeroShotDataModule

    folder, _ = _synse(tmp_path)
    dm = ZeroShotDataModule(ReleasedFeatureSource(str(folder), dataset="ntu60"), SPLIT.name, protocol="select")
    dm.setup()
    data, sets = dm.skeletons, dm.sets
    validation = set(dm.run_split.unseen)
    assert validation <= set(SPLIT.seen) and len(validation) == 5
    assert set(data.labels[sets["unseen_eval"].index].tolist()) == validation  # validation classes only
    for name in ("train", "unseen_eval", "holdout"):
        assert (data.partition[sets[name].index] == "train").all()  # nothing released for testing is selected on
    assert not np.isin(data.labels[sets["train"].index], list(validation) + list(SPLIT.unseen)).any()
