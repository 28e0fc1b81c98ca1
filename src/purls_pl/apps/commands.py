"""The ``purls-pl`` / ``python -m purls_pl`` dispatcher, kept free of heavy imports.

``fit``/``validate``/``test``/``predict`` (and no command, or ``--help``) go to the LightningCLI in
:mod:`purls_pl.train.cli`; the other commands dispatch to their own modules, so a light command such as
``describe`` or ``report`` starts without loading Lightning.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from purls_pl.text.descriptions import DescriptionError

#: LightningCLI's subcommands (fit, validate, test, predict) go here.
LIGHTNING = "purls_pl.train.cli:main"
#: The LightningCLI subcommands of stage 2 (and, after ``pretrain``, of stage 1), with what they do.
LIGHTNING_COMMANDS: dict[str, str] = {
    "fit": "train PURLS (stage 2) on a split's seen classes, then test it once on the unseen classes",
    "validate": "run the validation loop of a config",
    "test": "test a checkpoint (--ckpt_path) on the unseen classes",
    "predict": "run the predict loop of a config",
}
#: Subcommands beside LightningCLI's: name -> ("module:function" taking the remaining argv, what it does).
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": (
        "purls_pl.train.pretrain:main",
        "stage 1: pre-train a backbone on the seen classes",
    ),
    "configs": ("purls_pl.apps.experiments:main", "print the --config arguments of a split's run"),
    "select": ("purls_pl.apps.select:main", "choose a split's settings on validation classes"),
    "report": ("purls_pl.apps.report:main", "the results table of finished runs"),
    "table": ("purls_pl.apps.table:main", "run a table spec (methods x splits x seeds) and publish it"),
    "describe": ("purls_pl.text.llm.generate:main", "write the 8 descriptions per class with an LLM"),
    "import-descriptions": ("purls_pl.text.llm.importers:import_main", "convert csv, xlsx or hand-written JSON"),
    "validate-descriptions": ("purls_pl.text.llm.importers:validate_main", "check a description file"),
    "merge-descriptions": ("purls_pl.text.llm.importers:merge_main", "join description files"),
    "import-poses": (
        "purls_pl.data.pose_import:main",
        "convert pose-estimator JSON (MMPose, OpenPose) into a custom dataset",
    ),
    "recognize": ("purls_pl.apps.recognize:main", "rank candidate actions for skeleton files"),
    "recognize-video": (
        "purls_pl.apps.recognize_video:main",
        "when each named action happens in a video or pose JSON (segments, timeline)",
    ),
    "plot-attention": ("purls_pl.apps.plot:plot_attention_main", "plot a checkpoint's partition attention"),
    "plot-results": ("purls_pl.apps.plot:plot_results_main", "plot accuracy against the number of unseen classes"),
    "text-report": ("purls_pl.apps.text_report:main", "diagnose a description set's text embeddings"),
}
#: Set to ``1`` (or pass ``--debug``) for the full traceback of a user error.
DEBUG_ENV = "PURLS_DEBUG"
#: What a user error is: bad input, a refused file, a full disk, a diverged run. Anything else is a bug
#: and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, DescriptionError)


def _load(target: str) -> Callable[..., object]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def _message(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return str(text) or type(err).__name__


def exit_on_user_error(run: Callable[[], object], debug: bool = False) -> object:
    """Run ``run``, printing a user error (:data:`USER_ERRORS`: missing or refused files, bad options or
    descriptions, a non-finite loss) as ``error: <message>`` with exit status 2, without the traceback
    unless ``debug`` or ``$PURLS_DEBUG`` is set. Used when called from the command line."""
    try:
        return run()
    except USER_ERRORS as err:
        if debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"error: {_message(err)}", file=sys.stderr)
        print(f"(the traceback: rerun with --debug or {DEBUG_ENV}=1)", file=sys.stderr)
        raise SystemExit(2) from None


def usage() -> str:
    """Every command of ``purls-pl``, one line each."""
    rows = {**LIGHTNING_COMMANDS, **{name: what for name, (_, what) in COMMANDS.items()}}
    width = max(map(len, rows))
    lines = [f"  {name:<{width}}  {what}" for name, what in rows.items()]
    return (
        "usage: purls-pl <command> [options]   (also python -m purls_pl)\n\ncommands:\n"
        + "\n".join(lines)
        + ("\n\n`purls-pl <command> --help` lists a command's options; --debug shows the traceback of an error.")
    )


def unknown_command(word: str, known: Sequence[str], where: str = "purls-pl") -> str:
    """The message for a mistyped command: the closest known ones, and the list."""
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{where}: unknown command {word!r}{hint} Commands: {', '.join(known)}"


def _check_command(args: list[str]) -> None:
    """Exit 2 with :func:`unknown_command` when the first word (or the one after ``pretrain``) is no command."""
    if args and not args[0].startswith("-") and args[0] not in COMMANDS and args[0] not in LIGHTNING_COMMANDS:
        print(f"error: {unknown_command(args[0], [*LIGHTNING_COMMANDS, *COMMANDS])}", file=sys.stderr)
        raise SystemExit(2)
    if args[:1] == ["pretrain"] and len(args) > 1 and not args[1].startswith("-") and args[1] not in LIGHTNING_COMMANDS:
        print(f"error: {unknown_command(args[1], list(LIGHTNING_COMMANDS), 'purls-pl pretrain')}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> object:
    """Dispatch ``argv`` (default: the command line) to a command or the LightningCLI.

    From the command line (``argv`` is ``None``), ``--debug`` anywhere is taken out and keeps the traceback
    of a user error; without it a user error is one ``error:`` line and exit status 2.
    """
    from_command_line = argv is None
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if from_command_line:
        _check_command(args)
    if args[:1] in (["-h"], ["--help"]) or not args:
        print(usage(), file=sys.stderr)
        if not args:
            raise SystemExit(2)
        if from_command_line:
            raise SystemExit(0)
    if args and args[0] in COMMANDS:
        command = _load(COMMANDS[args[0]][0])
        if not from_command_line:
            return command(args[1:])
        return exit_on_user_error(lambda: command(args[1:]), debug)
    lightning_main = _load(LIGHTNING)
    if not from_command_line:
        return lightning_main(args)
    sys.argv = [sys.argv[0], *args]
    return exit_on_user_error(lambda: lightning_main(None), debug)
