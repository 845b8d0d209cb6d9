"""Style: names in snake_case, a ruleset header with a MAJOR.MINOR[.PATCH] version."""

from __future__ import annotations

import re

from qrules.diagnostics import Diagnostic, diagnostic
from qrules.semantics.analysis import Analysis
from qrules.syntax import ast, tree

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def check_style(analysis: Analysis) -> list[Diagnostic]:
    symbols = analysis.symbols
    out: list[Diagnostic] = []
    named = [(d.node, "parameter") for d in symbols.params.values()]
    for what, table in (("op", symbols.ops), ("spec", symbols.specs),
                        ("config", symbols.configs)):
        named.extend((d.node, what) for defs in table.values() for d in defs[:1])
    named.extend((r.rule, "rule") for r in symbols.rules)
    # The ruleset name (what `qrules.load("name")` takes) and phase names are names too.
    for unit in symbols.units:
        named.extend((h, "ruleset") for h in unit.file.items if isinstance(h, ast.Header))
        named.extend((p, "phase") for p in _phases(unit.file))
    for node, what in named:
        if not _SNAKE.match(node.name):
            out.append(diagnostic("QR501", f"{what} name `{node.name}` is not snake_case",
                                  node.name_span))
    root = symbols.root
    if root is not None and root.file.header is None and root.file.items:
        out.append(diagnostic("QR502", "this file has no `ruleset NAME version \"X.Y\"` "
                              f"header; its ruleset is called `{symbols.name}`",
                              root.file.items[0].span))
    for unit in symbols.units:
        header = unit.file.header
        if header is not None and header.version is not None and not _VERSION.match(
                header.version):
            out.append(diagnostic("QR503", f"version \"{header.version}\" is not "
                                  "MAJOR.MINOR or MAJOR.MINOR.PATCH",
                                  header.version_span or header.span))
    return out


def _phases(file: ast.File) -> list[ast.Phase]:
    """Every phase block of a file, at any depth."""
    blocks = (ast.File, ast.Phase, ast.Scope, ast.When)
    return [node for node in tree.walk(file, into=blocks) if isinstance(node, ast.Phase)]
