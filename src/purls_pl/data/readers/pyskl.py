"""pyskl annotation pickles (NTU-60/120 3-D and HRNet 2-D, Kinetics-400 HRNet 2-D) as a skeleton source.

The format and its safe reading are in :mod:`purls_pl.data.pyskl`. :class:`PysklSource` reads one file: the
samples of one split list (``split_key="xsub_train"``), of one protocol (``"xsub"``: ``xsub_train`` and
``xsub_val``) or all of them (``None``); a sample in a ``*_train`` / ``train`` list is partition ``"train"``,
one in a ``*_val`` / ``val`` / ``*_test`` / ``test`` list ``"test"``. The layout follows from the keypoints
(25 joints: ``ntu25``, 17: ``coco17``) unless given. 3-D keypoints ``(M, T, V, 3)`` are x, y, z, centered and
aligned as the raw NTU reader does; 2-D keypoints ``(M, T, V, 2)`` with ``keypoint_score`` become channels
(x, y, score) as the Kinetics reader's, in the image's frame of reference (``img_shape``) by default. Each
annotation is prepared by ``preprocessing.apply`` straight into the memory-mapped cache and its arrays are
released, so peak memory stays near the file's size. A bad annotation (no ``keypoint``, a wrong shape, a
label outside the class list, NaN/inf) raises an error naming the file, the sample's ``frame_dir`` and the
field, or with ``on_error="skip"`` is left out and listed in one report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from purls_pl.data.cache import ResidentRows, allocate
from purls_pl.data.catalog import class_names
from purls_pl.data.layouts import get_layout
from purls_pl.data.preprocess import check_temporal
from purls_pl.data.preprocessing import NORMALIZATIONS, Preprocessing, RawSkeleton, class_path
from purls_pl.data.pyskl import PYSKL_FIX, load_pyskl, peek_keypoint
from purls_pl.data.readers._base import (
    Conversion,
    SampleError,
    SkippedSample,
    SourceBase,
    check_values,
    convert_files,
    format_skipped,
    pick_evenly,
    reject,
)
from purls_pl.data.readers.ntu_protocol import _NAME, NTUSampleName
from purls_pl.data.skeletons import SkeletonSet

__all__ = ["LAYOUT_BY_JOINTS", "PysklSource", "split_partition"]

_READER_VERSION = 1
#: The layout a file's joint count implies when ``layout`` is not given.
LAYOUT_BY_JOINTS = {25: "ntu25", 17: "coco17"}
_TRAIN, _TEST = ("train",), ("val", "test")


def split_partition(name: str) -> tuple[str, str] | None:
    """``(protocol, partition)`` of a split list name: ``xsub_train`` -> ``("xsub", "train")``, ``val`` ->
    ``("", "test")``; ``None`` for a name that is neither a train nor a val / test list."""
    protocol, _, side = name.rpartition("_")
    if side in _TRAIN:
        return protocol, "train"
    if side in _TEST:
        return protocol, "test"
    return None


class PysklSource(SourceBase):
    """Skeletons from a pyskl annotation pickle (``ntu60_3danno.pkl``, ``ntu120_hrnet.pkl``, ``k400_hrnet.pkl``).

    Args:
        path: The ``.pkl`` file.
        split_key: One list of the file's ``split`` (``"xsub_train"``), a protocol (``"xsub"``: its ``_train``
            and ``_val`` lists) or ``None``: every annotation (partitioned by the file's lists when they form
            one protocol, else all ``"train"``).
        dataset: Catalogued dataset whose class names the labels index (``ntu60``, ``ntu120``,
            ``kinetics400`` ...); ``None``: the CLI takes it from the split; elsewhere ``ntu60`` (``"custom"``
            with ``class_names_file``).
        class_names_file: A text file of class names, one per line in label order (instead of ``dataset``).
        layout: Skeleton layout; ``None``: from the joint count of the first keypoint (25: ``ntu25``,
            17: ``coco17``).
        num_frames: Frames per sample; ``None``: the longest selected sample's.
        temporal: ``"pad"``, ``"loop"`` or ``"resample"`` to ``num_frames``.
        num_persons: Persons kept (pyskl's files hold up to 2 for NTU, more for Kinetics).
        center: Subtract the first frame's center joint; ``None``: for 3-D keypoints.
        align: Rotate to the layout's ``align_axes``; ``None``: for 3-D keypoints of a layout that has them.
        normalization: Of 2-D keypoints (``"image"``: by ``img_shape``; ``"none"``, ``"stgcn"`` ...);
            ``None``: ``"image"`` for 2-D, ``"none"`` for 3-D.
        conversion: How the cache entry is built (sample subset, cache folder, bad annotations):
            :class:`~purls_pl.data.readers.Conversion` (the file is converted in-process).
    """

    file_format = "pyskl annotation .pkl"

    def __init__(
        self,
        path: str,
        split_key: str | None = None,
        dataset: str | None = None,
        class_names_file: str | None = None,
        layout: str | None = None,
        num_frames: int | None = 300,
        temporal: str = "pad",
        num_persons: int = 2,
        center: bool | None = None,
        align: bool | None = None,
        normalization: str | None = None,
        conversion: Conversion | None = None,
    ) -> None:
        check_temporal(temporal)
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)} or None, got {normalization!r}")
        if num_persons < 1:
            raise ValueError(f"num_persons must be >= 1, got {num_persons}")
        self.root = self.path = path
        self.split_key, self.class_names_file, self.dataset = split_key, class_names_file, dataset or "custom"
        if dataset is None and class_names_file is None:
            self.dataset = "ntu60"
        self.num_frames, self.temporal, self.num_persons = num_frames, temporal, num_persons
        self.center, self.align, self.normalization, self._layout = center, align, normalization, layout
        self.conversion = Conversion.of(conversion)
        self._shape: tuple[int, int, int, int] | None = None

    # ------------------------------------------------------------------ what the file holds
    def _first_shape(self) -> tuple[int, int, int, int]:
        if self._shape is None:
            shape = peek_keypoint(self.path)
            if shape is None:
                raise ValueError(f"{self.path}: holds no 'keypoint' array (M, T, V, C); {PYSKL_FIX}")
            self._shape = shape
        return self._shape

    @property
    def three_d(self) -> bool:
        """Whether the keypoints are x, y, z (``C = 3``) rather than 2-D x, y with a score."""
        return self._first_shape()[3] == 3

    @property
    def layout(self) -> str:  # type: ignore[override]
        """The given layout, or the one the keypoints' joint count implies."""
        if self._layout is not None:
            return get_layout(self._layout).name
        joints = self._first_shape()[2]
        if joints not in LAYOUT_BY_JOINTS:
            raise ValueError(
                f"{self.path}: keypoints of {joints} joints; no layout is known for that count "
                f"({ {v: k for k, v in LAYOUT_BY_JOINTS.items()} }); give layout=<a registered layout>"
            )
        return LAYOUT_BY_JOINTS[joints]

    @property
    def class_names(self) -> list[str]:
        """From ``class_names_file`` (one per line), else the catalogued ``dataset``'s."""
        if self.class_names_file is None:
            return class_names(self.dataset)
        file = Path(self.class_names_file).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"class_names_file {file} does not exist; one class name per line, label order")
        return [line.strip() for line in file.read_text().splitlines() if line.strip()]

    @property
    def preprocessing(self) -> Preprocessing:
        """3-D: center and align (as :class:`~purls_pl.data.readers.NTUSkeletonSource`); 2-D (x, y, score):
        the image's frame of reference; then the fit to ``num_frames`` with ``num_persons`` persons."""
        three_d = self.three_d
        lay = get_layout(self.layout)
        return Preprocessing(
            lay.name,
            self.num_frames,
            self.temporal,
            normalization=self.normalization or ("none" if three_d else "image"),
            center=three_d if self.center is None else self.center,
            align=(three_d and lay.align_axes is not None) if self.align is None else self.align,
            num_persons=self.num_persons,
            channels=3,
            reader=class_path(PysklSource),
        )

    # ------------------------------------------------------------------ the selection
    def _selected(self, content: dict[str, Any], skipped: list[SkippedSample]) -> list[tuple[int, str]]:
        """``[(annotation index, partition)]`` of the split the source reads, in file order."""
        split: dict[str, list[str]] = content["split"]
        anns = content["annotations"]
        index: dict[str, int] = {}
        for i, ann in enumerate(anns):
            name = ann.get("frame_dir") if isinstance(ann, dict) else None
            if not isinstance(name, str):
                raise ValueError(f"{self.path}: annotation {i} has no string 'frame_dir' (the sample id); {PYSKL_FIX}")
            if name in index:
                raise ValueError(f"{self.path}: frame_dir {name!r} is in two annotations ({index[name]} and {i})")
            index[name] = i
        key = self.split_key
        if key is None:  # every annotation; the lists partition it when they form one protocol
            protocols = {side[0] for k in split if (side := split_partition(k))}
            lists = [k for k in split if split_partition(k)] if len(protocols) == 1 else []
            wanted = self._assigned(split, lists)
            wanted = {n: wanted.get(n, "train") for n in index}
        elif key in split:
            side = split_partition(key)
            wanted = {n: side[1] if side else "train" for n in split[key]}
        else:
            lists = [k for k in split if (side := split_partition(k)) and side[0] == key]
            if not lists:
                raise KeyError(
                    f"{self.path}: split_key {key!r} is neither a list of the file's 'split' nor a protocol of its "
                    f"lists; the file has {sorted(split)} (give one of them, a protocol such as 'xsub', or None)"
                )
            wanted = self._assigned(split, lists)
        out = []
        for name, part in wanted.items():
            if name not in index:
                reject(
                    self.on_error,
                    skipped,
                    f"{self.path} [{name}]",
                    "is listed in 'split' but has no annotation",
                    "remove it from the split lists or add its annotation",
                )
                continue
            out.append((index[name], part))
        return sorted(out)

    def _assigned(self, split: dict[str, list[str]], lists: list[str]) -> dict[str, str]:
        """``frame_dir -> partition`` over ``lists``; a sample in a train and a test list is refused."""
        wanted: dict[str, str] = {}
        for k in lists:
            part = split_partition(k)[1]  # type: ignore[index]
            for name in split[k]:
                if wanted.setdefault(name, part) != part:
                    raise ValueError(
                        f"{self.path}: frame_dir {name!r} is in a train and a test list of {lists}; fix the split lists"
                    )
        return wanted

    # ------------------------------------------------------------------ conversion
    def load(self) -> SkeletonSet:
        """Convert (or take from the cache) the selected samples: data ``(N, num_persons, T, J, 3)``."""
        path = Path(self.path).expanduser()
        prep = self.preprocessing
        params = {
            "reader": f"pyskl-{path.stem}-{self.split_key}",
            "version": _READER_VERSION,
            "preprocessing": prep.to_mapping(),
            "dataset": self.dataset,
            "max_samples": self.max_samples,
        }
        sources = [path] + ([Path(self.class_names_file).expanduser()] if self.class_names_file else [])
        return self._cached(params, sources, lambda found: self._build(path, prep, found))

    def _raw(self, ann: dict[str, Any], prep: Preprocessing, num_classes: int) -> tuple[RawSkeleton, int]:
        """One annotation, checked, as :class:`RawSkeleton` (channels x, y, z or x, y, score) and its label."""
        where = f"{self.path} [{ann['frame_dir']}]"
        joints = get_layout(prep.layout).num_joints
        channels = 3 if self.three_d else 2
        kp = ann.get("keypoint")
        if {"raw_file", "frame_inds", "anno_inds"} & set(ann):
            raise SampleError(
                where,
                "is in pyskl's compressed form ('raw_file' / 'frame_inds' / 'anno_inds': keypoints per detection, "
                "decompressed by pyskl's DecompressPose), which this reader does not read",
                "decompress the annotations to 'keypoint' (M, T, V, C) and 'keypoint_score' first",
            )
        if not isinstance(kp, np.ndarray):
            state = "has no 'keypoint'" if kp is None else f"has a {type(kp).__name__} 'keypoint'"
            raise SampleError(where, f"{state}; expected an array (M, T, {joints}, {channels})", PYSKL_FIX)
        if kp.ndim != 4 or kp.shape[2] != joints or kp.shape[3] != channels:
            raise SampleError(
                where,
                f"'keypoint' has shape {kp.shape}; expected (M, T, {joints}, {channels}) like the file's first "
                f"sample (layout {prep.layout!r})",
                PYSKL_FIX,
            )
        label = ann.get("label")
        if isinstance(label, (np.integer, np.ndarray)) and np.ndim(label) == 0:
            label = int(label)
        if not isinstance(label, int) or not 0 <= label < num_classes:
            raise SampleError(
                where,
                f"'label' is {label!r}, not a class index 0..{num_classes - 1}",
                "set dataset= (or class_names_file=) to the class list the file was made with",
            )
        data = kp.astype(np.float32)
        if not self.three_d:
            score = ann.get("keypoint_score")
            if not isinstance(score, np.ndarray) or score.shape != kp.shape[:3]:
                state = "none" if score is None else f"shape {getattr(score, 'shape', type(score).__name__)}"
                raise SampleError(
                    where,
                    f"'keypoint_score' is {state}; 2-D keypoints need scores (M, T, V) = {kp.shape[:3]}",
                    "add keypoint_score (1.0 for every given joint when the estimator gave none)",
                )
            data = np.concatenate([data, score.astype(np.float32)[..., None]], axis=-1)
        check_values(where, data, "'keypoint'", PYSKL_FIX)
        shape = ann.get("img_shape")
        size = (float(shape[0]), float(shape[1])) if isinstance(shape, (tuple, list)) and len(shape) == 2 else None
        return RawSkeleton(data, where, prep.layout, image_size=size, fix=PYSKL_FIX), label

    def _build(self, path: Path, prep: Preprocessing, skipped: list[SkippedSample]) -> SkeletonSet:
        content = load_pyskl(path)
        anns: list[Any] = content["annotations"]
        chosen = pick_evenly(self._selected(content, skipped), self.max_samples)
        names = self.class_names
        frame_dirs = [str(anns[i]["frame_dir"]) for i, _ in chosen]
        if prep.num_frames is None:
            longest = [
                a["keypoint"].shape[1] for i, _ in chosen if isinstance((a := anns[i]).get("keypoint"), np.ndarray)
            ]
            prep = replace(prep, num_frames=max(longest, default=1))

        def work(item: tuple[int, str]) -> tuple[np.ndarray, int, int]:
            ann = anns[item[0]]
            raw, label = self._raw(ann, prep, len(names))
            for field in ("keypoint", "keypoint_score"):  # release the sample's arrays as it goes in
                ann.pop(field, None)
            seq, length = prep.apply(raw)
            if length == 0:
                raise SampleError(raw.source, "no joint in any frame (an empty sequence)", "remove the annotation")
            return seq, length, label

        joints = get_layout(prep.layout).num_joints
        data = allocate((len(chosen), self.num_persons, prep.num_frames, joints, 3))  # type: ignore[arg-type]
        resident = ResidentRows(data)
        kept: list[int] = []
        lengths, labels = [], []
        converted = convert_files(
            work,
            chosen,
            on_error=self.on_error,
            skipped=skipped,
            desc=f"pyskl {path.name}",
            name=lambda item: f"{path} [{anns[item[0]].get('frame_dir')}]",
        )
        for i, (seq, length, label) in converted:
            data[len(kept)] = seq
            kept.append(i)
            lengths.append(length)
            labels.append(label)
            resident.written(len(kept))
        if not kept:
            raise ValueError(
                f"{path}: none of the {len(chosen)} selected samples could be used:\n{format_skipped(skipped)}"
            )
        ids = [frame_dirs[i] for i in kept]
        meta: dict[str, np.ndarray] = {}
        if all(_NAME.search(s) for s in ids):
            parsed = [NTUSampleName.parse(s) for s in ids]
            meta = {
                k: np.array([getattr(n, k) for n in parsed], np.int64)
                for k in ("setup", "camera", "subject", "replication", "action")
            }
        return SkeletonSet(
            data=data[: len(kept)],
            labels=np.array(labels, np.int64),
            sample_ids=ids,
            class_names=names,
            layout=prep.layout,
            partition=np.array([chosen[i][1] for i in kept], dtype="<U5"),
            lengths=np.array(lengths, np.int64),
            meta=meta,
        )
