"""The method contract: what a zero-shot method must implement is abstract, so a method lacking it
cannot be built, and the error names what is missing."""

import pytest

from purls_pl.models.method import ZeroShotMethod


class _Unfinished(ZeroShotMethod):
    """Implements the training step only."""

    def training_step(self, batch, batch_idx):
        return None


def test_a_method_lacking_the_contract_cannot_be_built():
    with pytest.raises(TypeError) as err:
        _Unfinished(None, "ntu25", None)
    for name in ("evaluate", "full_class_text", "score", "text_dim"):
        assert name in str(err.value)
