"""The embedded demo dataset's motions: procedural, deterministic skeleton motions with known semantics.

No external data is needed: every sample is rendered from a small program, so the descriptions
are faithful to the motion by construction and the whole PURLS pipeline (part/phase alignment,
zero-shot evaluation) can be exercised in seconds.

Design:

* **Body.** A 25-joint ``ntu25`` skeleton in meters (body frame: x to the person's left, y up,
  z forward; ~1.7 m tall). Joints are placed by forward kinematics: every bone keeps its rest
  offset and is rotated by the product of its ancestors' local rotations, so bone lengths are
  constant over time. After kinematics the body is lowered/raised so the lowest foot joint stays
  on the floor (a squat lowers the pelvis; a kick lifts one foot while the other stands).
* **Primitives.** 19 body-part movements (head: nod, shake, look up, look down; hands: wave
  right/both, raise right/both arms, punch, clap, reach forward, touch head; torso: bend forward,
  twist, lean sideways; legs: kick, squat, step forward, march), plus the idle pose of each part.
  Each primitive is a set of local bone rotations whose angles are smooth functions of the
  movement's own time ``u`` in [0, 1]: an ease-in/hold/ease-out envelope, optionally times an
  oscillation (waving, nodding, marching). Every primitive starts and ends at rest, so any
  sequence of them is continuous.
* **Classes.** A class is a program (``programs.CLASS_PROGRAMS``): for each phase
  (start/middle/end) the primitives that happen; a primitive listed in consecutive phases is one
  continuous movement. The 8 descriptions (4 body parts, 3 phases, global) are assembled from
  per-primitive phrase tables, so they say exactly what is rendered.
* **Zero-shot split.** The 5 unseen classes of ``demo_15_5`` are new *combinations* of primitives
  that all occur in seen classes (e.g. "march while nodding" = the legs of "march and wave both
  hands" + the head of "wave hello while nodding"). A model that aligns body parts and phases with
  their own descriptions can transfer to them; one that only memorises whole classes cannot.
* **Variation / noise model** (per sample): amplitude of every movement x U(0.7, 1.3) (clipped
  where the pose would become implausible), oscillation tempo x U(0.8, 1.2), action duration
  U(0.72, 0.95) of the clip starting at a random offset, phase boundaries jittered by +-0.06,
  body size x U(0.85, 1.15), rotation about the vertical axis by U(-30, 30) degrees, floor
  translation (x +-0.4 m, depth 3 +- 0.4 m, facing the camera at -z), i.i.d. Gaussian joint noise
  with a per-sample std U(1, 2) cm, and with probability 0.1 one weak (30-50 %) distractor
  movement of a body part that is idle in some phase.

Everything is drawn from ``numpy.random.default_rng`` seeded by ``(seed, class)``, so a seed fixes
the dataset exactly; generation is vectorised over the samples of a class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from purls_pl.data.demo.programs import CLASS_PROGRAMS, DEMO_CLASS_NAMES, PRIMITIVES, describe, segments
from purls_pl.data.layouts import NTU25
from purls_pl.data.preprocessing import Preprocessing
from purls_pl.data.skeletons import SkeletonSet


def demo_descriptions() -> list[dict[str, str]]:
    """Descriptions of every demo class in class order: ``[{"label": name, "head": ..., "global": ...}]``."""
    return [{"label": name, **describe(program)} for name, program in CLASS_PROGRAMS]


# --------------------------------------------------------------------------- body and kinematics

_J = {name: i for i, name in enumerate(NTU25.joint_names)}
_LEFT_REST = {  # body frame, meters; the right side mirrors x
    "shoulder": (0.18, 1.42, 0.0),
    "elbow": (0.20, 1.14, -0.01),
    "wrist": (0.21, 0.90, 0.01),
    "hand": (0.21, 0.83, 0.02),
    "hand_tip": (0.21, 0.75, 0.03),
    "thumb": (0.19, 0.82, 0.06),
    "hip": (0.09, 0.94, 0.0),
    "knee": (0.10, 0.52, 0.01),
    "ankle": (0.10, 0.09, -0.01),
    "foot": (0.10, 0.03, 0.11),
}
_REST = np.zeros((25, 3))
for _n, _p in {
    "spine_base": (0, 0.98, 0),
    "spine_mid": (0, 1.20, -0.01),
    "spine_shoulder": (0, 1.44, 0),
    "neck": (0, 1.52, 0.01),
    "head": (0, 1.64, 0.02),
}.items():
    _REST[_J[_n]] = _p
for _n, (_x, _y, _z) in _LEFT_REST.items():
    _REST[_J["left_" + _n]] = (_x, _y, _z)
    _REST[_J["right_" + _n]] = (-_x, _y, _z)
_PARENT = {"spine_mid": "spine_base", "spine_shoulder": "spine_mid", "neck": "spine_shoulder", "head": "neck"}
for _s in ("left", "right"):
    _PARENT.update(
        {
            f"{_s}_shoulder": "spine_shoulder",
            f"{_s}_elbow": f"{_s}_shoulder",
            f"{_s}_wrist": f"{_s}_elbow",
            f"{_s}_hand": f"{_s}_wrist",
            f"{_s}_hand_tip": f"{_s}_hand",
            f"{_s}_thumb": f"{_s}_hand",
            f"{_s}_hip": "spine_base",
            f"{_s}_knee": f"{_s}_hip",
            f"{_s}_ankle": f"{_s}_knee",
            f"{_s}_foot": f"{_s}_ankle",
        }
    )
_ORDER = ["spine_base", *_PARENT]  # parents precede children (dict insertion order above)
_FEET = [_J[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]


def _rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` about body axis 0=x, 1=y, 2=z by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.zeros((*angle.shape, 3, 3))
    i, j = ((1, 2), (2, 0), (0, 1))[axis]
    rot[..., axis, axis] = 1.0
    rot[..., i, i] = rot[..., j, j] = c
    rot[..., i, j], rot[..., j, i] = -s, s
    return rot


def _forward_kinematics(local: list[np.ndarray | None]) -> np.ndarray:
    """Joint positions ``(n, T, 25, 3)`` from local bone rotations (``(n, T, 3, 3)`` per joint, None = identity).

    The bone into joint ``j`` has orientation ``B_j = B_parent @ L_j`` and ``p_j = p_parent + B_j r_j``
    with ``r_j`` the rest offset, so rotating ``L_j`` swings ``j`` and its whole subtree about the parent.
    """
    root = _J["spine_base"]
    shape = next(x.shape[:2] for x in local if x is not None)
    orient: list[np.ndarray | None] = [None] * 25
    pos: list[np.ndarray] = [np.empty(0)] * 25
    orient[root], pos[root] = local[root], np.broadcast_to(_REST[root], (*shape, 3))
    for name in _ORDER[1:]:
        j, p = _J[name], _J[_PARENT[name]]
        parent, mine = orient[p], local[j]
        orient[j] = parent if mine is None else mine if parent is None else parent @ mine
        offset = _REST[j] - _REST[p]
        pos[j] = pos[p] + (offset if orient[j] is None else orient[j] @ offset)
    return np.stack(np.broadcast_arrays(*pos), axis=2)


# --------------------------------------------------------------------------- primitive movements

Rotations = list[tuple[int, int, np.ndarray]]  # (bone = child joint, axis, angle in radians)
_D = np.pi / 180.0
_X, _Y, _Z = 0, 1, 2


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _env(u: np.ndarray, ramp: float = 0.25) -> np.ndarray:
    """Ease in over the first ``ramp`` of the movement, hold, ease out; zero outside [0, 1]."""
    return _smooth(u / ramp) * _smooth((1.0 - u) / ramp)


def _bell(u: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** 2


def _osc(u: np.ndarray, cycles: float, speed: np.ndarray) -> np.ndarray:
    return np.sin(2.0 * np.pi * cycles * speed * np.clip(u, 0.0, 1.0))


def _arms(right: Rotations, both: bool) -> Rotations:
    """``right`` arm rotations, mirrored onto the left arm too when ``both`` (y and z angles flip)."""
    if not both:
        return right
    left = {_J["right_elbow"]: _J["left_elbow"], _J["right_wrist"]: _J["left_wrist"]}
    return right + [(left[b], ax, a if ax == _X else -a) for b, ax, a in right]


def _wave(u: np.ndarray, a: np.ndarray, v: np.ndarray, both: bool) -> Rotations:
    e = _env(u)
    swing = (100.0 + 25.0 * a * _osc(u, 3.0, v)) * _D
    return _arms(
        [(_J["right_elbow"], _Z, -80.0 * _D * np.clip(a, 0.8, 1.2) * e), (_J["right_wrist"], _Z, -swing * e)], both
    )


def _raise(u: np.ndarray, a: np.ndarray, v: np.ndarray, both: bool) -> Rotations:
    e = _env(u)
    return _arms(
        [(_J["right_elbow"], _X, -20.0 * _D * e), (_J["right_elbow"], _Z, -150.0 * _D * np.clip(a, 0.8, 1.15) * e)],
        both,
    )


def _punch(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e, hit = _env(u, 0.2), np.maximum(_osc(u, 2.0, v), 0.0) ** 2
    return [
        (_J["right_elbow"], _X, -(30.0 + 55.0 * np.clip(a, 0.7, 1.2) * hit) * _D * e),
        (_J["right_wrist"], _X, -110.0 * _D * (1.0 - hit) * e),
    ]


def _clap(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e, close = _env(u), 0.5 - 0.5 * np.cos(2.0 * np.pi * 3.0 * v * np.clip(u, 0.0, 1.0))
    return _arms(
        [
            (_J["right_elbow"], _X, -40.0 * _D * np.clip(a, 0.8, 1.2) * e),
            (_J["right_elbow"], _Y, (8.0 + 13.0 * close) * _D * e),
            (_J["right_wrist"], _X, -60.0 * _D * e),
        ],
        both=True,
    )


def _reach(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e = _env(u)
    return _arms(
        [(_J["right_elbow"], _X, -85.0 * _D * np.clip(a, 0.8, 1.15) * e), (_J["right_wrist"], _X, -10.0 * _D * e)],
        both=True,
    )


def _touch_head(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e = _env(u)
    return [
        (_J["right_elbow"], _X, -25.0 * _D * e),
        (_J["right_elbow"], _Z, -120.0 * _D * e),
        (_J["right_wrist"], _Z, -135.0 * _D * np.clip(a, 0.9, 1.1) * e),
    ]


def _legs(thigh: np.ndarray, shin: np.ndarray, side: str, foot: bool = False) -> Rotations:
    """Hip flexion ``thigh`` (forward) and knee flexion ``shin`` (backward) of one leg, in radians."""
    out = [(_J[f"{side}_knee"], _X, -thigh), (_J[f"{side}_ankle"], _X, shin)]
    return [*out, (_J[f"{side}_foot"], _X, thigh - shin)] if foot else out


def _kick(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    wind = np.where(u < 0.5, np.sin(2.0 * np.pi * np.clip(u, 0.0, 1.0)) ** 2, 0.0)
    return _legs(75.0 * _D * a * _bell(u), 70.0 * _D * wind, "right")


def _squat(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    depth = np.clip(a, 0.7, 1.1) * _env(u)
    return _legs(80.0 * _D * depth, 110.0 * _D * depth, "left", True) + _legs(
        80.0 * _D * depth, 110.0 * _D * depth, "right", True
    )


def _step(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e, swing = _env(u), np.sin(2.0 * np.pi * np.clip(u, 0.0, 1.0)) ** 2
    return _legs(25.0 * _D * a * e, 30.0 * _D * swing, "right") + _legs(-20.0 * _D * a * e, np.zeros_like(e), "left")


def _march(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
    e, s = _env(u, 0.15), _osc(u, 2.0, v)
    out: Rotations = []
    for side, lift in (("left", np.maximum(s, 0.0)), ("right", np.maximum(-s, 0.0))):
        out += _legs(60.0 * _D * a * lift * e, 80.0 * _D * lift * e, side)
    return out


def _head(axis: int, degrees: float, neck: float, oscillate: float = 0.0, one_sided: bool = False) -> Callable:
    def motion(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
        shape = _env(u)
        if one_sided:  # repeated excursions to one side and back (nodding)
            shape = shape * (0.5 - 0.5 * np.cos(2.0 * np.pi * oscillate * v * np.clip(u, 0.0, 1.0)))
        elif oscillate:
            shape = shape * _osc(u, oscillate, v)
        angle = degrees * _D * a * shape
        return [(_J["head"], axis, angle), (_J["neck"], axis, neck * angle)]

    return motion


def _torso(axis: int, degrees: float, oscillate: float = 0.0) -> Callable:
    def motion(u: np.ndarray, a: np.ndarray, v: np.ndarray) -> Rotations:
        angle = degrees * _D * a * _env(u) * (_osc(u, oscillate, v) if oscillate else 1.0)
        return [(_J["spine_mid"], axis, angle), (_J["spine_shoulder"], axis, 0.4 * angle)]

    return motion


MOTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], Rotations]] = {
    "nod": _head(_X, 25.0, 0.3, oscillate=3.0, one_sided=True),
    "shake": _head(_Z, 25.0, 0.5, oscillate=2.5),  # a yaw would not move the head joint
    "look_up": _head(_X, -35.0, 0.3),
    "look_down": _head(_X, 35.0, 0.3),
    "wave_right": lambda u, a, v: _wave(u, a, v, both=False),
    "wave_both": lambda u, a, v: _wave(u, a, v, both=True),
    "raise_right": lambda u, a, v: _raise(u, a, v, both=False),
    "raise_both": lambda u, a, v: _raise(u, a, v, both=True),
    "punch": _punch,
    "clap": _clap,
    "reach_forward": _reach,
    "touch_head": _touch_head,
    "bend_forward": _torso(_X, 35.0),
    "twist": _torso(_Y, 30.0, oscillate=1.5),
    "lean_side": _torso(_Z, 18.0, oscillate=1.0),
    "kick_right": _kick,
    "squat": _squat,
    "step_forward": _step,
    "march": _march,
}
assert set(MOTIONS) == set(PRIMITIVES)


# --------------------------------------------------------------------------- rendering


def _apply(
    local: list[np.ndarray | None], rotations: Rotations, rows: np.ndarray | slice, shape: tuple[int, int]
) -> None:
    """Pre-multiply the listed rotations (so they act on each bone in list order) into ``local[bone][rows]``."""
    for bone, axis, angle in rotations:
        if local[bone] is None:
            local[bone] = np.broadcast_to(np.eye(3), (*shape, 3, 3)).copy()
        local[bone][rows] = _rotation(axis, angle) @ local[bone][rows]


def _render_class(
    c: int, n: int, num_frames: int, seed: int, joint_noise: tuple[float, float], distractor_prob: float
) -> np.ndarray:
    """``(n, T, 25, 3)`` positions of ``n`` samples of class ``c``, in camera-like coordinates."""
    rng = np.random.default_rng([seed, c])
    program = CLASS_PROGRAMS[c][1]
    dur = rng.uniform(0.72, 0.95, n)
    offset = rng.uniform(0.0, 1.0, n) * (1.0 - dur)
    bounds = np.stack(
        [np.zeros(n), 1 / 3 + rng.uniform(-0.06, 0.06, n), 2 / 3 + rng.uniform(-0.06, 0.06, n), np.ones(n)], axis=1
    )
    s = (np.linspace(0.0, 1.0, num_frames)[None] - offset[:, None]) / dur[:, None]  # action time (n, T)
    local: list[np.ndarray | None] = [None] * 25

    def play(name: str, rows: np.ndarray | slice, first: int, last: int, amp: np.ndarray) -> None:
        lo, hi = bounds[rows, first, None], bounds[rows, last + 1, None]
        rotations = MOTIONS[name]((s[rows] - lo) / (hi - lo), amp, rng.uniform(0.8, 1.2, (len(amp), 1)))
        _apply(local, rotations, rows, (n, num_frames))

    for name, first, last in segments(program):
        play(name, slice(None), first, last, rng.uniform(0.7, 1.3, (n, 1)))
    idle = [
        (phase, part)
        for phase in range(3)
        for part in ("head", "hands", "torso", "legs")
        if all(PRIMITIVES[p].part != part for p in program[phase])
    ]
    for row in np.flatnonzero(rng.random(n) < distractor_prob):
        phase, part = idle[rng.integers(len(idle))]
        options = sorted(p.name for p in PRIMITIVES.values() if p.part == part)
        play(options[rng.integers(len(options))], np.array([row]), phase, phase, rng.uniform(0.3, 0.5, (1, 1)))

    pos = _forward_kinematics(local) * rng.uniform(0.85, 1.15, (n, 1, 1, 1))
    pos[..., 1] -= pos[..., _FEET, 1].min(axis=-1, keepdims=True)  # lowest foot joint on the floor
    yaw = np.pi + rng.uniform(-30.0, 30.0, n) * _D  # face the camera (-z), turned by up to 30 degrees
    pos = pos @ np.swapaxes(_rotation(_Y, yaw), -1, -2)[:, None]
    pos += np.stack([rng.uniform(-0.4, 0.4, n), np.zeros(n), 3.0 + rng.uniform(-0.4, 0.4, n)], 1)[:, None, None]
    sigma = rng.uniform(*joint_noise, (n, 1, 1, 1))
    return pos + sigma * rng.standard_normal(pos.shape)


def generate_demo(
    samples_per_class: int = 60,
    num_frames: int = 48,
    seed: int = 0,
    joint_noise: tuple[float, float] = (0.01, 0.02),
    distractor_prob: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Render all demo classes: ``data`` ``(N, 1, T, 25, 3)`` float32 and ``labels`` ``(N,)`` int64.

    Args:
        samples_per_class: Samples rendered per class; samples are grouped by class.
        num_frames: Frames per sample.
        seed: Seed of every random draw; the same seed gives identical arrays.
        joint_noise: Range of the per-sample std (meters) of the i.i.d. joint noise; ``(0, 0)`` for clean data.
        distractor_prob: Probability that a sample gets one extra weak movement of an idle body part.
    """
    blocks = [
        _render_class(c, samples_per_class, num_frames, seed, joint_noise, distractor_prob)
        for c in range(len(CLASS_PROGRAMS))
    ]
    data = np.concatenate(blocks).astype(np.float32)[:, None]
    labels = np.repeat(np.arange(len(CLASS_PROGRAMS), dtype=np.int64), samples_per_class)
    return data, labels


class DemoSource:
    """The embedded demo dataset as a :class:`~purls_pl.data.skeletons.SkeletonSource`.

    Args:
        samples_per_class: Samples per class (all classes are equally large).
        num_frames: Frames per sample (every sample is fully valid, ``lengths == num_frames``).
        seed: Seed of the generator; a seed fixes the data and the train/test partition exactly.
        test_fraction: Fraction of each class's samples in the ``"test"`` partition (stratified).
    """

    dataset = "demo"
    layout = NTU25.name

    def __init__(
        self, samples_per_class: int = 60, num_frames: int = 48, seed: int = 0, test_fraction: float = 0.25
    ) -> None:
        if samples_per_class < 1 or num_frames < 2:
            raise ValueError("DemoSource needs samples_per_class >= 1 and num_frames >= 2")
        if not 0.0 <= test_fraction <= 1.0:
            raise ValueError(f"DemoSource test_fraction must lie in [0, 1], got {test_fraction}")
        self.samples_per_class = samples_per_class
        self.num_frames = num_frames
        self.seed = seed
        self.test_fraction = test_fraction

    @property
    def preprocessing(self) -> Preprocessing:
        """None beyond the fit to ``num_frames`` (a rendered sample is a ``.npy`` array to ``recognize``)."""
        return Preprocessing(self.layout, self.num_frames, num_persons=1, channels=3)

    def load(self) -> SkeletonSet:
        """Render the dataset (about a second for the defaults)."""
        k = self.samples_per_class
        data, labels = generate_demo(k, self.num_frames, self.seed)
        rng = np.random.default_rng([self.seed, 10_000])
        partition = np.full(len(labels), "train", dtype=object)
        n_test = round(self.test_fraction * k)
        for c in range(len(DEMO_CLASS_NAMES)):
            partition[c * k + rng.permutation(k)[:n_test]] = "test"
        return SkeletonSet(
            data=data,
            labels=labels,
            sample_ids=[f"demo_c{c:02d}_s{i:03d}" for c in range(len(DEMO_CLASS_NAMES)) for i in range(k)],
            class_names=list(DEMO_CLASS_NAMES),
            layout=self.layout,
            partition=partition.astype(str),
            lengths=np.full(len(labels), self.num_frames, dtype=np.int64),
        )
