"""Kinetics-skeleton readers: the real st-gcn json clips in ../shared and a tiny processed fake."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from purls_pl.data.readers import Conversion, KineticsProcessedSource, KineticsSource
from purls_pl.data.readers.kinetics import parse_kinetics_clip, read_kinetics_clip

KIN_DIR = SHARED / "data" / "kinetics-samples"


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    files = sorted(p for p in KIN_DIR.glob("*.json") if not p.name.endswith("_label.json"))
    if not files:
        pytest.skip(f"real Kinetics samples not found in {KIN_DIR}")
    return files


def test_source_on_real_clips(clips: list[Path], tmp_path: Path) -> None:
    labels = json.loads((KIN_DIR / "kinetics_val_label.json").read_text())
    s = KineticsSource(str(KIN_DIR), conversion=Conversion(cache_dir=str(tmp_path))).load()
    assert s.data.shape == (7, 2, 300, 18, 3) and s.layout == "openpose18" and len(s.class_names) == 400
    assert s.sample_ids == [p.stem for p in clips]
    assert s.labels.tolist() == [labels[p.stem]["label_index"] for p in clips]
    assert [s.class_names[i] for i in s.labels] == [labels[p.stem]["label"] for p in clips]
    assert (s.partition == "test").all()  # the val split
    score = s.data[..., 2]
    assert ((score == 0)[..., None] <= (s.data[..., :2] == 0)).all()  # x, y zeroed where the score is 0
    xy = s.data[..., :2][score > 0]
    assert xy.min() >= -0.5 and xy.max() <= 0.75
    assert (s.lengths > 0).all() and not s.data[np.arange(7), :, s.lengths].any()
    k200 = KineticsSource(str(KIN_DIR), dataset="kinetics200", conversion=Conversion(cache=False)).load()
    assert k200.labels.tolist() == [0, 173, 58] and len(k200.class_names) == 200


def test_parse_every_real_clip_against_the_raw_text(clips: list[Path]) -> None:
    for path in clips:
        text = json.loads(path.read_text())  # the raw file, read independently of the reader
        frames, label = parse_kinetics_clip(path)
        assert label == text["label_index"] and len(frames) == len(text["data"]) == text["data"][-1]["frame_index"]
        assert [f.frame_index for f in frames] == [d["frame_index"] for d in text["data"]]
        assert [len(f.poses) for f in frames] == [len(d["skeleton"]) for d in text["data"]]  # people per frame
        busy = [t for t, d in enumerate(text["data"]) if d["skeleton"]]
        for t, m, j in (
            (busy[0], 0, 1),
            (busy[len(busy) // 2], len(text["data"][busy[len(busy) // 2]]["skeleton"]) - 1, 9),
        ):
            person = text["data"][t]["skeleton"][m]
            np.testing.assert_allclose(frames[t].poses[m, j], person["pose"][2 * j : 2 * j + 2], rtol=1e-6)
            np.testing.assert_allclose(frames[t].scores[m, j], person["score"][j], rtol=1e-6)
        last = text["data"][busy[-1]]["skeleton"][0]
        np.testing.assert_allclose(frames[busy[-1]].poses[0, 17], last["pose"][34:36], rtol=1e-6)


def test_top2_persons_per_frame(clips: list[Path]) -> None:
    crowded = 0
    for path in clips:
        raw, label = read_kinetics_clip(path)
        frames = json.loads(path.read_text())["data"]
        assert label == json.loads(path.read_text())["label_index"]
        for frame in frames:
            t = frame["frame_index"] - 1
            people = frame["skeleton"][:5]
            totals = sorted((sum(p["score"]) for p in people), reverse=True)[:2]
            totals += [0.0] * (2 - len(totals))
            np.testing.assert_allclose(raw[:, t, :, 2].sum(axis=1), totals, rtol=1e-5, atol=1e-4)
            if people:  # the best person's joints are read in full
                best = max(people, key=lambda p: sum(p["score"]))
                np.testing.assert_allclose(raw[0, t, :, 0], best["pose"][0::2], atol=1e-6)
            crowded += len(frame["skeleton"]) > 2
    assert crowded > 0  # the real clips exercise the selection


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"kinetics_\{train,val\}.*st-gcn"):
        KineticsSource(str(tmp_path / "none")).load()
    bad = tmp_path / "clip.json"
    bad.write_text(json.dumps({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.1] * 10, "score": [1] * 18}]}]}))
    with pytest.raises(ValueError, match=r"clip\.json.*'pose' has 10"):
        read_kinetics_clip(bad)
    person = {"pose": [0.1] * 36, "score": [1] * 18}
    bad.write_text(json.dumps({"data": [{"frame_index": 1, "skeleton": [person]}, {"frame_index": 2}]}))
    with pytest.raises(ValueError, match=r"clip\.json.*entry 1 of 'data' \(frame_index 2\) has no 'skeleton' key"):
        read_kinetics_clip(bad)
    bad.write_text(json.dumps({"data": [{"frame_index": 1, "skeleton": []}]}))  # nobody seen: accepted
    assert read_kinetics_clip(bad)[0].shape[1] >= 1


def test_processed_npy_pkl(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in (("train", [3, 250, 199]), ("val", [7, 399])):
        arrays[split] = rng.random((len(labels), 3, 300, 18, 2), dtype=np.float32)
        np.save(tmp_path / f"{split}_data.npy", arrays[split])
        with open(tmp_path / f"{split}_label.pkl", "wb") as f:
            pickle.dump(([f"{split}{i}.json" for i in range(len(labels))], labels), f)
    s = KineticsProcessedSource(str(tmp_path), conversion=Conversion(cache_dir=str(tmp_path / "cache"))).load()
    assert s.data.shape == (5, 2, 300, 18, 3) and s.labels.tolist() == [3, 250, 199, 7, 399]
    assert s.partition.tolist() == ["train"] * 3 + ["test"] * 2 and s.sample_ids[3] == "val0"
    assert s.data[4, 1, 17, 5, 2] == arrays["val"][1, 2, 17, 5, 1]
    k200 = KineticsProcessedSource(
        str(tmp_path), dataset="kinetics200", num_frames=64, temporal="resample", conversion=Conversion(cache=False)
    ).load()
    assert k200.labels.tolist() == [3, 199, 7] and k200.data.shape == (3, 2, 64, 18, 3)


def _clip(frames: int, people: int, drop_skeleton_at: int | None = None) -> dict:
    """A generated st-gcn clip: ``frames`` frames of ``people`` people (18 joints), label 3."""
    rng = np.random.default_rng(frames)
    data = []
    for t in range(frames):
        skeleton = [
            {"pose": rng.uniform(0, 1, 36).round(3).tolist(), "score": rng.uniform(0.2, 1, 18).round(3).tolist()}
            for _ in range(people)
        ]
        data.append({"frame_index": t + 1, "skeleton": skeleton})
    if drop_skeleton_at is not None:
        del data[drop_skeleton_at]["skeleton"]
    return {"data": data, "label": "c3", "label_index": 3}


def test_a_frame_without_its_skeleton_key_is_refused_or_skipped(tmp_path: Path) -> None:
    root = tmp_path / "kinetics"
    root.mkdir()
    clips = {"good_a": _clip(6, 1), "holey": _clip(6, 2, drop_skeleton_at=2), "good_b": _clip(5, 2)}
    for name, clip in clips.items():
        (root / f"{name}.json").write_text(json.dumps(clip))
    table = {name: {"has_skeleton": True, "label": "c3", "label_index": 3} for name in clips}
    (root / "kinetics_val_label.json").write_text(json.dumps(table))
    problem = r"entry 2 of 'data' \(frame_index 3\) has no 'skeleton' key; expected a list of people"
    with pytest.raises(ValueError, match=rf"holey\.json: {problem}.*; re-extract the clip"):
        parse_kinetics_clip(root / "holey.json")
    with pytest.raises(ValueError, match=rf"holey\.json: {problem}.*on_error='skip'"):
        KineticsSource(str(root), conversion=Conversion(cache_dir=str(tmp_path / "c"))).load()
    source = KineticsSource(
        str(root), num_frames=8, conversion=Conversion(cache_dir=str(tmp_path / "c"), on_error="skip")
    )
    with pytest.warns(UserWarning, match=r"1 file\(s\) skipped:\n.*holey\.json: entry 2 of 'data'"):
        s = source.load()
    assert s.sample_ids == ["good_a", "good_b"] and s.data.shape == (2, 2, 8, 18, 3)
    assert [(Path(x.path).name, x.kind) for x in source.skipped] == [("holey.json", "bad")]
