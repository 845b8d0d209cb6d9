"""The ``qrules`` command line: ``lint``, ``demo``, ``explain``, ``diff``, ``export``,
``test``, ``lsp`` and ``report``.

One module per command, each with two plain functions: ``add(subparsers)`` declares
the command's arguments (and sets ``run``), ``run(args) -> int`` does the work. Add a
command by writing such a module and listing its ``add`` in ``COMMANDS``; what several
commands share (``UsageError``, exit codes, the model arguments) is in ``common``.

Imports stay light at the top of every command module: ``qrules lint`` runs in CI and
in pre-commit hooks, where importing torch would cost seconds and where torch may not
even be installed. Every command imports what it needs inside its ``run`` function.

Exit status: 0 success, 1 findings (lint) or a difference (diff), 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from qrules.cli import demo, diff, explain, export, lint, lsp, report, test
from qrules.cli.common import EXIT_USAGE, UsageError, version
from qrules.cli.lint import FORMATS, collect_files

__all__ = ["main", "build_parser", "COMMANDS", "UsageError", "version", "FORMATS",
           "collect_files"]

#: Every subcommand's ``add`` function, in the order ``qrules --help`` lists them.
COMMANDS: tuple[Callable[..., None], ...] = (lint.add, demo.add, explain.add, diff.add,
                                              export.add, test.add, lsp.add, report.add)


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``only`` (a command's name) of that one:
    a command line that names its command first needs no other (building them all
    is a fiftieth of a lint run)."""
    parser = argparse.ArgumentParser(
        prog="qrules", description="Quantization rules for PyTorch: check and use .qrule files.")
    parser.add_argument("--version", action="version", version=f"qrules {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        if only is None or _name(add_command) == only:
            add_command(subparsers)
    return parser


def _name(add_command: Callable[..., None]) -> str:
    """A command's name: its module's (``qrules.cli.lint`` -> ``lint``)."""
    return add_command.__module__.rpartition(".")[2]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line and return the exit status; never shows a traceback."""
    words = sys.argv[1:] if argv is None else list(argv)
    named = words[0] if words and words[0] in map(_name, COMMANDS) else None
    parser = build_parser(only=named)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help/--version (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    program = argv is None and args.command == "lint"  # the command owns its process
    if program:
        lint.start_program()
    status = _run(args)
    if program:
        lint.end_program(status)
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        return args.run(args)
    except UsageError as err:
        # Only the first line carries the prefix: the rest of a diagnostic (its source
        # line and caret, its notes) is printed as `qrules lint` prints it.
        print(f"qrules {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qrules lint ... | head`: the reader left; an I/O error
        _silence_stdout()
        return EXIT_USAGE
    except Exception as err:  # the promise is: no traceback, ever; exit 2
        print(f"qrules {args.command}: internal error: {type(err).__name__}: {err}\n"
              "This is a bug in qrules; please report it with the input that caused it.",
              file=sys.stderr)
        return EXIT_USAGE


def _silence_stdout() -> None:
    # Point fd 1 at devnull so the interpreter's final flush does not raise again
    # (the recipe from the Python docs on SIGPIPE).
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a captured or replaced stdout
        pass
