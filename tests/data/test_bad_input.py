"""Bad input, per reader: each broken file raises an error naming it, the problem and the fix, or with
``on_error="skip"`` is left out and listed in one report (``source.skipped``, the cache manifest).

The broken files are made in tmp_path from copies of the real samples in ../shared.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from purls_pl.data.cache import read_manifest
from purls_pl.data.readers import Conversion, CustomSource, KineticsSource, NTUSkeletonSource, SampleError, UCLASource
from purls_pl.data.readers.custom import write_custom_dataset
from purls_pl.data.skeletons import SkeletonSet

# --- helpers -----------------------------------------------------------------------------------------


def _load_skip(source) -> tuple[SkeletonSet, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = source.load()
    return s, [w for w in caught if "file(s) skipped:" in str(w.message)]


def _assert_reported(source, reports: list, expected: dict[str, str]) -> None:
    """One warning lists every skipped file with its reason; ``source.skipped`` holds the same."""
    assert len(reports) == 1, [str(w.message) for w in reports]
    text = str(reports[0].message)
    got = {Path(s.path).name: s.reason for s in source.skipped}
    assert set(got) == set(expected), got
    for name, pattern in expected.items():
        assert name in text
        assert re.search(pattern, got[name]), (name, got[name])


# --- NTU RGB+D .skeleton -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ntu_good() -> list[Path]:
    root = shared_path("data", "ntu-samples")
    lf = [p for p in sorted(root.glob("*.skeleton")) if b"\r\n" not in p.read_bytes()]
    return lf[:2]


def _ntu_lines(src: Path) -> list[str]:
    return src.read_text().split("\n")


def _ntu_bad_files(root: Path, src: Path) -> dict[str, str]:
    """Broken copies of ``src`` under new sample names -> the reason pattern each must get."""
    text = src.read_text()
    lines = _ntu_lines(src)
    (root / "S001C001P001R001A002.skeleton").write_text(text[: len(text) // 2])  # truncated
    wrong = lines.copy()
    wrong[3] = "24"  # line 4 is the first body's joint count
    (root / "S001C001P001R001A003.skeleton").write_text("\n".join(wrong))
    nan = lines.copy()
    nan[4] = "nan " + " ".join(nan[4].split()[1:])  # first joint's x
    (root / "S001C001P001R001A004.skeleton").write_text("\n".join(nan))
    (root / "S001C001P001R001A005.skeleton").write_text("0\n")  # 0 frames
    (root / "S001C001P001R001A006.skeleton").write_text("2\n0\n0\n")  # no body: always left out
    (root / "clip_01.skeleton").write_text(text)  # not an NTU sample name
    return {
        "S001C001P001R001A002.skeleton": "truncated",
        "S001C001P001R001A003.skeleton": "joint count is 24",
        "S001C001P001R001A004.skeleton": "NaN",
        "S001C001P001R001A005.skeleton": "frame count is 0",
        "S001C001P001R001A006.skeleton": "no skeleton in any frame",
        "clip_01.skeleton": "not an NTU sample name",
    }


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("S001C001P001R001A002.skeleton", r"truncated"),
        ("S001C001P001R001A003.skeleton", r"body 1 of frame 1: joint count is 24, expected 25"),
        ("S001C001P001R001A004.skeleton", r"joint 1 has x, y, z = \[nan.*NaN/inf coordinates"),
        ("S001C001P001R001A005.skeleton", r"frame count is 0 \(an empty sequence\)"),
        ("clip_01.skeleton", r"not an NTU sample name"),
    ],
)
def test_ntu_raise_names_file_problem_and_fix(ntu_good, tmp_path: Path, name: str, pattern: str) -> None:
    scratch = tmp_path / "all"
    scratch.mkdir()
    _ntu_bad_files(scratch, ntu_good[0])
    root = tmp_path / "raw"
    root.mkdir()
    shutil.copy(ntu_good[0], root)
    shutil.move(scratch / name, root / name)
    with pytest.raises(SampleError, match=rf"{name}: .*{pattern}.*; .*(re-extract|rename).*on_error='skip'"):
        NTUSkeletonSource(str(root), conversion=Conversion(cache=False)).load()


def test_ntu_skip_reports_every_bad_file_and_keeps_the_rest(ntu_good, tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    for p in ntu_good:
        shutil.copy(p, root)
    expected = _ntu_bad_files(root, ntu_good[0])
    source = NTUSkeletonSource(
        str(root),
        num_frames=32,
        conversion=Conversion(cache_dir=str(tmp_path / "cache"), on_error="skip"),
    )
    s, reports = _load_skip(source)
    assert s.sample_ids == [p.stem for p in ntu_good] and s.data.shape == (2, 2, 32, 25, 3)
    _assert_reported(source, reports, expected)
    assert {x.kind for x in source.skipped if "A006" in x.path} == {"excluded"}
    good = NTUSkeletonSource(str(ntu_good[0].parent), num_frames=32, conversion=Conversion(cache=False)).load()
    np.testing.assert_array_equal(s.data, good.subset([good.sample_ids.index(i) for i in s.sample_ids]).data)
    # the list is in the cache manifest, and a cache hit restores it without a second warning
    entry = next(p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))
    manifest = read_manifest(entry)
    assert {Path(d["path"]).name for d in manifest["skipped"]} == set(expected)
    again = NTUSkeletonSource(
        str(root),
        num_frames=32,
        conversion=Conversion(cache_dir=str(tmp_path / "cache"), on_error="skip"),
    )
    _, reports = _load_skip(again)
    assert not reports and [x.path for x in again.skipped] == [x.path for x in source.skipped]
    # on_error="raise" does not silently take the entry that skipped bad files
    (root / "clip_01.skeleton").unlink()  # (a bad name is found before the cache is consulted)
    with pytest.raises(SampleError, match=r"built with on_error='skip'"):
        NTUSkeletonSource(str(root), num_frames=32, conversion=Conversion(cache_dir=str(tmp_path / "cache"))).load()


def test_failed_build_keeps_the_existing_cache(ntu_good, tmp_path: Path) -> None:
    root, cache = tmp_path / "raw", tmp_path / "cache"
    root.mkdir()
    for p in ntu_good:
        shutil.copy(p, root)
    first = NTUSkeletonSource(str(root), num_frames=16, conversion=Conversion(cache_dir=str(cache))).load()
    before = {p.name: read_manifest(p)["created"] for p in cache.iterdir()}
    (root / "S001C001P001R001A009.skeleton").write_text(ntu_good[0].read_text()[:5000])
    with pytest.raises(SampleError, match="A009"):
        NTUSkeletonSource(str(root), num_frames=16, conversion=Conversion(cache_dir=str(cache))).load()
    assert {p.name: read_manifest(p)["created"] for p in cache.iterdir()} == before  # untouched, no leftovers
    (root / "S001C001P001R001A009.skeleton").unlink()
    again = NTUSkeletonSource(str(root), num_frames=16, conversion=Conversion(cache_dir=str(cache))).load()
    np.testing.assert_array_equal(again.data, first.data)
    assert len(list(cache.iterdir())) == 1


def test_ntu_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope does not exist.*SsssCcccPpppRrrrAaaa"):
        NTUSkeletonSource(str(tmp_path / "nope")).load()
    (tmp_path / "S001C001P001R001A001.skeleton").write_text("1\n0\n")
    with pytest.raises(FileNotFoundError, match=r"ignore_list .*missing\.txt does not exist.*drop the ignore_list"):
        NTUSkeletonSource(str(tmp_path), ignore_list=str(tmp_path / "missing.txt")).load()
    with pytest.raises(ValueError, match="on_error must be"):
        NTUSkeletonSource(str(tmp_path), conversion=Conversion(on_error="ignore"))  # type: ignore[arg-type]


# --- Kinetics json -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kinetics_good() -> tuple[list[Path], dict]:
    root = shared_path("data", "kinetics-samples")
    clips = sorted(p for p in root.glob("*.json") if not p.name.endswith("_label.json"))[:2]
    labels = json.loads((root / "kinetics_val_label.json").read_text())
    return clips, labels


def test_kinetics_bad_clips(kinetics_good, tmp_path: Path) -> None:
    clips, labels = kinetics_good
    root = tmp_path / "kin"
    root.mkdir()
    for p in clips:
        shutil.copy(p, root)
    info = json.loads(clips[0].read_text())
    person = next(f for f in info["data"] if f["skeleton"])["skeleton"][0]
    bad: dict[str, tuple[str, object]] = {}
    (root / "truncated.json").write_text(clips[0].read_text()[:3000])
    bad["truncated.json"] = ("not an st-gcn Kinetics clip json", None)
    short = {**info, "data": [{"frame_index": 1, "skeleton": [{**person, "pose": person["pose"][:34]}]}]}
    bad["joints.json"] = ("'pose' has 34 values .* expected 36", short)
    nan = {**info, "data": [{"frame_index": 1, "skeleton": [{**person, "pose": [float("nan")] * 36}]}]}
    bad["nan.json"] = ("NaN/inf", nan)
    bad["empty.json"] = (r"'data' is empty \(0 frames\)", {**info, "data": []})
    bad["nobody.json"] = ("no person in any frame", {**info, "data": [{"frame_index": 1, "skeleton": []}]})
    bad["unlabelled.json"] = ("has no entry in kinetics_val_label.json", info)
    for name, (_, content) in bad.items():
        if content is not None:
            (root / name).write_text(json.dumps(content))
    table = {p.stem: labels[p.stem] for p in clips}
    table.update({Path(n).stem: labels[clips[0].stem] for n in bad if n != "unlabelled.json"})
    (root / "kinetics_val_label.json").write_text(json.dumps(table))
    for name, (pattern, _) in bad.items():  # raise: one at a time, the first bad clip in sorted order
        only = tmp_path / f"only-{name}"
        only.mkdir()
        shutil.copy(root / name, only)
        (only / "kinetics_val_label.json").write_text(json.dumps(table))
        with pytest.raises(SampleError, match=rf"{name}: .*{pattern}.*; .*on_error='skip'"):
            KineticsSource(str(only), conversion=Conversion(cache=False)).load()
    source = KineticsSource(
        str(root),
        num_frames=50,
        conversion=Conversion(on_error="skip", cache=False),
    )
    s, reports = _load_skip(source)
    assert s.sample_ids == [p.stem for p in clips]
    _assert_reported(source, reports, {n: p for n, (p, _) in bad.items()})


# --- NW-UCLA json ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ucla_dir() -> Path:
    return shared_path("data", "nw-ucla", "all_sqe")


def test_ucla_bad_files_and_single_frame_kept(ucla_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "ucla"
    root.mkdir()
    good = ["a01_s01_e00_v01.json", "a02_s09_e04_v02.json"]  # the second is a real 1-frame sequence
    for name in good:
        shutil.copy(ucla_dir / name, root)
    info = json.loads((ucla_dir / good[0]).read_text())

    def write(name: str, skeletons: object) -> None:
        (root / name).write_text(json.dumps({"file_name": name[:-5], "skeletons": skeletons}))

    (root / "a01_s01_e01_v01.json").write_text((ucla_dir / good[0]).read_text()[:4000])
    write("a01_s01_e02_v01.json", [frame[:19] for frame in info["skeletons"]])
    nan_frames = json.loads(json.dumps(info["skeletons"]))
    nan_frames[3][7][2] = float("inf")
    write("a01_s01_e03_v01.json", nan_frames)
    write("a01_s01_e04_v01.json", [])
    expected = {
        "a01_s01_e01_v01.json": "cannot read field 'skeletons'",
        "a01_s01_e02_v01.json": r"shape \(\d+, 19, 3\); expected \(T >= 1, 20 joints, 3\)",
        "a01_s01_e03_v01.json": r"inf at index \(3, 7, 2\) \(NaN/inf coordinates\)",
        "a01_s01_e04_v01.json": r"0 frames \(an empty sequence\)",
        "a07_s01_e00_v01.json": "action a07 is not an NW-UCLA action",
    }
    with pytest.raises(SampleError, match=r"a01_s01_e01_v01\.json: cannot read.*re-extract.*on_error='skip'"):
        UCLASource(str(root), conversion=Conversion(cache=False)).load()
    shutil.copy(ucla_dir / good[0], root / "a07_s01_e00_v01.json")
    with pytest.raises(SampleError, match=r"a07_s01_e00_v01\.json: action a07 is not an NW-UCLA action.*; rename"):
        UCLASource(str(root), conversion=Conversion(cache=False)).load()
    source = UCLASource(
        str(root),
        conversion=Conversion(on_error="skip", cache=False),
    )
    s, reports = _load_skip(source)
    assert s.sample_ids == [g[:-5] for g in good] and s.meta["raw_frames"].tolist()[1] == 1
    assert s.lengths.tolist() == [52, 52] and np.abs(s.data[1]).sum() > 0
    _assert_reported(source, reports, expected)
    for name, pattern in expected.items():
        if not name.startswith("a07"):
            only = tmp_path / name
            only.mkdir()
            shutil.copy(root / name, only)
            with pytest.raises(SampleError, match=rf"{name}: .*{pattern}"):
                UCLASource(str(only), conversion=Conversion(cache=False)).load()


# --- custom .npy + index.csv ---------------------------------------------------------------------------


def test_custom_bad_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = {k: rng.normal(size=(6, 25, 3)) for k in ("good", "trunc", "joints", "nan", "empty", "zero", "chan")}
    labels = dict.fromkeys(samples, "wave") | {"alien": "fly"}
    samples["alien"] = rng.normal(size=(6, 25, 3))
    root = write_custom_dataset(tmp_path / "set", samples, labels, "ntu25", classes=["wave", "jump"])
    (root / "trunc.npy").write_bytes((root / "trunc.npy").read_bytes()[:200])
    np.save(root / "joints.npy", rng.normal(size=(6, 24, 3)))
    arr = rng.normal(size=(6, 25, 3))
    arr[2, 3, 1] = np.nan
    np.save(root / "nan.npy", arr)
    np.save(root / "empty.npy", np.zeros((0, 25, 3)))
    np.save(root / "zero.npy", np.zeros((5, 25, 3)))
    np.save(root / "chan.npy", rng.normal(size=(6, 25, 2)))
    with open(root / "index.csv", "a") as f:
        f.write("gone,wave,train\nbadsplit,wave,val\n")
    expected = {
        "trunc.npy": "not a readable .npy array",
        "joints.npy": r"shape \(1, 6, 24, 3\).*J = 25",
        "nan.npy": r"nan at index \(0, 2, 3, 1\)",
        "empty.npy": r"0 frames .*empty sequence",
        "zero.npy": "no non-zero joint",
        "chan.npy": "C = 2 channels but good.npy has 3",
        "alien.npy": "label 'fly' .* is not a class of",
        "gone.npy": "does not exist",
        "index.csv, line 11": "split is 'val'",
    }
    source = CustomSource(
        str(root),
        layout="ntu25",
        num_frames=8,
        conversion=Conversion(on_error="skip", cache=False),
    )
    s, reports = _load_skip(source)
    assert s.sample_ids == ["good"] and s.class_names == ["wave", "jump"]
    _assert_reported(source, reports, expected)
    with pytest.raises(SampleError, match=r"index\.csv, line 11: split is 'val'; use 'train' or 'test'"):
        CustomSource(str(root), layout="ntu25", conversion=Conversion(cache=False)).load()
    (root / "index.csv").write_text("sample_id,label\ngood,wave\ngone,wave\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.npy: is listed in index\.csv but does not exist; add"):
        CustomSource(str(root), layout="ntu25", conversion=Conversion(cache=False)).load()
    for name in ("trunc", "joints", "nan", "empty", "zero", "alien"):
        (root / "index.csv").write_text(f"sample_id,label\n{name},{labels[name]}\n")
        with pytest.raises(SampleError, match=rf"{name}\.npy: .*{expected[name + '.npy']}"):
            CustomSource(str(root), layout="ntu25", conversion=Conversion(cache=False)).load()
