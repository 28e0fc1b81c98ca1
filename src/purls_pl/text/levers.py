"""Text-side levers applied on top of the description embeddings, and the one function that builds them.

* **Label mix** — the label's own embedding mixed into chosen fields (default: the global one):
  for every class ``k`` and mixed field ``f``::

      F'[k, f] = normalize((1 - w) * F[k, f] + w * L[k])

  with ``F[k, f]`` the unit description embedding, ``L[k]`` the unit embedding of the label rendered
  with :data:`LABEL_PROMPT` (``"A video of a person: <label>."``, the label-only baseline's prompt)
  and ``w`` = ``label_mix`` in ``[0, 1]``: ``w = 0`` leaves the text unchanged, ``w = 1`` replaces the
  field by the label. The tensor keeps its ``(K, 8, m)`` shape, so every consumer of
  :data:`~purls_pl.text.fields.FIELDS` works unchanged.
* **Alternatives** — keep only the first ``k`` answers per field (``0`` = all; their embeddings are
  averaged): "1 vs 3 descriptions per field" from one multi-answer file.
* **Labelled prompts** — a template preset (``labelled``, :mod:`purls_pl.text.templates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from purls_pl.text.descriptions import DescriptionSet
from purls_pl.text.encoder import TextEncoder, embed_descriptions
from purls_pl.text.fields import FIELDS, GLOBAL
from purls_pl.text.templates import render

#: The prompt the label embedding ``L`` is encoded with (the label-only baseline's sentence).
LABEL_PROMPT: str = "A video of a person: {}."


@dataclass(frozen=True)
class TextOptions:
    """The text levers of a run (all off by default).

    Args:
        label_mix: ``w`` in ``[0, 1]``: weight of the label embedding mixed into ``label_mix_fields``.
        label_mix_fields: The fields the label is mixed into (names from ``FIELDS``).
        alternatives: Answers kept per field (the first ones); ``0`` keeps all.
    """

    label_mix: float = 0.0
    label_mix_fields: tuple[str, ...] = (GLOBAL,)
    alternatives: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_mix <= 1.0:
            raise ValueError(f"label_mix must be in [0, 1] (0: descriptions only, 1: label only); got {self.label_mix}")
        unknown = [f for f in self.label_mix_fields if f not in FIELDS]
        if unknown or not self.label_mix_fields:
            raise ValueError(f"label_mix_fields must be a non-empty subset of {FIELDS}; got unknown {unknown}")
        if self.alternatives < 0:
            raise ValueError(f"alternatives must be >= 0 (0 keeps every answer); got {self.alternatives}")

    @property
    def active(self) -> bool:
        """Whether any lever changes the text."""
        return self.label_mix > 0 or self.alternatives > 0

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> TextOptions:
        """The options of a :meth:`record` (``None``, e.g. an older checkpoint: no levers).

        Args:
            record: ``{"label_mix", "label_mix_fields", "alternatives"}`` (missing keys: defaults).
        """
        record = dict(record or {})
        return cls(
            float(record.get("label_mix", 0.0)),
            tuple(record.get("label_mix_fields") or (GLOBAL,)),
            int(record.get("alternatives", 0)),
        )

    def record(self) -> dict[str, object]:
        """Plain data for a checkpoint / report."""
        return {
            "label_mix": self.label_mix,
            "label_mix_fields": list(self.label_mix_fields),
            "alternatives": self.alternatives,
        }


def label_embeddings(encoder: TextEncoder, class_names: Sequence[str], prompt: str = LABEL_PROMPT) -> torch.Tensor:
    """The labels' own embeddings ``L``.

    Args:
        encoder: The text tower (through its cache).
        class_names: ``K`` labels.
        prompt: Template with one ``{}`` (and optionally ``{label}``) the label is rendered into.

    Returns:
        ``(K, m)`` unit vectors.
    """
    return encoder.encode_cached([render(prompt, name, name) for name in class_names])


def mix_label(
    embeddings: torch.Tensor, labels: torch.Tensor, weight: float, fields: Sequence[str] = (GLOBAL,)
) -> torch.Tensor:
    """``normalize((1 - w) F[:, f] + w L)`` for every field ``f`` in ``fields``; other fields unchanged.

    Args:
        embeddings: ``(K, len(FIELDS), m)`` unit description embeddings ``F``.
        labels: ``(K, m)`` unit label embeddings ``L``.
        weight: ``w`` in ``[0, 1]``.
        fields: Field names to mix into.

    Returns:
        A new ``(K, len(FIELDS), m)`` tensor.
    """
    if embeddings.shape[0] != labels.shape[0] or embeddings.shape[-1] != labels.shape[-1]:
        raise ValueError(f"label embeddings {tuple(labels.shape)} do not match the text {tuple(embeddings.shape)}")
    out = embeddings.clone()
    if weight == 0:
        return out
    for f in fields:
        i = FIELDS.index(f)
        out[:, i] = F.normalize((1.0 - weight) * embeddings[:, i] + weight * labels, dim=-1)
    return out


def embed_class_text(
    encoder: TextEncoder,
    descriptions: DescriptionSet,
    class_names: Sequence[str],
    templates: str | Mapping[str, str] = "paper",
    options: TextOptions | None = None,
) -> torch.Tensor:
    """The ``(K, len(FIELDS), m)`` class text a run uses: descriptions, templates and levers.

    Args:
        encoder: The text tower.
        descriptions: The description set (covering ``class_names``).
        class_names: ``K`` labels in class-index order.
        templates: Prompt templates (a preset or ``field -> template``).
        options: The levers; ``None`` = none (plain :func:`embed_descriptions`).
    """
    options = options or TextOptions()
    if options.alternatives:
        descriptions = descriptions.with_alternatives(options.alternatives)
    embeddings = embed_descriptions(encoder, descriptions, class_names, templates)
    if options.label_mix > 0:
        embeddings = mix_label(
            embeddings, label_embeddings(encoder, class_names), options.label_mix, options.label_mix_fields
        )
    return embeddings
