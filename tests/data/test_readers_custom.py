"""The documented custom dataset format: round trip and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from purls_pl.data.layouts import NTU25, SkeletonLayout, get_layout
from purls_pl.data.readers import Conversion, CustomSource
from purls_pl.data.readers.custom import write_custom_dataset

TINY = SkeletonLayout(
    name="tiny5-test",
    joint_names=("head", "lhand", "rhand", "hip", "foot"),
    edges=((0, 3), (1, 3), (2, 3), (3, 4)),
    center=3,
    parts={"head": (0,), "hands": (1, 2), "torso": (3,), "legs": (4,)},
)


def _samples(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"a": rng.normal(size=(10, 5, 3)), "b": rng.normal(size=(2, 30, 5, 3)), "c": rng.normal(size=(4, 5, 3))}


def test_round_trip(tmp_path: Path) -> None:
    samples = _samples(np.random.default_rng(0))
    root = write_custom_dataset(
        tmp_path / "set",
        samples,
        {"a": "wave", "b": "jump", "c": "wave"},
        TINY,
        splits={"c": "test"},
        classes=["sit", "wave", "jump"],
    )
    src = CustomSource(
        str(root),
        dataset="gestures",
        num_frames=16,
        max_persons=2,
        center=False,
        conversion=Conversion(cache_dir=str(tmp_path / "cache")),
    )
    assert src.layout == "tiny5-test"
    s = src.load()
    assert get_layout("tiny5-test") == TINY
    assert s.data.shape == (3, 2, 16, 5, 3) and s.class_names == ["sit", "wave", "jump"]
    assert s.labels.tolist() == [1, 2, 1] and s.partition.tolist() == ["train", "train", "test"]
    assert s.lengths.tolist() == [10, 16, 4] and s.sample_ids == ["a", "b", "c"]
    np.testing.assert_allclose(s.data[0, 0, :10], samples["a"], rtol=1e-6)
    np.testing.assert_allclose(s.data[1, :, :16], samples["b"][:, :16], rtol=1e-6)
    assert not s.data[0, 1].any() and not s.data[0, 0, 10:].any()
    again = CustomSource(
        str(root),
        dataset="gestures",
        num_frames=16,
        max_persons=2,
        center=False,
        conversion=Conversion(cache_dir=str(tmp_path / "cache")),
    ).load()
    np.testing.assert_array_equal(again.data, s.data)


def test_registered_layout_name_and_sorted_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    root = write_custom_dataset(
        tmp_path,
        {"x": rng.normal(size=(8, 25, 3)), "y": rng.normal(size=(8, 25, 3))},
        {"x": "zeta", "y": "alpha"},
        "ntu25",
    )
    s = CustomSource(
        str(root), layout="ntu25", num_frames=8, temporal="loop", conversion=Conversion(cache=False)
    ).load()
    assert s.class_names == ["alpha", "zeta"] and s.labels.tolist() == [1, 0]
    np.testing.assert_allclose(s.data[:, 0, 0, NTU25.center], 0, atol=1e-6)  # centered on the layout center joint


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index.csv"):
        CustomSource(str(tmp_path / "none"), layout="ntu25").load()
    root = write_custom_dataset(tmp_path / "s", {"a": np.ones((4, 5, 3))}, {"a": "wave"}, TINY)
    (root / "index.csv").write_text("sample_id,label,split\na,wave,val\n")
    with pytest.raises(ValueError, match="line 2: split is 'val'"):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
    (root / "index.csv").write_text("sample_id,label\na,wave\nmissing,wave\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.npy"):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
    (root / "index.csv").write_text("sample_id,label\na,wave\n")
    np.save(root / "a.npy", np.ones((4, 7, 3)))
    with pytest.raises(ValueError, match=r"a\.npy.*J = 5"):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
    spec = json.loads((root / "layout.json").read_text())
    spec["parts"]["legs"] = []
    (root / "layout.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="layout.json.*legs"):
        CustomSource(str(root), conversion=Conversion(cache=False)).load()
