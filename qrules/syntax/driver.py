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

The table and the lexer's patterns are lark's, read as plain data from the per-user
cache (``lalr_tables``), so a clean parse does not even import lark. Anything but a
clean parse (a character no terminal matches, a token the table refuses, a tree
deeper than the caller allows) raises ``NotDriven``: the caller then asks lark
itself, whose exceptions carry what the diagnostics need.
"""

from __future__ import annotations

from typing import Callable, Mapping

from qrules.syntax.lalr_tables import INLINE, NAMED, PASS, Rule, Tables, tables


class NotDriven(Exception):
    """The text needs lark's own parse: it has an error, or nests too deeply."""


class Token(str):
    """A token as lark's ``Token`` has it: its text, its terminal's name, its place."""

    __slots__ = ("type", "start_pos", "line", "column", "end_line", "end_column", "end_pos")

    @classmethod
    def of(cls, token) -> "Token":
        """The same token as lark made it (lark's parse, when the driver declined)."""
        new = cls(token)
        new.type, new.start_pos = token.type, token.start_pos
        new.line, new.column = token.line, token.column
        new.end_line, new.end_column, new.end_pos = token.end_line, token.end_column, token.end_pos
        return new


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


EMPTY = _Empty()


class _Spliced(list):
    """The children of a ``_rule``, spliced into its parent's, and their positions."""

    __slots__ = ("where",)


def _ends(where: list) -> tuple:
    """The first and last entries with a place (None when no child has one)."""
    placed = [meta for meta in where if meta is not None]
    return (placed[0], placed[-1]) if placed else (None, None)


def _kept(keep: tuple, children: list) -> list:
    """The children a rule's node gets: filtered, ``_rule`` children spliced in."""
    kept = None
    for i, splice in keep:
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


def _splice(keep: tuple, children: list, where: list) -> _Spliced:
    """``_kept`` with each kept child's position entry beside it (``.where``)."""
    kept = None
    for i, splice in keep:
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


def drive(text: str, methods: Mapping[str, Callable], max_height: int,
          t: Tables | None = None):
    """Parse ``text`` and return what ``methods["start"]`` made of it.

    ``methods`` maps each rule's name (or alias) to a function of ``(meta,
    children)``. Raises ``NotDriven`` (see the module docstring) and KeyError for a
    rule without a method; an exception from a method propagates. ``t``: another
    grammar's tables (``lalr_tables.tables_of``)."""
    t = tables() if t is None else t
    actions, rules = t.actions, t.rules
    states = [t.start]
    values: list = []
    metas: list = []   # per value: its Token, its Meta, or None where it has no text

    def reduce(rule: Rule) -> None:
        size, goto, kind, keep, name, whole = rule
        if size:
            children = values[-size:]
            where = metas[-size:]
            del values[-size:], metas[-size:], states[-size:]
            first, last = where[0], where[-1]
            if first is None or last is None:  # an empty child: lark skips it
                first, last = _ends(where)
        else:
            children, where, first, last = [], [], None, None
        height = 0
        for meta in where:
            if meta.__class__ is Meta and meta.height > height:
                height = meta.height
        if kind == NAMED:
            height += 1
            if height > max_height:
                raise NotDriven
            meta = None if first is None else Meta(first, last, height)
            value = methods[name](EMPTY if meta is None else meta,
                                  children if whole else _kept(keep, children))
        else:
            kept = _splice(keep, children, where)
            if kind == INLINE:
                value = kept
                meta = None if first is None else Meta(first, last, height)
            elif len(kept) == 1:  # EXPAND1 with its one child
                value = kept[0]
                if kept.where[0].__class__ is Token:
                    meta = kept.where[0]  # lark moves no token: the parent sees its place
                else:  # a tree: it spans the whole rule now, for its parent
                    meta = None if first is None else Meta(first, last, height)
            else:  # EXPAND1 with other than one child: a node like NAMED
                height += 1
                if height > max_height:
                    raise NotDriven
                meta = None if first is None else Meta(first, last, height)
                value = methods[name](EMPTY if meta is None else meta, kept)
        states.append(actions[states[-1]][goto])
        values.append(value)
        metas.append(meta)

    passes = t.passes
    for token in _tokens(text, t):
        kind = token.type
        while True:
            code = actions[states[-1]].get(kind)
            if code is None:
                raise NotDriven
            if code >= 0:
                states.append(code)
                values.append(token)
                metas.append(token)
                break
            rule = rules[~code]
            if rule.kind == PASS:
                # Most reductions are of `?rule`s that pass one child up (an operand
                # goes through a dozen levels of precedence); where such a run ends
                # depends only on the two states on top and the token, so it is
                # looked up once per process.
                key = (states[-2], states[-1], kind)
                final = passes.get(key)
                if final is None:
                    final = passes[key] = _after_passes(t, states[-2], states[-1], kind)
                states[-1] = final
            else:
                reduce(rule)
    while True:
        code = actions[states[-1]].get("$END")
        if code is None or code >= 0:
            raise NotDriven
        rule = rules[~code]
        if rule.kind == PASS:
            states[-1] = actions[states[-2]][rule.goto]
        else:
            reduce(rule)
        if states[-1] == t.end:
            return values[-1]


def _after_passes(t: Tables, below: int, state: int, kind: str) -> int:
    """The state on top after every PASS reduction ``kind`` leads to from ``state``
    (above ``below``): each pops the top state and goes from ``below``."""
    while True:
        code = t.actions[state].get(kind)
        if code is None or code >= 0 or t.rules[~code].kind != PASS:
            return state
        state = t.actions[below][t.rules[~code].goto]


_new_str = str.__new__


def _tokens(text: str, t: Tables):
    """lark's basic lexer, as lark runs it: the same regexes, types and positions."""
    ignore, newline, keywords = t.ignore, t.newline, t.keywords
    pos, line, line_start = 0, 1, 0
    # One regex (the usual case): its matches one after the other, found in C; a gap
    # between two is a character no terminal matches.
    matches = t.match[0].finditer(text) if len(t.match) == 1 else _each_match(text, t.match)
    for found in matches:
        start = found.start()
        if start != pos:
            raise NotDriven
        value = found.group()
        kind = found.lastgroup
        start_line, column = line, pos - line_start + 1
        pos = found.end()
        if kind in newline:
            count = value.count("\n")
            if count:
                line += count
                line_start = start + value.rindex("\n") + 1
        if kind in ignore:
            continue
        if kind in keywords:
            kind = keywords[kind].get(value, kind)
        token = _new_str(Token, value)
        token.type = kind
        token.start_pos, token.line, token.column = start, start_line, column
        token.end_line, token.end_column, token.end_pos = line, pos - line_start + 1, pos
        yield token
    if pos != len(text):
        raise NotDriven


def _each_match(text: str, regexes: tuple):
    """Matches of the first of several regexes to match at each place (lark splits
    its terminals over several when Python's limit on groups is reached)."""
    pos = 0
    while pos < len(text):
        for regex in regexes:
            found = regex.match(text, pos)
            if found:
                break
        else:
            return
        yield found
        pos = found.end()
