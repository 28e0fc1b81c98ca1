"""The ``purls-pl`` / ``python -m purls_pl`` dispatcher, kept free of heavy imports.

``fit``/``validate``/``test``/``predict`` (and no command, or ``--help``) go to the LightningCLI in
:mod:`purls_pl.train.cli`; the other commands dispatch to their own modules, so a light command such as
``describe`` or ``report`` starts without loading Lightning.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from purls_pl.text.descriptions import DescriptionError

#: LightningCLI's subcommands (fit, validate, test, predict) go here.
LIGHTNING = "purls_pl.train.cli:main"
#: Subcommands beside LightningCLI's: name -> "module:function" taking the remaining argv.
COMMANDS: dict[str, str] = {
    "pretrain": "purls_pl.train.pretrain:main",
    "configs": "purls_pl.apps.experiments:main",
    "select": "purls_pl.apps.select:main",
    "report": "purls_pl.apps.report:main",
    "table": "purls_pl.apps.table:main",
    "describe": "purls_pl.text.llm.generate:main",
    "import-descriptions": "purls_pl.text.llm.importers:import_main",
    "validate-descriptions": "purls_pl.text.llm.importers:validate_main",
    "merge-descriptions": "purls_pl.text.llm.importers:merge_main",
    "recognize": "purls_pl.apps.recognize:main",
    "plot-attention": "purls_pl.apps.plot:plot_attention_main",
    "plot-results": "purls_pl.apps.plot:plot_results_main",
    "text-report": "purls_pl.apps.text_report:main",
}


def _load(target: str) -> Callable[..., object]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def exit_on_user_error(run: Callable[[], object]) -> object:
    """Run ``run``, printing input errors (missing data or checkpoint, bad descriptions) as one message
    instead of a traceback, with exit status 2. Used when called from the command line."""
    try:
        return run()
    except (FileNotFoundError, DescriptionError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> object:
    """Dispatch ``argv`` (default: the command line) to a command or the LightningCLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        command = _load(COMMANDS[args[0]])
        return command(args[1:]) if argv is not None else exit_on_user_error(lambda: command(args[1:]))
    if args[:1] in (["-h"], ["--help"]) or not args:
        print("commands: fit, validate, test, predict (LightningCLI), " + ", ".join(COMMANDS), file=sys.stderr)
    lightning_main = _load(LIGHTNING)
    return lightning_main(args) if argv is not None else exit_on_user_error(lambda: lightning_main(None))
