"""Turn Lark's "expected one of: NAME, LBRACE, …" into sentences a rule author reads.

The expected-terminal set says where the parser was; we name that place in the
language's own words ("a config name or `{`"), say what came before and what was
found instead.
"""

from __future__ import annotations

from lark.exceptions import UnexpectedInput, UnexpectedToken

from qrules.syntax.grammar import expression_start_terminals, item_start_terminals
from qrules.syntax.grammar import parser as lark_parser

_FRIENDLY = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "$END": "end of file", "OPTIONAL": "`?`", "STAR": "`*`",
}


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = lark_parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return f"`{pattern.value}`"
    return name.lower()


def expected_phrase(expected: set[str]) -> str:
    """A short description of an expected-terminal set."""
    expected = set(expected)
    expression_start, item_start = expression_start_terminals(), item_start_terminals()
    parts: list[str] = []
    if "LBRACE" in expected and expected & expression_start:
        parts.append("a config name or `{`")
        expected -= expression_start | {"LBRACE"}
    elif {"NAME", "LPAR", "REGION"} <= expected:
        parts.append("an op name, `(` or `region(...)`")
        expected -= {"NAME", "LPAR", "REGION"}
    elif len(expected & expression_start) >= 5:
        parts.append("an expression")
        expected -= expression_start
    if len(expected & item_start) >= 5:
        parts.append("a new item (`rule`, `spec`, `config`, …)")
        expected -= item_start
    parts.extend(sorted(_terminal_text(t) for t in expected))
    if not parts:
        return "something else"
    if len(parts) > 6:
        parts = parts[:6] + ["…"]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _previous_token(chunk: str, offset: int) -> str | None:
    try:
        tokens = list(lark_parser().lex(chunk[:offset], dont_ignore=False))
    except Exception:  # the prefix itself may not lex; the message just gets shorter
        return None
    return tokens[-1].value if tokens else None


def describe_unexpected(err: UnexpectedInput, chunk: str, at_end: bool = False) -> str:
    expected = getattr(err, "expected", None) or set()
    offset = err.pos_in_stream if err.pos_in_stream is not None else len(chunk)
    if at_end:
        # Lark places `$END` at the start of the last token, so the token before that
        # offset is the second-to-last one ("after `..`" for `-128..127`). At the end
        # of the input, the token the parser stopped after is the last one.
        offset = len(chunk)
    previous = _previous_token(chunk, offset)
    where = f" after `{previous}`" if previous else ""
    wanted = expected_phrase(expected)
    if at_end:
        return f"unexpected end of file: expected {wanted}{where}"
    found = err.token.value if isinstance(err, UnexpectedToken) else chunk[offset:offset + 1]
    found = found if len(found) <= 40 else found[:37] + "..."
    return f"expected {wanted}{where}, found `{found}`"
