"""Types in predicates: what `when` conditions get from the evaluator (QR301), for the
expressions that read the graph, whose values exist only at match time.

Each subexpression gets a kind (number, text, bool, tensor, list) from its literal, the
parameter's type, the fact's or predicate function's declared type; an unknown kind
(`arg(N)`, `ROLE.value`) matches anything. Names are QR209's: here they only have a kind.
"""

from __future__ import annotations

from typing import Optional

from qrules.diagnostics import Diagnostic, diagnostic
from qrules.semantics import registry
from qrules.semantics.expressions import param_type
from qrules.syntax import ast

#: Declared types (params, facts, function results) as the kinds compared here.
_KINDS = {"int": "number", "float": "number", "number": "number", "str": "text",
          "enum": "text", "bool": "bool", "list": "list"}
_ORDER = ("<", "<=", ">", ">=")
_WORDS = {"number": "a number", "text": "text", "bool": "a boolean", "tensor": "a tensor",
          "list": "a list"}


def predicate_type_errors(expr, roles: set[str], params: dict, choices: set[str]
                          ) -> list[Diagnostic]:
    """QR301 for comparisons, `and`/`or`/`not` and arithmetic on values of the wrong
    kind, and for a predicate that is not a boolean."""
    out: list[Diagnostic] = []

    def expect(node, wanted: tuple[str, ...], message: str) -> None:
        kind = kind_of(node)
        if kind is not None and kind not in wanted:
            out.append(diagnostic("QR301", f"{message}; this is {_WORDS[kind]}", node.span))

    def kind_of(node) -> Optional[str]:
        if isinstance(node, (ast.IntLit, ast.FloatLit)):
            return "number"
        if isinstance(node, ast.StringLit):
            return "text"
        if isinstance(node, ast.BoolLit):
            return "bool"
        if isinstance(node, ast.Name):
            if node.id in roles:
                return "tensor"
            if node.id in params:
                return _KINDS.get(param_type(params[node.id].node))
            return "text" if node.id in choices or node.id in registry.DTYPES else None
        if isinstance(node, ast.Index):
            base = kind_of(node.value)
            kind_of(node.index)
            if isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
                return "number"
            return "tensor" if base == "tensor" else None
        if isinstance(node, ast.Each):
            return "list"
        if isinstance(node, ast.Attribute):
            fact = registry.FACTS.get(node.attr)
            listed = kind_of(node.value) == "list"
            return "list" if listed else _KINDS.get(fact.type) if fact else None
        if isinstance(node, ast.Call):
            for arg in node.args:
                kind_of(arg)
            name = node.func.id if isinstance(node.func, ast.Name) else None
            function = registry.PREDICATE_FUNCTIONS.get(name)
            if function is None:
                return None
            if node.args and isinstance(node.args[0], ast.Each) and name not in ("all", "any"):
                return "list"
            return _KINDS.get(function.result)
        if isinstance(node, ast.Unary):
            if node.op == "not":
                expect(node.operand, ("bool",), "`not` needs a boolean")
                return "bool"
            expect(node.operand, ("number",), "`-` needs a number")
            return "number"
        if isinstance(node, ast.Binary):
            return binary(node)
        if isinstance(node, ast.Conditional):
            expect(node.cond, ("bool",), "a condition must be a boolean")
            then, otherwise = kind_of(node.then), kind_of(node.otherwise)
            return then if then == otherwise else None
        if isinstance(node, ast.ListLit):
            for item in node.items:
                kind_of(item)
            return "list"
        return None

    def binary(node: ast.Binary) -> Optional[str]:
        if node.op in ("and", "or"):
            expect(node.left, ("bool",), f"`{node.op}` needs booleans")
            expect(node.right, ("bool",), f"`{node.op}` needs booleans")
            return "bool"
        if node.op in _ORDER:
            expect(node.left, ("number",), f"`{node.op}` compares numbers")
            expect(node.right, ("number",), f"`{node.op}` compares numbers")
            return "bool"
        if node.op in ("==", "!="):
            left, right = kind_of(node.left), kind_of(node.right)
            if None not in (left, right) and left != right:
                out.append(diagnostic("QR301", f"`{node.op}` compares {_WORDS[left]} with "
                                      f"{_WORDS[right]}, which are never equal", node.span))
            for enum, other in ((node.left, node.right), (node.right, node.left)):
                outside = _not_a_choice(enum, other, params)
                if outside:
                    out.append(diagnostic("QR311", outside, other.span))
            return "bool"
        expect(node.left, ("number",), f"`{node.op}` needs numbers")
        expect(node.right, ("number",), f"`{node.op}` needs numbers")
        return "number"

    expect(expr, ("bool",), "a predicate must be a boolean")
    return out


def _not_a_choice(enum, other, params) -> Optional[str]:
    """``mode == c`` where ``c`` is no choice of the enum parameter ``mode`` (a choice of
    another enum, or a string), as the evaluator reports it in `when` conditions."""
    definition = params.get(enum.id) if isinstance(enum, ast.Name) else None
    if definition is None or param_type(definition.node) != "enum":
        return None
    value = other.id if isinstance(other, ast.Name) and other.id not in params else \
        other.value if isinstance(other, ast.StringLit) else None
    choices = definition.node.type.choices
    if value is None or not choices or value in choices:
        return None
    return f"`{value}` is not one of the enum's choices ({', '.join(choices)})"
