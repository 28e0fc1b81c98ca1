"""NTU RGB+D 60 / 120 skeletons: the raw ``.skeleton`` files and the common processed arrays.

Raw files (``nturgbd_skeletons_s001_to_s017.zip`` = NTU-60, plus ``..._s018_to_s032.zip`` for
NTU-120, from the ROSE lab, https://rose1.ntu.edu.sg/dataset/actionRecognition/) are named
``SsssCcccPpppRrrrAaaa.skeleton`` (setup, camera, performer/subject, replication, action) and hold::

    <frame count>
    per frame: <body count>
      per body: <10 info fields: bodyID clippedEdges handLeftConfidence handLeftState
                 handRightConfidence handRightState isRestricted leanX leanY trackingState>
                <joint count = 25>
                25 x <x y z depthX depthY colorX colorY orientationW/X/Y/Z trackingState>

:func:`load_ntu_skeleton` keeps x, y, z and applies the standard multi-body denoising of
SGN / CTR-GCN (``get_raw_skes_data.py`` + ``get_raw_denoised_data.py``): frames with no body are
dropped; with several body IDs, bodies seen in <= 11 frames are dropped, then bodies whose
x-spread exceeds 0.8 x their y-spread in >= 69.754 % of their frames; the rest are ranked by
motion (summed joint variance) and packed into two actor slots by interval overlap; frames where
both slots are empty are dropped. (One deliberate difference: a body that disappears and
reappears keeps its true frame positions instead of being packed contiguously.)

Files with no body in any frame (NTU's published "samples with missing skeletons": 302 in NTU-60,
535 in NTU-120) are detected by content, skipped and reported in one warning; an optional
``ignore_list`` file (one sample name per line) skips more.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from purls_pl.data.cache import (
    SourceBase,
    allocate,
    array_shape,
    fill_processed,
    find_stgcn_files,
    iter_array_rows,
    load_label_pickle,
    missing_root_error,
    pick_evenly,
)
from purls_pl.data.preprocess import check_temporal, preprocess_sequence
from purls_pl.data.skeletons import SkeletonSet
from purls_pl.data.splits import class_names

__all__ = [
    "NTU60_TRAIN_SUBJECTS",
    "NTU120_TRAIN_SUBJECTS",
    "XVIEW_TRAIN_CAMERAS",
    "NTUProcessedSource",
    "NTUSampleName",
    "NTUSkeletonSource",
    "denoise_bodies",
    "load_ntu_skeleton",
    "ntu_partition",
    "read_ntu_skeleton",
]

#: Cross-subject training performers (Shahroudy et al. CVPR 2016; the other 20 are test).
NTU60_TRAIN_SUBJECTS: tuple[int, ...] = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
#: NTU-120 cross-subject training performers (Liu et al. TPAMI 2019), 53 of 106.
NTU120_TRAIN_SUBJECTS: tuple[int, ...] = (
    *NTU60_TRAIN_SUBJECTS,
    *(45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93),
    *(94, 95, 97, 98, 100, 103),
)
#: Cross-view: cameras 2 and 3 train, camera 1 tests. Cross-setup: even setup ids train.
XVIEW_TRAIN_CAMERAS: tuple[int, ...] = (2, 3)
PROTOCOLS = {
    "xsub": "xsub",
    "csub": "xsub",
    "cs": "xsub",
    "xview": "xview",
    "cv": "xview",
    "xset": "xset",
    "cset": "xset",
    "all": "all",
}
NOISE_LEN_THRES, NOISE_SPR_THRES1, NOISE_SPR_THRES2 = 11, 0.8, 0.69754
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_READER_VERSION = 1
HOW_TO_GET_RAW = (
    "Request 'NTU RGB+D' (and '120') from the ROSE lab, https://rose1.ntu.edu.sg/dataset/actionRecognition/, "
    "then unzip nturgbd_skeletons_s001_to_s017.zip (NTU-60; add nturgbd_skeletons_s018_to_s032.zip for NTU-120) "
    "so the .skeleton files lie in <root> or one folder below it."
)


@dataclass(frozen=True)
class NTUSampleName:
    """The fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (all 1-based)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class index (``action - 1``)."""
        return self.action - 1

    @classmethod
    def parse(cls, name: str) -> NTUSampleName:
        """Parse a name or path such as ``S001C002P003R002A013.skeleton``."""
        m = _NAME.search(Path(name).name)
        if m is None:
            raise ValueError(
                f"{name!r} is not an NTU sample name; expected SsssCcccPpppRrrrAaaa (e.g. "
                "S001C002P003R002A013.skeleton); rename the file or remove it from the folder"
            )
        return cls(*(int(g) for g in m.groups()))


def read_ntu_skeleton(path: str | Path) -> list[list[tuple[str, np.ndarray]]]:
    """Parse one raw ``.skeleton`` file (LF or CRLF).

    Returns:
        Per frame, a list of ``(body_id, joints)`` with ``joints`` ``(25, 3)`` float32 x, y, z.
    """
    path = Path(path)
    tokens = path.read_bytes().split()
    pos, where = 0, "frame count (line 1)"
    frames: list[list[tuple[str, np.ndarray]]] = []
    try:
        num_frames = int(tokens[0])
        pos = 1
        for f in range(num_frames):
            where = f"body count of frame {f + 1}"
            bodies = []
            num_bodies, pos = int(tokens[pos]), pos + 1
            for b in range(num_bodies):
                where = f"body {b + 1} of frame {f + 1}"
                body_id = tokens[pos].decode()
                num_joints = int(tokens[pos + 10])
                if num_joints != 25:
                    raise ValueError(f"joint count is {num_joints}, expected 25")
                pos += 11
                values = np.array(tokens[pos : pos + 25 * 12], dtype=np.float32)
                if values.size != 25 * 12:
                    raise ValueError("file ends inside the joint block")
                bodies.append((body_id, values.reshape(25, 12)[:, :3].copy()))
                pos += 25 * 12
            frames.append(bodies)
    except (IndexError, ValueError) as err:
        raise ValueError(
            f"{path}: malformed NTU .skeleton file at the {where}: {err}. Re-extract this file from "
            "the nturgbd_skeletons_*.zip archive, or list it in the ignore_list file"
        ) from None
    return frames


def _motion(joints: np.ndarray) -> float:
    return float(np.sum(np.var(joints.reshape(-1, 3), axis=0)))


def denoise_bodies(bodies: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """SGN / CTR-GCN body denoising; returns the kept bodies, most motion first.

    Args:
        bodies: body id -> (``(n, 25, 3)`` joints, ``(n,)`` frame indices), in first-seen order.
    """
    items = list(bodies.items())
    if len(items) <= 1:
        return [(k, j, f) for k, (j, f) in items]
    kept = {k: v for k, v in items if len(v[1]) > NOISE_LEN_THRES}
    if not kept:  # the reference would fail here; keep the longest body
        k, v = max(items, key=lambda kv: len(kv[1][1]))
        kept = {k: v}
    if len(kept) == 1:
        return [(k, j, f) for k, (j, f) in kept.items()]
    motion = {k: _motion(j) for k, (j, _) in kept.items()}
    for k in list(kept):
        if len(kept) == 1:
            break
        joints = kept[k][0]
        spread_ok = np.ptp(joints[:, :, 0], axis=1) <= NOISE_SPR_THRES1 * np.ptp(joints[:, :, 1], axis=1)
        noisy = int((~spread_ok).sum())
        if noisy == 0:
            continue
        if noisy / len(joints) >= NOISE_SPR_THRES2:
            del kept[k]
        else:
            motion[k] = min(motion[k], _motion(joints[spread_ok]))
    order = sorted(kept, key=lambda k: motion[k], reverse=True)
    return [(k, *kept[k]) for k in order]


def load_ntu_skeleton(path: str | Path, max_persons: int = 2) -> np.ndarray:
    """Read, denoise and assemble one sample.

    Returns:
        ``(max_persons, T, 25, 3)`` float32; ``T`` counts the frames holding a kept body
        (``T = 0`` for a file with no body at all).
    """
    frames = read_ntu_skeleton(path)
    collected: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    t = 0
    for bodies in frames:
        if not bodies:
            continue
        for body_id, joints in bodies:
            js, fs = collected.setdefault(body_id, ([], []))
            js.append(joints)
            fs.append(t)
        t += 1
    bodies_arr = {k: (np.stack(js), np.asarray(fs)) for k, (js, fs) in collected.items()}
    ranked = denoise_bodies(bodies_arr)
    out = np.zeros((max_persons, t, 25, 3), dtype=np.float32)
    slots = [(0, 0)] * max_persons
    for i, (_, joints, idx) in enumerate(ranked):
        start, end = int(idx[0]), int(idx[-1])
        for s, (s0, s1) in enumerate(slots):
            if i == 0 or min(s1, end) - max(s0, start) <= 0:
                out[s, idx] = joints
                slots[s] = (start, end) if i == 0 else (min(start, s0), max(end, s1))
                break
    keep = out.any(axis=(0, 2, 3))
    return out[:, keep]


def ntu_partition(name: NTUSampleName, dataset: str, protocol: str) -> str:
    """``"train"`` or ``"test"`` for ``protocol`` ``xsub`` / ``xview`` / ``xset`` / ``all`` (every sample train)."""
    protocol = PROTOCOLS[protocol]
    if protocol == "xsub":
        train = name.subject in (NTU60_TRAIN_SUBJECTS if dataset == "ntu60" else NTU120_TRAIN_SUBJECTS)
    elif protocol == "xview":
        train = name.camera in XVIEW_TRAIN_CAMERAS
    elif protocol == "xset":
        train = name.setup % 2 == 0
    else:
        train = True
    return "train" if train else "test"


def check_dataset_protocol(dataset: str, protocol: str) -> str:
    """Validate ``dataset`` / ``protocol`` and return the canonical protocol name."""
    if dataset not in ("ntu60", "ntu120"):
        raise ValueError(f"dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(set(PROTOCOLS.values()))}, got {protocol!r}")
    return PROTOCOLS[protocol]


def _read_names(path: Path) -> set[str]:
    return {
        Path(line.strip()).name.removesuffix(".skeleton")
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def _process(
    path: Path, *, max_persons: int, num_frames: int, temporal: str, center: bool, align: bool, per_person: bool
) -> tuple[np.ndarray | None, int]:
    seq = load_ntu_skeleton(path, max_persons)
    if seq.shape[1] == 0:
        return None, 0
    return preprocess_sequence(
        seq,
        "ntu25",
        num_frames,
        temporal,
        center=center,
        align=align,  # type: ignore[arg-type]
        per_person=per_person,
    )


class NTUSkeletonSource(SourceBase):
    """NTU RGB+D 60 / 120 from the raw ``.skeleton`` files.

    Args:
        root: Folder holding the ``SsssCcccPpppRrrrAaaa.skeleton`` files (directly or one level down).
        dataset: ``"ntu60"`` (setups 1-17, actions 1-60 of the folder) or ``"ntu120"``.
        protocol: ``"xsub"`` (cross-subject), ``"xview"`` (cameras 2, 3 train), ``"xset"`` (even setups
            train) or ``"all"`` (every sample marked train) -> ``SkeletonSet.partition``.
        num_frames: Frames per sample after preprocessing.
        temporal: ``"pad"`` (zeros after), ``"loop"`` (repeat) or ``"resample"`` (interpolate) to ``num_frames``.
        max_persons: Actor slots kept (NTU's standard is 2).
        center: Subtract the first frame's center joint (layout ``ntu25``).
        align: Rotate hip->spine to +z and right->left shoulder to +x (standard NTU normalisation).
        per_person: Center each person on its own first frame instead of the main actor's.
        ignore_list: Optional text file of sample names to skip (one per line, e.g. NTU's
            ``NTU_RGBD_samples_with_missing_skeletons.txt``).
        max_samples: Read only this many files, evenly spaced over the sorted list (quick runs).
        num_workers: Parallel processes for the first read (0 = in-process).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the processed arrays there.
    """

    layout = "ntu25"

    def __init__(
        self,
        root: str,
        dataset: str = "ntu60",
        protocol: str = "xsub",
        num_frames: int = 300,
        temporal: str = "pad",
        max_persons: int = 2,
        center: bool = True,
        align: bool = True,
        per_person: bool = False,
        ignore_list: str | None = None,
        max_samples: int | None = None,
        num_workers: int = 0,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        self.protocol = check_dataset_protocol(dataset, protocol)
        check_temporal(temporal)
        self.root, self.dataset, self.num_frames, self.temporal = root, dataset, num_frames, temporal
        self.max_persons, self.center, self.align, self.per_person = max_persons, center, align, per_person
        self.ignore_list, self.max_samples, self.num_workers = ignore_list, max_samples, num_workers
        self.cache_dir, self.cache = cache_dir, cache

    def _files(self) -> list[Path]:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise missing_root_error(
                root, "NTU RGB+D raw skeletons", "SsssCcccPpppRrrrAaaa.skeleton files", HOW_TO_GET_RAW
            )
        files = sorted(root.glob("*.skeleton")) or sorted(root.glob("*/*.skeleton"))
        if not files:
            raise missing_root_error(
                root, "NTU RGB+D raw skeletons", "SsssCcccPpppRrrrAaaa.skeleton files", HOW_TO_GET_RAW, empty=True
            )
        ignored = _read_names(Path(self.ignore_list).expanduser()) if self.ignore_list else set()
        keep = []
        for f in files:
            n = NTUSampleName.parse(f.name)
            if self.dataset == "ntu60" and (n.setup > 17 or n.action > 60):
                continue
            if f.stem not in ignored:
                keep.append(f)
        return pick_evenly(keep, self.max_samples)

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the whole set: data ``(N, max_persons, num_frames, 25, 3)``."""
        files = self._files()
        params = {
            "reader": f"{self.dataset}-raw-{self.protocol}",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_persons": self.max_persons,
            "center": self.center,
            "align": self.align,
            "per_person": self.per_person,
            "max_samples": self.max_samples,
        }
        sources = files + ([Path(self.ignore_list).expanduser()] if self.ignore_list else [])
        return self._cached(params, sources, lambda: self._build(files))

    def _build(self, files: list[Path]) -> SkeletonSet:
        work = partial(
            _process,
            max_persons=self.max_persons,
            num_frames=self.num_frames,
            temporal=self.temporal,
            center=self.center,
            align=self.align,
            per_person=self.per_person,
        )
        data = allocate((len(files), self.max_persons, self.num_frames, 25, 3))
        kept: list[Path] = []
        lengths: list[int] = []
        empty: list[str] = []
        for path, (seq, length) in zip(files, _map(work, files, self.num_workers)):
            if seq is None:
                empty.append(path.stem)
                continue
            data[len(kept)] = seq
            kept.append(path)
            lengths.append(length)
        if empty:
            warnings.warn(
                f"{len(empty)} NTU sample(s) have no skeleton in any frame and were skipped (NTU's "
                f"published missing-skeleton samples; 302 in NTU-60, 535 in NTU-120): "
                f"{', '.join(empty[:8])}{' ...' if len(empty) > 8 else ''}",
                stacklevel=3,
            )
        if not kept:
            raise ValueError(f"{self.root}: none of the {len(files)} .skeleton files holds a skeleton")
        names = [NTUSampleName.parse(p.name) for p in kept]
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array([n.label for n in names], np.int64),
            sample_ids=[p.stem for p in kept],
            class_names=class_names(self.dataset),
            layout=self.layout,
            partition=np.array([ntu_partition(n, self.dataset, self.protocol) for n in names]),
            lengths=np.array(lengths, np.int64),
            meta={
                k: np.array([getattr(n, k) for n in names], np.int64)
                for k in ("setup", "camera", "subject", "replication", "action")
            },
        )


def _map(fn: partial, items: list[Path], workers: int) -> Iterable[tuple[np.ndarray | None, int]]:
    if workers <= 0:
        yield from map(fn, items)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, items, chunksize=32)


#: CTR-GCN's ``data/ntu*/seq_transformation.py`` outputs per (dataset, protocol).
CTRGCN_FILES = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
}
HOW_TO_GET_PROCESSED = (
    "Create them from the raw skeletons with CTR-GCN's data/ntu(120)/get_raw_skes_data.py, get_raw_denoised_data.py "
    "and seq_transformation.py (-> NTU60_CS.npz ...), or 2s-AGCN / Shift-GCN's data_gen/ntu_gendata.py "
    "(-> <protocol>/train_data_joint.npy ...); or read the raw files with NTUSkeletonSource. " + HOW_TO_GET_RAW
)


class NTUProcessedSource(SourceBase):
    """NTU RGB+D 60 / 120 from already-processed arrays.

    Two formats are read: CTR-GCN's ``NTU60_CS.npz`` / ``NTU60_CV.npz`` / ``NTU120_CSub.npz`` /
    ``NTU120_CSet.npz`` (``x_train`` ``(N, T, 150)`` = 2 persons x 25 joints x xyz, ``y_train`` one-hot,
    ``x_test``, ``y_test``), and the st-gcn / 2s-AGCN / Shift-GCN ``{train,val}_data_joint.npy``
    (or ``{train,val}_data.npy``) ``(N, 3, T, 25, 2)`` with ``{train,val}_label.pkl``. The data are
    taken as already centered / normalised; ``train`` -> partition ``"train"``, ``test``/``val`` -> ``"test"``.

    Args:
        root: The ``.npz`` file, or a folder holding it, the st-gcn files, or ``<protocol>/`` with them.
        dataset: ``"ntu60"`` or ``"ntu120"`` (class list; picks the CTR-GCN file name).
        protocol: ``"xsub"``, ``"xview"`` or ``"xset"`` (which split the files encode).
        format: ``"auto"``, ``"ctrgcn"`` (npz) or ``"stgcn"`` (npy + pkl).
        num_frames: Refit every sequence to this many frames; ``None`` keeps the stored length.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` (with ``num_frames``).
        max_samples: Keep only this many samples, evenly spaced (quick runs).
        cache_dir: Cache folder (default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).
        cache: Store / reuse the converted arrays there (memory-mapped afterwards).
    """

    layout = "ntu25"

    def __init__(
        self,
        root: str,
        dataset: str = "ntu60",
        protocol: str = "xsub",
        format: str = "auto",
        num_frames: int | None = None,
        temporal: str = "pad",
        max_samples: int | None = None,
        cache_dir: str | None = None,
        cache: bool = True,
    ) -> None:
        self.protocol = check_dataset_protocol(dataset, protocol)
        if self.protocol == "all":
            raise ValueError("processed NTU files encode one protocol; choose 'xsub', 'xview' or 'xset'")
        if format not in ("auto", "ctrgcn", "stgcn"):
            raise ValueError(f"format must be 'auto', 'ctrgcn' or 'stgcn', got {format!r}")
        check_temporal(temporal)
        self.root, self.dataset, self.format, self.num_frames = root, dataset, format, num_frames
        self.temporal, self.max_samples, self.cache_dir, self.cache = temporal, max_samples, cache_dir, cache

    def _resolve(self) -> tuple[str, list[tuple[str, Path, Path | None]]]:
        """``(format, [(split, data file, label file or None), ...])``."""
        root = Path(self.root).expanduser()
        npz = CTRGCN_FILES.get((self.dataset, self.protocol), "NTU*.npz")
        expected = f"{npz} (CTR-GCN) or train/val_data_joint.npy + train/val_label.pkl (st-gcn)"
        if root.is_file() and root.suffix == ".npz" and self.format != "stgcn":
            return "ctrgcn", [("train", root, None), ("test", root, None)]
        if not root.is_dir():
            raise missing_root_error(root, "processed NTU RGB+D", expected, HOW_TO_GET_PROCESSED)
        if self.format != "stgcn" and (root / npz).is_file():
            return "ctrgcn", [("train", root / npz, None), ("test", root / npz, None)]
        if self.format != "ctrgcn":
            folders = [root, root / self.protocol]
            names = ("{split}_data_joint.npy", "{split}_data.npy")
            train, val = find_stgcn_files(folders, "train", names), find_stgcn_files(folders, "val", names)
            if train and val:
                return "stgcn", [("train", *train), ("test", *val)]
        raise missing_root_error(root, "processed NTU RGB+D", expected, HOW_TO_GET_PROCESSED, empty=True)

    def load(self) -> SkeletonSet:
        """Convert (or take from the cache) the arrays: data ``(N, 2, T, 25, 3)``."""
        fmt, parts = self._resolve()
        params = {
            "reader": f"{self.dataset}-{fmt}-{self.protocol}",
            "version": _READER_VERSION,
            "num_frames": self.num_frames,
            "temporal": self.temporal,
            "max_samples": self.max_samples,
        }
        sources = sorted({p for _, d, lab in parts for p in (d, lab) if p is not None})
        return self._cached(params, sources, lambda: self._build(fmt, parts))

    def _build(self, fmt: str, parts: list[tuple[str, Path, Path | None]]) -> SkeletonSet:
        names_all = class_names(self.dataset)
        ids: list[str] = []
        labels: list[int] = []
        partition: list[str] = []
        readers = []
        for split, data_path, label_path in parts:
            if fmt == "ctrgcn":
                shape = array_shape(data_path, f"x_{split}")
                if len(shape) != 3 or shape[2] != 150:
                    raise ValueError(
                        f"{data_path}: x_{split} has shape {shape}; expected (N, T, 150) = "
                        "2 persons x 25 joints x 3 (CTR-GCN seq_transformation.py output)"
                    )
                with np.load(data_path, allow_pickle=False) as z:
                    y = np.asarray(z[f"y_{split}"])
                lab = (y.argmax(1) if y.ndim == 2 else y).astype(int).tolist()
                split_ids = [f"{self.dataset}_{self.protocol}_{split}_{i:06d}" for i in range(shape[0])]
                readers.append(
                    (
                        iter_array_rows(data_path, f"x_{split}"),
                        lambda a: a.reshape(len(a), a.shape[1], 2, 25, 3).transpose(0, 2, 1, 3, 4),
                    )
                )
                tail = (2, shape[1], 25, 3)
            else:
                shape = array_shape(data_path)
                if len(shape) != 5 or shape[1] != 3 or shape[3] != 25:
                    raise ValueError(
                        f"{data_path}: shape {shape}; expected (N, 3, T, 25, M) as written by "
                        "st-gcn / 2s-AGCN ntu_gendata.py"
                    )
                split_ids, lab = load_label_pickle(label_path)  # type: ignore[arg-type]
                split_ids = [Path(s).name.removesuffix(".skeleton") for s in split_ids]
                readers.append((iter_array_rows(data_path), lambda a: a.transpose(0, 4, 2, 3, 1)))
                tail = (shape[4], shape[2], 25, 3)
            if len(split_ids) != shape[0] or len(lab) != shape[0]:
                raise ValueError(
                    f"{data_path}: {shape[0]} samples but {len(lab)} labels; the data and label "
                    "files come from different runs, regenerate them together"
                )
            bad = sorted({x for x in lab if not 0 <= x < len(names_all)})
            if bad:
                raise ValueError(
                    f"{label_path or data_path}: labels {bad[:5]} outside 0..{len(names_all) - 1} "
                    f"of {self.dataset}; set dataset= to the set the files were made from"
                )
            ids += split_ids
            labels += lab
            partition += ["train" if split == "train" else "test"] * shape[0]
        select = np.asarray(pick_evenly(list(range(len(ids))), self.max_samples))
        data, lengths = fill_processed(readers, len(ids), select, tail, self.num_frames, self.temporal)
        meta: dict[str, np.ndarray] = {}
        if fmt == "stgcn" and all(_NAME.search(s) for s in ids):
            parsed = [NTUSampleName.parse(ids[i]) for i in select]
            meta = {
                k: np.array([getattr(n, k) for n in parsed], np.int64)
                for k in ("setup", "camera", "subject", "replication", "action")
            }
        return SkeletonSet(
            data=data,
            labels=np.array(labels, np.int64)[select],
            sample_ids=[ids[i] for i in select],
            class_names=names_all,
            layout=self.layout,
            partition=np.array(partition)[select],
            lengths=lengths,
            meta=meta,
        )
