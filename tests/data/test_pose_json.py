"""Pose-estimator JSON (MMPose predictions / demo file, OpenPose BODY_25 / COCO-18 folders): files of the real
structure read back to the COCO-17 arrays they were made from, persons tracked by IoU, low-score joints missing,
bad files named with the field and the fix, and the converted folder read by CustomSource (layout coco17)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from purls_pl.data.errors import SampleError
from purls_pl.data.layouts import get_layout
from purls_pl.data.pose_import import MARKER, import_poses
from purls_pl.data.pose_json import BODY25_TO_COCO17, COCO18_TO_COCO17, box_iou, read_pose_video
from purls_pl.data.readers import Conversion, CustomSource

NO_CACHE = Conversion(cache=False)
# OpenPose's keypoint order (doc/02_output.md; POSE_BODY_25_BODY_PARTS / POSE_COCO_BODY_PARTS).
BODY25 = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle LHip LKnee LAnkle "
    "REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
).split()
COCO18 = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist RHip RKnee RAnkle LHip LKnee LAnkle REye LEye REar LEar"
).split()
# A standing person facing the camera (image y down; the person's left on the image's right), COCO-17 order.
TEMPLATE = np.array(
    [
        (0, -160),
        (6, -166),
        (-6, -166),
        (14, -162),
        (-14, -162),
        (30, -130),
        (-30, -130),
        (40, -90),
        (-40, -90),
        (45, -50),
        (-45, -50),
        (18, -40),
        (-18, -40),
        (20, 20),
        (-20, 20),
        (20, 80),
        (-20, 80),
    ],
    np.float64,
)


def _person(rng: np.random.Generator, frames: int, x0: float, dx: float, y0: float = 300.0) -> np.ndarray:
    """``(frames, 17, 3)`` float32: the template walking ``dx`` px per frame from ``x0``, scores in [0.5, 1]."""
    xy = TEMPLATE[None] + np.stack([x0 + dx * np.arange(frames), np.full(frames, y0)], -1)[:, None]
    xy = xy + rng.normal(0, 0.5, xy.shape)
    return np.concatenate([xy, rng.uniform(0.5, 1.0, (frames, 17, 1))], -1).astype(np.float32)


def _two_people(seed: int = 0, frames: int = 20, leaves: int = 12) -> np.ndarray:
    """``(2, frames, 17, 3)``: person 0 all along, person 1 (far right) until frame ``leaves``; a few joints missing."""
    rng = np.random.default_rng(seed)
    out = np.zeros((2, frames, 17, 3), np.float32)
    out[0] = _person(rng, frames, 200, 2)
    out[1, :leaves] = _person(rng, leaves, 600, -1)
    out[0, 3, [9, 10]] = 0  # wrists undetected in frame 3
    return out


def _instances(arr: np.ndarray, t: int, rng: np.random.Generator, bbox: str) -> list[dict]:
    """The persons of frame ``t`` of ``arr`` ``(M, T, 17, 3)`` as MMPose instances, in shuffled order."""
    out = []
    for m in rng.permutation(len(arr)):
        kp = arr[m, t]
        if not kp.any():
            continue
        inst = {"keypoints": kp[:, :2].tolist(), "keypoint_scores": kp[:, 2].tolist()}
        seen = kp[kp[:, 2] > 0, :2]
        box = [float(v) for v in (*(seen.min(0) - 5), *(seen.max(0) + 5))]
        if bbox != "none":
            inst["bbox"] = [box] if bbox == "nested" else box
            inst["bbox_score"] = 0.95
        out.append(inst)
    return out


def write_mmpose(path: Path, arr: np.ndarray, demo: bool = False, bbox: str = "nested", seed: int = 0) -> Path:
    """``arr`` ``(M, T, 17, 3)`` as the mmpose inferencer's predictions (``demo``: the demo's file)."""
    rng = np.random.default_rng(seed)
    frames = [{"frame_id": t, "instances": _instances(arr, t, rng, bbox)} for t in range(arr.shape[1])]
    content = {"meta_info": {"dataset_name": "coco", "num_keypoints": 17}, "instance_info": frames} if demo else frames
    path.write_text(json.dumps(content))
    return path


def write_openpose(folder: Path, arr: np.ndarray, joints: int = 25, seed: int = 0) -> Path:
    """``arr`` ``(M, T, 17, 3)`` as an OpenPose ``--write_json`` folder (BODY_25 or COCO-18), one file per frame."""
    rng = np.random.default_rng(seed)
    index = BODY25_TO_COCO17 if joints == 25 else COCO18_TO_COCO17
    folder.mkdir(parents=True)
    for t in range(arr.shape[1]):
        people = []
        for m in rng.permutation(len(arr)):
            if not arr[m, t].any():
                continue
            full = np.zeros((joints, 3))
            full[:, :2] = arr[m, t, :, :2].mean(0)  # neck, mid-hip, feet: somewhere, with a score
            full[:, 2] = 0.9
            full[list(index)] = arr[m, t]
            people.append({"person_id": [-1], "pose_keypoints_2d": full.ravel().tolist(), "face_keypoints_2d": []})
        (folder / f"{folder.name}_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def _name(openpose: str) -> str:
    side = {"L": "left_", "R": "right_"}.get(openpose[0], "") if openpose[1:2].isupper() else ""
    rest = openpose[1:] if side else openpose
    return side + {"Eye": "eye", "Ear": "ear", "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist"}.get(
        rest, rest.lower()
    )


def test_the_index_maps_pick_the_coco17_joints_by_name() -> None:
    coco = get_layout("coco17").joint_names
    assert [_name(BODY25[i]) for i in BODY25_TO_COCO17] == list(coco)
    assert [_name(COCO18[i]) for i in COCO18_TO_COCO17] == list(coco)


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [("list-nested", "mmpose"), ("list-flat", "mmpose"), ("list-nobox", "mmpose"), ("demo", "mmpose-demo")],
)
def test_mmpose_files_read_back_the_arrays(tmp_path: Path, kind: str, fmt: str) -> None:
    arr = _two_people()
    bbox = kind.split("-")[-1] if kind != "demo" else "nested"
    path = write_mmpose(tmp_path / "clip.json", arr, demo=kind == "demo", bbox={"nobox": "none"}.get(bbox, bbox))
    video = read_pose_video(path)
    assert video.format == fmt and video.tracks == 2
    assert video.data.dtype == np.float32 and video.data.shape == (2, 20, 17, 3)
    np.testing.assert_allclose(video.data, arr, atol=1e-5)


@pytest.mark.parametrize("joints", [25, 18])
def test_openpose_folders_map_onto_coco17(tmp_path: Path, joints: int) -> None:
    arr = _two_people(seed=joints)
    video = read_pose_video(write_openpose(tmp_path / "clip", arr, joints))
    assert video.format == "openpose"
    np.testing.assert_allclose(video.data, arr, atol=1e-5)


def test_two_people_one_leaving_and_a_passer_by_are_tracked(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arr = np.zeros((3, 30, 17, 3), np.float32)
    arr[0, 5:] = _person(rng, 25, 100, 3)  # enters at 5, stays (25 frames)
    arr[1, :18] = _person(rng, 18, 500, -4)  # there from the start, leaves at 18 (18 frames)
    arr[2, 20:24] = _person(rng, 4, 900, 0)  # a passer-by (4 frames): dropped with max_persons=2
    video = read_pose_video(write_mmpose(tmp_path / "clip.json", arr, bbox="none", seed=1), max_persons=2)
    assert video.tracks == 3
    np.testing.assert_allclose(video.data[0], arr[0], atol=1e-5)  # the most persistent first
    np.testing.assert_allclose(video.data[1], arr[1], atol=1e-5)
    assert not video.data[1, 18:].any() and not video.data[0, :5].any()
    assert not read_pose_video(tmp_path / "clip.json", max_persons=4).data[3].any()


def test_iou_of_boxes() -> None:
    iou = box_iou(np.array([[0, 0, 2, 2], [5, 5, 5, 5]]), np.array([[1, 1, 3, 3], [5, 5, 5, 5], [9, 9, 9, 9]]))
    np.testing.assert_allclose(iou, [[1 / 7, 0, 0], [0, 1, 0]])


def test_low_score_joints_are_missing(tmp_path: Path) -> None:
    arr = _two_people()
    arr[0, :, 0, 2] = 0.1  # the nose below min_score everywhere
    arr[1, 2, 5:, 2] = 0.29
    video = read_pose_video(write_mmpose(tmp_path / "clip.json", arr))
    assert not video.data[0, :, 0].any() and not video.data[1, 2, 5:].any()
    keep = arr.copy()
    keep[0, :, 0] = 0
    keep[1, 2, 5:] = 0
    np.testing.assert_allclose(video.data, keep, atol=1e-5)
    lower = read_pose_video(tmp_path / "clip.json", min_score=0.05)
    np.testing.assert_allclose(lower.data[0, :, 0, 2], 0.1, atol=1e-6)


def _fails(path: Path, *words: str) -> SampleError:
    with pytest.raises(SampleError) as err:
        read_pose_video(path)
    for word in (str(path), *words):
        assert word in str(err.value), (word, str(err.value))
    return err.value


def test_nobody_in_any_frame(tmp_path: Path) -> None:
    _fails(write_mmpose(tmp_path / "a.json", np.zeros((2, 8, 17, 3))), "no detected person", "8 frames", "index.csv")
    _fails(write_openpose(tmp_path / "b", np.zeros((1, 3, 17, 3))), "no detected person", "'people'")
    low = _two_people()
    low[..., 2] = np.where(low[..., 2] > 0, 0.2, 0)
    _fails(write_mmpose(tmp_path / "c.json", low), "no detected person", "min_score")


def test_truncated_json(tmp_path: Path) -> None:
    path = write_mmpose(tmp_path / "cut.json", _two_people())
    path.write_text(path.read_text()[:5000])
    err = _fails(path, "not valid JSON", "truncated", "line 1")
    assert "re-run the pose estimator" in err.fix
    frame = write_openpose(tmp_path / "op", _two_people(), 25) / "op_000000000004_keypoints.json"
    frame.write_text(frame.read_text()[:100])
    with pytest.raises(SampleError, match=re.escape(str(frame)) + ".*truncated"):
        read_pose_video(tmp_path / "op")


def test_wrong_joint_count(tmp_path: Path) -> None:
    content = json.loads(write_mmpose(tmp_path / "a.json", _two_people()).read_text())
    content[4]["instances"][1]["keypoints"] = content[4]["instances"][1]["keypoints"][:13]
    (tmp_path / "a.json").write_text(json.dumps(content))
    _fails(tmp_path / "a.json", "frames[4].instances[1].keypoints", "13 joints", "17", "COCO-17")
    frame = write_openpose(tmp_path / "op", _two_people(), 25) / "op_000000000002_keypoints.json"
    people = json.loads(frame.read_text())
    people["people"][0]["pose_keypoints_2d"] = people["people"][0]["pose_keypoints_2d"][: 15 * 3]
    frame.write_text(json.dumps(people))
    with pytest.raises(SampleError) as err:
        read_pose_video(tmp_path / "op")
    for word in (str(frame), "people[0].pose_keypoints_2d", "45 numbers", "BODY_25", "COCO-18", "--write_json"):
        assert word in str(err.value)


@pytest.mark.parametrize(("token", "field"), [("NaN", "keypoints"), ("Infinity", "keypoint_scores")])
def test_nan_and_inf(tmp_path: Path, token: str, field: str) -> None:
    content = json.loads(write_mmpose(tmp_path / "a.json", _two_people()).read_text())
    value = float("nan") if token == "NaN" else float("inf")
    content[6]["instances"][0][field][2] = [1.0, value] if field == "keypoints" else value
    (tmp_path / "a.json").write_text(json.dumps(content))  # json writes NaN / Infinity tokens
    assert token in (tmp_path / "a.json").read_text()
    _fails(tmp_path / "a.json", f"frames[6].instances[0].{field}", "NaN/inf", "score 0")


def test_unknown_content_says_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [], "images": []}))
    _fails(tmp_path / "a.json", "['annotations', 'images']", "instance_info", "pose_keypoints_2d", "frame_id")
    (tmp_path / "b.json").write_text(json.dumps([{"keypoints": [[0, 0]] * 17}]))  # one image's instances
    _fails(tmp_path / "b.json", "item 0 has no 'instances'")


def _source(tmp_path: Path, videos: dict[str, np.ndarray]) -> Path:
    """A source folder: MMPose files, a demo file and OpenPose folders, index.csv and classes.txt."""
    src = tmp_path / "src"
    src.mkdir()
    rows = ["sample_id,label,split"]
    for k, (sid, arr) in enumerate(videos.items()):
        kind = k % 4
        if kind < 2:
            write_mmpose(src / f"{sid}.json", arr, demo=kind == 1, seed=k)
        else:
            write_openpose(src / sid, arr, 25 if kind == 2 else 18, seed=k)
        rows.append(f"{sid},{['wave', 'jump'][k % 2]},{'test' if k == 3 else 'train'}")
    (src / "index.csv").write_text("\n".join(rows) + "\n")
    (src / "classes.txt").write_text("sit\nwave\njump\n")
    return src


def test_round_trip_through_the_custom_dataset(tmp_path: Path) -> None:
    videos = {f"v{k}": _two_people(seed=k, leaves=10 + k) for k in range(4)}
    dst, skipped = import_poses(_source(tmp_path, videos), tmp_path / "set")
    assert not skipped and sorted(p.name for p in dst.iterdir() if not p.suffix == ".npy") == sorted(
        ["index.csv", "classes.txt", "layout.json", MARKER]
    )
    record = json.loads((dst / MARKER).read_text())
    assert record["formats"] == {"v0": "mmpose", "v1": "mmpose-demo", "v2": "openpose", "v3": "openpose"}
    got = CustomSource(str(dst), "poses", num_frames=20, max_persons=2, center=False, conversion=NO_CACHE).load()
    assert got.layout == "coco17" and got.sample_ids == list(videos) and got.class_names == ["sit", "wave", "jump"]
    assert got.labels.tolist() == [1, 2, 1, 2] and got.partition.tolist() == ["train", "train", "train", "test"]
    np.testing.assert_allclose(got.data, np.stack(list(videos.values())), atol=1e-5)


def test_the_converted_folder_loads_with_layout_coco17(tmp_path: Path) -> None:
    dst, _ = import_poses(_source(tmp_path, {"a": _two_people(1), "b": _two_people(2)}), tmp_path / "set")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no layout contradiction: the joints are in COCO-17 order
        got = CustomSource(str(dst), "poses", layout="coco17", num_frames=16, conversion=NO_CACHE).load()
    assert got.data.shape == (2, 1, 16, 17, 3) and got.layout == "coco17"
    two = CustomSource(str(dst), max_persons=2).preprocessing
    assert CustomSource.read_file(dst / "a.npy", two).data.shape == (2, 20, 17, 3)


def test_an_existing_folder_is_never_replaced_silently(tmp_path: Path) -> None:
    src = _source(tmp_path, {"a": _two_people()})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        import_poses(src, mine)
    with pytest.raises(FileExistsError, match="never replaced"):
        import_poses(src, mine, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    dst, _ = import_poses(src, tmp_path / "set")
    with pytest.raises(FileExistsError, match="--overwrite"):
        import_poses(src, dst)
    import_poses(src, dst, overwrite=True, max_persons=1)
    assert np.load(dst / "a.npy").shape == (1, 20, 17, 3)


def test_a_bad_video_leaves_no_output_or_is_skipped(tmp_path: Path) -> None:
    src = _source(tmp_path, {"a": _two_people(), "b": _two_people(1), "c": _two_people(2)})
    (src / "a.json").write_text((src / "a.json").read_text()[:300])
    with pytest.raises(SampleError, match=re.escape(str(src / "a.json")) + ".*truncated.*on_error='skip'"):
        import_poses(src, tmp_path / "set")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no set, no hidden partial folder
    dst, skipped = import_poses(src, tmp_path / "set", on_error="skip")
    assert [s.path for s in skipped] == [str(src / "a.json")]
    assert (dst / "index.csv").read_text().splitlines()[1:] == ["b,jump,train", "c,wave,train"]
    (src / "index.csv").write_text("sample_id,label,split\nzz,wave,train\n")
    with pytest.raises(SampleError, match="zz.*does not exist"):
        import_poses(src, tmp_path / "other")
    assert not (tmp_path / "other").exists()
