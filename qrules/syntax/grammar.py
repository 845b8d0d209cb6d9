"""Load lark's LALR parser for ``grammar/qrule.lark``, with a table cache.

Building the LALR tables costs ~0.25 s, so lark's table data is cached per user
(``table_cache``), keyed by a hash of the grammar text, the lark version and the
Python version. A clean parse does not load this parser at all (``driver`` keeps
tables of its own); errors, recovery and editors' questions about the grammar do.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import lark
from lark import Lark, Tree
from lark.grammar import Rule
from lark.lexer import TerminalDef
from lark.parsers import lalr_parser
from lark.parsers.lalr_analysis import IntParseTable, Reduce, Shift
from lark.tree import Meta

from qrules.resources import grammar_path
from qrules.syntax import table_cache


class ParseTree(Tree):
    """lark's Tree with ``meta`` a plain attribute: lark's is a property that makes the
    Meta on first use, and position propagation reads it about 13 times per node."""

    meta = None  # hides Tree.meta (a property without a setter) from instances

    def __init__(self, data, children, meta=None):
        super().__init__(data, children, Meta() if meta is None else meta)
        self.meta = self._meta


class FastLoadingParser(lalr_parser.LALR_Parser):
    """lark's LALR parser, its table loaded faster: lark deserializes each of the ~14,000
    reduce actions of the .qrule table through its generic ``Rule.deserialize`` (a
    third of loading the parser); each is a reference to a rule already loaded, looked
    up here directly. Plugged in through lark's ``_plugins`` option, which exists for
    replacing these classes; the rest is what ``LALR_Parser.deserialize`` does (with
    lark's runtime parser, ``_Parser``). ``tests/test_grammar_cache.py`` compares the
    tables with lark's own loading."""

    @classmethod
    def deserialize(cls, data, memo, callbacks, debug=False):
        tokens = data["tokens"]
        states = {state: {tokens[token]: (Reduce, memo[arg["@"]]) if action == 1
                          else (Shift, arg) for token, (action, arg) in actions.items()}
                  for state, actions in data["states"].items()}
        parser = cls.__new__(cls)
        parser._parse_table = IntParseTable(states, data["start_states"], data["end_states"])
        parser.parser = lalr_parser._Parser(parser._parse_table, callbacks, debug)
        return parser


_OPTIONS = dict(parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=False)
_LOAD_OPTIONS = dict(tree_class=ParseTree, _plugins={"LALR_Parser": FastLoadingParser})


def _cache_file(grammar_text: str) -> Path:
    return table_cache.cache_file("lalr", grammar_text, lark.__version__, sys.version)


def _load_cached(path: Path) -> Lark | None:
    try:
        data, memo = table_cache.read(path)
        return Lark._load_from_dict(data, memo, **_LOAD_OPTIONS)
    except Exception:  # missing, truncated or from another version: rebuild
        return None


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The one Lark instance for the .qrule grammar."""
    text = grammar_path().read_text(encoding="utf-8")
    cache = _cache_file(text) if table_cache.enabled() else None
    if cache is not None:
        cached = _load_cached(cache)
        if cached is not None:
            return cached
    # The tables are serialized without the tree class (marshal holds data only) and
    # loaded with it, as from the cache: the same parser whichever way it was made.
    tables = Lark(text, **_OPTIONS).memo_serialize([TerminalDef, Rule])
    if cache is not None:
        table_cache.store(cache, tables)
    return Lark._load_from_dict(*tables, **_LOAD_OPTIONS)


def _terminals_after(prefix: str) -> frozenset[str]:
    """The terminals the LALR table accepts after ``prefix``: the grammar's own answer
    to "what can come here", so no list of them has to be kept beside qrule.lark.
    Costs no table construction: the parser is the one every parse uses."""
    lark = parser()
    state = lark.parse_interactive(prefix)
    state.exhaust_lexer()
    terminals = {t.name for t in lark.terminals}
    return frozenset(name for name in state.choices() if name in terminals)


@lru_cache(maxsize=1)
def item_start_terminals() -> frozenset[str]:
    """The terminals an item starts with (``RULE``, ``SPEC``, ``OVERRIDE``, …)."""
    return _terminals_after("")


@lru_cache(maxsize=1)
def expression_start_terminals() -> frozenset[str]:
    """The terminals an expression starts with (``NAME``, ``INT``, ``LPAR``, ``NOT``, …):
    what may follow ``spec x =``."""
    return _terminals_after("spec x =")


@lru_cache(maxsize=1)
def item_keywords() -> tuple[str, ...]:
    """The words an item starts with (``rule``, ``spec``, ``override``, …), sorted."""
    lark = parser()
    return tuple(sorted(lark.get_terminal(name).pattern.value
                        for name in item_start_terminals()))


def name_pattern() -> str:
    """The regular expression of a name (the grammar's ``NAME`` terminal)."""
    return parser().get_terminal("NAME").pattern.value


@lru_cache(maxsize=1)
def keywords() -> tuple[str, ...]:
    """Every word the grammar reserves (``rule``, ``when``, ``true``, …), sorted: what
    editors colour and complete as keywords."""
    return tuple(sorted(t.pattern.value for t in parser().terminals
                        if t.pattern.type == "str" and t.pattern.value.isidentifier()))
