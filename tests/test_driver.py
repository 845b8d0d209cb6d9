"""The tree-less driver gives the builder what lark's own parse and transform give it:
the same AST, node by node, with the same spans; and it declines exactly the texts
lark refuses (or that nest too deeply), which the parser then hands to lark."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Transformer
from lark.exceptions import UnexpectedInput

from qrules.syntax import driver
from qrules.syntax.build import AstBuilder, rule_methods
from qrules.syntax.grammar import parser as lark_parser
from qrules.syntax.lalr_tables import tables_of
from qrules.syntax.parser import MAX_TREE_DEPTH, _chunks, _too_deep
from qrules.syntax.tree import walk

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for p in ROOT.glob("**/*.qrule")
               if ".venv" not in p.parts and not any(part.startswith(".") for part in
                                                     p.relative_to(ROOT).parts))
CHUNKS = [chunk for path in FILES for _, _, chunk in _chunks(path.read_text())]
SEEDS = [p.read_text() for p in sorted((ROOT / "rulesets").glob("*.qrule"))]
TOKENS = sorted({t.value for seed in SEEDS for t in lark_parser().lex(seed)})


def _picture(value):
    """Every node under ``value`` with its type and every field, spans included."""
    if isinstance(value, tuple) and not hasattr(value, "model_fields"):
        return tuple(_picture(v) for v in value)
    return [(type(node).__name__, tuple(sorted(
        (k, repr(v)) for k, v in node.__dict__.items()))) for node in walk(value)]


def _driven(text: str):
    return driver.drive(text, rule_methods(AstBuilder("f.qrule", 3, 40)), MAX_TREE_DEPTH)


class _LarkS(Transformer):
    """lark's own walk of its own tree, calling the builder's method for each node."""

    def __init__(self, methods):
        super().__init__(visit_tokens=False)
        self.methods = methods

    def __default__(self, data, children, meta):
        return self.methods[data](meta, [driver.Token.of(c) if _is_token(c) else c
                                         for c in children])


def _is_token(value) -> bool:
    return isinstance(value, str) and hasattr(value, "type")


def _lark_s(text: str):
    """lark's answer: the AST its transform builds, or None where it refuses the text
    or the tree nests deeper than the parser allows."""
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput:
        return None
    if _too_deep(tree) is not None:
        return None
    return _LarkS(rule_methods(AstBuilder("f.qrule", 3, 40))).transform(tree)


def _assert_same(text: str) -> bool:
    expected = _lark_s(text)
    if expected is None:
        with pytest.raises(driver.NotDriven):
            _driven(text)
        return False
    assert _picture(_driven(text)) == _picture(expected)
    return True


def test_every_file_we_have():
    assert len(FILES) >= 25
    for path in FILES:
        text = path.read_text()
        if _lark_s(text) is not None:
            _assert_same(text)


def test_every_chunk_of_every_file():
    """Chunks as error recovery cuts them: fixtures hold many broken ones."""
    parsed = sum(_assert_same(chunk) for chunk in CHUNKS)
    assert parsed >= 1000 and len(CHUNKS) - parsed >= 20  # both kinds, many of each


def test_the_benchmark_s_generated_ruleset():
    spec = importlib.util.spec_from_file_location("parse_throughput",
                                                  ROOT / "bench" / "parse_throughput.py")
    module = importlib.util.module_from_spec(spec)
    import sys
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert _assert_same(module.generate(1500, seed=3))


@pytest.mark.parametrize("text", [
    "spec s = (1)\n",                         # a ?rule passes a tree through parentheses
    "spec s = ((x.y)[0])(a, b=2,)\n",
    "spec s = -1 ** 2 if a else (b)\n",
    "rule r: (conv -> relu) | ((linear)) : int8 takes(weight)\n",
    "rule r: conv [x > 1, (y)] as c? ~> relu : { input: (s), output: s }\n",
    "op o: torch.ops.aten.x.default { a: 0[*], b: *, c: f(1) }\n",
    "",                                        # nothing: `start` with no text
    "# only a comment\n",
    "spec s = " + "not " * (MAX_TREE_DEPTH - 3) + "true\n",     # deep, still allowed
    "spec s = " + "not " * (MAX_TREE_DEPTH + 5) + "true\n",     # too deep: declined
    "spec s = 1 +\n",                          # a token the table refuses
    "spec s = 1 $ 2\n",                        # a character no terminal matches
])
def test_shapes_that_move_positions(text):
    _assert_same(text)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    _assert_same(" ".join(tokens))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(CHUNKS), st.data())
def test_cut_chunks(chunk, data):
    _assert_same(chunk[:data.draw(st.integers(0, len(chunk)))])


# A grammar with the shapes the .qrule grammar lacks, so that the driver follows lark
# there too: a `?rule` passing a token through punctuation, a `?rule` whose one child
# comes from a spliced `_rule`, `!rule` (tokens kept), empty rules and empty `_rule`s.
TOY = r"""
start: item*
?item: "(" NAME ")" | "[" _inner "]" | pair | bang | box
_inner: NAME | _nothing NAME
_nothing:
pair: NAME "=" _maybe NAME
_maybe: _nothing | "~"
!bang: "!" NAME
box: "{" nada "}"
nada:
NAME: /[a-z]+/
%ignore /[ \n]+/
"""


class _Echo(Transformer):
    """Every node as (name, children, positions), whichever way it is built."""

    def __default__(self, data, children, meta):
        where = None if getattr(meta, "empty", True) else (
            meta.line, meta.column, meta.start_pos, meta.end_line, meta.end_column,
            meta.end_pos)
        return (data, [(c.type, str(c), c.line, c.column, c.end_pos)
                       if _is_token(c) else c for c in children], where)


class _EveryName(dict):
    def __init__(self, echo):
        super().__init__()
        self.echo = echo

    def __missing__(self, name):
        return lambda meta, children: self.echo.__default__(name, list(children), meta)


@pytest.mark.parametrize("text", [
    "(ab) [cd] [ ef ] x = y x=~ z ! q {} { }",
    "  (a)\n(b)",
    "",
    "{}",
    "[a]",
])
def test_lark_s_shapes_on_another_grammar(text):
    toy = Lark(TOY, parser="lalr", lexer="basic", propagate_positions=True,
               maybe_placeholders=False)
    echo = _Echo()
    expected = echo.transform(toy.parse(text))
    got = driver.drive(text, _EveryName(echo), 100, tables_of(toy))
    assert got == expected


def test_every_rule_that_makes_a_node_has_a_builder_method():
    """The driver calls ``methods[name]`` for every rule that makes a node (a `?rule`
    does when it has other than one child); a rule the builder lacks would be a
    KeyError on the first file that uses it."""
    from qrules.syntax.build import rule_names
    from qrules.syntax.lalr_tables import EXPAND1, NAMED, tables

    named = {rule.name for rule in tables().rules if rule.kind == NAMED or (
        rule.kind == EXPAND1 and (len(rule.keep) != 1 or rule.keep[0][1]))}
    assert len(named) > 40 and named <= set(rule_names()), sorted(named - set(rule_names()))


def test_lark_s_tree_builds_the_same_ast_when_the_driver_declines(monkeypatch):
    """The parser's safety net: should the driver ever decline a text lark accepts,
    the AST is built from lark's tree instead, the same one."""
    from qrules.syntax import parser

    expected = {path: _picture(parser.parse(path.read_text(), str(path)).file)
                for path in FILES}

    def decline(*args, **kwargs):
        raise driver.NotDriven

    monkeypatch.setattr(parser, "drive", decline)
    for path, picture in expected.items():
        assert _picture(parser.parse(path.read_text(), str(path)).file) == picture, path
