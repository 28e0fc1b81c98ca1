"""NTU RGB+D readers: raw .skeleton parsing on the real samples in ../shared, processed formats on tiny fakes."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from purls_pl.data.layouts import NTU25
from purls_pl.data.readers import Conversion, NTUProcessedSource, NTUSkeletonSource
from purls_pl.data.readers._processed import load_label_pickle
from purls_pl.data.readers.ntu import (
    NTU60_TRAIN_SUBJECTS,
    NTU120_TRAIN_SUBJECTS,
    NTUSampleName,
    denoise_bodies,
    load_ntu_skeleton,
    ntu_partition,
    parse_ntu_skeleton,
    read_ntu_skeleton,
)

NTU_DIR = SHARED / "data" / "ntu-samples"


@pytest.fixture(scope="module")
def ntu_files() -> list[Path]:
    files = sorted(NTU_DIR.glob("*.skeleton"))
    if not files:
        pytest.skip(f"real NTU samples not found in {NTU_DIR}")
    return files


def _parse_text(path: Path) -> tuple[int, list[list[str]], dict[tuple[int, int, int], list[float]]]:
    """Independent reading of the raw text: frame count, body ids per frame, (frame, body, joint) -> x, y, z."""
    lines = path.read_text().splitlines()  # LF or CRLF
    num_frames, i = int(lines[0]), 1
    ids: list[list[str]] = []
    xyz: dict[tuple[int, int, int], list[float]] = {}
    for f in range(num_frames):
        count, i = int(lines[i]), i + 1
        ids.append([])
        for b in range(count):
            ids[f].append(lines[i].split()[0])  # the body's info line starts with its id
            num_joints, i = int(lines[i + 1]), i + 2
            for j in range(num_joints):
                xyz[f, b, j] = [float(v) for v in lines[i + j].split()[:3]]
            i += num_joints
    assert i == len(lines), "the test's own parse must consume the whole file"
    return num_frames, ids, xyz


def test_parse_every_real_sample(ntu_files: list[Path]) -> None:
    assert len(ntu_files) == 12
    for path in ntu_files:
        frames = read_ntu_skeleton(path)
        num_frames, ids, xyz = _parse_text(path)
        assert len(frames) == num_frames
        assert [[body for body, _ in f] for f in frames] == ids  # body count and ids per frame
        assert all(j.shape == (25, 3) and j.dtype == np.float32 for f in frames for _, j in f)
        last = max(k for k in xyz if k[2] == 0)  # the last frame's last body
        for f, b, j in ((0, 0, 0), (num_frames // 2, 0, 11), (last[0], last[1], 24)):
            np.testing.assert_allclose(frames[f][b][1][j], xyz[f, b, j], rtol=1e-6, err_msg=f"{path.name} {f, b, j}")
        seq = load_ntu_skeleton(path)
        assert seq.shape[0] == 2 and seq.shape[2:] == (25, 3)
        assert 0 < seq.shape[1] <= len(frames)
        assert np.isfinite(seq).all() and np.abs(seq[0]).sum() > 0
        two_person = NTUSampleName.parse(path.name).action >= 50
        assert (np.abs(seq[1]).sum() > 0) == two_person, path.name
        if two_person:  # the second actor is present in most frames
            assert (np.abs(seq[1]).sum(axis=(1, 2)) > 0).mean() > 0.5


def test_crlf_and_lf_parse_identically(ntu_files: list[Path], tmp_path: Path) -> None:
    crlf = [p for p in ntu_files if b"\r\n" in p.read_bytes()]
    lf = [p for p in ntu_files if b"\r\n" not in p.read_bytes()]
    assert len(crlf) == 5 and len(lf) == 7
    for src, convert in ((crlf[0], lambda b: b.replace(b"\r\n", b"\n")), (lf[0], lambda b: b.replace(b"\n", b"\r\n"))):
        other = tmp_path / src.name
        other.write_bytes(convert(src.read_bytes()))
        np.testing.assert_array_equal(load_ntu_skeleton(src), load_ntu_skeleton(other))


def test_sample_name_parsing() -> None:
    n = NTUSampleName.parse("some/dir/S017C003P020R002A058.skeleton")
    assert (n.setup, n.camera, n.subject, n.replication, n.action, n.label) == (17, 3, 20, 2, 58, 57)
    with pytest.raises(ValueError, match="SsssCcccPpppRrrrAaaa"):
        NTUSampleName.parse("clip_01.skeleton")


def test_protocol_partitions() -> None:
    assert len(NTU60_TRAIN_SUBJECTS) == 20 and len(NTU120_TRAIN_SUBJECTS) == 53
    assert len(set(NTU120_TRAIN_SUBJECTS)) == 53 and max(NTU120_TRAIN_SUBJECTS) == 103
    n = NTUSampleName(setup=4, camera=1, subject=45, replication=1, action=3)
    assert ntu_partition(n, "ntu60", "xsub") == "test"
    assert ntu_partition(n, "ntu120", "xsub") == "train"
    assert ntu_partition(n, "ntu60", "xview") == "test"
    assert ntu_partition(n, "ntu120", "xset") == "train"
    assert ntu_partition(NTUSampleName(3, 2, 1, 1, 1), "ntu120", "xset") == "test"
    assert ntu_partition(n, "ntu60", "all") == "train"


def test_source_on_real_samples(ntu_files: list[Path], tmp_path: Path) -> None:
    s = NTUSkeletonSource(
        str(NTU_DIR), dataset="ntu60", protocol="xsub", conversion=Conversion(cache_dir=str(tmp_path))
    ).load()
    assert s.data.shape == (12, 2, 300, 25, 3) and s.layout == "ntu25" and len(s.class_names) == 60
    assert s.sample_ids == [p.stem for p in ntu_files]
    assert s.labels.tolist() == [NTUSampleName.parse(p.name).label for p in ntu_files]
    subjects = s.meta["subject"]
    assert ((s.partition == "train") == np.isin(subjects, NTU60_TRAIN_SUBJECTS)).all()
    assert (s.lengths > 0).all() and (s.lengths <= 300).all()
    assert not s.data[np.arange(12), :, s.lengths].any()  # zero padding after each sequence
    # align=True: the first frame's right->left shoulder bone lies along +x
    bone = s.data[:, 0, 0, 4] - s.data[:, 0, 0, 8]
    np.testing.assert_allclose(bone[:, 1:], 0, atol=1e-5)
    assert (bone[:, 0] > 0).all()
    plain = NTUSkeletonSource(
        str(NTU_DIR), align=False, num_frames=50, temporal="resample", conversion=Conversion(cache=False)
    ).load()
    assert plain.data.shape == (12, 2, 50, 25, 3)
    np.testing.assert_allclose(plain.data[:, 0, 0, NTU25.center], 0, atol=1e-6)  # centered on the layout center


def test_missing_skeleton_files_are_skipped_and_ignore_list(ntu_files: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    for p in ntu_files[:3]:
        (root / p.name).symlink_to(p)
    (root / "S001C002P005R002A008.skeleton").write_text("3\n0\n0\n0\n")
    (tmp_path / "ignore.txt").write_text(f"# comment\n{ntu_files[1].stem}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = NTUSkeletonSource(
            str(root), ignore_list=str(tmp_path / "ignore.txt"), conversion=Conversion(cache=False)
        ).load()
    assert s.sample_ids == [ntu_files[0].stem, ntu_files[2].stem]
    assert any("S001C002P005R002A008" in str(w.message) for w in caught)


def test_errors_name_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope.*\.skeleton.*rose1\.ntu\.edu\.sg"):
        NTUSkeletonSource(str(tmp_path / "nope")).load()
    bad = tmp_path / "S001C001P001R001A001.skeleton"
    bad.write_text("1\n1\n72057594037932185 0 1 1 1 1 0 0.1 0.2 2\n24\n")
    with pytest.raises(ValueError, match=r"S001C001P001R001A001\.skeleton.*body 1 of frame 1.*joint count is 24"):
        read_ntu_skeleton(bad)
    with pytest.raises(ValueError, match="protocol"):
        NTUSkeletonSource(str(tmp_path), protocol="cross-age")


def _body(body_id: str, first: list[str]) -> str:
    joints = [" ".join(first if j == 0 else ["0.1", "0.2", "3.0"]) + " 0 0 0 0 0 0 0 0 2" for j in range(25)]
    return "\n".join([f"{body_id} 0 1 1 1 1 0 0.1 0.2 2", "25", *joints])


@pytest.mark.parametrize(
    ("first", "problem"),
    [(["0.1", "x0.5", "3"], r"a coordinate is 'x0\.5', not a number"), (["0.1", "inf", "3"], r"joint 1 .*NaN/inf")],
)
def test_bad_coordinate_is_located_at_its_body(tmp_path: Path, first: list[str], problem: str) -> None:
    good = ["0.1", "0.2", "3.0"]
    text = "\n".join(["2", "1", _body("7", good), "2", _body("7", good), _body("8", first)]) + "\n"
    bad = tmp_path / "S001C001P001R001A050.skeleton"
    bad.write_text(text)
    with pytest.raises(ValueError, match=rf"A050\.skeleton.*body 2 of frame 2: {problem}.*re-extract"):
        parse_ntu_skeleton(bad)
    bad.write_text(text.replace(" ".join(first), " ".join(good)))
    parsed = parse_ntu_skeleton(bad)  # the repaired file: 3 body instances over 2 frames
    assert parsed.num_frames == 2 and parsed.body_ids == ["7", "7", "8"]
    assert parsed.frames.tolist() == [0, 1, 1] and parsed.joints.shape == (3, 25, 3)
    np.testing.assert_allclose(parsed.joints[2, 0], [0.1, 0.2, 3.0], rtol=1e-6)


def test_denoise_bodies() -> None:
    rng = np.random.default_rng(0)
    upright = np.zeros((40, 25, 3), np.float32)
    upright[:, :, 1] = np.linspace(0, 1.6, 25)  # tall and thin: spread ok
    still = upright + rng.normal(0, 0.001, upright.shape).astype(np.float32)
    moving = upright + rng.normal(0, 0.2, upright.shape).astype(np.float32) * [0.1, 1, 1]
    flat = still.copy()
    flat[:, :, 0] = np.linspace(0, 3, 25)  # wider than tall in every frame: noise
    frames = np.arange(40)
    out = denoise_bodies(
        {"short": (still[:5], frames[:5]), "still": (still, frames), "moving": (moving, frames), "flat": (flat, frames)}
    )
    assert [k for k, _, _ in out] == ["moving", "still"]


def _write_ctrgcn(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {"x_train": rng.normal(size=(3, 20, 150)).astype(np.float32), "x_test": rng.normal(size=(2, 20, 150))}
    arrays["x_train"][0, 12:] = 0  # a sequence of 12 frames
    arrays["y_train"] = np.eye(60)[[0, 5, 59]]
    arrays["y_test"] = np.eye(60)[[1, 2]]
    np.savez_compressed(path, **arrays)
    return arrays


def test_ctrgcn_npz(tmp_path: Path) -> None:
    arrays = _write_ctrgcn(tmp_path / "NTU60_CS.npz", np.random.default_rng(1))
    s = NTUProcessedSource(
        str(tmp_path), dataset="ntu60", protocol="xsub", conversion=Conversion(cache_dir=str(tmp_path / "c"))
    ).load()
    assert s.data.shape == (5, 2, 20, 25, 3)
    assert s.labels.tolist() == [0, 5, 59, 1, 2] and s.partition.tolist() == ["train"] * 3 + ["test"] * 2
    assert s.lengths.tolist() == [12, 20, 20, 20, 20]
    x = np.concatenate([arrays["x_train"], arrays["x_test"]]).astype(np.float32)
    i, m, t, j, c = 3, 1, 7, 11, 2
    assert s.data[i, m, t, j, c] == x[i, t, m * 75 + j * 3 + c]
    sub = NTUProcessedSource(
        str(tmp_path / "NTU60_CS.npz"),
        num_frames=8,
        temporal="resample",
        conversion=Conversion(max_samples=2, cache=False),
    ).load()
    assert sub.data.shape == (2, 2, 8, 25, 3)


def test_stgcn_npy_pkl(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "xview"
    folder.mkdir()
    data = {}
    for split, n in (("train", 3), ("val", 2)):
        data[split] = rng.normal(size=(n, 3, 16, 25, 2)).astype(np.float32)
        np.save(folder / f"{split}_data_joint.npy", data[split])
        names = [f"S001C00{k + 1}P001R001A00{k + 1}.skeleton" for k in range(n)]
        with open(folder / f"{split}_label.pkl", "wb") as f:
            pickle.dump((names, [k for k in range(n)]), f)
    s = NTUProcessedSource(str(tmp_path), protocol="xview", format="stgcn", conversion=Conversion(cache=False)).load()
    assert s.data.shape == (5, 2, 16, 25, 3) and s.sample_ids[0] == "S001C001P001R001A001"
    assert s.meta["camera"].tolist() == [1, 2, 3, 1, 2]
    assert s.data[4, 1, 5, 7, 0] == data["val"][1, 0, 5, 7, 1]


def test_label_pickle_refuses_classes(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "train_label.pkl"
    path.write_bytes(pickle.dumps((["a"], [Evil()])))
    with pytest.raises(ValueError, match=r"train_label\.pkl.*refusing"):
        load_label_pickle(path)
    path.write_bytes(pickle.dumps((["a", "b"], [np.int64(3), 4])))
    assert load_label_pickle(path) == (["a", "b"], [3, 4])
    with pytest.raises(FileNotFoundError, match="NTU60_CS.npz"):
        NTUProcessedSource(str(tmp_path / "missing")).load()
