"""``qrules lsp``: the .qrule language server on stdin/stdout, for editors.

pygls is an optional dependency (``pip install qrules[lsp]``); without it the command
says so and exits 2."""

from __future__ import annotations

import argparse

from qrules.cli.common import UsageError, version


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "lsp", help="run the .qrule language server on stdio (for editors)",
        description="Speak the Language Server Protocol on stdin/stdout: lint diagnostics, "
                    "hover, go-to-definition and completion for .qrule files.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from qrules.lsp.server import build_server
    except ImportError as err:
        raise UsageError(f"the language server needs pygls ({err}); "
                         "install it with `pip install qrules[lsp]`") from None
    build_server(version()).start_io()
    return 0
