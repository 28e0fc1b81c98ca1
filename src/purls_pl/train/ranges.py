"""The ranges of the numeric options of both stages, checked when the command line is parsed.

A value outside its range (``--data.batch_size=0``, ``--model.lr=0``, ``--trainer.max_epochs=0``) is
refused before anything is built, with the option, its value, the range and what the option is, instead
of failing deep inside a DataLoader or training a run that cannot learn. Options a config does not have
(stage 1 has no ``model.field_weight``) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonargparse import Namespace


@dataclass(frozen=True)
class Range:
    """An allowed range: ``low`` (inclusive unless ``open_low``) to ``high`` (inclusive unless ``open_high``),
    plus any ``also`` values (``-1`` for "no limit")."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    also: tuple[float, ...] = ()
    integer: bool = False

    def admits(self, value: float) -> bool:
        if value in self.also:
            return True
        if self.integer and int(value) != value:
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.open_high and value == self.high)))

    def describe(self) -> str:
        low = "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        high = "" if self.high is None else f"{'<' if self.open_high else '<='} {self.high:g}"
        text = " and ".join(p for p in (low, high) if p)
        also = f" (or {', '.join(f'{a:g}' for a in self.also)})" if self.also else ""
        return f"{'an integer ' if self.integer else ''}{text}{also}"


POSITIVE = Range(0, open_low=True)
POSITIVE_INT = Range(1, integer=True)
NON_NEGATIVE = Range(0)
NON_NEGATIVE_INT = Range(0, integer=True)
UNIT = Range(0, 1)
DROP_RATE = Range(0, 1, open_high=True)

#: option -> (range, what it is). One list for both stages.
RANGES: dict[str, tuple[Range, str]] = {
    "data.batch_size": (POSITIVE_INT, "training batch size"),
    "data.eval_batch_size": (POSITIVE_INT, "evaluation batch size"),
    "data.num_workers": (NON_NEGATIVE_INT, "DataLoader worker processes"),
    "data.holdout": (DROP_RATE, "share of the seen-class training samples held out"),
    "data.label_mix": (UNIT, "weight of the label in the class text"),
    "data.alternatives": (NON_NEGATIVE_INT, "description answers kept per field (0: all)"),
    "model.lr": (POSITIVE, "learning rate"),
    "model.weight_decay": (NON_NEGATIVE, "weight decay"),
    "model.label_smoothing": (DROP_RATE, "label smoothing"),
    "model.dropout": (DROP_RATE, "dropout"),
    "model.proj_hidden": (POSITIVE_INT, "hidden width of f_skel"),
    "model.proj_dropout": (DROP_RATE, "dropout of f_skel"),
    "model.temperature_init": (POSITIVE, "initial contrastive temperature"),
    "model.warmup_epochs": (NON_NEGATIVE_INT, "learning-rate warm-up epochs"),
    "model.label_fusion": (UNIT, "weight of the label in each candidate's text"),
    "model.field_weight": (UNIT, "weight of the local fields in the score"),
    "model.label_field": (UNIT, "weight of the label field in the score"),
    "model.text_noise": (NON_NEGATIVE, "relative noise on the seen classes' text"),
    "model.node_dropout": (DROP_RATE, "share of nodes dropped per step"),
    "model.backbone.pool_frames": (POSITIVE_INT, "frames the backbone features are pooled to"),
    "model.backbone.extract_batch_size": (POSITIVE_INT, "batch size of feature extraction"),
    "trainer.max_epochs": (Range(1, integer=True, also=(-1,)), "training epochs (-1: no limit)"),
    "trainer.max_steps": (Range(1, integer=True, also=(-1,)), "training steps (-1: no limit)"),
    "trainer.accumulate_grad_batches": (POSITIVE_INT, "batches per optimizer step"),
    "trainer.log_every_n_steps": (POSITIVE_INT, "steps between two logged values"),
}


def _get(config: Namespace, key: str) -> Any:
    """``config``'s value at dotted ``key`` (looking through ``init_args``); ``None`` when absent."""
    node: Any = config
    for part in key.split("."):
        if isinstance(node, Namespace) and part not in node and isinstance(node.get("init_args"), Namespace):
            node = node.init_args
        if not isinstance(node, Namespace) or part not in node:
            return None
        node = node[part]
    return node


def range_errors(config: Namespace, ranges: dict[str, tuple[Range, str]] | None = None) -> list[str]:
    """One message per option of ``config`` outside its range (:data:`RANGES`)."""
    errors = []
    for key, (allowed, what) in (ranges or RANGES).items():
        value = _get(config, key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not allowed.admits(float(value)):
            errors.append(f"--{key}={value} is out of range: the {what} must be {allowed.describe()}")
    return errors


class OptionError(ValueError):
    """A command-line or config option holds an impossible value."""


def check_ranges(config: Namespace) -> None:
    """Refuse every out-of-range option of ``config`` at once.

    Raises:
        OptionError: listing each option, its value and its range.
    """
    errors = range_errors(config)
    if errors:
        raise OptionError("; ".join(errors) + " (set on the command line or in a --config file)")
