"""Penn Action reader on the 2326 real label files in ../shared (read once per module), its layout, its
bad-file handling (broken copies of real files in tmp_path) and its splits."""

from __future__ import annotations

import re
import shutil
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED
from scipy.io import loadmat, savemat

from purls_pl.data.cache import read_manifest
from purls_pl.data.catalog import card, class_names
from purls_pl.data.layouts import BODY_PARTS, get_layout
from purls_pl.data.readers import Conversion, PennActionSource, SampleError
from purls_pl.data.readers.penn import PENN_ACTIONS, read_penn_file
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import get_split
from purls_pl.train.datamodule import PretrainDataModule

PENN_DIR = SHARED / "data" / "penn-action" / "labels"
#: Clips per class in the published files (1516, a push-up, is left out: it has no visible joint).
CLASS_COUNTS = [167, 173, 140, 220, 88, 166, 82, 112, 199, 211, 100, 231, 94, 157, 186]


def _need_data() -> None:
    if not any(PENN_DIR.glob("*.mat")):
        pytest.skip(f"Penn Action labels not found in {PENN_DIR}")


@pytest.fixture(scope="module")
def penn() -> SkeletonSet:
    """All files, through the session's temporary cache (later loads of the same settings are hits)."""
    _need_data()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*file\\(s\\) skipped")
        return PennActionSource(str(PENN_DIR)).load()


# --- layout ---------------------------------------------------------------------------------------------


def test_layout_penn13_is_a_connected_2d_skeleton_with_four_disjoint_parts() -> None:
    lay = get_layout("penn13")
    assert lay.num_joints == 13 and lay.align_axes is None and lay.joint_names[lay.center] == "head"
    assert lay.joint_names[:3] == ("head", "left_shoulder", "right_shoulder") and lay.joint_names[-1] == "right_ankle"
    joints = [j for part in BODY_PARTS for j in lay.parts[part]]
    assert sorted(joints) == list(range(13))  # disjoint and covering
    assert {lay.joint_names[j] for j in lay.parts["torso"]} == {
        "left_shoulder",
        "right_shoulder",
        "left_hip",
        "right_hip",
    }
    neighbours: dict[int, set[int]] = {j: set() for j in range(13)}
    for a, b in lay.edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    reached, todo = {lay.center}, deque([lay.center])
    while todo:
        for n in neighbours[todo.popleft()] - reached:
            reached.add(n)
            todo.append(n)
    assert reached == set(range(13)) and len(set(map(frozenset, lay.edges))) == len(lay.edges) == 14
    assert card("penn-action").layout == "penn13" and card("penn-action").descriptions == "penn-action.json"


# --- the real files -------------------------------------------------------------------------------------


def test_partitions_classes_and_meta(penn: SkeletonSet) -> None:
    assert penn.data.shape == (2325, 1, 32, 13, 3) and penn.layout == "penn13"
    assert (penn.partition == "train").sum() == 1257 and (penn.partition == "test").sum() == 1068
    assert "1516" not in penn.sample_ids  # 1258 train files less the one with no visible joint
    assert np.bincount(penn.labels, minlength=15).tolist() == [c - (i == 9) for i, c in enumerate(CLASS_COUNTS)]
    assert len(penn.class_names) == len(PENN_ACTIONS) == 15
    assert set(penn.meta["pose"].tolist()) == {"front", "back", "left", "right"}
    assert penn.meta["raw_frames"].min() == 18 and penn.meta["raw_frames"].max() == 663
    assert (penn.lengths == 32).all()  # resampled
    i = penn.sample_ids.index("0001")
    assert penn.class_names[penn.labels[i]] == "baseball pitch" and penn.partition[i] == "test"
    assert penn.meta["raw_frames"][i] == 151 and penn.meta["pose"][i] == "back"


def test_every_file_counts_1258_train_and_1068_test_and_1516_is_excluded(penn: SkeletonSet) -> None:
    flags = [int(loadmat(p, variable_names=["train"])["train"][0, 0]) for p in sorted(PENN_DIR.glob("*.mat"))]
    assert (flags.count(1), flags.count(-1)) == (1258, 1068)
    source = PennActionSource(str(PENN_DIR))  # a cache hit of the module's set restores its skip list
    assert len(source.load()) == len(penn)
    assert [(Path(s.path).name, s.kind) for s in source.skipped] == [("1516.mat", "excluded")]
    assert "no joint visible" in source.skipped[0].reason


def test_class_mapping() -> None:
    names = class_names("penn-action")
    mapping = dict(zip(PENN_ACTIONS, names, strict=True))
    assert mapping["bowl"] == "bowling" and mapping["pullup"] == "pull-up" and mapping["situp"] == "sit-up"
    assert mapping["clean_and_jerk"] == "clean and jerk" and mapping["jumping_jacks"] == "jumping jacks"
    assert all(a.replace("_", " ") == n for a, n in mapping.items() if a not in ("bowl", "pullup", "pushup", "situp"))
    _need_data()
    clip = read_penn_file(PENN_DIR / "0001.mat")
    assert (clip.action, clip.label, clip.train, clip.x.shape, clip.image_size) == (
        "baseball_pitch",
        0,
        False,
        (151, 13),
        (360.0, 480.0),
    )


def test_box_normalisation_invariants(penn: SkeletonSet) -> None:
    xy, vis = penn.data[:, 0, ..., :2], penn.data[:, 0, ..., 2]
    assert set(np.unique(vis).tolist()) == {0.0, 1.0}
    assert not penn.data[:, 0][vis == 0].any()  # invisible joints are missing: exactly zero
    shown = xy[vis == 1]
    assert np.abs(shown).max() < 1.5 and np.percentile(np.abs(shown), 99) < 0.6  # centred, unit scale
    assert 0.15 < shown.std(axis=0).min() and shown.std(axis=0).max() < 0.35
    assert abs(shown.mean(axis=0)).max() < 0.01
    extent = []  # the visible joints of a frame span about 0.83 person boxes
    for i in range(0, len(penn), 5):
        spans = [np.ptp(xy[i, t][vis[i, t] == 1], axis=0).max() for t in range(32) if vis[i, t].sum() >= 2]
        extent.append(np.median(spans))
    assert 0.7 < np.median(extent) < 1.0 and np.mean((np.array(extent) > 0.7) & (np.array(extent) < 1.0)) > 0.98


def test_occluded_positions_never_reach_the_output(tmp_path: Path) -> None:
    """Moving every invisible joint's guessed position far away changes nothing, in every temporal mode."""
    _need_data()
    mat = loadmat(PENN_DIR / "0001.mat")
    hidden = mat["visibility"] == 0
    assert hidden.any() and hidden.any(axis=1).sum() > 10
    mat["x"] = np.where(hidden, 9999.0, mat["x"])
    mat["y"] = np.where(hidden, -5000.0, mat["y"])
    (tmp_path / "moved").mkdir()
    savemat(tmp_path / "moved" / "0001.mat", {k: v for k, v in mat.items() if not k.startswith("__")})
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "0001.mat").symlink_to(PENN_DIR / "0001.mat")
    for temporal in ("resample", "pad", "loop"):
        a, b = (
            PennActionSource(str(tmp_path / d), 40, temporal, conversion=Conversion(cache=False)).load()
            for d in ("real", "moved")
        )
        np.testing.assert_array_equal(a.data, b.data)
    padded = PennActionSource(str(tmp_path / "real"), 200, "pad", conversion=Conversion(cache=False)).load()
    assert padded.lengths.tolist() == [151] and not padded.data[0, 0, 151:].any() and padded.data[0, 0, 150].any()


def test_image_normalisation() -> None:
    _need_data()
    s = PennActionSource(str(PENN_DIR), normalization="image", conversion=Conversion(max_samples=60, cache=False))
    x = s.load()
    assert len(x) == 60 and len(set(x.labels.tolist())) == 15
    shown = x.data[..., :2][x.data[..., 2] == 1]
    assert np.abs(shown).max() < 0.6  # image centre, divided by the longer side (a few joints lie just outside)
    with pytest.raises(ValueError, match="normalization must be one of"):
        PennActionSource(str(PENN_DIR), normalization="bbox")


def test_parallel_equals_serial_and_the_cache_is_hit(tmp_path: Path) -> None:
    _need_data()
    one = PennActionSource(str(PENN_DIR), conversion=Conversion(max_samples=40, cache_dir=str(tmp_path))).load()
    two = PennActionSource(str(PENN_DIR), conversion=Conversion(max_samples=40, num_workers=2, cache=False)).load()
    np.testing.assert_array_equal(one.data, two.data)
    assert one.sample_ids == two.sample_ids and (one.meta["pose"] == two.meta["pose"]).all()
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    created = read_manifest(entries[0])["created"]
    again = PennActionSource(str(PENN_DIR), conversion=Conversion(max_samples=40, cache_dir=str(tmp_path))).load()
    assert isinstance(again.data, np.memmap) and read_manifest(entries[0])["created"] == created
    np.testing.assert_array_equal(again.data, one.data)
    assert (again.meta["raw_frames"] == one.meta["raw_frames"]).all() and again.meta["pose"].tolist() == one.meta[
        "pose"
    ].tolist()
    PennActionSource(
        str(PENN_DIR), num_frames=16, conversion=Conversion(max_samples=40, cache_dir=str(tmp_path))
    ).load()
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2  # new settings, new entry


# --- bad files -----------------------------------------------------------------------------------------


def _write_bad_files(root: Path) -> dict[str, str]:
    """Broken versions of a real file -> the reason pattern each must get."""
    good = PENN_DIR / "0001.mat"
    fields = {k: v for k, v in loadmat(good).items() if not k.startswith("__")}
    raw = good.read_bytes()
    (root / "0901.mat").write_bytes(raw[: len(raw) // 2])
    variants = {
        "0902.mat": ({k: v for k, v in fields.items() if k != "visibility"}, r"fields \['visibility'\] are missing"),
        "0903.mat": ({**fields, "y": fields["y"][:, :12]}, r"field 'y' has shape \(151, 12\); expected \(T, 13\)"),
        "0904.mat": ({**fields, "x": np.where(np.arange(13) == 4, np.nan, fields["x"])}, r"NaN/inf"),
        "0905.mat": ({**fields, "action": np.array(["cricket_bowl"])}, r"'action' is 'cricket_bowl', not a Penn"),
        "0906.mat": (
            {**fields, **{k: np.zeros((0, 13)) for k in ("x", "y", "visibility")}, "nframes": np.array([[0]])},
            r"0 frames",
        ),
        "0907.mat": ({**fields, "train": np.array([[0]])}, r"'train' is \[0\.0\]; expected 1"),
        "0908.mat": ({**fields, "nframes": np.array([[150]])}, r"'nframes' is \[150\.0\] but 'x' has 151 frames"),
    }
    for name, (content, _) in variants.items():
        savemat(root / name, content)
    return {"0901.mat": r"cannot be read as a MATLAB \.mat file", **{k: v[1] for k, v in variants.items()}}


@pytest.mark.parametrize("name", [f"09{i:02d}.mat" for i in range(1, 9)])
def test_bad_file_raises_naming_file_problem_and_fix(tmp_path: Path, name: str) -> None:
    _need_data()
    scratch, root = tmp_path / "all", tmp_path / "raw"
    scratch.mkdir()
    root.mkdir()
    pattern = _write_bad_files(scratch)[name]
    shutil.copy(PENN_DIR / "0002.mat", root)
    shutil.move(scratch / name, root / name)
    fix = r"(restore the file from the Penn Action archive|correct the action name)"
    with pytest.raises(SampleError, match=rf"{name}: .*{pattern}.*; {fix}.*on_error='skip'"):
        PennActionSource(str(root), conversion=Conversion(cache=False)).load()


def test_skip_reports_every_bad_file_and_keeps_the_rest(penn: SkeletonSet, tmp_path: Path) -> None:
    root, cache = tmp_path / "raw", tmp_path / "cache"
    root.mkdir()
    good = ["0002", "1200"]
    for stem in good:
        shutil.copy(PENN_DIR / f"{stem}.mat", root)
    shutil.copy(PENN_DIR / "1516.mat", root)  # no visible joint: always excluded
    expected = _write_bad_files(root)
    source = PennActionSource(str(root), conversion=Conversion(cache_dir=str(cache), on_error="skip"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = source.load()
    reports = [str(w.message) for w in caught if "file(s) skipped:" in str(w.message)]
    assert len(reports) == 1 and all(name in reports[0] for name in [*expected, "1516.mat"])
    got = {Path(x.path).name: x for x in source.skipped}
    assert set(got) == {*expected, "1516.mat"} and got["1516.mat"].kind == "excluded"
    for name, pattern in expected.items():
        assert got[name].kind == "bad" and re.search(pattern, got[name].reason), (name, got[name].reason)
    assert s.sample_ids == good
    np.testing.assert_array_equal(s.data, penn.data[[penn.sample_ids.index(g) for g in good]])
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    assert {Path(d["path"]).name for d in read_manifest(entry)["skipped"]} == set(got)
    again = PennActionSource(str(root), conversion=Conversion(cache_dir=str(cache), on_error="skip"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again.load()
    assert not [w for w in caught if "file(s) skipped:" in str(w.message)] and len(again.skipped) == len(got)
    with pytest.raises(SampleError, match=r"built with on_error='skip'"):
        PennActionSource(str(root), conversion=Conversion(cache_dir=str(cache))).load()


def test_a_folder_with_no_usable_clip_says_why(tmp_path: Path) -> None:
    _need_data()
    (tmp_path / "1516.mat").symlink_to(PENN_DIR / "1516.mat")
    with pytest.raises(
        ValueError, match=r"none of the 1 files could be used:\n.*1516\.mat: 'visibility' marks no joint"
    ):
        PennActionSource(str(tmp_path), conversion=Conversion(cache=False)).load()


def test_missing_root_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist.*NNNN\.mat.*PennAction"):
        PennActionSource(str(tmp_path / "none")).load()
    with pytest.raises(FileNotFoundError, match=r"holds none of the expected files"):
        PennActionSource(str(tmp_path)).load()


# --- splits --------------------------------------------------------------------------------------------


def test_hard_split_holds_out_every_racket_bat_and_club_sport() -> None:
    split = get_split("penn-action_10_5")
    names = class_names("penn-action")
    assert [names[c] for c in split.unseen] == [
        "baseball pitch",
        "baseball swing",
        "golf swing",
        "tennis forehand",
        "tennis serve",
    ]
    assert not any(names[c].split()[0] in ("baseball", "golf", "tennis") for c in split.seen)


@pytest.mark.parametrize("name", ["penn-action_10_5", *(f"penn-action_random5_seed{s}" for s in range(3))])
def test_splits_cut_the_real_data(penn: SkeletonSet, name: str) -> None:
    split = get_split(name)
    assert split.dataset == "penn-action" and len(split.unseen) == 5 and len(split.seen) == 10
    dm = PretrainDataModule(PennActionSource(str(PENN_DIR)), name)  # a cache hit of the module's set
    dm.setup()
    sets = {k: dm.sets[k].index for k in ("train", "holdout", "seen_test", "unseen_eval")}
    assert set(dm.skeletons.labels[sets["train"]]) == set(split.seen)
    assert set(dm.skeletons.labels[sets["unseen_eval"]]) == set(split.unseen)
    assert (
        sum(len(v) for v in sets.values())
        == len(penn) - np.isin(penn.labels[penn.partition == "train"], split.unseen).sum()
    )


def test_random_folds_differ_and_are_stable() -> None:
    folds = [get_split(f"penn-action_random5_seed{s}").unseen for s in range(3)]
    assert len(set(folds)) == 3
    assert folds == [get_split(f"penn-action_random5_seed{s}").unseen for s in range(3)]
