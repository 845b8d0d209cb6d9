"""One copy of each thing in the front end: keywords come from the grammar, each AST
node kind prints itself, one walker visits every node, and the dead-code allow-list
cannot hide a Lark callback for a rule the grammar no longer has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qrules.semantics.ruleset import DEFINING_KEYWORDS
from qrules.syntax import ast
from qrules.syntax.tree import walk
from qrules.syntax.build import AstBuilder
from qrules.syntax.grammar import (
    expression_start_terminals, item_keywords, item_start_terminals, name_pattern, parser,
)
from qrules.syntax.parser import parse

ROOT = Path(__file__).resolve().parents[1]
RULESETS = sorted((ROOT / "rulesets").glob("*.qrule"))


def _parsed(path: Path):
    text = path.read_text(encoding="utf-8")
    result = parse(text, str(path))
    assert not result.diagnostics
    return result.file, text


def test_item_keywords_are_the_words_items_start_with():
    keywords = item_keywords()
    # every item kind of the grammar, `override` included, and nothing else
    assert {"ruleset", "rule", "spec", "annotation", "pattern", "override"} <= set(keywords)
    assert not {"as", "takes", "priority", "region"} & set(keywords)
    assert all(re.fullmatch(name_pattern(), word) for word in keywords)
    assert len(item_start_terminals()) == len(keywords)
    assert set(DEFINING_KEYWORDS) <= set(keywords)


def test_expression_starts_come_from_the_grammar():
    starts = expression_start_terminals()
    assert {"NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB", "MINUS", "NOT"} <= starts
    assert not starts & item_start_terminals() and "LBRACE" not in starts


def test_each_item_keyword_starts_a_recovery_chunk():
    # A broken first item must not swallow the item after it, whatever its keyword.
    for keyword in item_keywords():
        text = f"rule broken: linear ->\n{keyword} ((( \n"
        assert len(parse(text).diagnostics) == 2, keyword


def test_a_role_key_prints_as_written():
    text = ("config c { input: a, input[1]: a, input[*]: a, add.input[1]: a, "
            "add.weight: a }\n")
    (config,) = parse(text).file.items
    keys = [entry.key for entry in config.value.entries]
    assert [str(k) for k in keys] == [text[k.span.start:k.span.end] for k in keys]


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_a_role_binding_prints_as_written(path: Path):
    tree, text = _parsed(path)
    bindings = [n for n in walk(tree) if isinstance(n, ast.RoleBinding)]
    for binding in bindings:
        assert str(binding) == text[binding.span.start:binding.span.end]


def _every_node(node, out: list) -> list:
    """A recursive reference walk, for comparison."""
    out.append(node)
    for name in type(node).model_fields:
        value = getattr(node, name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, ast.Node):
                _every_node(item, out)
    return out


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_walk_visits_every_node_parents_first_in_field_order(path: Path):
    tree, _ = _parsed(path)
    assert [id(n) for n in walk(tree)] == [id(n) for n in _every_node(tree, [])]
    for rule in (i for i in walk(tree) if isinstance(i, ast.Rule)):
        refs = [n.span.start for n in walk(rule.pattern) if isinstance(n, ast.OpRef)]
        assert refs == sorted(refs)


def test_walk_into_only_looks_inside_those_kinds():
    text = "when qat { phase late { rule r: linear : none } }\n"
    tree = parse(text).file
    kinds = {type(n) for n in walk(tree, into=(ast.File, ast.When))}
    assert kinds == {ast.File, ast.When, ast.Name, ast.Phase}


def test_every_ast_builder_callback_is_a_grammar_rule():
    """The vulture allow-list (.ci/vulture_allow.py) lists these as used because Lark
    calls them by name; a method for a rule the grammar lost would be dead code."""
    rules = {rule.alias or rule.origin.name for rule in parser().rules}
    callbacks = {name for name in vars(AstBuilder)
                 if not name.startswith("_") and callable(getattr(AstBuilder, name))}
    assert callbacks <= rules, sorted(callbacks - rules)


def test_children_reads_only_fields_that_can_hold_nodes_and_misses_none():
    """``tree.children`` skips fields typed to hold no node (``name: str``); on every
    node of every .qrule file we have, it finds what reading every field finds."""
    from qrules.syntax.tree import _fields, children

    def every_field(node):
        found = []
        for name in _fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, ast.Node):
                found.append(value)
            elif isinstance(value, tuple):
                found.extend(v for v in value if isinstance(v, ast.Node))
        return found

    seen = 0
    for path in sorted(ROOT.glob("**/*.qrule")):
        if ".venv" in path.parts:
            continue
        for node in walk(parse(path.read_text(), str(path)).file):
            assert children(node) == every_field(node), (path, type(node).__name__)
            seen += 1
    assert seen > 10_000
