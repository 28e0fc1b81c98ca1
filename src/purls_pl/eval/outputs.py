"""What a zero-shot method gives the evaluation callbacks: a typed step output and the class lists.

Every method's ``validation_step`` / ``test_step`` returns :class:`ZeroShotScores`, and every method
exposes the attributes of :class:`ScoredClasses`; the callbacks read nothing else, so a new method needs
no change to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import Tensor


@dataclass(frozen=True)
class ZeroShotScores:
    """The scores of one evaluation batch.

    Attributes:
        scores: ``(B, K)`` every sample against every candidate class (``candidates``, in that order):
            generalised zero-shot.
        zsl_scores: ``(B, K_u)`` against the zero-shot classes alone (``unseen``, in that order). Equal to
            ``scores[:, zsl_columns]`` for a method whose scores do not depend on the other candidates;
            a method that normalises over the candidates (PURLS' ``eq5``: Eq. 5's softmax over ``Y_uc``)
            normalises over the zero-shot classes here.
        labels: ``(B,)`` the samples' dataset class ids.
        field_scores: ``(B, K_u, D)`` each scored field's similarities with the zero-shot classes
            (``fields``, in that order), or ``None`` for a method without per-field scores.
    """

    scores: Tensor
    zsl_scores: Tensor
    labels: Tensor
    field_scores: Tensor | None = None


class ScoredClasses(Protocol):
    """The class lists of a zero-shot method (dataset class ids), read by the evaluation callbacks.

    Attributes:
        class_names: Every class of the dataset, in class-id order.
        seen: The classes the method trained on.
        unseen: The zero-shot classes (``zsl_scores``' columns).
        candidates: The classes scored at evaluation (``scores``' columns): ``unseen``, plus ``seen``
            under generalised zero-shot evaluation.
        fields: The description fields scored one by one (``field_scores``' last axis); ``()`` if none.
    """

    class_names: list[str]
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    candidates: tuple[int, ...]
    fields: tuple[str, ...]
