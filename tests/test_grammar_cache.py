"""The LALR parser as `qrules lint` loads it (the table cache, the fast table loader)
is the parser lark builds from the grammar: same table, same trees, same positions."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef
from lark.parsers.lalr_analysis import Reduce

from qrules.resources import grammar_path
from qrules.syntax import grammar, table_cache

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def parsers(tmp_path_factory):
    """lark's own parser built from the grammar, lark's own loading of its tables, and
    qrules's parser as loaded from a table cache file it wrote."""
    text = grammar_path().read_text(encoding="utf-8")
    built = Lark(text, tree_class=grammar.ParseTree, **grammar._OPTIONS)
    tables = Lark(text, **grammar._OPTIONS).memo_serialize([TerminalDef, Rule])
    loaded = Lark._load_from_dict(*marshal.loads(marshal.dumps(tables)),
                                  tree_class=grammar.ParseTree)
    cache = tmp_path_factory.mktemp("cache") / "tables.marshal"
    table_cache.store(cache, tables)
    ours = grammar._load_cached(cache)
    assert ours is not None
    assert isinstance(ours.parser.parser, grammar.FastLoadingParser)  # the fast loader ran
    return built, loaded, ours


def _table(parser: Lark):
    table = parser.parser.parser._parse_table
    return table.states, table.start_states, table.end_states


def test_the_fast_loader_gives_lark_s_table(parsers):
    built, loaded, ours = parsers
    assert _table(ours) == _table(loaded)
    states, _, _ = _table(ours)
    assert sum(len(actions) for actions in states.values()) > 10_000  # a real table
    # The reduce actions hold the parser's own rule objects, as lark's loading does.
    rules = {id(rule) for rule in ours.rules}
    reduced = [arg for actions in states.values() for action, arg in actions.values()
               if action is Reduce]
    assert len(reduced) > 5_000 and all(id(rule) in rules for rule in reduced)
    assert len(_table(built)[0]) == len(states)  # built anew: states numbered alike


def _shape(tree):
    """A tree with every node's data, tokens and positions."""
    if isinstance(tree, str):  # a Token
        return (tree.type, str(tree), tree.line, tree.column, tree.end_pos)
    meta = tree.meta
    return (tree.data, getattr(meta, "line", None), getattr(meta, "column", None),
            getattr(meta, "end_line", None), getattr(meta, "end_column", None),
            getattr(meta, "start_pos", None), getattr(meta, "end_pos", None),
            tuple(_shape(child) for child in tree.children))


@pytest.mark.parametrize("path", sorted((REPO / "rulesets").glob("*.qrule")),
                         ids=lambda p: p.name)
def test_the_loaded_parser_parses_as_lark_s(parsers, path):
    text = path.read_text(encoding="utf-8")
    built, loaded, ours = parsers
    assert _shape(ours.parse(text)) == _shape(loaded.parse(text)) == _shape(built.parse(text))
