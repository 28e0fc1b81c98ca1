"""NW-UCLA reader on the 1484 real all_sqe files in ../shared (parsed once per module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from purls_pl.data.readers import Conversion, UCLASource
from purls_pl.data.readers.ucla import parse_ucla_name, read_ucla_file
from purls_pl.data.skeletons import SkeletonSet

UCLA_DIR = SHARED / "data" / "nw-ucla" / "all_sqe"


@pytest.fixture(scope="module")
def ucla() -> SkeletonSet:
    if not any(UCLA_DIR.glob("*.json")):
        pytest.skip(f"NW-UCLA all_sqe not found in {UCLA_DIR}")
    return UCLASource(str(UCLA_DIR), conversion=Conversion(cache=False)).load()


def test_all_files_labels_views_partition(ucla: SkeletonSet) -> None:
    assert ucla.data.shape == (1484, 1, 52, 20, 3) and ucla.layout == "kinect20"
    assert np.bincount(ucla.labels, minlength=10).tolist() == [150, 152, 141, 173, 148, 149, 142, 142, 145, 142]
    assert ucla.class_names[0] == "pick up with one hand" and len(ucla.class_names) == 10
    views = ucla.meta["view"]
    assert set(views.tolist()) == {1, 2, 3}
    assert ((ucla.partition == "train") == (views <= 2)).all()
    assert (ucla.partition == "test").sum() == (views == 3).sum() == 464
    assert (ucla.partition == "train").sum() == 1020
    assert set(ucla.meta["action"].tolist()) == {1, 2, 3, 4, 5, 6, 8, 9, 11, 12}
    assert np.isfinite(ucla.data).all()
    np.testing.assert_allclose(ucla.data[:, 0, 0, 1], 0, atol=1e-6)  # centered on the first frame's spine


def test_single_frame_sequence_is_kept(ucla: SkeletonSet, tmp_path: Path) -> None:
    single = np.flatnonzero(ucla.meta["raw_frames"] == 1)
    assert single.size >= 1
    i = single[0]
    assert ucla.lengths[i] == 52 and np.abs(ucla.data[i]).sum() > 0
    np.testing.assert_allclose(ucla.data[i, 0, 0], ucla.data[i, 0, -1])  # one frame resampled = repeated
    path = UCLA_DIR / f"{ucla.sample_ids[i]}.json"
    assert read_ucla_file(path).shape == (1, 1, 20, 3)
    sub = tmp_path / "one"
    sub.mkdir()
    (sub / path.name).symlink_to(path)
    padded = UCLASource(str(sub), temporal="pad", num_frames=20, conversion=Conversion(cache=False)).load()
    assert padded.lengths.tolist() == [1] and not padded.data[0, 0, 1:].any()


def test_names_and_errors(tmp_path: Path) -> None:
    assert parse_ucla_name("a12_s03_e01_v02.json") == {"action": 12, "subject": 3, "episode": 1, "view": 2, "label": 9}
    with pytest.raises(ValueError, match="a07"):
        parse_ucla_name("a07_s01_e00_v01")
    with pytest.raises(FileNotFoundError, match=r"aAA_sSS_eEE_vVV\.json.*CTR-GCN"):
        UCLASource(str(tmp_path / "none")).load()
    bad = tmp_path / "a01_s01_e00_v01.json"
    bad.write_text('{"file_name": "a01_s01_e00_v01", "skeletons": [[[0, 0, 1]]]}')
    with pytest.raises(ValueError, match=r"a01_s01_e00_v01\.json.*'skeletons' has shape"):
        read_ucla_file(bad)


def test_max_samples_spans_classes() -> None:
    if not any(UCLA_DIR.glob("*.json")):
        pytest.skip("NW-UCLA not available")
    s = UCLASource(
        str(UCLA_DIR),
        conversion=Conversion(max_samples=30, cache=False),
    ).load()
    assert len(s) == 30 and len(set(s.labels.tolist())) == 10
