"""The Preprocessing record: every source states one, it round-trips through plain data (old flat records
too), and its one ``apply`` normalises, trims, fits and refuses bad input naming the file, field and fix."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from purls_pl.data.demo import DemoSource
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton
from purls_pl.data.random_source import RandomSkeletonSource
from purls_pl.data.readers import (
    CustomSource,
    KineticsProcessedSource,
    KineticsSource,
    NTUProcessedSource,
    NTUSkeletonSource,
    PennActionSource,
    SampleError,
    UCLASource,
    file_readers,
    recorded_preprocessing,
)
from purls_pl.data.skeletons import preprocessing_record

SRC = Path(__file__).resolve().parents[2] / "src" / "purls_pl"

SOURCES = {
    "ntu": lambda: NTUSkeletonSource("x", num_frames=30, per_person=True),
    "ntu-processed": lambda: NTUProcessedSource("x"),
    "kinetics": lambda: KineticsSource("x", max_persons=3, num_person_in=4, center=True),
    "kinetics-processed": lambda: KineticsProcessedSource("x", num_frames=64),
    "nw-ucla": lambda: UCLASource("x", align=True),
    "penn-action": lambda: PennActionSource("x", normalization="image"),
    "custom": lambda: CustomSource("x", layout="ntu25", max_persons=2),
    "demo": lambda: DemoSource(),
    "random": lambda: RandomSkeletonSource("nw-ucla", "kinect20", num_persons=1),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_states_its_preprocessing_and_it_round_trips(name: str) -> None:
    source = SOURCES[name]()
    prep = source.preprocessing
    assert isinstance(prep, Preprocessing) and prep.layout == source.layout
    record = json.loads(json.dumps(preprocessing_record(source, (5, 2, 17, 25, 3))))
    assert record["format"] == 2 and (record["num_persons"], record["num_frames"], record["channels"]) == (2, 17, 3)
    assert Preprocessing.from_mapping(record) == prep.fitted((5, 2, 17, 25, 3))
    assert Preprocessing.from_mapping(prep.to_mapping()) == prep


def test_each_reader_records_its_own_settings() -> None:
    assert SOURCES["ntu"]().preprocessing.per_person and SOURCES["nw-ucla"]().preprocessing.align
    kinetics = SOURCES["kinetics"]().preprocessing
    assert (kinetics.normalization, kinetics.center, kinetics.num_persons, kinetics.num_person_in) == (
        "stgcn",
        True,
        3,
        4,
    )
    penn = SOURCES["penn-action"]().preprocessing
    assert (penn.normalization, penn.visibility, penn.empty_frames, penn.center) == ("image", True, "ends", False)
    assert SOURCES["custom"]().preprocessing.empty_frames == "all"
    for name in ("ntu-processed", "kinetics-processed"):
        processed = SOURCES[name]().preprocessing
        assert processed.approximate and processed.reader is not None and "Processed" not in processed.reader
    assert SOURCES["kinetics-processed"]().preprocessing.normalization == "stgcn"
    assert not SOURCES["demo"]().preprocessing.center and SOURCES["demo"]().preprocessing.reader is None


def test_old_flat_records_still_load() -> None:
    """Records of checkpoints written before the typed record (no format, the old field names)."""
    old = {
        "layout": "openpose18",
        "num_frames": 300,
        "temporal": "pad",
        "center": False,
        "align": False,
        "per_person": False,
        "normalize_kinetics": True,
        "num_person_in": 5,
        "num_persons": 2,
        "channels": 3,
        "drop_empty_frames": False,
        "approximate": True,
    }
    prep = Preprocessing.from_mapping(old)
    assert (prep.normalization, prep.empty_frames, prep.approximate, prep.reader) == ("stgcn", "trailing", True, None)
    custom = Preprocessing.from_mapping({"layout": "ntu25", "drop_empty_frames": True, "channels": None})
    assert (custom.empty_frames, custom.channels, custom.temporal) == ("all", None, "resample")


def test_bad_records_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['normalise'\]; the fields are \['layout'"):
        Preprocessing.from_mapping({"format": 2, "layout": "ntu25", "normalise": "box"})
    with pytest.raises(ValueError, match="has no 'layout'"):
        Preprocessing.from_mapping({"format": 2, "num_frames": 3})
    with pytest.raises(ValueError, match="format 7"):
        Preprocessing.from_mapping({"format": 7, "layout": "ntu25"})
    with pytest.raises(ValueError, match=r"normalization must be one of \['none', 'stgcn', 'box', 'image'\]"):
        Preprocessing("penn13", normalization="bbox")
    with pytest.raises(ValueError, match="empty_frames"):
        Preprocessing("penn13", empty_frames="inside")
    with pytest.raises(ValueError, match="temporal mode"):
        Preprocessing("penn13", temporal="stretch")


def _penn_like(frames: int = 6) -> np.ndarray:
    """``(1, T, 13, 3)`` pixel x, y and visibility; joint 4 hidden in frame 2, frames 0 and 5 show nobody."""
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.uniform(100, 300, (1, frames, 13, 2)), np.ones((1, frames, 13, 1))], axis=-1)
    data[0, 2, 4] = 0.0
    data[0, [0, frames - 1]] = 0.0
    return data


def test_box_and_image_normalisation_with_exact_visibility() -> None:
    boxes = np.array([[100.0, 50.0, 200.0, 250.0], [120.0, 60.0, 220.0, 260.0], [0.0, 0.0, 0.0, 0.0]])
    raw = RawSkeleton(_penn_like(), "clip.mat", "penn13", boxes=boxes, image_size=(480.0, 640.0))
    box = Preprocessing("penn13", 7, "resample", empty_frames="ends", normalization="box", visibility=True)
    out, length = box.apply(raw)
    assert out.shape == (1, 7, 13, 3) and length == 7
    assert set(np.unique(out[..., 2]).tolist()) == {0.0, 1.0}
    assert not out[out[..., 2] == 0].any()  # an interpolated joint next to a hidden one is missing, not halfway
    (first,) = np.flatnonzero(np.abs(raw.data[0]).sum(axis=(1, 2)) > 0)[:1]
    expected = (raw.data[0, first, :, :2] - [160.0, 155.0]) / 200.0  # union box centre, median box size
    np.testing.assert_allclose(out[0, 0, :, :2], expected, rtol=1e-6)
    image, _ = Preprocessing("penn13", 4, "pad", empty_frames="ends", normalization="image").apply(raw)
    np.testing.assert_allclose(image[0, 0, :, :2], (raw.data[0, first, :, :2] - [320.0, 240.0]) / 640.0, rtol=1e-6)


def test_a_normalisation_the_file_cannot_support_names_file_field_and_fix() -> None:
    box = Preprocessing("penn13", 4, normalization="box")
    with pytest.raises(SampleError, match=r"<array>: has no person boxes.*; give the clip's own file"):
        box.apply(_penn_like())
    flat = RawSkeleton(_penn_like(), "0042.mat", boxes=np.zeros((6, 4)), fix="restore it")
    with pytest.raises(SampleError, match=r"0042\.mat: field 'bbox' holds no box of positive width.*; restore it"):
        box.apply(flat)
    with pytest.raises(SampleError, match="has no image size"):
        Preprocessing("penn13", 4, normalization="image").apply(_penn_like())


def test_apply_checks_the_layout_joints_and_channels() -> None:
    prep = Preprocessing("kinect20", 5, num_persons=2, channels=3)
    out, length = prep.apply(np.ones((7, 20, 3)))  # one person: padded to two
    assert out.shape == (2, 5, 20, 3) and length == 5 and not out[1].any()
    assert prep.apply(np.ones((3, 4, 20, 3)))[0].shape == (2, 5, 20, 3)  # a third person is dropped
    with pytest.raises(SampleError, match=r"25 joints, layout 'kinect20' has 20"):
        prep.apply(np.ones((4, 25, 3)))
    with pytest.raises(SampleError, match="2 channels per joint"):
        prep.apply(np.ones((4, 20, 2)))
    with pytest.raises(SampleError, match=r"a\.skeleton: is a ntu25 skeleton.*layout 'kinect20'"):
        prep.apply(RawSkeleton(np.ones((1, 4, 20, 3)), "a.skeleton", "ntu25"))
    with pytest.raises(SampleError, match=r"must be \(T, J, C\) or \(M, T, J, C\)"):
        prep.apply(np.ones((4, 20)))
    with pytest.raises(ValueError, match="no alignment axes"):
        Preprocessing("penn13", 4, align=True).apply(_penn_like())


def test_the_registered_file_readers_come_from_the_catalog() -> None:
    readers = file_readers()
    assert set(readers) == {NTUSkeletonSource, KineticsSource, UCLASource, PennActionSource, CustomSource}
    assert readers[-1] is CustomSource and all(r.suffixes and r.file_format for r in readers)


def test_a_source_without_a_preprocessing_is_refused() -> None:
    class Bare:
        dataset, layout = "demo", "ntu25"

        def load(self) -> None: ...

    with pytest.raises(TypeError, match="Bare is no SkeletonSource.*preprocessing"):
        preprocessing_record(Bare())  # type: ignore[arg-type]


def test_no_module_probes_a_source_for_its_preprocessing() -> None:
    """The record is read from ``source.preprocessing``, never assembled from attributes found by name."""
    for path in [*(SRC / "data").rglob("*.py"), SRC / "apps" / "recognize.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                target = node.args[0]
                assert not (isinstance(target, ast.Name) and target.id in ("source", "self")), (path, node.lineno)


def test_an_older_record_is_completed_by_the_reader_that_made_the_data() -> None:
    flat = {"layout": "penn13", "num_frames": 32, "temporal": "resample", "num_persons": 1, "channels": 3}
    penn = {
        "class_path": "purls_pl.data.readers.PennActionSource",
        "init_args": {"root": "x", "normalization": "image"},
    }
    done = recorded_preprocessing(flat, penn)
    assert (done.normalization, done.visibility, done.empty_frames, done.num_frames) == ("image", True, "ends", 32)
    assert done.reader is not None and done.reader.endswith("PennActionSource")
    kinetics = {"class_path": "purls_pl.data.readers.KineticsSource", "init_args": {"root": "x", "num_classes": 400}}
    flat_k = {
        "layout": "openpose18",
        "num_frames": 300,
        "temporal": "pad",
        "normalize_kinetics": True,
        "num_persons": 2,
    }
    assert recorded_preprocessing(flat_k, kinetics).normalization == "stgcn"  # an extra recorded attribute is dropped
    with pytest.warns(UserWarning, match="cannot be rebuilt"):
        kept = recorded_preprocessing(flat, {"class_path": "gone.Reader", "init_args": {}})
    assert kept == Preprocessing.from_mapping(flat)
    new = SOURCES["penn-action"]().preprocessing.to_mapping()
    assert recorded_preprocessing(new, {"class_path": "gone.Reader"}) == Preprocessing.from_mapping(new)  # not asked


def test_a_reader_of_whole_dataset_arrays_refuses_a_single_file(tmp_path):
    path = tmp_path / "clip.npy"
    with pytest.raises(SampleError, match=r"clip\.npy: NTUProcessedSource reads whole-dataset files, not one sample"):
        NTUProcessedSource.read_file(path, Preprocessing("ntu25"))
