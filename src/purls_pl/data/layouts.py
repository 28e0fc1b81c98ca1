"""Skeleton layouts: joint names, graph edges, body-part groups, the center joint and alignment axes.

This module is the only place these facts live. Every layout partitions its joints into the
four PURLS body parts (paper Fig. 3) ``head``, ``hands``, ``torso`` and ``legs``; the groups are
disjoint and cover every joint, so the static partitioner and the attention plots agree.

A user with a new skeleton format writes a :class:`SkeletonLayout` (in Python or as a JSON/YAML
mapping passed to :meth:`SkeletonLayout.from_mapping`) and registers it with :func:`register_layout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BODY_PARTS: tuple[str, ...] = ("head", "hands", "torso", "legs")


@dataclass(frozen=True)
class SkeletonLayout:
    """A skeleton's joints and how PURLS groups them.

    Args:
        name: Registry key, e.g. ``"ntu25"``.
        joint_names: One name per joint, in array order (0-based).
        edges: Undirected bones as 0-based ``(i, j)`` pairs.
        center: Index of the joint used to center sequences.
        parts: For each of ``BODY_PARTS`` the 0-based joints it holds.
        align_axes: ``((hip, spine), (right_shoulder, left_shoulder))``: the bones that view alignment
            (:func:`purls_pl.data.preprocess.align_sequence`) turns to +z and +x; ``None`` for a
            layout that cannot be aligned (2-D data).
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    parts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    align_axes: tuple[tuple[int, int], tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        j = self.num_joints
        where = f"skeleton layout {self.name!r}"
        if not 0 <= self.center < j:
            raise ValueError(f"{where}: center joint {self.center} is outside 0..{j - 1}")
        for a, b in self.edges:
            if not (0 <= a < j and 0 <= b < j):
                raise ValueError(f"{where}: edge ({a}, {b}) names a joint outside 0..{j - 1}")
        if not self.parts and j == 1:  # a pooled feature vector (POOLED): one node, no body parts
            return
        if set(self.parts) != set(BODY_PARTS):
            raise ValueError(
                f"{where}: 'parts' must have exactly the keys {list(BODY_PARTS)}, got {sorted(self.parts)}"
            )
        seen: dict[int, str] = {}
        for part in BODY_PARTS:
            joints = self.parts[part]
            if not joints:
                raise ValueError(f"{where}: body part {part!r} has no joints")
            for joint in joints:
                if not 0 <= joint < j:
                    raise ValueError(f"{where}: part {part!r} names joint {joint} outside 0..{j - 1}")
                if joint in seen:
                    raise ValueError(
                        f"{where}: joint {joint} ({self.joint_names[joint]}) is in both "
                        f"{seen[joint]!r} and {part!r}; body parts must be disjoint"
                    )
                seen[joint] = part
        missing = sorted(set(range(j)) - set(seen))
        if missing:
            names = [self.joint_names[i] for i in missing]
            raise ValueError(f"{where}: joints {missing} {names} belong to no body part; add them to 'parts'")
        for bone in self.align_axes or ():
            if len(bone) != 2 or not all(0 <= int(i) < j for i in bone):
                raise ValueError(f"{where}: align_axes bone {bone} must be two joints in 0..{j - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def has_parts(self) -> bool:
        """Whether the layout groups its joints into body parts (every layout but :data:`POOLED`)."""
        return bool(self.parts)

    def part_of(self, joint: int) -> str:
        """The body part that holds ``joint``."""
        for part in BODY_PARTS:
            if joint in self.parts[part]:
                return part
        raise KeyError(joint)

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> SkeletonLayout:
        """Build a layout from a plain mapping (e.g. a custom dataset's ``layout.json``).

        Expected keys: ``name``, ``joint_names`` (list), ``edges`` (list of pairs), ``center`` (int)
        and ``parts`` (mapping of head/hands/torso/legs to joint indices); optional ``align_axes``
        (two joint pairs).
        """
        missing = [k for k in ("name", "joint_names", "edges", "center", "parts") if k not in spec]
        if missing:
            raise ValueError(f"skeleton layout spec is missing the keys {missing}")
        axes = spec.get("align_axes")
        return cls(
            name=str(spec["name"]),
            joint_names=tuple(str(n) for n in spec["joint_names"]),
            edges=tuple((int(a), int(b)) for a, b in spec["edges"]),
            center=int(spec["center"]),
            parts={str(k): tuple(int(i) for i in v) for k, v in spec["parts"].items()},
            align_axes=None if axes is None else tuple((int(a), int(b)) for a, b in axes),  # type: ignore[arg-type]
        )

    def to_mapping(self) -> dict[str, Any]:
        """The plain mapping :meth:`from_mapping` reads (``layout.json``, checkpoints)."""
        spec: dict[str, Any] = {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "edges": [list(e) for e in self.edges],
            "center": self.center,
            "parts": {k: list(v) for k, v in self.parts.items()},
        }
        if self.align_axes is not None:
            spec["align_axes"] = [list(b) for b in self.align_axes]
        return spec


#: Joints 5-20 of both Kinect skeletons (v1 and v2 order them alike; they differ in the spine names).
_KINECT_LIMBS: tuple[str, ...] = (
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
)


def _one_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


NTU25 = SkeletonLayout(
    name="ntu25",
    joint_names=(
        "spine_base",
        "spine_mid",
        "neck",
        "head",
        *_KINECT_LIMBS,
        "spine_shoulder",
        "left_hand_tip",
        "left_thumb",
        "right_hand_tip",
        "right_thumb",
    ),
    # Kinect v2 bones, as listed in the NTU RGB+D documentation (1-based there).
    edges=_one_based(
        [
            (1, 2),
            (2, 21),
            (3, 21),
            (4, 3),
            (5, 21),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 21),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
            (22, 23),
            (23, 8),
            (24, 25),
            (25, 12),
        ]
    ),
    center=1,  # spine_mid, as in the 2s-AGCN / Shift-GCN / CTR-GCN NTU preprocessing
    parts={
        "head": (2, 3),
        "hands": (4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24),
        "torso": (0, 1, 20, 12, 16),
        "legs": (13, 14, 15, 17, 18, 19),
    },
    align_axes=((0, 1), (8, 4)),  # spine_base -> spine_mid, right -> left shoulder
)

OPENPOSE18 = SkeletonLayout(
    name="openpose18",
    joint_names=(
        "nose",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
    ),
    edges=(
        (4, 3),
        (3, 2),
        (7, 6),
        (6, 5),
        (13, 12),
        (12, 11),
        (10, 9),
        (9, 8),
        (11, 5),
        (8, 2),
        (5, 1),
        (2, 1),
        (0, 1),
        (15, 0),
        (14, 0),
        (17, 15),
        (16, 14),
    ),
    center=1,  # neck
    parts={
        "head": (0, 14, 15, 16, 17),
        "hands": (3, 4, 6, 7),
        "torso": (1, 2, 5, 8, 11),
        "legs": (9, 10, 12, 13),
    },
)

KINECT20 = SkeletonLayout(
    name="kinect20",
    joint_names=(
        "hip_center",
        "spine",
        "shoulder_center",
        "head",
        *_KINECT_LIMBS,
    ),
    edges=(
        (0, 1),
        (1, 2),
        (2, 3),
        (2, 4),
        (4, 5),
        (5, 6),
        (6, 7),
        (2, 8),
        (8, 9),
        (9, 10),
        (10, 11),
        (0, 12),
        (12, 13),
        (13, 14),
        (14, 15),
        (0, 16),
        (16, 17),
        (17, 18),
        (18, 19),
    ),
    center=1,  # spine, as in the common NW-UCLA preprocessing
    parts={
        "head": (2, 3),
        "hands": (4, 5, 6, 7, 8, 9, 10, 11),
        "torso": (0, 1, 12, 16),
        "legs": (13, 14, 15, 17, 18, 19),
    },
    align_axes=((0, 1), (8, 4)),  # hip_center -> spine, right -> left shoulder
)

PENN13 = SkeletonLayout(
    name="penn13",
    joint_names=(
        "head",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    # Penn Action's 13 annotated joints (its x / y columns, in this order). There is no neck, spine or
    # pelvis joint, so the head hangs from both shoulders and the trunk is the shoulder-hip quadrilateral.
    edges=(
        (0, 1),
        (0, 2),
        (1, 2),
        (1, 3),
        (3, 5),
        (2, 4),
        (4, 6),
        (1, 7),
        (2, 8),
        (7, 8),
        (7, 9),
        (9, 11),
        (8, 10),
        (10, 12),
    ),
    # The head is the only joint on the body's midline, so rooting the spatial graph partition there keeps
    # it left/right symmetric (a hip or shoulder root would not). The reader centres coordinates on the
    # person's box, not on this joint (purls_pl.data.readers.penn).
    center=0,
    # Body parts, as openpose18 (the other 2-D layout) groups them: with no spine joints, the shoulders and
    # hips are the only joints that show the trunk bending or lying down (squat, clean and jerk, situp,
    # bench press), so they form the torso; giving the shoulders to the hands (as ntu25 does) would leave
    # a torso of two hips. The arms below the shoulders (elbows, wrists) are the hands, the knees and
    # ankles the legs, and the head is the single head joint.
    parts={
        "head": (0,),
        "hands": (3, 4, 5, 6),
        "torso": (1, 2, 7, 8),
        "legs": (9, 10, 11, 12),
    },
    align_axes=None,  # 2-D image coordinates: no 3-D view alignment
)

#: COCO's 17 keypoints (the HRNet / pyskl 2-D annotations, any COCO-format pose estimator), in COCO's order.
COCO17 = SkeletonLayout(
    name="coco17",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    # pyskl's coco graph (pyskl/utils/graph.py, layout 'coco'): a tree rooted at the nose, the shoulders
    # hanging from it and the hips from the shoulders (child -> parent pairs); there is no neck or pelvis joint.
    edges=tuple(
        zip(
            (15, 13, 16, 14, 11, 12, 9, 7, 10, 8, 5, 6, 1, 3, 2, 4),
            (13, 11, 14, 12, 5, 6, 7, 5, 8, 6, 0, 0, 0, 1, 0, 2),
        )
    ),
    # The nose: pyskl's graph center, and (as penn13's head) the one midline joint, so rooting the spatial
    # graph partition there keeps it left/right symmetric.
    center=0,
    # As openpose18 and penn13 group theirs: the face is the head, the arms below the shoulders the hands,
    # the shoulders and hips (the only trunk joints) the torso, the knees and ankles the legs.
    parts={
        "head": (0, 1, 2, 3, 4),
        "hands": (7, 8, 9, 10),
        "torso": (5, 6, 11, 12),
        "legs": (13, 14, 15, 16),
    },
    align_axes=None,  # 2-D image coordinates, and no spine joint: no 3-D view alignment
)

#: Not a skeleton: one pooled feature vector per sample (released features, :mod:`purls_pl.data.released_features`),
#: a single node with no body parts, frames or alignment. Methods that need joints or frames refuse it.
POOLED = SkeletonLayout(name="pooled", joint_names=("pooled_feature",), edges=(), center=0, parts={})

_REGISTRY: dict[str, SkeletonLayout] = {}


def register_layout(layout: SkeletonLayout) -> SkeletonLayout:
    """Make ``layout`` available by name to configs (``layout: <name>``)."""
    _REGISTRY[layout.name] = layout
    return layout


def get_layout(name: str | SkeletonLayout) -> SkeletonLayout:
    """Look a layout up by name; a :class:`SkeletonLayout` passes through."""
    if isinstance(name, SkeletonLayout):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown skeleton layout {name!r}; known: {sorted(_REGISTRY)}. "
            "Register a custom one with purls_pl.data.layouts.register_layout."
        ) from None


def restore_layout(spec: Mapping[str, Any]) -> SkeletonLayout:
    """The layout a file recorded (:meth:`SkeletonLayout.to_mapping`): the registered one of that name when it
    is the same, else the stored one, registered under its name when the name is free. A fresh process
    thus rebuilds a model of any custom layout from its checkpoint or backbone export alone."""
    stored = SkeletonLayout.from_mapping(spec)
    try:
        known = get_layout(stored.name)
    except KeyError:
        return register_layout(stored)
    return known if known.to_mapping() == stored.to_mapping() else stored


for _layout in (NTU25, OPENPOSE18, KINECT20, PENN13, COCO17, POOLED):
    register_layout(_layout)
