"""recognize-video end to end on generated pose JSON: a tiny checkpoint trained on generated COCO-17 motions finds
a squat followed by a wave in an MMPose file (with a second, passing person), through the CLI in its own process;
and bad input (an unreadable video, a video with nobody, a checkpoint of an unmappable layout, no class) fails
with the file, the problem and the fix."""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import NW_UCLA_STAND_IN, run_purls
from video_motions import CLASSES, mmpose_json, motion

from purls_pl.apps.experiments import experiment_args
from purls_pl.data.readers.custom import write_custom_dataset
from purls_pl.text.fields import FIELDS
from purls_pl.train import cli, pretrain

REPO = Path(__file__).resolve().parents[2]
FRAMES = 24


@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory, tiny_clip) -> Path:
    """Stage 1 and PURLS on 5 generated COCO-17 motions (30 clips each; 'punch' and 'clap' unseen), via the
    training CLIs; the classes' text is ``descriptions.json`` in a folder above the checkpoint."""
    root = tmp_path_factory.mktemp("coco_motions")
    rng = np.random.default_rng(0)
    samples, labels, splits = {}, {}, {}
    for name in CLASSES:
        for i in range(30):
            sid = f"{name.replace(' ', '_')}_{i:02d}"
            samples[sid], labels[sid] = motion(name, int(rng.integers(24, 34)), rng), name
            splits[sid] = "test" if i % 6 == 0 else "train"
    data = write_custom_dataset(root / "data", samples, labels, "coco17", splits, classes=CLASSES)
    records = [{"label": n, **{f: f"{n}, {f}" for f in FIELDS}} for n in CLASSES]
    (root / "descriptions.json").write_text(json.dumps({"classes": records}))
    source = {
        "class_path": "purls_pl.data.readers.CustomSource",
        "init_args": {"root": str(data), "dataset": "motions", "layout": "coco17", "num_frames": FRAMES},
    }
    split = {"unseen": ["punch", "clap"]}
    stage1 = {
        "data": {"source": source, "split": split, "batch_size": 8, "num_workers": 0},
        "model": {
            "backbone": {
                "class_path": "purls_pl.models.backbones.STGCN",
                "init_args": {"channels": [16, 32], "strides": [1, 2]},
            },
            "lr": 0.01,
        },
        "trainer": {"max_epochs": 12, "enable_progress_bar": False},
    }
    stage2 = {
        "data": {
            "source": source,
            "split": split,
            "descriptions": str(root / "descriptions.json"),
            "text_encoder": {"model": str(tiny_clip)},
            "batch_size": 8,
            "num_workers": 0,
        },
        "model": {"backbone": {"cache": True}, "lr": 0.005},
        "trainer": {"max_epochs": 20, "enable_progress_bar": False},
    }
    (root / "motions_backbone.yaml").write_text(yaml.safe_dump(stage1))
    (root / "motions.yaml").write_text(yaml.safe_dump(stage2))
    runs = root / "runs"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        args = [f"--trainer.default_root_dir={runs}", "--seed_everything=0"]
        pretrain.main(
            ["fit", "--config", "experiments/backbone.yaml", "--config", str(root / "motions_backbone.yaml"), *args]
        )
        cli.main(["fit", "--config", "experiments/purls.yaml", "--config", str(root / "motions.yaml"), *args])
    finally:
        os.chdir(cwd)
    return next(p for p in runs.rglob("last.ckpt") if "backbones" not in p.parts)


def _descriptions(checkpoint: Path) -> Path:
    """The description file the checkpoint was trained with (the fixture's)."""
    return next(p for p in checkpoint.parents if (p / "descriptions.json").is_file()) / "descriptions.json"


@pytest.fixture(scope="module")
def squat_then_wave(tmp_path_factory) -> Path:
    """MMPose JSON of 180 frames: a squat (0-89), then a wave (90-179); another person passes in frames 20-39."""
    rng = np.random.default_rng(7)
    person = np.concatenate([motion("squat", 90, rng), motion("wave", 90, rng)])
    person[:, :, 0] -= 120  # stand left of the image centre; the passer-by walks on the right
    passer = motion("punch", 20, rng)
    passer[:, :, 0] += 200
    return mmpose_json(tmp_path_factory.mktemp("video") / "squat_then_wave.json", [person, passer], [0, 20])


def test_a_squat_then_a_wave_are_found_where_they_happen(coco_checkpoint, squat_then_wave, tmp_path):
    out = tmp_path / "out"
    done = run_purls(
        "recognize-video",
        str(squat_then_wave),
        "--checkpoint",
        str(coco_checkpoint),
        "--classes",
        "squat, wave, jumping jacks",
        "--descriptions",
        str(_descriptions(coco_checkpoint)),
        "--out",
        str(out),
        "--render",
        str(out / "clip.gif"),
    )
    rows = list(csv.DictReader((out / "segments.csv").open()))
    record = json.loads((out / "segments.json").read_text())
    assert record["settings"]["window"] == FRAMES and record["settings"]["stride"] == FRAMES // 4
    assert record["frames"] == 180 and record["settings"]["layout"] == "coco17"
    # every window scored; its best smoothed class is the motion of the frames it stands for
    windows = record["windows"]
    assert all(w["scored"] for w in windows)
    classes = record["classes"]
    centre_class = [(0.5 * (w["start"] + w["end"]), classes[int(np.argmax(w["scores"]))]) for w in windows]
    squat_share = np.mean([c == "squat" for m, c in centre_class if m < 80])
    wave_share = np.mean([c == "wave" for m, c in centre_class if m > 100])
    assert squat_share >= 0.8 and wave_share >= 0.8, centre_class
    # the segments: a squat first, a wave last, the change near frame 90, tiling the frames
    assert rows[0]["label"] == "squat" and rows[-1]["label"] == "wave"
    assert int(rows[0]["start"]) == 0 and int(rows[-1]["end"]) == 180
    assert all(int(a["end"]) == int(b["start"]) for a, b in itertools.pairwise(rows))
    change = next(int(r["start"]) for r in rows if r["label"] == "wave")
    assert 60 <= change <= 120, rows
    assert float(rows[0]["start_s"]) == 0.0 and float(rows[-1]["end_s"]) == pytest.approx(6.0)
    # the table on stdout names the segments; the figure and the rendering were written
    assert "squat" in done.stdout and "wave" in done.stdout and "start" in done.stdout.splitlines()[0]
    assert (out / "timeline.png").stat().st_size > 5000
    from PIL import Image

    with Image.open(out / "clip.gif") as gif:
        assert gif.n_frames == 180


def test_scores_equal_recognize_on_the_same_prepared_windows(coco_checkpoint, squat_then_wave):
    """A window's raw score is what the checkpoint's method gives the window prepared by the reader's steps."""
    from purls_pl.apps.recognize import candidate_inputs, score_prepared
    from purls_pl.apps.recognize_video import recognize_video
    from purls_pl.models.method import ZeroShotMethod

    text_file = _descriptions(coco_checkpoint)
    result = recognize_video(squat_then_wave, coco_checkpoint, ["squat", "wave"], text_file, smooth=1)
    module = ZeroShotMethod.from_checkpoint(coco_checkpoint)
    prep = module.checkpoint_spec["preprocess"]
    from purls_pl.data.preprocessing import Preprocessing
    from purls_pl.video.landmarks import window_raw

    prep = Preprocessing.from_mapping(prep)
    a, b = result.windows[3]
    block, _ = prep.apply(window_raw(result.track, prep, a, b))
    text, labels = candidate_inputs(module, ["squat", "wave"], text_file)
    expected = score_prepared(module, torch.from_numpy(block[None]), text, labels)[0].numpy()
    np.testing.assert_allclose(result.raw_scores[3], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.scores, result.raw_scores)  # smooth=1


def _fails(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "purls_pl", "recognize-video", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PURLS_PROGRESS": "off"},
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stderr


def test_an_empty_class_list_names_the_option_and_the_fix(coco_checkpoint, squat_then_wave, tmp_path):
    err = _fails(str(squat_then_wave), "--checkpoint", str(coco_checkpoint), "--classes", " , ")
    assert "--classes: no action name given" in err and "comma-separated" in err
    empty = tmp_path / "classes.txt"
    empty.write_text("# none yet\n\n")
    err = _fails(str(squat_then_wave), "--checkpoint", str(coco_checkpoint), "--classes-file", str(empty))
    assert f"{empty}: no action name given" in err and "one action name per line" in err


def test_a_missing_input_names_the_file(coco_checkpoint, tmp_path):
    err = _fails(str(tmp_path / "gone.mp4"), "--checkpoint", str(coco_checkpoint), "--classes", "squat")
    assert f"{tmp_path / 'gone.mp4'}: does not exist; give a video file or pose-estimator JSON" in err


def test_an_unreadable_video_names_the_file_and_the_fix(coco_checkpoint, tmp_path):
    pytest.importorskip("cv2", reason="the video extra is not installed")
    broken = tmp_path / "clip.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    err = _fails(str(broken), "--checkpoint", str(coco_checkpoint), "--classes", "squat")
    assert str(broken) in err and "not a video OpenCV can decode" in err and "ffmpeg" in err


def test_a_video_without_the_extra_says_how_to_install_it(coco_checkpoint, tmp_path):
    """Without OpenCV (the video extra), a video file fails with the install line, not a traceback."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"whatever")
        err = _fails(str(video), "--checkpoint", str(coco_checkpoint), "--classes", "squat")
        assert 'pip install "purls-pl[video]"' in err
    else:
        pytest.skip("the video extra is installed")


def test_nobody_in_the_pose_json_names_the_file(coco_checkpoint, tmp_path):
    empty = tmp_path / "nobody.json"
    empty.write_text(json.dumps([{"frame_id": t, "instances": []} for t in range(40)]))
    err = _fails(str(empty), "--checkpoint", str(coco_checkpoint), "--classes", "squat")
    assert str(empty) in err and "no detected person in any of its 40 frames" in err


def test_a_checkpoint_of_an_unmappable_layout_is_refused(tmp_path, tiny_clip, squat_then_wave):
    """An NW-UCLA (kinect20, 3-D) checkpoint: the error names the checkpoint, its layout and the layouts to use."""
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import export_backbone

    torch.manual_seed(0)
    export = export_backbone(ShiftGCN(layout="kinect20", num_persons=1, channels=[8], strides=[1]), tmp_path / "b.pt")
    cli.main(
        [
            "fit",
            *experiment_args("nw-ucla_8_2"),
            *NW_UCLA_STAND_IN,
            f"--data.text_encoder.model={tiny_clip}",
            f"--model.backbone.checkpoint={export}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.max_epochs=1",
            "--zero_shot.figures=false",
            "--gzsl.figures=false",
        ]
    )
    ckpt = next(tmp_path.rglob("last.ckpt"))
    err = _fails(str(squat_then_wave), "--checkpoint", str(ckpt), "--classes", "squat")
    assert str(ckpt) in err and "layout 'kinect20'" in err and "penn13" in err and "make video-demo" in err


def test_a_video_with_nobody_in_it_names_the_file_and_the_fix(coco_checkpoint, tmp_path):
    pytest.importorskip("mediapipe", reason="the video extra is not installed")
    import cv2

    video = tmp_path / "empty_room.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for t in range(15):
        writer.write(np.full((120, 160, 3), 90 + 2 * t, np.uint8))
    writer.release()
    err = _fails(str(video), "--checkpoint", str(coco_checkpoint), "--classes", "squat")
    assert str(video) in err and "found no person in any of its 15 frames" in err and "min-detection-confidence" in err


def test_a_real_video_goes_through_mediapipe_to_segments(coco_checkpoint, tmp_path):
    """The video path: the cameraman clip decoded, its poses estimated, windows scored, outputs and an MP4 written."""
    pytest.importorskip("mediapipe", reason="the video extra is not installed")
    from purls_pl.video.demo_clip import write_clip

    clip = write_clip(tmp_path / "camera.mp4", frames=60, size=320)
    out = tmp_path / "out"
    done = run_purls(
        "recognize-video",
        str(clip),
        "--checkpoint",
        str(coco_checkpoint),
        "--classes",
        "squat, wave",
        "--out",
        str(out),
        "--render",
        str(out / "clip.mp4"),
    )
    record = json.loads((out / "segments.json").read_text())
    assert record["settings"]["detector"] == "mediapipe" and record["frames"] == 60
    assert record["settings"]["fps"] == pytest.approx(30.0) and all(w["scored"] for w in record["windows"])
    assert record["segments"][0]["start"] == 0 and record["segments"][-1]["end"] == 60
    assert record["timing"]["pose_frames"] == 60 and "decoding + pose estimation: 60/60 frames" in done.stderr
    import cv2

    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    cap.release()
