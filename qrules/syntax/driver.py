"""Text -> AST in one pass: lark's LALR table and lexer, driven without lark's parse tree.

lark parses into a tree of ``Tree`` nodes, positions propagated through a chain of
wrapper objects per reduction, and the builder then walks that tree again; together
two thirds of a parse. This driver runs the same table over the same tokens and
calls the builder's method for a rule the moment the rule is reduced, with exactly
the children and positions lark's tree would have given it (``tests/test_driver.py``
compares it with lark's own parse and transform on every file and fixture we have):

* children: the rule's symbols without filtered-out tokens (anonymous punctuation and
  keywords), ``_rule`` children spliced in, and a ``?rule`` with one child replaced by
  that child;
* positions (``propagate_positions``): a node spans from its first positioned child
  to its last, punctuation included, where a child that a ``?rule`` passed through
  spans the whole of that rule's text (lark's "container" positions).

Anything but a clean parse (a character no terminal matches, a token the table
refuses, a tree deeper than the caller allows) raises ``NotDriven``: the caller then
asks lark itself, whose exceptions carry what the diagnostics need.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, NamedTuple

from lark.lexer import Token, UnlessCallback
from lark.parsers.lalr_analysis import Shift

from qrules.syntax.grammar import parser as lark_parser


class NotDriven(Exception):
    """The text needs lark's own parse: it has an error, or nests too deeply."""


class Meta:
    """Where a node is, as lark's ``Meta`` says it: what the builder's ``_span`` reads.
    ``height`` counts the tree levels below and including the node."""

    __slots__ = ("line", "column", "start_pos", "end_line", "end_column", "end_pos",
                 "empty", "height")

    def __init__(self, first, last, height: int):
        self.line, self.column, self.start_pos = first.line, first.column, first.start_pos
        self.end_line, self.end_column, self.end_pos = last.end_line, last.end_column, last.end_pos
        self.empty = False
        self.height = height


class _Empty:
    """The meta of a node with no text (``start`` of an empty chunk)."""

    __slots__ = ()
    empty = True


_EMPTY = _Empty()

# How a reduction shapes its children; see the module docstring.
_PASS, _SPLICE, _INLINE, _EXPAND1, _NAMED = range(5)


class _Rule(NamedTuple):
    size: int              # symbols popped
    goto: str              # the nonterminal pushed
    kind: int              # _PASS: a `?rule` of one kept symbol; the stack is unchanged
    keep: tuple            # (index, splice?) of each kept symbol
    name: str              # the builder method's name (alias or rule name)


class Tables(NamedTuple):
    actions: dict          # state -> {symbol: shift target (>= 0) or ~rule index (< 0)}
    rules: tuple           # _Rule per rule index
    start: int
    end: int
    match: tuple           # compiled regexes the lexer tries in order
    ignore: frozenset      # token types dropped (whitespace, comments)
    newline: frozenset     # token types whose text may hold a newline
    retype: dict           # token type -> lark's callback (keywords out of NAME)
    by_value: frozenset    # the types whose callback depends on the text alone


@lru_cache(maxsize=1)
def tables() -> Tables:
    """The driver's view of the .qrule parser's table and lexer."""
    return tables_of(lark_parser())


def tables_of(lark) -> Tables:
    """The driver's view of a ``Lark(..., parser="lalr", lexer="basic",
    propagate_positions=True)`` parser's table and lexer."""
    frontend = lark.parser
    table = frontend.parser._parse_table
    index: dict = {}
    rules = []
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
    by_value = frozenset(kind for kind, callback in lexer.callback.items()
                         if type(callback) is UnlessCallback)
    return Tables(actions, tuple(rules), table.start_states["start"],
                  table.end_states["start"], tuple(scanner._mres), lexer.ignore_types,
                  lexer.newline_types, dict(lexer.callback), by_value)


def _describe(rule) -> _Rule:
    """What lark's ParseTreeBuilder does for ``rule``, as data (lark 1.x, LALR, no
    placeholders, positions propagated)."""
    keep = tuple((i, not sym.is_term and sym.name.startswith("_"))
                 for i, sym in enumerate(rule.expansion)
                 if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out))
    name = rule.alias or rule.options.template_source or rule.origin.name
    expand1 = rule.options.expand1 and not rule.alias
    if expand1 and len(rule.expansion) == 1 and len(keep) == 1 and not keep[0][1]:
        kind = _PASS
    elif rule.origin.name.startswith("_"):
        kind = _INLINE
    elif expand1:
        kind = _EXPAND1
    else:
        kind = _NAMED
    return _Rule(len(rule.expansion), rule.origin.name, kind, keep, name)


class _Spliced(list):
    """The children of a ``_rule``, spliced into its parent's, and their positions."""

    __slots__ = ("where",)


def _kept(rule: _Rule, children: list) -> list:
    """The children a rule's node gets: filtered, ``_rule`` children spliced in."""
    kept = None
    for i, splice in rule.keep:
        child = children[i]
        if kept is None:
            # A leading _rule's list is taken over, not copied: lists made by left
            # recursion (`item*`) would otherwise be copied once per item.
            kept = child if splice else [child]
        elif splice:
            kept.extend(child)
        else:
            kept.append(child)
    return [] if kept is None else kept


def _splice(rule: _Rule, children: list, where: list) -> _Spliced:
    """``_kept`` with each kept child's position entry beside it (``.where``)."""
    kept = None
    for i, splice in rule.keep:
        child = children[i]
        if kept is None and splice:
            kept = child
            continue
        if kept is None:
            kept = _Spliced()
            kept.where = []
        if splice:
            kept.extend(child)
            kept.where.extend(child.where)
        else:
            kept.append(child)
            kept.where.append(where[i])
    if kept is None:
        kept = _Spliced()
        kept.where = []
    return kept


def drive(text: str, methods: dict[str, Callable], default: Callable, builder: Any,
          max_height: int, t: Tables | None = None):
    """Parse ``text`` and return what the builder made of its ``start`` rule.

    ``methods`` maps rule names to ``(builder, meta, children)`` functions; others go to
    ``default(name, children, meta)``. Raises ``NotDriven`` (see the module docstring);
    an exception from a builder method propagates. ``t``: another grammar's tables."""
    t = tables() if t is None else t
    actions, rules = t.actions, t.rules
    states = [t.start]
    values: list = []
    metas: list = []   # per value: its Token, its Meta, or None where it has no text

    def reduce(rule: _Rule) -> None:
        size = rule.size
        kind = rule.kind
        if size:
            children = values[-size:]
            where = metas[-size:]
            del values[-size:], metas[-size:], states[-size:]
        else:
            children, where = [], []
        first = last = None
        height = 0
        for meta in where:
            if meta is not None:
                if first is None:
                    first = meta
                last = meta
                if meta.__class__ is Meta and meta.height > height:
                    height = meta.height
        kept = _kept(rule, children) if kind == _NAMED else _splice(rule, children, where)
        if kind == _INLINE:
            value = kept
            meta = None if first is None else Meta(first, last, height)
        elif kind == _EXPAND1 and len(kept) == 1:
            value = kept[0]
            if kept.where[0].__class__ is Token:
                meta = kept.where[0]  # lark moves no token: the parent sees its position
            else:  # a tree: it spans the whole rule now, for its parent
                meta = None if first is None else Meta(first, last, height)
        else:
            height += 1
            if height > max_height:
                raise NotDriven
            meta = None if first is None else Meta(first, last, height)
            method = methods.get(rule.name)
            given = _EMPTY if meta is None else meta
            value = (default(rule.name, kept, given) if method is None
                     else method(builder, given, kept))
        states.append(actions[states[-1]][rule.goto])
        values.append(value)
        metas.append(meta)

    for token in _tokens(text, t):
        while True:
            code = actions[states[-1]].get(token.type)
            if code is None:
                raise NotDriven
            if code >= 0:
                states.append(code)
                values.append(token)
                metas.append(token)
                break
            rule = rules[~code]
            if rule.kind == _PASS:
                states[-1] = actions[states[-2]][rule.goto]
            else:
                reduce(rule)
    while True:
        code = actions[states[-1]].get("$END")
        if code is None or code >= 0:
            raise NotDriven
        rule = rules[~code]
        if rule.kind == _PASS:
            states[-1] = actions[states[-2]][rule.goto]
        else:
            reduce(rule)
        if states[-1] == t.end:
            return values[-1]


def _tokens(text: str, t: Tables):
    """lark's basic lexer, as lark runs it: the same regexes, types and positions."""
    matchers = t.match
    ignore, newline, retype, by_value = t.ignore, t.newline, t.retype, t.by_value
    retyped: dict = {}  # (type, text) -> type, for callbacks that read the text alone
    new = Token._future_new
    pos, line, line_start, end = 0, 1, 0, len(text)
    while pos < end:
        for regex in matchers:
            found = regex.match(text, pos)
            if found:
                break
        else:
            raise NotDriven
        value = found.group(0)
        kind = found.lastgroup
        start, start_line, column = pos, line, pos - line_start + 1
        pos = found.end()
        if kind in newline:
            count = value.count("\n")
            if count:
                line += count
                line_start = start + value.rindex("\n") + 1
        if kind in ignore and kind not in retype:
            continue
        token = new(kind, value, start, start_line, column, line, pos - line_start + 1, pos)
        if kind in retype:
            if kind in by_value:
                # A NAME that is a keyword: lark asks a regex each time; once is enough.
                key = (kind, value)
                found_kind = retyped.get(key)
                if found_kind is None:
                    found_kind = retyped[key] = retype[kind](token).type
                token.type = found_kind
            else:
                token = retype[kind](token)
        if kind not in ignore:
            yield token
