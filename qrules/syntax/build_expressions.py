"""Parse tree -> AST, the expressions (literals, names, calls, operators, ranges): the
part of ``qrules.syntax.build``'s transformer every item shares, and ``make_node``, how
the builder makes every node."""

from __future__ import annotations

import os

from qrules.syntax import ast
from qrules.syntax.construct import construct, construct_all

_VALIDATE = os.environ.get("QRULES_VALIDATE_AST") == "1"


def make_node(cls, **fields):
    """Build an AST node. The builder is the only producer of AST nodes and the test
    suite runs it with QRULES_VALIDATE_AST=1, where every node is validated against
    its pydantic model; lint skips that validation (``construct``: what
    ``model_construct`` makes, faster), which would otherwise build every model's
    schema on first use and cost more than a lint run."""
    return cls(**fields) if _VALIDATE else construct(cls, fields)


def make_full_node(cls, fields: dict):
    """``make_node`` for a caller that gives every field in field order."""
    return cls(**fields) if _VALIDATE else construct_all(cls, fields)


def unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class ExpressionBuilder:
    """The expression half of ``AstBuilder`` (which gives it ``_span`` and ``_tok``)."""

    def int_lit(self, meta, children):
        return make_node(ast.IntLit, span=self._span(meta), value=int(children[0]))

    def float_lit(self, meta, children):
        return make_node(ast.FloatLit, span=self._span(meta), value=float(children[0]))

    def string_lit(self, meta, children):
        return make_node(ast.StringLit, span=self._span(meta), value=unquote(children[0]))

    def true_lit(self, meta, children):
        return make_node(ast.BoolLit, span=self._span(meta), value=True)

    def false_lit(self, meta, children):
        return make_node(ast.BoolLit, span=self._span(meta), value=False)

    def none_lit(self, meta, children):
        return make_node(ast.NoneLit, span=self._span(meta))

    def name(self, meta, children):
        return make_node(ast.Name, span=self._span(meta), id=str(children[0]))

    def list_lit(self, meta, children):
        return make_node(ast.ListLit, span=self._span(meta), items=tuple(children))

    def attribute(self, meta, children):
        value, attr = children
        return make_node(ast.Attribute, span=self._span(meta), value=value, attr=str(attr))

    def index(self, meta, children):
        value, index = children
        return make_node(ast.Index, span=self._span(meta), value=value, index=index)

    def first_of(self, meta, children):
        word, predicate, *fallback = children
        return make_node(ast.FirstOf, span=self._span(meta), word=str(word),
                         predicate=str(predicate),
                         fallback=int(fallback[0]) if fallback else None,
                         predicate_span=self._tok(predicate))

    def first_index(self, meta, children):
        value, index = children
        return make_node(ast.Index, span=self._span(meta), value=value, index=index)

    def each(self, meta, children):
        return make_node(ast.Each, span=self._span(meta), value=children[0])

    def positional(self, meta, children):
        return children[0]

    def keyword(self, meta, children):
        name, value = children
        return make_node(ast.Keyword, span=self._span(meta), name=str(name), value=value)

    def arguments(self, meta, children):
        args = tuple(c for c in children if not isinstance(c, ast.Keyword))
        kwargs = tuple(c for c in children if isinstance(c, ast.Keyword))
        return (args, kwargs)

    def call(self, meta, children):
        func = children[0]
        args, kwargs = children[1] if len(children) > 1 else ((), ())
        return make_node(ast.Call, span=self._span(meta), func=func, args=args, kwargs=kwargs)

    def negate(self, meta, children):
        operand = children[-1]
        if isinstance(operand, (ast.IntLit, ast.FloatLit)):  # fold literal signs
            return make_node(type(operand), span=self._span(meta), value=-operand.value)
        return make_node(ast.Unary, span=self._span(meta), op="-", operand=operand)

    def not_(self, meta, children):
        return make_node(ast.Unary, span=self._span(meta), op="not", operand=children[-1])

    # `a + b` and `a < b` keep their operator token; `**`, `and` and `or` are anonymous
    # in the grammar, so the rule names them.
    def binary(self, meta, children):
        left, op, right = children
        return make_node(ast.Binary, span=self._span(meta), op=str(op), left=left, right=right)

    compare = binary

    def _keyword_binary(op: str):
        def build(self, meta, children):
            left, right = children
            return make_node(ast.Binary, span=self._span(meta), op=op, left=left, right=right)
        return build

    power = _keyword_binary("**")
    and_ = _keyword_binary("and")
    or_ = _keyword_binary("or")
    del _keyword_binary

    def range(self, meta, children):
        low, high = children
        return make_node(ast.Range, span=self._span(meta), low=low, high=high)

    def conditional(self, meta, children):
        then, cond, otherwise = children
        return make_node(ast.Conditional, span=self._span(meta), then=then, cond=cond,
                               otherwise=otherwise)

    def stored_as(self, meta, children):
        dtype, storage = (make_node(ast.Name, span=self._tok(t), id=str(t)) for t in children)
        return make_node(ast.StoredAs, span=self._span(meta), dtype=dtype, storage=storage)
