"""Text -> AST plus syntax diagnostics. Lark errors become qrules diagnostics here.

Recovery: the whole file is parsed first. If that fails, the file is cut into
chunks at lines that start (in column 1) with an item keyword, and each chunk is
parsed on its own; the grammar is a flat sequence of items, so a chunk that parses
is exactly what the whole file would have produced for those lines, and each broken
chunk yields one diagnostic. Inputs that could hurt the parser (binary data, bad
UTF-8, huge lines, deep nesting) are reported before Lark sees them.
"""

from __future__ import annotations

import gc
import re
from functools import lru_cache
from typing import NamedTuple, Optional, Union

from qrules.diagnostics import Diagnostic, diagnostic
from qrules.span import Span
from qrules.syntax import ast
from qrules.syntax.build import AstBuilder, make_node, rule_methods
from qrules.syntax.driver import NotDriven, Token, drive

MAX_LINE_LENGTH = 4000
MAX_NESTING = 64
#: Deepest parse tree the checks (recursive) are given. Real files stay under 40;
#: chains like `- - - … 1` or `not not …` would otherwise recurse past Python's limit.
MAX_TREE_DEPTH = 160

_OPEN = "([{"
_BRACKET = re.compile(r"[()\[\]{}]")
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


class ParseResult(NamedTuple):
    file: ast.File
    diagnostics: tuple[Diagnostic, ...]
    text: str
    #: The text of each chunk that did not parse. Its items are missing from ``file``;
    #: the semantic stage uses this to avoid reporting their names as unknown or their
    #: uses as missing (cascades of the one syntax error).
    unparsed: tuple[str, ...] = ()


def decode(data: bytes, file: Optional[str]) -> tuple[Optional[str], list[Diagnostic]]:
    """Bytes -> text, or a diagnostic saying why the bytes are not a .qrule file."""
    if b"\0" in data:
        return None, [_nul(data, data.index(b"\0"), file)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col(data, err.start)
        return None, [diagnostic(
            "QR102", f"invalid UTF-8 (byte 0x{data[err.start]:02x}); .qrule files are UTF-8",
            Span.point(file, line, col, err.start))]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def check_text(text: str, file: Optional[str]) -> list[Diagnostic]:
    """What ``decode`` refuses in bytes, refused in a str too: the same file must get
    the same answer whichever way it arrives (a NUL would otherwise reach the OS in an
    include path; a lone surrogate cannot be encoded as a path or printed)."""
    if "\0" in text:
        return [_nul(text, text.index("\0"), file)]
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            line = text.count("\n", 0, err.start) + 1
            col = err.start - (text.rfind("\n", 0, err.start) + 1) + 1
            return [diagnostic(
                "QR102", f"invalid Unicode (lone surrogate U+{ord(text[err.start]):04X}); "
                ".qrule files are UTF-8", Span.point(file, line, col, err.start))]
    return []


def _nul(data: Union[str, bytes], offset: int, file: Optional[str]) -> Diagnostic:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1
    col = offset - (data.rfind(newline, 0, offset) + 1) + 1
    return diagnostic("QR101", "file contains NUL bytes; is it a binary file?",
                      Span.point(file, line, col, offset))


def parse(source: Union[str, bytes], file: Optional[str] = None) -> ParseResult:
    """Parse one .qrule source. Never raises for any input; problems are diagnostics.

    The cyclic garbage collector is paused meanwhile (and resumed as it was): a parse
    makes tens of thousands of fresh containers (lark's tree, tokens, AST nodes), all
    alive until it returns and without reference cycles, and collections triggered by
    their number only walk them again and again (a third of the parse time)."""
    running = gc.isenabled()
    gc.disable()
    try:
        return _parse(source, file)
    finally:
        if running:
            gc.enable()


def _parse(source: Union[str, bytes], file: Optional[str]) -> ParseResult:
    if isinstance(source, bytes):
        text, problems = decode(source, file)
    else:
        text, problems = source, check_text(source, file)
    if problems:
        return ParseResult(_empty(file), tuple(problems), "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    diagnostics: list[Diagnostic] = []
    items: list = []
    unparsed: list[str] = []

    whole = _parse_chunk(text, file, 0, 0)
    if isinstance(whole, ast.File):
        items.extend(whole.items)
    else:
        for line_offset, pos_offset, chunk in _chunks(text):
            result = _parse_chunk(chunk, file, line_offset, pos_offset)
            if isinstance(result, ast.File):
                items.extend(result.items)
            else:
                diagnostics.append(result)
                unparsed.append(chunk)
    end_line = text.count("\n") + 1
    span = Span.model_construct(file=file, line=1, col=1, end_line=end_line,
                                end_col=len(text) - text.rfind("\n"), start=0, end=len(text))
    tree = make_node(ast.File, span=span, path=file, items=tuple(items))
    if not text.strip() or (not items and not diagnostics):
        diagnostics.append(diagnostic("QR108", "file defines nothing",
                                      Span.point(file, 1, 1)))
    return ParseResult(tree, tuple(diagnostics), text, tuple(unparsed))


def blank_strings_and_comments(text: str) -> str:
    """``text`` with each string literal and comment replaced by as many spaces, so
    that brackets and words inside them are not read as code (offsets are kept)."""
    return _STRING_OR_COMMENT.sub(lambda m: " " * len(m.group()), text)


def _line_col(text: Union[str, bytes], offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, offset) + 1
    return line, offset - (text.rfind(newline, 0, offset) + 1) + 1


def _empty(file: Optional[str]) -> ast.File:
    return make_node(ast.File, span=Span.point(file, 1, 1), path=file, items=())


@lru_cache(maxsize=1)
def _chunk_start() -> re.Pattern:
    """A line that starts (in column 1) with a word that starts an item."""
    from qrules.syntax.grammar import item_keywords

    return re.compile(r"^(?:%s)\b" % "|".join(map(re.escape, item_keywords())), re.M)


def _chunks(text: str):
    """Split at column-1 item keywords: (line offset, char offset, chunk text)."""
    starts = [m.start() for m in _chunk_start().finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    for begin, end in zip(starts, starts[1:]):
        yield text.count("\n", 0, begin), begin, text[begin:end]


def _parse_chunk(chunk: str, file: Optional[str], line_offset: int,
                 pos_offset: int) -> Union[ast.File, Diagnostic]:
    """One chunk -> File, or the first diagnostic that stops it."""
    guard = _guard(chunk, file, line_offset, pos_offset)
    if guard is not None:
        return guard
    methods = rule_methods(AstBuilder(file, line_offset, pos_offset))
    try:
        return drive(chunk, methods, MAX_TREE_DEPTH)
    except NotDriven:
        pass
    # Not a clean parse: lark's own, whose exceptions say what is wrong, and whose
    # tree shows where it nests too deeply. (lark is imported only for this.)
    from lark.exceptions import LarkError, UnexpectedInput

    from qrules.syntax.grammar import parser as lark_parser

    try:
        tree = lark_parser().parse(chunk)
    except UnexpectedInput as err:
        return _from_lark(err, chunk, file, line_offset, pos_offset)
    except LarkError as err:  # pragma: no cover - lark internals; still no traceback
        return diagnostic("QR100", f"cannot parse: {err}",
                          Span.point(file, line_offset + 1, 1, pos_offset))
    deep = _too_deep(tree)
    if deep is not None:
        line, col, offset = deep
        return diagnostic("QR105", f"expression nests more than {MAX_TREE_DEPTH} levels deep",
                          Span.point(file, line + line_offset, col, offset + pos_offset))
    return _build_from_tree(tree, methods)  # the driver declined a tree lark accepts


def _build_from_tree(tree, methods: dict):
    """What the driver builds, from a tree of lark's (no deeper than MAX_TREE_DEPTH):
    each node's method called with its meta and children, tokens as the driver's."""
    children = [_build_from_tree(child, methods) if hasattr(child, "data") else Token.of(child)
                for child in tree.children]
    return methods[tree.data](tree.meta, children)


def _too_deep(tree) -> Optional[tuple[int, int, int]]:
    """Position of the first subtree deeper than MAX_TREE_DEPTH, found without recursion
    (in the order QR105 has always reported it)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            meta = node.meta
            if getattr(meta, "empty", True):
                return (1, 1, 0)
            return (meta.line, meta.column, meta.start_pos)
        stack.extend((child, depth + 1) for child in node.children
                     if not isinstance(child, str))
    return None


def _guard(chunk: str, file, line_offset: int, pos_offset: int) -> Optional[Diagnostic]:
    """Refuse what would make Lark or the tree builder slow or recurse too deeply."""
    pos = 0
    for number, line in enumerate(chunk.split("\n")):
        if len(line) > MAX_LINE_LENGTH:
            return diagnostic(
                "QR104", f"line is {len(line):,} characters long; the limit is "
                f"{MAX_LINE_LENGTH:,}", Span.point(file, line_offset + number + 1,
                                                   MAX_LINE_LENGTH + 1, pos_offset + pos))
        pos += len(line) + 1
    # Brackets inside strings and comments do not nest; blank them out first.
    masked = blank_strings_and_comments(chunk)
    depth = 0
    for match in _BRACKET.finditer(masked):
        if match.group() in _OPEN:
            depth += 1
            if depth > MAX_NESTING:
                offset = match.start()
                line, col = _line_col(chunk, offset)
                return diagnostic("QR105", f"brackets nest more than {MAX_NESTING} deep",
                                  Span.point(file, line_offset + line, col,
                                             pos_offset + offset))
        else:
            depth = max(0, depth - 1)
    return None


def _from_lark(err, chunk: str, file, line_offset: int, pos_offset: int) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    from qrules.syntax.messages import describe_unexpected

    line = (err.line if err.line and err.line > 0 else chunk.count("\n") + 1)
    col = err.column if err.column and err.column > 0 else 1
    offset = err.pos_in_stream if err.pos_in_stream is not None else len(chunk)
    span = Span.point(file, line + line_offset, col, offset + pos_offset)
    if isinstance(err, UnexpectedCharacters):
        ch = chunk[offset] if offset < len(chunk) else ""
        if ch == '"':
            return diagnostic("QR103", "string is not closed on this line", span)
        return diagnostic("QR106", f"unexpected character {ch!r}", span)
    if isinstance(err, UnexpectedToken) and err.token.type == "$END":
        code, message = "QR107", describe_unexpected(err, chunk, at_end=True)
        return diagnostic(code, message, span)
    return diagnostic("QR100", describe_unexpected(err, chunk), span)
