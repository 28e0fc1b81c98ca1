"""The layout mapping and normalisation of video windows match the training readers' on the same joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from video_motions import mmpose_json, motion

from purls_pl.data.errors import SampleError
from purls_pl.data.pose_import import import_poses
from purls_pl.data.preprocessing import RawSkeleton
from purls_pl.data.readers import CustomSource, PennActionSource
from purls_pl.data.readers.penn import PennClip, penn_raw, read_penn_file
from purls_pl.video.landmarks import (
    COCO17_TO_PENN13,
    PENN_BOX_MARGIN,
    PoseTrack,
    check_mappable,
    joint_boxes,
    pose_track_from_json,
    to_layout,
    window_raw,
)


def _coco_of_penn(x: np.ndarray, y: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """What an estimator would give for Penn's joints: the head as the nose, the other 12 as COCO's."""
    kp = np.zeros((len(x), 17, 3), np.float32)
    penn = np.stack([x, y, visible.astype(float)], axis=-1)
    penn[~visible] = 0.0
    kp[:, 0] = penn[:, 0]
    kp[:, list(COCO17_TO_PENN13)] = penn[:, 1:]
    return kp


def test_coco_joints_map_onto_penn13_in_penn_order_with_the_face_mean_as_head():
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = np.arange(17) * 10, np.arange(17), 0.9
    kp[0, 3, 2] = 0.1  # the left ear below min_score: missing, left out of the head
    out = to_layout(kp, "penn13", min_score=0.3)
    np.testing.assert_allclose(out[0, 0], [np.mean([0, 10, 20, 40]), np.mean([0, 1, 2, 4]), 0.9], rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1:, 0], np.arange(5, 17) * 10)  # left/right shoulder ... ankle
    nobody = to_layout(np.zeros((2, 17, 3)), "penn13")
    assert not nobody.any()
    with pytest.raises(ValueError, match="no mapping from COCO-17 onto layout 'ntu25'"):
        to_layout(kp, "ntu25")


def test_a_penn_like_clip_is_prepared_exactly_as_the_penn_reader_does():
    """Boxes as Penn's annotators drew them (the joints' extent x 1.2): the same block, to float precision."""
    rng = np.random.default_rng(0)
    frames = 45
    x = 200 + 40 * rng.random((frames, 13)) + np.arange(frames)[:, None]
    y = 100 + 150 * rng.random((frames, 13))
    visible = rng.random((frames, 13)) > 0.15
    visible[:, 0] = True
    visible[40:] = False  # trailing frames with nobody
    pts = np.stack([x, y, visible], -1)
    boxes = joint_boxes(np.where(visible[..., None], pts, 0))
    clip = PennClip("bowl", 3, "front", True, x, y, visible, boxes, (480, 640))
    prep = PennActionSource("unused").preprocessing
    expected, n = prep.apply(penn_raw(clip, "clip.mat"))
    track = PoseTrack(_coco_of_penn(x, y, visible), 30.0, (480, 640), "clip", "test")
    got, m = prep.apply(window_raw(track, prep, 0, frames))
    assert n == m == 32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_real_penn_clips_are_prepared_as_the_reader_prepares_them():
    """On published clips the joints' boxes stand in for the annotated ones: the prepared blocks agree closely."""
    labels = shared_path("data", "penn-action", "labels")
    prep = PennActionSource(str(labels)).preprocessing
    diffs = []
    for path in sorted(Path(labels).glob("*.mat"))[::100]:
        clip = read_penn_file(path)
        if not clip.visible.any():
            continue
        track = PoseTrack(_coco_of_penn(clip.x, clip.y, clip.visible), 30.0, clip.image_size, str(path), "test")
        expected, _ = prep.apply(penn_raw(clip, path))
        got, _ = prep.apply(window_raw(track, prep, 0, clip.num_frames))
        np.testing.assert_array_equal(got[..., 2], expected[..., 2])  # the same joints visible
        diffs.append(np.abs(got - expected).max())
    assert len(diffs) >= 20
    assert np.median(diffs) < 0.01 and max(diffs) < 0.1, diffs  # visible joints span ~0.83 (penn docstring)


def test_the_box_margin_is_how_penn_boxes_relate_to_their_joints():
    labels = shared_path("data", "penn-action", "labels")
    ratios = []
    for path in sorted(Path(labels).glob("*.mat"))[::150]:
        clip = read_penn_file(path)
        pts = np.stack([clip.x, clip.y, clip.visible], -1) * clip.visible[..., None]
        boxes = joint_boxes(pts, margin=1.0)[: len(clip.bbox)]
        full = clip.visible[: len(boxes)].all(axis=1)
        size = lambda b: np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])  # noqa: E731
        ratios += list(size(clip.bbox[: len(boxes)][full]) / size(boxes[full]))
    assert np.median(ratios) == pytest.approx(PENN_BOX_MARGIN, abs=0.01)


def test_pose_json_windows_are_prepared_as_import_poses_and_the_custom_reader_do(tmp_path):
    """coco17: a window of an MMPose file equals the same frames imported by import-poses and read back."""
    rng = np.random.default_rng(1)
    person = motion("squat", 40, rng)
    person[5:8, 3] = 0.0  # a missing joint: zero in both
    src = tmp_path / "src"
    src.mkdir()
    mmpose_json(src / "clip.json", [person])
    (src / "index.csv").write_text("sample_id,label,split\nclip,squat,train\n")
    import_poses(src, tmp_path / "data", max_persons=1)
    source = CustomSource(str(tmp_path / "data"), layout="coco17", num_frames=24)
    prep = source.preprocessing
    expected, _ = prep.apply(source.read_file(tmp_path / "data" / "clip.npy", prep))
    track = pose_track_from_json(src / "clip.json")
    got, _ = prep.apply(window_raw(track, prep, 0, track.num_frames))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert track.fps == 30.0 and track.detector == "mmpose" and track.num_frames == 40


def test_window_raw_cuts_the_frames_and_keeps_the_image_size():
    rng = np.random.default_rng(2)
    track = PoseTrack(motion("wave", 50, rng), 25.0, (480, 640), "v.mp4", "test")
    prep = PennActionSource("unused", normalization="image").preprocessing
    raw = window_raw(track, prep, 10, 34)
    assert isinstance(raw, RawSkeleton) and raw.data.shape == (1, 24, 13, 3) and raw.image_size == (480, 640)
    assert set(np.unique(raw.data[..., 2])) <= {0.0, 1.0} and "frames 10-33" in raw.source
    block, _ = prep.apply(raw)
    assert np.abs(block[..., :2]).max() < 0.5  # relative to the image centre, over its larger side


def test_an_unmappable_layout_names_the_checkpoint_and_the_fix():
    check_mappable("penn13", "a.ckpt")
    check_mappable("coco17", "a.ckpt")
    with pytest.raises(SampleError) as err:
        check_mappable("ntu25", "runs/x/last.ckpt")
    assert err.value.path == "runs/x/last.ckpt" and "layout 'ntu25' (25 joints)" in err.value.problem
    assert "penn13" in err.value.fix and "coco17" in err.value.fix
