"""Every reader's file, prepared by ``recognize`` from the checkpoint's record, is its training row exactly.

For each reader with real data in ../shared (and the custom, processed and demo sources, on files written
here), the cache row the training loader serves and ``recognize``'s preparation of the same file, from the
preprocessing record a checkpoint stores (as plain json data), are the same array, bit for bit.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from purls_pl.apps import recognize as predict
from purls_pl.data.demo import DemoSource, generate_demo
from purls_pl.data.readers import (
    Conversion,
    CustomSource,
    KineticsProcessedSource,
    KineticsSource,
    NTUProcessedSource,
    NTUSkeletonSource,
    PennActionSource,
    UCLASource,
)
from purls_pl.data.readers.custom import write_custom_dataset
from purls_pl.data.skeletons import SkeletonSet, SkeletonSource, preprocessing_record

Case = Callable[[Path], tuple[SkeletonSource, Callable[[str], Path]]]


def _ntu(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "ntu-samples")
    return NTUSkeletonSource(str(root), num_frames=48, temporal="resample"), lambda i: root / f"{i}.skeleton"


def _ntu_per_person(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "ntu-samples")
    source = NTUSkeletonSource(str(root), num_frames=40, temporal="loop", per_person=True, align=False)
    return source, lambda i: root / f"{i}.skeleton"


def _kinetics(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "kinetics-samples")
    return KineticsSource(str(root), split="val", num_frames=120), lambda i: root / f"{i}.json"


def _kinetics_centered(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "kinetics-samples")
    source = KineticsSource(str(root), split="val", num_frames=50, temporal="resample", center=True)
    return source, lambda i: root / f"{i}.json"


def _ucla(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "nw-ucla", "all_sqe")
    return UCLASource(str(root), num_frames=20, conversion=Conversion(max_samples=12)), lambda i: root / f"{i}.json"


def _ucla_aligned(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "nw-ucla", "all_sqe")
    source = UCLASource(str(root), 16, "pad", align=True, conversion=Conversion(max_samples=6))
    return source, lambda i: root / f"{i}.json"


def _penn(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "penn-action", "labels")
    return PennActionSource(str(root), conversion=Conversion(max_samples=30)), lambda i: root / f"{i}.mat"


def _penn_image(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    root = shared_path("data", "penn-action", "labels")
    source = PennActionSource(str(root), 24, "pad", "image", conversion=Conversion(max_samples=15))
    return source, lambda i: root / f"{i}.mat"


def _custom(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    rng = np.random.default_rng(3)
    gap = rng.normal(size=(12, 25, 3)).astype(np.float32)
    gap[4:6] = 0.0  # the tracker lost the person for two frames
    two = rng.normal(size=(2, 9, 25, 3)).astype(np.float32)
    two[1, 6:] = 0.0
    root = write_custom_dataset(tmp / "custom", {"gap": gap, "two": two}, {"gap": "wave", "two": "jump"}, "ntu25")
    return CustomSource(
        str(root), layout="ntu25", num_frames=8, temporal="resample", max_persons=2
    ), lambda i: root / f"{i}.npy"


def _demo(tmp: Path) -> tuple[SkeletonSource, Callable[[str], Path]]:
    data, _ = generate_demo(2, 20, seed=0)  # the demo renders, it reads no files: its samples as .npy
    for k, name in enumerate(DemoSource(2, 20).load().sample_ids):
        np.save(tmp / f"{name}.npy", data[k])
    return DemoSource(2, 20), lambda i: tmp / f"{i}.npy"


CASES: dict[str, Case] = {
    "ntu": _ntu,
    "ntu-per-person": _ntu_per_person,
    "kinetics": _kinetics,
    "kinetics-centered": _kinetics_centered,
    "nw-ucla": _ucla,
    "nw-ucla-aligned": _ucla_aligned,
    "penn-action": _penn,
    "penn-action-image": _penn_image,
    "custom": _custom,
    "demo": _demo,
}


def _load(source: SkeletonSource) -> SkeletonSet:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*file\\(s\\) skipped")
        return source.load()


def _checkpoint_record(source: SkeletonSource, skeletons: SkeletonSet) -> dict:
    """The record as a checkpoint stores it (plain data; json round trip)."""
    return json.loads(json.dumps(preprocessing_record(source, skeletons.data.shape)))


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_through_recognize_is_its_training_row(case: str, tmp_path: Path) -> None:
    source, file_of = CASES[case](tmp_path)
    skeletons = _load(source)
    record = _checkpoint_record(source, skeletons)
    for i, sample_id in enumerate(skeletons.sample_ids):
        prepared = predict.prepare_sample(file_of(sample_id), record)
        np.testing.assert_array_equal(prepared, skeletons.data[i], err_msg=f"{case}: {sample_id}")


def test_the_penn_action_record_names_its_normalisation() -> None:
    root = shared_path("data", "penn-action", "labels")
    record = preprocessing_record(PennActionSource(str(root)))
    assert (record["normalization"], record["visibility"], record["empty_frames"]) == ("box", True, "ends")
    assert record["reader"].endswith("PennActionSource") and not record["approximate"]
    image = preprocessing_record(PennActionSource(str(root), normalization="image"))
    assert image["normalization"] == "image"


def test_a_penn_clip_without_normalisation_is_not_its_row(tmp_path: Path) -> None:
    """What recognition prepared before the record carried the normalisation: pixel coordinates, not the row."""
    source, file_of = _penn(tmp_path)
    skeletons = _load(source)
    record = _checkpoint_record(source, skeletons) | {"normalization": "none"}
    prepared = predict.prepare_sample(file_of(skeletons.sample_ids[0]), record)
    assert np.abs(prepared[..., :2]).max() > 10 > np.abs(skeletons.data[0, ..., :2]).max()


def _ctrgcn(path: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.normal(size=(2, frames, 150)).astype(np.float32) for s in ("train", "test")}
    np.savez_compressed(path, **arrays, y_train=np.eye(60)[[0, 1]], y_test=np.eye(60)[[2, 3]])


def _stgcn_kinetics(root: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(root / "val_data.npy", rng.random((2, 3, 300, 18, 2), dtype=np.float32))
    with open(root / "val_label.pkl", "wb") as f:
        pickle.dump((["a.json", "b.json"], [3, 7]), f)


def test_a_processed_record_replays_the_raw_readers_preprocessing(tmp_path: Path) -> None:
    """A model of processed arrays prepares a raw file as the raw reader would with the arrays' assumed
    preprocessing (NTU: centered and aligned; Kinetics: st-gcn's normalisation), marked approximate."""
    ntu_root = shared_path("data", "ntu-samples")
    _ctrgcn(tmp_path / "NTU60_CS.npz", 24)
    processed = NTUProcessedSource(str(tmp_path / "NTU60_CS.npz"), temporal="resample")
    record = _checkpoint_record(processed, _load(processed))
    assert record["approximate"] and record["center"] and record["align"] and record["num_frames"] == 24
    raw = _load(NTUSkeletonSource(str(ntu_root), num_frames=24, temporal="resample", center=True, align=True))
    for i, sample_id in enumerate(raw.sample_ids):
        np.testing.assert_array_equal(predict.prepare_sample(ntu_root / f"{sample_id}.skeleton", record), raw.data[i])

    kin_root = shared_path("data", "kinetics-samples")
    (tmp_path / "kin").mkdir()
    _stgcn_kinetics(tmp_path / "kin")
    processed_k = KineticsProcessedSource(str(tmp_path / "kin"))
    record_k = _checkpoint_record(processed_k, _load(processed_k))
    assert record_k["approximate"] and record_k["normalization"] == "stgcn" and record_k["num_frames"] == 300
    raw_k = _load(KineticsSource(str(kin_root), split="val", num_frames=300))
    for i, sample_id in enumerate(raw_k.sample_ids):
        np.testing.assert_array_equal(predict.prepare_sample(kin_root / f"{sample_id}.json", record_k), raw_k.data[i])


def test_the_reader_is_found_by_the_file_not_by_recognize(tmp_path: Path) -> None:
    """Files of every format reach their reader; a file no reader reads is refused naming the formats."""
    ucla = sorted(shared_path("data", "nw-ucla", "all_sqe").glob("*.json"))[0]
    kinetics = sorted(p for p in shared_path("data", "kinetics-samples").glob("*.json") if "label" not in p.name)[0]
    record = {"format": 2, "layout": "kinect20", "num_frames": 10, "num_persons": 1}
    assert predict.prepare_sample(ucla, record).shape == (1, 10, 20, 3)  # no reader recorded: found by content
    with pytest.raises(ValueError, match="openpose18 skeleton.*layout 'kinect20'"):
        predict.prepare_sample(kinetics, record)
    (tmp_path / "clip.csv").write_text("1,2,3\n")
    with pytest.raises(
        ValueError, match=r"clip\.csv: is a file no reader reads; give one of: .*\.skeleton.*\.mat.*\.npy"
    ):
        predict.prepare_sample(tmp_path / "clip.csv", record)
    (tmp_path / "labels.json").write_text('{"x": 1}')
    with pytest.raises(ValueError, match="no reader reads"):
        predict.prepare_sample(tmp_path / "labels.json", record)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        predict.prepare_sample(tmp_path / "missing.skeleton", record)
