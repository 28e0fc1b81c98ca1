"""The MediaPipe adapter on real frames of a real person (scikit-image's cameraman photograph, moved about);
skipped cleanly where the video extra is not installed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="the video extra (mediapipe) is not installed")
pytest.importorskip("cv2", reason="the video extra (opencv) is not installed")
pytest.importorskip("skimage", reason="the video extra (scikit-image) is not installed")

from purls_pl.data.errors import SampleError
from purls_pl.video import mediapipe_pose
from purls_pl.video.demo_clip import camera_frames, write_clip
from purls_pl.video.mediapipe_pose import MEDIAPIPE_TO_COCO17, PoseEstimator, check_models, estimate_video


def test_the_pinned_wheel_ships_the_pose_models():
    root = check_models()
    for name in mediapipe_pose.MODEL_FILES:
        assert (root / name).stat().st_size > 100_000


def test_a_missing_model_file_is_named(monkeypatch):
    monkeypatch.setattr(mediapipe_pose, "MODEL_FILES", ("modules/pose_landmark/pose_landmark_heavy_missing.tflite",))
    with pytest.raises(FileNotFoundError, match="pose_landmark_heavy_missing.tflite.*mediapipe==0.10.21"):
        check_models()


def test_landmarks_of_a_real_person_lie_where_the_body_is():
    frames = camera_frames(frames=12, size=360)
    with PoseEstimator() as estimate:
        kp = np.stack([estimate(f) for f in frames])
    assert kp.shape == (12, 17, 3) and len(MEDIAPIPE_TO_COCO17) == 17
    seen = kp[..., 2] > 0.5
    assert seen[:, :13].mean() > 0.9  # face, shoulders, elbows, wrists and hips in nearly every frame
    y = kp[..., 1]
    nose, eyes, shoulders, hips = y[:, 0], y[:, 1:3].mean(1), y[:, 5:7].mean(1), y[:, 11:13].mean(1)
    assert (eyes < nose).all() and (eyes < shoulders).all() and (shoulders + 50 < hips).all()  # y grows downwards
    assert ((kp[..., 0] >= 0) & (kp[..., 0] <= 360)).all()  # pixels of the 360 x 360 frame
    # the clip bobs by 5 % of its height each second: the nose follows
    assert np.ptp(nose) > 5


def test_a_video_is_decoded_and_tracked(tmp_path):
    clip = write_clip(tmp_path / "camera.mp4", frames=30, size=320)
    timing = []
    track = estimate_video(clip, on_time=lambda s, n: timing.append((s, n)))
    assert track.num_frames == 30 and track.fps == pytest.approx(30.0) and track.image_size == (320.0, 320.0)
    assert track.shown().all() and track.detector == "mediapipe" and timing[0][1] == 30


def test_a_video_without_a_person_is_refused(tmp_path):
    import cv2

    path = tmp_path / "grey.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for t in range(20):
        writer.write(np.full((120, 160, 3), 100 + t, np.uint8))
    writer.release()
    with pytest.raises(SampleError) as err:
        estimate_video(path)
    assert err.value.path == str(path) and "found no person in any of its 20 frames" in err.value.problem
