"""What the language server knows about one open document: the checked ruleset (the
checker's own result, no second parser), and the name under a position.

Positions: LSP counts lines and characters from 0, spans from 1. Characters are taken
as code points (the same as UTF-16 units outside the astral planes; .qrule names are
ASCII).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from lsprotocol import types

from qrules.checking import check_ruleset_text
from qrules.resources import builtin_ruleset_path
from qrules.semantics.ruleset import Ruleset
from qrules.semantics.entries import Definition
from qrules.span import Span
from qrules.syntax import ast
from qrules.syntax.grammar import name_pattern

_WORD = re.compile(name_pattern())


def uri_to_path(uri: str) -> Optional[Path]:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def to_range(span: Span) -> types.Range:
    return types.Range(start=types.Position(line=span.line - 1, character=span.col - 1),
                       end=types.Position(line=span.end_line - 1, character=span.end_col - 1))


@dataclass(frozen=True)
class Word:
    text: str
    range: types.Range
    after_dot: bool  # `input.rank`: a fact, not a top-level name


def word_at(text: str, position: types.Position) -> Optional[Word]:
    """The name (or diagnostic code) the cursor is on or just after."""
    lines = text.split("\n")
    if position.line >= len(lines):
        return None
    line = lines[position.line]
    for found in _WORD.finditer(line):
        if found.start() <= position.character <= found.end():
            start = found.start()
            return Word(found.group(), types.Range(
                start=types.Position(line=position.line, character=start),
                end=types.Position(line=position.line, character=found.end())),
                line[:start].rstrip().endswith("."))
    return None


class Document:
    """One document's check: diagnostics, definitions and where each file lives."""

    def __init__(self, uri: str, text: str):
        self.uri, self.text = uri, text
        self.path = uri_to_path(uri)
        on_disk = self.path is not None and self.path.is_file()
        self.name = str(self.path) if self.path is not None else uri
        self.ruleset: Ruleset = check_ruleset_text(
            text, self.name, path=self.path if on_disk else None)
        #: Display name in spans -> the file's URI (the prelude, included files).
        self.uris = {unit.name: unit.path.resolve().as_uri() if unit.path else uri
                     for unit in self.ruleset.symbols.units}
        self.uris[self.name] = uri

    def uri_of(self, span: Span) -> str:
        return self.uris.get(span.file or "", self.uri)

    def location(self, span: Span) -> types.Location:
        return types.Location(uri=self.uri_of(span), range=to_range(span))

    def source_of(self, span: Span) -> str:
        """The text a span covers, from the file it is in."""
        text = self.ruleset.sources.get(span.file or "", "")
        return text[span.start:span.end] if isinstance(text, str) else ""

    def definitions(self, name: str) -> list[tuple[str, Definition]]:
        """(kind, definition) of every definition of ``name``: params, specs, configs,
        ops, patterns, rules; within a kind in file order (the one in force last)."""
        symbols = self.ruleset.symbols
        found: list[tuple[str, Definition]] = []
        if name in symbols.params:
            found.append(("param", symbols.params[name]))
        for kind, table in (("spec", symbols.specs), ("config", symbols.configs),
                            ("op", symbols.ops)):
            found += [(kind, d) for d in table.get(name, ())]
        if name in symbols.patterns:
            found.append(("pattern", symbols.patterns[name]))
        found += [("rule", Definition(e.rule, e.unit)) for e in symbols.all_rules()
                  if e.name == name]
        return found

    def include_at(self, position: types.Position):
        """The ``include`` item of this file the position is on, if any."""
        root = self.ruleset.symbols.root
        if root is None:
            return None
        line = position.line + 1
        for item in root.file.items:
            if isinstance(item, ast.Include) and item.span.line <= line <= item.span.end_line:
                return item
        return None

    def include_path(self, item: ast.Include) -> Optional[Path]:
        """The file an include names, as the loader finds it."""
        if not item.is_path:
            return builtin_ruleset_path(item.target)
        base = self.path.parent if self.path is not None else Path.cwd()
        target = base / item.target
        return target if target.is_file() else None
