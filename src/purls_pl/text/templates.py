"""Prompt templates: how each description field is wrapped before the text tower encodes it."""

from __future__ import annotations

from collections.abc import Mapping

from purls_pl.text.fields import FIELDS

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
TEMPLATE_PRESETS: dict[str, dict[str, str]] = {
    "paper": PAPER_TEMPLATES,
    "label": LABEL_TEMPLATES,
    "plain": PLAIN_TEMPLATES,
}


def resolve_templates(templates: str | Mapping[str, str]) -> dict[str, str]:
    """A preset name (``paper``, ``label``, ``plain``) or a mapping field -> template with one ``{}``."""
    if isinstance(templates, str):
        if templates not in TEMPLATE_PRESETS:
            raise ValueError(f"unknown template preset {templates!r}; choose one of {sorted(TEMPLATE_PRESETS)}")
        return dict(TEMPLATE_PRESETS[templates])
    out = {**PAPER_TEMPLATES, **templates}
    bad = [f for f, t in out.items() if t.count("{}") != 1]
    if bad or set(out) != set(FIELDS):
        raise ValueError(f"templates need exactly one '{{}}' per field and only the fields {FIELDS}; check {bad}")
    return out
