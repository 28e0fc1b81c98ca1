"""Phrase tables and class programs of the embedded demo dataset (see :mod:`purls_pl.data.demo.motion`).

Every primitive movement has one body part and a set of verb phrases (base form, lower case, no
period, reading after "The person would ..."): ``base`` describes the whole movement, ``gerund`` is
used after "while", and ``onset`` / ``hold`` / ``offset`` describe the first, middle and last phase
when one movement spans several phases. A class program says, for each phase, which primitives
happen; a primitive listed in consecutive phases is one continuous movement (a *segment*).
"""

from __future__ import annotations

from dataclasses import dataclass

PHASES: tuple[str, ...] = ("start", "middle", "end")


@dataclass(frozen=True)
class Primitive:
    """One body-part movement and the phrases that describe it."""

    name: str
    part: str
    base: str
    gerund: str
    onset: str
    hold: str
    offset: str


def _p(name: str, part: str, base: str, gerund: str, onset: str, hold: str, offset: str) -> Primitive:
    return Primitive(name, part, base, gerund, onset, hold, offset)


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        # head
        _p(
            "nod",
            "head",
            "nod the head up and down",
            "nodding the head",
            "start nodding the head up and down",
            "keep nodding the head",
            "keep nodding the head, then stop",
        ),
        _p(
            "shake",
            "head",
            "shake the head from side to side",
            "shaking the head",
            "start shaking the head from side to side",
            "keep shaking the head",
            "keep shaking the head, then stop",
        ),
        _p(
            "look_up",
            "head",
            "tilt the head back to look up",
            "looking up",
            "tilt the head back to look up",
            "keep looking up",
            "keep looking up, then bring the head back to level",
        ),
        _p(
            "look_down",
            "head",
            "lower the head to look down",
            "looking down",
            "lower the head to look down",
            "keep the head lowered",
            "keep the head lowered, then lift it back to level",
        ),
        # hands
        _p(
            "wave_right",
            "hands",
            "raise the right arm and wave the hand side to side",
            "waving the right hand",
            "raise the right arm and start waving the hand",
            "keep waving the right hand side to side",
            "keep waving the right hand, then lower the arm",
        ),
        _p(
            "wave_both",
            "hands",
            "raise both arms and wave the hands side to side",
            "waving both hands",
            "raise both arms and start waving the hands",
            "keep waving both hands side to side",
            "keep waving both hands, then lower the arms",
        ),
        _p(
            "raise_right",
            "hands",
            "raise the right arm straight above the head and lower it",
            "raising the right arm",
            "raise the right arm straight above the head",
            "hold the right arm up high",
            "hold the right arm up, then lower it",
        ),
        _p(
            "raise_both",
            "hands",
            "raise both arms straight above the head and lower them",
            "raising both arms",
            "raise both arms straight above the head",
            "hold both arms up high",
            "hold both arms up, then lower them",
        ),
        _p(
            "punch",
            "hands",
            "punch forward with the right fist",
            "punching forward with the right fist",
            "raise the right fist and start punching forward",
            "keep punching forward with the right fist",
            "keep punching forward, then lower the right fist",
        ),
        _p(
            "clap",
            "hands",
            "bring the hands together in front of the chest and clap",
            "clapping the hands",
            "bring the hands in front of the chest and start clapping",
            "keep clapping the hands",
            "keep clapping the hands, then lower the arms",
        ),
        _p(
            "reach_forward",
            "hands",
            "stretch both arms straight forward and lower them",
            "reaching forward with both arms",
            "stretch both arms straight forward",
            "hold both arms stretched forward",
            "hold both arms forward, then lower them",
        ),
        _p(
            "touch_head",
            "hands",
            "bend the right arm to touch the head with the hand",
            "touching the head",
            "bend the right arm to put the hand on the head",
            "keep the right hand on the head",
            "keep the right hand on the head, then take it away",
        ),
        # torso
        _p(
            "bend_forward",
            "torso",
            "bend the upper body forward at the waist and straighten up",
            "bending forward",
            "bend the upper body forward at the waist",
            "stay bent forward",
            "stay bent forward, then straighten up",
        ),
        _p(
            "twist",
            "torso",
            "twist the upper body left and right",
            "twisting the upper body",
            "start twisting the upper body left and right",
            "keep twisting the upper body",
            "keep twisting, then turn back to the front",
        ),
        _p(
            "lean_side",
            "torso",
            "lean the upper body to the left and to the right",
            "leaning from side to side",
            "start leaning the upper body to the sides",
            "keep leaning from side to side",
            "keep leaning from side to side, then stand upright",
        ),
        # legs
        _p(
            "kick_right",
            "legs",
            "kick the right leg forward",
            "kicking with the right leg",
            "swing the right leg up in a kick",
            "hold the right leg up",
            "hold the right leg up, then put it down",
        ),
        _p(
            "squat",
            "legs",
            "bend both knees to squat down and stand back up",
            "squatting down",
            "bend both knees to squat down",
            "stay low in the squat",
            "stay low in the squat, then stand back up",
        ),
        _p(
            "step_forward",
            "legs",
            "step forward with the right foot and step back",
            "stepping forward",
            "step forward with the right foot",
            "stand with the right foot forward",
            "keep the right foot forward, then step back",
        ),
        _p(
            "march",
            "legs",
            "lift the knees one after the other to march in place",
            "marching in place",
            "start lifting the knees to march in place",
            "keep marching in place",
            "keep marching in place, then stop",
        ),
    )
}

#: Phrase of a body part that does nothing in the whole clip.
IDLE: dict[str, str] = {
    "head": "stay level and still",
    "hands": "hang relaxed at the sides",
    "torso": "stay upright and still",
    "legs": "stand still with both feet on the ground",
}
#: Phrase of a phase in which nothing moves (before any movement / after some movement).
REST_BEFORE = "stand still in a relaxed pose"
REST_AFTER = "return to a relaxed standing pose"

Program = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]

#: The class programs, in class-index order: name -> (start, middle, end) primitive lists.
CLASS_PROGRAMS: tuple[tuple[str, Program], ...] = (
    ("wave hello while nodding", (("wave_right",), ("wave_right", "nod"), ())),
    ("squat and punch", (("squat",), ("squat", "punch"), ())),
    ("raise right hand while squatting", (("squat",), ("squat", "raise_right"), ())),
    ("kick then clap", (("kick_right",), ("clap",), ("clap",))),
    ("cheer with both arms up", (("raise_both",), ("raise_both", "look_up"), ())),
    ("bow", (("look_down",), ("look_down", "bend_forward"), ())),
    ("look around while twisting", (("shake",), ("shake", "twist"), ())),
    ("kick then wave", (("kick_right",), ("wave_right",), ("wave_right",))),
    ("march and wave both hands", (("march",), ("march", "wave_both"), ("march",))),
    ("side stretch with arms up", (("raise_both",), ("raise_both", "lean_side"), ())),
    ("march while nodding", (("march",), ("march", "nod"), ("march",))),
    ("step forward and reach", (("step_forward",), ("step_forward", "reach_forward"), ())),
    ("hold head then shake it", (("touch_head",), ("touch_head", "look_down"), ("shake",))),
    ("punch and kick", (("punch",), ("punch", "kick_right"), ())),
    ("punch while twisting", (("twist",), ("twist", "punch"), ())),
    ("squat and look up", (("squat",), ("squat", "look_up"), ())),
    ("raise right hand then twist", (("raise_right",), ("raise_right",), ("twist",))),
    ("bend forward and clap", (("bend_forward",), ("bend_forward", "clap"), ())),
    ("step forward and clap", (("step_forward",), ("step_forward", "clap"), ())),
    ("sway and nod", (("lean_side",), ("lean_side", "nod"), ("nod",))),
)

#: Default zero-shot split: each unseen class recombines primitives that seen classes contain.
UNSEEN_DEFAULT: tuple[int, ...] = (2, 7, 10, 14, 18)
#: The demo's class list, in class-index order.
DEMO_CLASS_NAMES: tuple[str, ...] = tuple(name for name, _ in CLASS_PROGRAMS)


def segments(program: Program) -> list[tuple[str, int, int]]:
    """Maximal runs ``(primitive, first_phase, last_phase)`` of a program, ordered by first phase."""
    runs: list[tuple[str, int, int]] = []
    for phase, names in enumerate(program):
        for name in names:
            if phase > 0 and name in program[phase - 1]:
                continue
            last = phase
            while last + 1 < len(program) and name in program[last + 1]:
                last += 1
            runs.append((name, phase, last))
    return runs


def _portion(prim: Primitive, first: int, last: int, phase: int) -> str:
    if first == last:
        return prim.base
    if phase == first:
        return prim.onset
    return prim.offset if phase == last else prim.hold


def _join_while(main: str, others: list[str]) -> str:
    return main if not others else f"{main} while {' and '.join(others)}"


def describe(program: Program) -> dict[str, str]:
    """The 8 description fields of one class program, built from :data:`PRIMITIVES`."""
    runs = segments(program)
    out: dict[str, str] = {}
    for part, idle in IDLE.items():
        mine = [PRIMITIVES[name].base for name, _, _ in runs if PRIMITIVES[name].part == part]
        out[part] = ", then ".join(mine) if mine else idle
    for phase, key in enumerate(PHASES):
        active = [(name, a, b) for name, a, b in runs if a <= phase <= b]
        if not active:
            out[key] = REST_AFTER if any(a < phase for _, a, _ in runs) else REST_BEFORE
            continue
        # The movement that begins in this phase is the salient one; ongoing ones become "while ...".
        active.sort(key=lambda run: run[1] != phase)
        main = _portion(PRIMITIVES[active[0][0]], active[0][1], active[0][2], phase)
        out[key] = _join_while(main, [PRIMITIVES[name].gerund for name, _, _ in active[1:]])
    text, end, extra = "", -1, []
    for name, a, b in runs:
        prim = PRIMITIVES[name]
        if not text:
            text, end = prim.base, b
        elif a > end:
            text, end, extra = _join_while(text, extra) + f", then {prim.base}", b, []
            continue
        else:
            extra.append(prim.gerund)
            end = max(end, b)
    out["global"] = _join_while(text, extra)
    return out
