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
535 in NTU-120) are detected by content and always left out (listed in ``source.skipped`` as
``"excluded"``); an optional ``ignore_list`` file (one sample name per line) skips more. A broken
file (truncated, a joint count other than 25, NaN/inf coordinates, a frame count of 0, a name that
is no NTU sample name) raises an error naming it, or with ``on_error="skip"`` is left out and listed
in the one report at the end (see :mod:`purls_pl.data.readers._base`). ``num_workers`` parses in
parallel processes, with results identical to the serial read.

The processed arrays (CTR-GCN ``.npz``, st-gcn ``.npy`` + ``.pkl``) are read by
:class:`~purls_pl.data.readers.ntu_processed.NTUProcessedSource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path

import numpy as np

from purls_pl.data.cache import ResidentRows, allocate
from purls_pl.data.catalog import class_names
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import Preprocessing, RawSkeleton, class_path
from purls_pl.data.readers._base import (
    Conversion,
    SampleError,
    Skip,
    SkippedSample,
    SourceBase,
    convert_files,
    format_skipped,
    missing_root_error,
    pick_evenly,
    reject,
)
from purls_pl.data.readers.ntu_protocol import (
    HOW_TO_GET_RAW,
    NTU60_TRAIN_SUBJECTS,
    NTU120_TRAIN_SUBJECTS,
    XVIEW_TRAIN_CAMERAS,
    NTUSampleName,
    check_dataset_protocol,
    ntu_partition,
)
from purls_pl.data.skeletons import SkeletonSet

__all__ = [
    "NTU60_TRAIN_SUBJECTS",
    "NTU120_TRAIN_SUBJECTS",
    "XVIEW_TRAIN_CAMERAS",
    "NTUSampleName",
    "NTUSkeletonSource",
    "ParsedSkeleton",
    "check_dataset_protocol",
    "denoise_bodies",
    "load_ntu_skeleton",
    "ntu_partition",
    "parse_ntu_skeleton",
    "read_ntu_skeleton",
]

NOISE_LEN_THRES, NOISE_SPR_THRES1, NOISE_SPR_THRES2 = 11, 0.8, 0.69754
_READER_VERSION = 2  # 2: skipped files recorded in the manifest
NO_SKELETON = "no skeleton in any frame (one of NTU's published samples with missing skeletons)"
FIX_FILE = "re-extract this file from the nturgbd_skeletons_*.zip archive, or list it in the ignore_list file"


#: Token offsets of x, y, z of the 25 joints inside a body's joint block of 25 x 12 values.
_XYZ = (12 * np.arange(25)[:, None] + np.arange(3)[None, :]).ravel()
_BLOCK = 25 * 12


@dataclass(frozen=True)
class ParsedSkeleton:
    """One raw ``.skeleton`` file as written, every body instance in file order (``K`` of them).

    Attributes:
        num_frames: The file's frame count (frames without a body included).
        joints: ``(K, 25, 3)`` float32 x, y, z (camera coordinates, metres).
        body_ids: ``K`` body ids, as written.
        frames: ``(K,)`` int64, the frame (0-based, of ``num_frames``) of each body instance.
    """

    num_frames: int
    joints: np.ndarray
    body_ids: list[str]
    frames: np.ndarray


def parse_ntu_skeleton(path: str | Path) -> ParsedSkeleton:
    """Parse one raw ``.skeleton`` file (LF or CRLF) exactly as written, before any denoising.

    The file is split into tokens once; a Python walk over the frame and body headers finds each body's
    joint block, and the x, y, z tokens of all blocks are converted in one call (the other 9 values of a
    joint line are never converted): about 4x faster than converting block by block.

    Raises:
        SampleError: (a ``ValueError``) naming the file, the place in it and the fix, for a truncated or
            malformed file, a joint count other than 25, NaN/inf or non-numeric coordinates, a frame count
            of 0 or values left over after the last frame.
    """
    path = Path(path)
    tokens = path.read_bytes().split()
    where = "frame count (line 1)"
    starts: list[int] = []
    body_ids: list[str] = []
    frames: list[int] = []
    places: list[tuple[int, int]] = []  # (frame, body in frame) of each body instance, 1-based
    try:
        num_frames = int(tokens[0])
        if num_frames <= 0:
            raise ValueError(f"the frame count is {num_frames} (an empty sequence)")
        pos = 1
        for f in range(num_frames):
            where = f"body count of frame {f + 1}"
            num_bodies, pos = int(tokens[pos]), pos + 1
            if num_bodies < 0:
                raise ValueError(f"body count is {num_bodies}")
            for b in range(num_bodies):
                where = f"body {b + 1} of frame {f + 1}"
                body_id, num_joints = tokens[pos], int(tokens[pos + 10])
                if num_joints != 25:
                    raise ValueError(f"joint count is {num_joints}, expected 25")
                pos += 11
                if pos + _BLOCK > len(tokens):
                    raise ValueError("file ends inside the joint block (truncated)")
                starts.append(pos)
                body_ids.append(body_id.decode())
                frames.append(f)
                places.append((f + 1, b + 1))
                pos += _BLOCK
        if pos != len(tokens):
            where = "end of the file"
            raise ValueError(f"{len(tokens) - pos} values follow the last of the {num_frames} frames")
        joints = _xyz(tokens, starts, places)
    except (IndexError, ValueError) as err:
        problem = "file ends early (truncated)" if isinstance(err, IndexError) else str(err)
        if isinstance(err, _BadBody):
            where = err.where
        raise SampleError(path, f"malformed NTU .skeleton file at the {where}: {problem}", FIX_FILE) from None
    return ParsedSkeleton(num_frames, joints, body_ids, np.asarray(frames, np.int64))


class _BadBody(ValueError):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where = where


def _xyz(tokens: list[bytes], starts: list[int], places: list[tuple[int, int]]) -> np.ndarray:
    """``(K, 25, 3)`` float32 x, y, z of the joint blocks at ``starts``; a non-numeric or NaN/inf value raises
    :class:`_BadBody` naming its body (``places``: its 1-based frame and body)."""
    if not starts:
        return np.zeros((0, 25, 3), np.float32)
    index = (np.asarray(starts)[:, None] + _XYZ[None, :]).ravel()
    picked = itemgetter(*index.tolist())(tokens)  # a tuple of 75 K tokens (K >= 1, so never a bare token)
    try:
        xyz = np.array(picked, dtype=np.float32).reshape(len(starts), 25, 3)
    except ValueError:
        bad = next(i for i, t in enumerate(picked) if not _is_number(t))
        frame, body = places[bad // 75]
        value = picked[bad].decode(errors="replace")
        raise _BadBody(f"body {body} of frame {frame}", f"a coordinate is {value!r}, not a number") from None
    finite = np.isfinite(xyz).all(axis=2)
    if not finite.all():
        k, joint = (int(v) for v in np.argwhere(~finite)[0])
        frame, body = places[k]
        raise _BadBody(
            f"body {body} of frame {frame}",
            f"joint {joint + 1} has x, y, z = {xyz[k, joint].tolist()} (NaN/inf coordinates)",
        )
    return xyz


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ntu_skeleton(path: str | Path) -> list[list[tuple[str, np.ndarray]]]:
    """One raw ``.skeleton`` file as frames (:func:`parse_ntu_skeleton`).

    Returns:
        Per frame (the file's frame count), a list of ``(body_id, joints)`` in file order with
        ``joints`` ``(25, 3)`` float32 x, y, z (camera coordinates, metres).

    Raises:
        SampleError: see :func:`parse_ntu_skeleton`.
    """
    parsed = parse_ntu_skeleton(path)
    frames: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(parsed.num_frames)]
    for body_id, f, joints in zip(parsed.body_ids, parsed.frames.tolist(), parsed.joints, strict=True):
        frames[f].append((body_id, joints))
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

    Raises:
        SampleError: see :func:`parse_ntu_skeleton`.
    """
    parsed = parse_ntu_skeleton(path)
    occupied = np.zeros(parsed.num_frames, bool)
    occupied[parsed.frames] = True
    t = int(occupied.sum())
    frame_of = (np.cumsum(occupied) - 1)[parsed.frames]  # frames without a body are dropped
    instances: dict[str, list[int]] = {}
    for k, body_id in enumerate(parsed.body_ids):
        instances.setdefault(body_id, []).append(k)
    bodies_arr = {b: (parsed.joints[ks], frame_of[ks]) for b, ks in instances.items()}
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


def _read_names(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"ignore_list {path} does not exist; fix the path (e.g. NTU_RGBD_samples_with_missing_skeletons.txt) "
            "or drop the ignore_list argument"
        )
    return {
        Path(line.strip()).name.removesuffix(".skeleton")
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def _process(path: Path, *, preprocessing: Preprocessing) -> tuple[np.ndarray, int] | Skip:
    """One file -> ``((max_persons, num_frames, 25, 3), valid frames)``, or :class:`Skip` if bodiless."""
    raw = NTUSkeletonSource.read_file(path, preprocessing)
    if raw.data.shape[1] == 0:
        return Skip(NO_SKELETON)
    return preprocessing.apply(raw)


class NTUSkeletonSource(SourceBase):
    """NTU RGB+D 60 / 120 from the raw ``.skeleton`` files.

    Args:
        root: Folder holding the ``SsssCcccPpppRrrrAaaa.skeleton`` files (directly or one level down).
        dataset: ``"ntu60"`` (setups 1-17, actions 1-60 of the folder) or ``"ntu120"``.
            ``None``: ``"ntu60"``; the CLI takes it from the split.
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
        conversion: How the cache entry is built (sample subset, worker processes, cache folder, bad
            files): :class:`~purls_pl.data.readers.Conversion`.
    """

    suffixes = (".skeleton",)
    file_format = "NTU RGB+D .skeleton"

    def __init__(
        self,
        root: str,
        dataset: str | None = None,
        protocol: str = "xsub",
        num_frames: int = 300,
        temporal: str = "pad",
        max_persons: int = 2,
        center: bool = True,
        align: bool = True,
        per_person: bool = False,
        ignore_list: str | None = None,
        conversion: Conversion | None = None,
    ) -> None:
        dataset = dataset or "ntu60"
        self.protocol = check_dataset_protocol(dataset, protocol)
        check_temporal(temporal)
        self.root, self.dataset, self.num_frames, self.temporal = root, dataset, num_frames, temporal
        self.conversion = Conversion.of(conversion)
        self.max_persons, self.center, self.align, self.per_person = max_persons, center, align, per_person
        self.ignore_list = ignore_list

    @property
    def preprocessing(self) -> Preprocessing:
        """Center (and align) each denoised sample, then fit it to ``num_frames``."""
        return Preprocessing(
            self.layout,
            self.num_frames,
            self.temporal,
            center=self.center,
            per_person=self.per_person,
            align=self.align,
            num_persons=self.max_persons,
            channels=3,
            reader=class_path(NTUSkeletonSource),
        )

    @classmethod
    def read_file(cls, path: str | Path, preprocessing: Preprocessing) -> RawSkeleton:
        """One ``.skeleton`` file, denoised into ``num_persons`` (default 2) actor slots (:func:`load_ntu_skeleton`)."""
        data = load_ntu_skeleton(path, preprocessing.num_persons or 2)
        return RawSkeleton(data, str(path), "ntu25", fix=FIX_FILE)

    def _files(self) -> tuple[list[Path], list[SkippedSample]]:
        """The files to read and those left out while listing (bad names)."""
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
        keep, skipped = [], []
        for f in files:
            try:
                n = NTUSampleName.parse(f.name)
            except ValueError:
                problem = "is not an NTU sample name SsssCcccPpppRrrrAaaa (e.g. S001C002P003R002A013.skeleton)"
                reject(self.on_error, skipped, f, problem, "rename the file or move it out of the folder")
                continue
            if self.dataset == "ntu60" and (n.setup > 17 or n.action > 60):
                continue
            if f.stem not in ignored:
                keep.append(f)
        return pick_evenly(keep, self.max_samples), skipped

    def load(self) -> SkeletonSet:
        """Read (or take from the cache) the whole set: data ``(N, max_persons, num_frames, 25, 3)``."""
        files, skipped = self._files()
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
        return self._cached(params, sources, lambda found: self._build(files, found), skipped)

    def _build(self, files: list[Path], skipped: list[SkippedSample]) -> SkeletonSet:
        work = partial(_process, preprocessing=self.preprocessing)
        data = allocate((len(files), self.max_persons, self.num_frames, 25, 3))
        resident = ResidentRows(data)
        kept: list[Path] = []
        lengths: list[int] = []
        converted = convert_files(
            work,
            files,
            on_error=self.on_error,
            skipped=skipped,
            num_workers=self.num_workers,
            desc=f"{self.dataset} .skeleton",
        )
        for i, (seq, length) in converted:
            data[len(kept)] = seq
            kept.append(files[i])
            lengths.append(length)
            resident.written(len(kept))
        if not kept:
            raise ValueError(
                f"{self.root}: none of the {len(files)} .skeleton files could be used:\n{format_skipped(skipped)}"
            )
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
