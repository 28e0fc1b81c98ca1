"""Command lines generated from typed option dataclasses: a command's options are written once, as fields.

Each field of an option dataclass is an option: its name gives the flag (``max_epochs`` ->
``--max-epochs``), its type how it is read, its description in the class docstring's ``Attributes:`` its
help, and its default the default (a field without one is required). :func:`positional` makes a field
a positional argument, :func:`option` gives a metavar. Types:

* ``str``, ``int`` (and ``... | None``): one value; ``Literal[...]``: one of the choices;
* ``bool``: a switch (``--reselect``);
* ``tuple[str, ...]``: repeatable, one value each (``--set=A --set=B``);
* ``dict[...]``: a YAML/JSON mapping (``--search "{model.lr: [0.001]}"``).

:func:`render_options` writes options back as the argument list that parses to them (a selection records
its reproduction command so). LightningCLI generates the training commands' options from signatures
likewise; these commands keep their own flag spelling (dashes, repeatable ``--set=--key=value``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

import docstring_parser
import yaml

__all__ = ["option", "parse_options", "positional", "render_options"]

T = TypeVar("T")
_POSITIONAL = "positional"
_METAVAR = "metavar"


def positional(default: Any = dataclasses.MISSING) -> Any:
    """A positional argument (optional when it has a ``default``)."""
    return dataclasses.field(default=default, metadata={_POSITIONAL: True})


def option(default: Any = dataclasses.MISSING, *, metavar: str | None = None) -> Any:
    """An option with a ``metavar`` in its usage line (e.g. ``--KEY=VALUE``, ``DIR``)."""
    return dataclasses.field(default=default, metadata={_METAVAR: metavar} if metavar else {})


def _flag(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def _kind(hint: Any) -> tuple[str, Any]:
    """``(kind, detail)`` of a field type: ``value`` (with its converter), ``choice`` (with the choices),
    ``switch``, ``repeated`` or ``mapping``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is Literal:
        return "choice", args
    if hint is bool:
        return "switch", None
    if origin is tuple:
        return "repeated", args[0]
    if origin is dict or hint is dict:
        return "mapping", yaml.safe_load
    if hint in (str, int, float):
        return "value", hint
    raise TypeError(f"option type {hint!r} is not one of str, int, float, bool, Literal, tuple[str, ...], dict")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add the fields of the option dataclass ``cls`` to ``parser`` (module docstring)."""
    hints = typing.get_type_hints(cls, include_extras=False)
    helps = {p.arg_name: p.description or "" for p in docstring_parser.parse(cls.__doc__ or "").params}
    for field in dataclasses.fields(cls):
        kind, detail = _kind(hints[field.name])
        default = _default(field)
        text = " ".join(helps.get(field.name, "").split()).replace("%", "%%")
        shown = default is not dataclasses.MISSING and default is not None and kind != "switch" and default != ()
        if shown and default != "" and "default" not in text:
            text += f" (default: {default})"
        kwargs: dict[str, Any] = {"help": text}
        if _METAVAR in field.metadata:
            kwargs["metavar"] = field.metadata[_METAVAR]
        if kind == "choice":
            kwargs["choices"] = detail
        elif kind == "switch":
            kwargs["action"] = "store_true"
        elif kind == "repeated":
            kwargs.update(action="append", type=detail)
        else:
            kwargs["type"] = detail
        if field.metadata.get(_POSITIONAL):
            if default is not dataclasses.MISSING:
                kwargs.update(nargs="?", default=default)
            parser.add_argument(field.name, **kwargs)
            continue
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = None if kind == "repeated" else default
        parser.add_argument(_flag(field), dest=field.name, **kwargs)


def parse_options(argv: Sequence[str] | None, classes: Sequence[type], prog: str, description: str) -> tuple[Any, ...]:
    """Parse ``argv`` (default: the command line) into one instance of each option dataclass in ``classes``.

    Raises:
        SystemExit: status 2 with the usage on a bad option, or on a ``ValueError`` of a dataclass's own
            checks (its ``__post_init__``); 0 after ``--help``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for cls in classes:
        add_options(parser, cls)
    namespace = vars(parser.parse_args(argv))
    out = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        values = {f.name: namespace[f.name] for f in dataclasses.fields(cls)}
        for name in values:
            if _kind(hints[name])[0] == "repeated":
                values[name] = tuple(values[name] or ())
        try:
            out.append(cls(**values))
        except ValueError as err:
            parser.error(str(err))
    return tuple(out)


def render_options(options: Any, fields: Iterable[str] | None = None) -> list[str]:
    """The argument list that :func:`parse_options` reads back as ``options`` (``None`` values and unset
    switches left out; only ``fields`` when given)."""
    hints = typing.get_type_hints(type(options))
    wanted = None if fields is None else set(fields)
    out: list[str] = []
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if (wanted is not None and field.name not in wanted) or value is None:
            continue
        kind, _ = _kind(hints[field.name])
        if field.metadata.get(_POSITIONAL):
            out.append(str(value))
        elif kind == "switch":
            out += [_flag(field)] if value else []
        elif kind == "repeated":
            out += [f"{_flag(field)}={v}" for v in value]
        elif kind == "mapping":
            out += [_flag(field), yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()]
        else:
            out += [_flag(field), str(value)]
    return out
