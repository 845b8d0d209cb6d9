"""The driver's tables: lark's LALR table and lexer for the .qrule grammar, as plain
data, cached per user (``table_cache``) so that a clean parse never loads lark.

Built from lark's own parser (``grammar.parser()``) the first time, and whenever the
grammar, lark, Python or this module changes (all four are in the cache key). What
each rule does to its children is lark's ``ParseTreeBuilder`` written down as data:
which symbols are kept, which ``_rule`` lists are spliced in, which ``?rule`` passes
its one child through (see ``driver``).
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple

from qrules.resources import grammar_path
from qrules.syntax import table_cache

# What a reduction does with its children (``driver.drive``):
PASS = 0      # a `?rule` of one kept symbol: the stack is left as it is
INLINE = 1    # a `_rule`: its kept children, to be spliced into the parent's
EXPAND1 = 2   # a `?rule`: its one kept child, or else a node like NAMED
NAMED = 3     # a node: the builder's method for the rule (or its alias) is called


class Rule(NamedTuple):
    size: int              # symbols popped
    goto: str              # the nonterminal pushed
    kind: int              # PASS, INLINE, EXPAND1 or NAMED
    keep: tuple            # (index, splice?) of each kept symbol
    name: str              # the builder method's name (alias or rule name)
    whole: bool            # every symbol is kept, none spliced: the children as popped


class Tables(NamedTuple):
    actions: dict          # state -> {symbol: shift target (>= 0) or ~rule index (< 0)}
    rules: tuple           # Rule per rule index
    start: int
    end: int
    patterns: tuple        # (regex, flags) the lexer tries in order; groups name types
    ignore: frozenset      # token types dropped (whitespace, comments)
    newline: frozenset     # token types whose text may hold a newline
    keywords: dict         # token type -> {text: type}: a NAME that is a keyword
    match: tuple           # ``patterns`` compiled (stored empty)
    #: (state below, state, token type) -> the state after the PASS reductions it
    #: leads to; filled by the driver as it meets them (stored empty).
    passes: dict


@lru_cache(maxsize=1)
def tables() -> Tables:
    """The .qrule grammar's tables: from the cache, or built from lark's parser."""
    path = _cache_file() if table_cache.enabled() else None
    data = table_cache.read(path) if path is not None else None
    if data is not None:
        try:
            return _loaded(data)
        except Exception:  # not what this module writes: rebuild
            pass
    from qrules.syntax.grammar import parser as lark_parser

    built = tables_of(lark_parser())
    if path is not None:
        table_cache.store(path, tuple(built._replace(
            rules=tuple(map(tuple, built.rules)), match=(), passes={})))
    return built


def _loaded(data) -> Tables:
    loaded = Tables(*data)
    return loaded._replace(rules=tuple(Rule(*rule) for rule in loaded.rules),
                           match=_compiled(loaded.patterns), passes={})


def _compiled(patterns) -> tuple:
    return tuple(re.compile(pattern, flags) for pattern, flags in patterns)


def _cache_file() -> Path:
    lark_init = find_spec("lark").origin
    return table_cache.cache_file(
        "driver", grammar_path().read_text(encoding="utf-8"),
        Path(lark_init).read_text(encoding="utf-8"), Path(__file__).read_text(encoding="utf-8"),
        sys.version)


def tables_of(lark) -> Tables:
    """The tables of a ``Lark(..., parser="lalr", lexer="basic",
    propagate_positions=True, maybe_placeholders=False)`` parser. Raises ValueError
    for a lexer the driver does not run as lark does (lexer callbacks other than
    keywords, case-insensitive keywords, bytes)."""
    from lark.lexer import UnlessCallback
    from lark.parsers.lalr_analysis import Shift

    frontend = lark.parser
    table = frontend.parser._parse_table
    index: dict = {}
    rules: list = []
    actions = {}
    for state, row in table.states.items():
        coded = {}
        for symbol, (action, arg) in row.items():
            if action is Shift:
                coded[symbol] = arg
            else:
                number = index.get(id(arg))
                if number is None:
                    number = index[id(arg)] = len(rules)
                    rules.append(_describe(arg))
                coded[symbol] = ~number
        actions[state] = coded
    lexer = frontend.lexer
    scanner = lexer.scanner  # built on first use; fills lexer.callback too
    keywords = {}
    for kind, callback in lexer.callback.items():
        words = getattr(callback, "scanner", None)
        if type(callback) is not UnlessCallback or any(
                t.pattern.type != "str" or t.pattern.flags for t in words.terminals):
            raise ValueError(f"the driver cannot run lark's lexer callback for {kind}")
        keywords[kind] = {t.pattern.value: t.name for t in words.terminals}
    if lexer.use_bytes or lexer.g_regex_flags:
        raise ValueError("the driver lexes str with lark's default flags only")
    patterns = tuple((mre.pattern, mre.flags) for mre in scanner._mres)
    return Tables(actions, tuple(rules), table.start_states["start"],
                  table.end_states["start"], patterns, frozenset(lexer.ignore_types),
                  frozenset(lexer.newline_types), keywords, _compiled(patterns), {})


def _describe(rule) -> Rule:
    """What lark's ParseTreeBuilder does for ``rule``, as data (lark 1.x, LALR, no
    placeholders, positions propagated)."""
    keep = tuple((i, not sym.is_term and sym.name.startswith("_"))
                 for i, sym in enumerate(rule.expansion)
                 if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out))
    name = rule.alias or rule.options.template_source or rule.origin.name
    expand1 = rule.options.expand1 and not rule.alias
    if expand1 and len(rule.expansion) == 1 and len(keep) == 1 and not keep[0][1]:
        kind = PASS
    elif rule.origin.name.startswith("_"):
        kind = INLINE
    elif expand1:
        kind = EXPAND1
    else:
        kind = NAMED
    whole = keep == tuple((i, False) for i in range(len(rule.expansion)))
    return Rule(len(rule.expansion), rule.origin.name, kind, keep, name, whole)
