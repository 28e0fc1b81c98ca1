"""The description fields: the one place their names and order are defined.

Every class is described by ``P = 4`` body-part fields (the layout's body parts, see
:data:`purls_pl.data.layouts.BODY_PARTS`), ``Z = 3`` phase fields and one global description. Text
tensors are always ``(K, D, m)`` with the fields in :data:`FIELDS` order, so the global field is the
last row (:data:`GLOBAL_INDEX`); a partitioner that represents a subset of the fields keeps this
order, so its global row is its last one too.
"""

from __future__ import annotations

from collections.abc import Sequence

from purls_pl.data.layouts import BODY_PARTS

#: Body-part fields, in the layouts' body-part order.
BODY_PART_FIELDS: tuple[str, ...] = BODY_PARTS
#: Phase fields: what happens at the start, in the middle and at the end of the action.
PHASE_FIELDS: tuple[str, ...] = ("start", "middle", "end")
#: The description of the whole action; zero-shot inference scores it.
GLOBAL: str = "global"
#: Field order everywhere in the project: body parts, phases, then the global description.
FIELDS: tuple[str, ...] = (*BODY_PART_FIELDS, *PHASE_FIELDS, GLOBAL)
#: Row of the global field in a ``(K, len(FIELDS), m)`` text tensor (the last one).
GLOBAL_INDEX: int = FIELDS.index(GLOBAL)


def field_indices(fields: Sequence[str]) -> tuple[int, ...]:
    """Positions in :data:`FIELDS` of a subset of fields, in :data:`FIELDS` order.

    Raises:
        ValueError: for an unknown field, an empty subset, or one without :data:`GLOBAL` (zero-shot
            inference needs the global representation).
    """
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        raise ValueError(f"fields must be a non-empty subset of {FIELDS}; got unknown {unknown}")
    if GLOBAL not in fields:
        raise ValueError(f"fields must include {GLOBAL!r}: zero-shot inference uses the global representation")
    return tuple(sorted(FIELDS.index(f) for f in set(fields)))
