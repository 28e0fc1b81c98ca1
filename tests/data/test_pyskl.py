"""pyskl annotation pickles: the restricted unpickler refuses code, PysklSource reads any split of the format,
write_pyskl round-trips the demo and the real samples in ../shared, bad annotations name the sample and the field,
and the COCO-17 layout is consistent."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import shared_path

from purls_pl.data.demo import DemoSource
from purls_pl.data.layouts import BODY_PARTS, get_layout
from purls_pl.data.pyskl import UnsafePickleError, load_pyskl, peek_keypoint, write_pyskl
from purls_pl.data.readers import (
    Conversion,
    KineticsSource,
    NTUSkeletonSource,
    PennActionSource,
    PysklSource,
    SampleError,
    UCLASource,
)
from purls_pl.data.skeletons import SkeletonSet

REPO = Path(__file__).resolve().parents[2]
NO_CACHE = Conversion(cache=False)


class Sneaky:
    """A class of the test module: a pickle of it must be refused, whatever it would do."""

    def __reduce__(self):
        return (Sneaky, ())


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _ann(name: str, label: int, frames: int = 6, joints: int = 25, channels: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    kp = rng.normal(0, 1, (2, frames, joints, channels)).astype(np.float32)
    ann = {"frame_dir": name, "label": label, "total_frames": frames, "keypoint": kp}
    if channels == 2:
        ann["keypoint_score"] = rng.uniform(0.1, 1, (2, frames, joints)).astype(np.float16)
        ann["img_shape"] = (480, 640)
        ann["original_shape"] = (480, 640)
    return ann


def _plain(path: Path, **kwargs) -> SkeletonSet:
    """A pyskl file read with no preprocessing beyond the frame fit (as a round trip needs)."""
    args = {"center": False, "align": False, "normalization": "none", "conversion": NO_CACHE, **kwargs}
    return PysklSource(str(path), **args).load()


def _same(back: SkeletonSet, orig: SkeletonSet, atol: float = 0.0) -> None:
    assert back.data.shape == orig.data.shape
    if atol:
        np.testing.assert_allclose(back.data, orig.data, atol=atol)
    else:
        np.testing.assert_array_equal(back.data, orig.data)
    assert back.sample_ids == list(orig.sample_ids) and back.layout == orig.layout
    np.testing.assert_array_equal(back.labels, orig.labels)
    np.testing.assert_array_equal(back.partition.astype(str), np.asarray(orig.partition).astype(str))
    np.testing.assert_array_equal(back.lengths, orig.lengths)
    assert back.class_names == list(orig.class_names)


# ---------------------------------------------------------------- the restricted unpickler
def test_a_pickle_that_would_run_code_is_refused_by_name_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"split": {}, "annotations": [RunsCode(marker)]}, protocol=2))
    pattern = r"evil\.pkl: refusing to load the global (posix|os|nt)\.system.*never run code.*was not loaded"
    with pytest.raises(UnsafePickleError, match=pattern):
        load_pyskl(bad)
    with pytest.raises(UnsafePickleError, match=pattern):
        peek_keypoint(bad)
    with pytest.raises(UnsafePickleError, match=pattern):
        PysklSource(str(bad), conversion=NO_CACHE).load()
    assert not marker.exists()


def test_a_pickle_of_a_custom_class_is_refused_naming_the_class(tmp_path):
    bad = tmp_path / "custom.pkl"
    bad.write_bytes(pickle.dumps({"split": {}, "annotations": [_ann("a", 0), Sneaky()]}))
    with pytest.raises(UnsafePickleError, match=r"custom\.pkl: refusing to load the global [\w.]*test_pyskl\.Sneaky"):
        load_pyskl(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], r"holds a list, not a pyskl annotation dict"),
        ({"split": {}}, r"holds a dict with the keys \['split'\], not a pyskl annotation dict"),
        ({"annotations": {}}, r"'annotations' is a dict, not a list"),
        ({"annotations": [], "split": ["x"]}, r"'split' is not a dict of frame_dir lists"),
    ],
)
def test_a_file_that_is_not_a_pyskl_dict_is_refused(tmp_path, content, message):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(ValueError, match=message):
        load_pyskl(path)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"junk\.pkl: not a readable pickle"):
        load_pyskl(tmp_path / "junk.pkl")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol_of_numpy_arrays_loads(tmp_path, protocol):
    anns = [_ann("a", 1, channels=2), {**_ann("b", 2), "keypoint": _ann("b", 2)["keypoint"].astype(np.float16)}]
    path = write_pyskl(tmp_path / "p.pkl", anns, {"train": ["a"], "val": ["b"]}, protocol=protocol)
    back = load_pyskl(path)
    assert [a["frame_dir"] for a in back["annotations"]] == ["a", "b"] and back["split"]["val"] == ["b"]
    np.testing.assert_array_equal(back["annotations"][1]["keypoint"], anns[1]["keypoint"])
    assert back["annotations"][0]["keypoint_score"].dtype == np.float16
    assert peek_keypoint(path) == (2, 6, 25, 2)


# ---------------------------------------------------------------- splits
@pytest.fixture
def xsub_file(tmp_path) -> Path:
    anns = [_ann(n, i, seed=i) for i, n in enumerate("abcd")]
    split = {"xsub_train": ["a", "b"], "xsub_val": ["c", "d"], "xview_train": ["a", "c"], "xview_val": ["b"]}
    return write_pyskl(tmp_path / "ntu.pkl", anns, split)


@pytest.mark.parametrize(
    ("key", "ids", "partition"),
    [
        ("xsub", ["a", "b", "c", "d"], ["train", "train", "test", "test"]),
        ("xview", ["a", "b", "c"], ["train", "test", "train"]),
        ("xsub_val", ["c", "d"], ["test", "test"]),
        ("xview_train", ["a", "c"], ["train", "train"]),
        (None, ["a", "b", "c", "d"], ["train"] * 4),  # two protocols: every sample trains, as NTU's "all"
    ],
)
def test_split_keys_select_the_samples_and_their_partition(xsub_file, key, ids, partition):
    s = _plain(xsub_file, split_key=key, dataset="ntu60", num_frames=6)
    assert s.sample_ids == ids and s.partition.tolist() == partition
    assert s.labels.tolist() == ["abcd".index(i) for i in ids] and s.layout == "ntu25"


def test_one_protocol_partitions_a_read_of_everything_and_unknown_keys_are_refused(tmp_path, xsub_file):
    path = write_pyskl(
        tmp_path / "k.pkl", [_ann(n, i) for i, n in enumerate("abc")], {"train": ["a", "c"], "val": ["b"]}
    )
    assert _plain(path, dataset="ntu60").partition.tolist() == ["train", "test", "train"]
    with pytest.raises(KeyError, match=r"split_key 'xset'.*the file has \['xsub_train', 'xsub_val', 'xview_train'"):
        _plain(xsub_file, split_key="xset", dataset="ntu60")


def test_a_listed_sample_without_annotation_is_refused_or_skipped(tmp_path):
    path = write_pyskl(tmp_path / "m.pkl", [_ann("a", 0), _ann("b", 1)], {"train": ["a", "zz"], "val": ["b"]})
    with pytest.raises(SampleError, match=r"m\.pkl \[zz\]: is listed in 'split' but has no annotation"):
        _plain(path, split_key="train", dataset="ntu60")
    with pytest.warns(UserWarning, match=r"1 file\(s\) skipped"):
        source = PysklSource(
            str(path), "train", "ntu60", center=False, align=False, conversion=Conversion(cache=False, on_error="skip")
        )
        assert source.load().sample_ids == ["a"]
    assert [s.path for s in source.skipped] == [f"{path} [zz]"]


# ---------------------------------------------------------------- bad annotations
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keypoint": None}, r"bad\.pkl \[b\]: has no 'keypoint'; expected an array \(M, T, 25, 3\)"),
        ({"keypoint": np.zeros((2, 6, 24, 3), np.float32)}, r"\[b\]: 'keypoint' has shape \(2, 6, 24, 3\); expected"),
        ({"keypoint": np.zeros((6, 25, 3), np.float32)}, r"\[b\]: 'keypoint' has shape \(6, 25, 3\)"),
        ({"keypoint": np.full((1, 3, 25, 3), np.nan, np.float32)}, r"\[b\]: 'keypoint' holds nan at index"),
        ({"label": 60}, r"\[b\]: 'label' is 60, not a class index 0\.\.59; set dataset="),
        ({"label": "drink"}, r"\[b\]: 'label' is 'drink', not a class index"),
        ({"frame_inds": np.arange(6)}, r"\[b\]: is in pyskl's compressed form"),
    ],
)
def test_a_bad_annotation_names_the_file_the_sample_and_the_field(tmp_path, change, message):
    bad = {**_ann("b", 1), **change}
    if change.get("keypoint", 0) is None:
        del bad["keypoint"]
    path = write_pyskl(tmp_path / "bad.pkl", [_ann("a", 0), bad, _ann("c", 2)], {"train": ["a", "b", "c"]})
    with pytest.raises(SampleError, match=message):
        _plain(path, dataset="ntu60")
    with pytest.warns(UserWarning, match=r"bad\.pkl \[b\]"):
        kept = PysklSource(str(path), dataset="ntu60", conversion=Conversion(cache=False, on_error="skip")).load()
    assert kept.sample_ids == ["a", "c"]


def test_2d_keypoints_need_scores_and_a_joint_count_without_layout_is_refused(tmp_path):
    no_score = {k: v for k, v in _ann("b", 1, joints=17, channels=2).items() if k != "keypoint_score"}
    path = write_pyskl(tmp_path / "hr.pkl", [_ann("a", 0, joints=17, channels=2), no_score])
    with pytest.raises(SampleError, match=r"hr\.pkl \[b\]: 'keypoint_score' is none; 2-D keypoints need scores"):
        _plain(path, dataset="ntu60")
    odd = write_pyskl(tmp_path / "odd.pkl", [_ann("a", 0, joints=19)])
    with pytest.raises(ValueError, match=r"odd\.pkl: keypoints of 19 joints; no layout is known.*give layout="):
        PysklSource(str(odd), dataset="ntu60").layout  # noqa: B018


# ---------------------------------------------------------------- 2-D HRNet files and COCO-17
def test_a_2d_hrnet_file_reads_as_coco17_with_scores_in_the_image_frame(tmp_path):
    anns = [_ann(n, i, frames=5, joints=17, channels=2, seed=i) for i, n in enumerate(["S001C001P001R001A001", "x2"])]
    anns[0]["keypoint"][:] = [640.0, 240.0]  # the right edge, half-way down, of a 640 x 480 image
    path = write_pyskl(tmp_path / "ntu60_hrnet.pkl", anns, {"xsub_train": ["S001C001P001R001A001"], "xsub_val": ["x2"]})
    source = PysklSource(str(path), "xsub", "ntu60", num_frames=8, conversion=NO_CACHE)
    assert source.layout == "coco17" and source.preprocessing.normalization == "image"
    assert not source.preprocessing.center and not source.preprocessing.align
    s = source.load()
    assert (
        s.data.shape == (2, 2, 8, 17, 3) and s.lengths.tolist() == [5, 5] and s.partition.tolist() == ["train", "test"]
    )
    np.testing.assert_allclose(s.data[0, :, :5, :, :2], np.broadcast_to([0.5, 0.0], (2, 5, 17, 2)))
    np.testing.assert_allclose(s.data[0, :, :5, :, 2], anns[0]["keypoint_score"].astype(np.float32))
    assert "setup" not in s.meta  # not every sample has an NTU name


def test_coco17_is_a_consistent_layout():
    lay = get_layout("coco17")
    assert lay.num_joints == 17 and lay.joint_names[0] == "nose" and lay.joint_names[-1] == "right_ankle"
    assert sorted(j for p in BODY_PARTS for j in lay.parts[p]) == list(range(17))
    assert len(lay.edges) == 16 and all(0 <= a < 17 and 0 <= b < 17 and a != b for a, b in lay.edges)
    reached, frontier = {lay.center}, [lay.center]
    while frontier:  # one tree: every joint reaches the center
        j = frontier.pop()
        for a, b in lay.edges:
            for nxt in (b,) if a == j else (a,) if b == j else ():
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
    assert reached == set(range(17))
    for i, name in enumerate(lay.joint_names):  # left and right joints sit in the same part
        if name.startswith("left_"):
            assert lay.part_of(i) == lay.part_of(lay.joint_names.index(name.replace("left_", "right_")))
    assert lay.part_of(0) == "head" and lay.part_of(9) == "hands" and lay.part_of(11) == "torso"
    assert lay.part_of(15) == "legs" and lay.align_axes is None


# ---------------------------------------------------------------- round trips
def test_the_demo_round_trips_through_the_format_and_the_cache(tmp_path):
    orig = DemoSource(samples_per_class=3, num_frames=12).load()
    path = write_pyskl(tmp_path / "demo.pkl", orig)
    cached = Conversion(cache_dir=str(tmp_path / "cache"))
    args = {"dataset": "demo", "num_frames": 12, "num_persons": 1, "center": False, "align": False}
    back = PysklSource(str(path), conversion=cached, **args).load()
    _same(back, orig)
    assert isinstance(back.data, np.memmap) or isinstance(back.data.base, np.memmap)
    again = PysklSource(str(path), conversion=cached, **args).load()  # a cache hit
    _same(again, orig)
    half = write_pyskl(tmp_path / "demo16.pkl", orig, dtype=np.float16)
    _same(_plain(half, dataset="demo", num_frames=12, num_persons=1), orig, atol=2e-3)


def test_real_ntu_samples_round_trip(tmp_path):
    root = shared_path("data", "ntu-samples")
    orig = NTUSkeletonSource(str(root), num_frames=64, conversion=NO_CACHE).load()
    part = orig.partition.astype(str)
    split = {
        "xsub_train": [s for s, p in zip(orig.sample_ids, part) if p == "train"],
        "xsub_val": [s for s, p in zip(orig.sample_ids, part) if p == "test"],
    }
    path = write_pyskl(tmp_path / "ntu60_3danno.pkl", orig, split)
    back = _plain(path, split_key="xsub", dataset="ntu60", num_frames=64)
    _same(back, orig)
    for key in ("setup", "camera", "subject", "replication", "action"):
        np.testing.assert_array_equal(back.meta[key], orig.meta[key])
    assert PysklSource(str(path), "xsub", "ntu60").preprocessing.align  # 3-D: aligned by default, as NTU's reader


def test_real_nw_ucla_and_penn_action_samples_round_trip(tmp_path):
    ucla = UCLASource(
        str(shared_path("data", "nw-ucla", "all_sqe")), conversion=Conversion(max_samples=40, cache=False)
    )
    orig = ucla.load()
    path = write_pyskl(tmp_path / "ucla.pkl", orig)
    _same(_plain(path, layout="kinect20", dataset="nw-ucla", num_frames=orig.data.shape[2], num_persons=1), orig)
    penn = PennActionSource(str(shared_path("data", "penn-action", "labels")), conversion=Conversion(max_samples=40))
    orig = penn.load()
    path = write_pyskl(tmp_path / "penn.pkl", orig, score_channel=True)
    back = _plain(path, layout="penn13", dataset="penn-action", num_frames=orig.data.shape[2], num_persons=1)
    _same(back, orig)


def test_real_kinetics_clips_round_trip_as_float16_with_scores(tmp_path):
    root = shared_path("data", "kinetics-samples")
    orig = KineticsSource(str(root), conversion=NO_CACHE).load()
    path = write_pyskl(tmp_path / "k400.pkl", orig, score_channel=True, dtype=np.float16)
    back = _plain(path, layout="openpose18", dataset="kinetics400", num_frames=300)
    _same(back, orig, atol=1e-3)


# ---------------------------------------------------------------- stage 1 from a pyskl file, through the CLI
def test_stage1_fast_dev_run_from_a_pyskl_file(tmp_path):
    path = write_pyskl(tmp_path / "demo.pkl", DemoSource(samples_per_class=4, num_frames=12).load())
    source = {
        "class_path": "purls_pl.data.readers.PysklSource",
        "init_args": {"path": str(path), "num_frames": 12, "num_persons": 1, "center": False, "align": False},
    }
    recipe = tmp_path / "pyskl.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"source": source, "batch_size": 4, "num_workers": 0}}))
    command = [sys.executable, "-m", "purls_pl", "pretrain", "fit", "--config", "experiments/backbone.yaml"]
    command += ["--config", str(recipe), "--data.split=demo_15_5", "--trainer.fast_dev_run=true"]
    command += [
        "--trainer.precision=32-true",
        f"--trainer.default_root_dir={tmp_path}",
        f"--export.path={tmp_path}/b.pt",
    ]
    command += ["--model.backbone.init_args.channels=[8,16]", "--model.backbone.init_args.strides=[1,2]"]
    env = {**os.environ, "PURLS_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "b.pt").is_file()


def test_conversion_fills_the_memory_mapped_cache_so_peak_memory_stays_near_the_file_size(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    anns = [
        {"frame_dir": f"s{i:03d}", "label": i % 60, "keypoint": rng.normal(0, 1, (2, 300, 25, 3)).astype(np.float32)}
        for i in range(120)
    ]
    path = write_pyskl(tmp_path / "big.pkl", anns, {"train": [a["frame_dir"] for a in anns]})
    del anns
    size = path.stat().st_size  # ~21.6 MB; the converted set is as large again
    source = PysklSource(str(path), dataset="ntu60", conversion=Conversion(cache_dir=str(tmp_path / "cache")))
    tracemalloc.start()
    try:
        s = source.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert s.data.shape == (120, 2, 300, 25, 3) and isinstance(s.data, np.memmap)
    assert peak < 1.4 * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def test_class_names_from_a_file_the_longest_sample_as_frame_count_and_a_missing_file(tmp_path):
    (tmp_path / "classes.txt").write_text("wave\nclap\n\njump\n")
    anns = [_ann("a", 2, frames=4), _ann("b", 0, frames=9)]
    path = write_pyskl(tmp_path / "own.pkl", anns, {"train": ["a"], "test": ["b"]})
    s = _plain(path, class_names_file=str(tmp_path / "classes.txt"), num_frames=None)
    assert s.class_names == ["wave", "clap", "jump"] and s.labels.tolist() == [2, 0]
    assert s.data.shape[2] == 9 and s.lengths.tolist() == [4, 9] and s.partition.tolist() == ["train", "test"]
    np.testing.assert_array_equal(s.data[0, :, :4], anns[0]["keypoint"])
    with pytest.raises(FileNotFoundError, match=r"pyskl annotation file .*none\.pkl does not exist"):
        PysklSource(str(tmp_path / "none.pkl"), dataset="ntu60").load()
