"""Prompt templates: how each description field is wrapped before the text tower encodes it.

A template holds exactly one ``{}``, the field's text, and may also hold ``{label}``, the class's
action name (at most once). ``render("A video of {label}: {}.", "wave a hand", "hand waving")`` gives
``"A video of hand waving: wave a hand."``. Templates without ``{label}`` (all older ones) render as
before.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from purls_pl.text.fields import FIELDS

#: The action-name placeholder a template may use besides ``{}``.
LABEL_FIELD: str = "label"
#: Supplementary Table 3 of the paper: the prompt wrapping each field before it is encoded.
PAPER_TEMPLATES: dict[str, str] = {
    "head": "A cropped video of people's head motions that {}.",
    "hands": "A cropped video of people's hand motions that {}.",
    "torso": "A cropped video of people's torso motions that {}.",
    "legs": "A cropped video of people's leg motions that {}.",
    "start": "A trimmed video of the motion that {}.",
    "middle": "A trimmed video of the motion that {}.",
    "end": "A trimmed video of the motion that {}.",
    "global": "A video of people's motion that {}.",
}
#: For label-only text (the "Global (Original)" baseline): the label in a neutral sentence.
LABEL_TEMPLATES: dict[str, str] = {f: "A video of a person: {}." for f in FIELDS}
#: The text as it is.
PLAIN_TEMPLATES: dict[str, str] = {f: "{}" for f in FIELDS}
#: The paper templates with the action name kept before every description: "... that <label>: <text>."
LABELLED_TEMPLATES: dict[str, str] = {f: t.replace("{}", "{label}: {}") for f, t in PAPER_TEMPLATES.items()}
TEMPLATE_PRESETS: dict[str, dict[str, str]] = {
    "paper": PAPER_TEMPLATES,
    "label": LABEL_TEMPLATES,
    "plain": PLAIN_TEMPLATES,
    "labelled": LABELLED_TEMPLATES,
}


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a valid field template (``None`` when it is).

    Args:
        template: A format string with exactly one ``{}`` (the description) and at most one
            ``{label}`` (the action name); other ``{...}`` placeholders are not allowed.
    """
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        return f"it is not a valid format string ({err}; write a literal brace as '{{{{' or '}}}}')"
    other = sorted({n for n in names if n not in ("", LABEL_FIELD)})
    if other:
        return f"it uses unknown placeholders {other}; only '{{}}' (the text) and '{{{LABEL_FIELD}}}' exist"
    if names.count("") != 1:
        return f"it needs exactly one '{{}}' for the description text (found {names.count('')})"
    if names.count(LABEL_FIELD) > 1:
        return f"'{{{LABEL_FIELD}}}' may appear at most once"
    return None


def render(template: str, text: str, label: str) -> str:
    """Fill ``template`` with a description and the class's action name.

    Args:
        template: A valid field template (see :func:`template_problem`).
        text: The description (a trailing full stop is dropped: templates end sentences themselves).
        label: The action name, used where the template says ``{label}``.
    """
    return template.format(text.rstrip("."), label=label)


def resolve_templates(templates: str | Mapping[str, str]) -> dict[str, str]:
    """A preset name or a mapping ``field -> template`` (missing fields take the paper template).

    Args:
        templates: ``paper``, ``label``, ``plain``, ``labelled``, or a mapping whose templates each
            hold one ``{}`` and optionally one ``{label}``.

    Raises:
        ValueError: naming the unknown preset, or every bad field with what is wrong and the fix.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATE_PRESETS:
            raise ValueError(f"unknown template preset {templates!r}; choose one of {sorted(TEMPLATE_PRESETS)}")
        return dict(TEMPLATE_PRESETS[templates])
    unknown = sorted(set(templates) - set(FIELDS))
    if unknown:
        raise ValueError(f"templates name unknown fields {unknown}; the fields are {FIELDS}")
    out = {**PAPER_TEMPLATES, **templates}
    bad = {f: problem for f, t in out.items() if (problem := template_problem(t)) is not None}
    if bad:
        details = "; ".join(f"field {f!r} ({out[f]!r}): {p}" for f, p in bad.items())
        raise ValueError(f"bad prompt templates: {details}")
    return out
