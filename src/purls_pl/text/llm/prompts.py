"""The questions PURLS asks a language model for each action label (supplementary Table 1).

Each description type has one main question and the alternative wordings the supplement lists (the
bold alternatives of Table 1); variant 0 is the wording of the main experiments. Every question is
wrapped in the "Using the following format, ..." answer template, with ``{text}`` marking the blanks
the model fills and ``<Action>`` replaced by the label. The parsed answers land in the 8 fields of
:data:`purls_pl.text.descriptions.FIELDS`.
"""

from __future__ import annotations

#: Placeholder for the action label inside a question.
ACTION: str = "<Action>"

#: Body-part-based question (Table 1, row 1) and its alternatives.
BODY_PART_QUESTIONS: tuple[str, ...] = (
    "Using the following format, describe in very short how each body part moves for <Action>.",
    "Using the following format, describe in very short how a person's body part would act for <Action>.",
    "Using the following format, describe in very short individual body part action for <Action>.",
)
BODY_PART_FORMAT: str = "Head would: {text}\nHands would: {text}\nTorso would: {text}\nLegs would: {text}"

#: Temporal-interval-based question (Table 1, row 2) and its alternatives.
PHASE_QUESTIONS: tuple[str, ...] = (
    "Use the following format, separate in very short how a person performs the action of <Action> into three phases.",
    "Use the following format, separate in very short the motion of <Action> into three phases.",
    "Use the following format, separate in very short the sub-motions when a person carries out <Action> "
    "into three phases.",
)
PHASE_FORMAT: str = "1: The person would {text}.\n2: The person would {text}.\n3: The person would {text}."

#: Global question (Table 1, row 3) and its alternatives (wording as printed in the supplement).
GLOBAL_QUESTIONS: tuple[str, ...] = (
    "Using the following format, describe in very short the motion of a person who <Action>.",
    "Using the following format, describe in very short the motion of a person carries out <Action>.",
    "Using the following format, describe in very short how a person does <Action>.",
)
GLOBAL_FORMAT: str = "The person would {text}."

#: Description type -> (question wordings, answer format, fields the answer fills in order).
QUESTION_TYPES: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "body_parts": (BODY_PART_QUESTIONS, BODY_PART_FORMAT, ("head", "hands", "torso", "legs")),
    "phases": (PHASE_QUESTIONS, PHASE_FORMAT, ("start", "middle", "end")),
    "global": (GLOBAL_QUESTIONS, GLOBAL_FORMAT, ("global",)),
}

#: Number of wordings available per description type.
MAX_VARIANTS: int = min(len(q) for q, _, _ in QUESTION_TYPES.values())

#: System message sent with every question: keeps chat models to the requested format.
SYSTEM_PROMPT: str = (
    "You describe human body motion for action recognition. Answer exactly in the requested format, "
    "one line per item, replacing each {text} with a very short phrase. Add nothing else."
)


def question_template(kind: str, variant: int = 0) -> str:
    """The full prompt of ``kind`` (``body_parts``, ``phases``, ``global``) with ``<Action>`` still in it."""
    if kind not in QUESTION_TYPES:
        raise KeyError(f"unknown question type {kind!r}; choose one of {sorted(QUESTION_TYPES)}")
    questions, answer_format, _ = QUESTION_TYPES[kind]
    if not 0 <= variant < len(questions):
        raise ValueError(f"question variant {variant} of {kind!r} does not exist (0..{len(questions) - 1})")
    return f"{questions[variant]}\n{answer_format}"


def build_prompt(kind: str, label: str, variant: int = 0) -> str:
    """The prompt asking about ``label``: the question with the label inserted, then the answer format."""
    return question_template(kind, variant).replace(ACTION, label.strip())
