"""Predicates (``conv2d[weight.rank == 4, is_float(input)]``) compiled to closures.

A predicate reads facts of one candidate node: its role arguments (as tensors
from ``node.meta["val"]``, or Python constants), its users, its module, and the
annotations already made (by earlier rules, phases or quantizers). Parameters are
bound at compile time. Facts and functions are dispatched through their declarations
(semantics.facts); a name without one is an error when the predicate is compiled.
What still goes wrong at run time (a fact of a missing argument) makes it false.
"""

from __future__ import annotations

import operator
from typing import Any, Optional

from qrules.compile.context import RoleValue, StepContext, first_position
from qrules.compile.producers import (
    fact_call, fact_question, holds_bound, literal_role, producer_call, producer_checks,
    producer_question,
)
from qrules.diagnostics import diagnostic
from qrules.errors import QruleError
from qrules.semantics import registry
from qrules.semantics.facts import BUILT_IN_DECLARATIONS
from qrules.syntax import ast, tree

_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "%": operator.mod, "**": operator.pow, "==": operator.eq, "!=": operator.ne,
           "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _position(index, name: str, ctx: StepContext, params) -> int:
    if isinstance(index, ast.FirstOf):
        found = first_position(index, ctx.roles.get(name, []), ctx)
        if found is None:
            raise LookupError(f"no {name}[{index}]")
        return found
    return evaluate(index, ctx, params)


def _role_getter(expr):
    """The role value(s) a role argument names (`weight`, `input[1]`, `input[*]`), as a
    function of the context: the expression's shape is decided once, not at every node;
    LookupError when it names no role."""
    if isinstance(expr, ast.Each) and isinstance(expr.value, ast.Name):
        name = expr.value.id
        return lambda ctx: ctx.every(name)
    literal = literal_role(expr)   # `weight`, `input[1]`: the position is known
    if literal is not None:
        name, position = literal
        return lambda ctx: ctx.role(name, position)
    if isinstance(expr, ast.Index) and isinstance(expr.value, ast.Name):
        name, index = expr.value.id, expr.index
        if isinstance(index, ast.FirstOf):
            return lambda ctx: ctx.role(name, _position(index, name, ctx, {}))
        at = _compile(index)   # compiled once, not at every node
        return lambda ctx: ctx.role(name, at(ctx, {}))

    def not_a_role(ctx):
        raise LookupError("not a role")
    return not_a_role


def _source_question(general):
    """``source("torch.nn.Conv2d", ...)`` with literal names: its answer depends only on
    the node's source names (``StepContext.sources``, read once per node), and a graph
    has few distinct ones, so each is decided once per compiled predicate."""
    function = registry.PREDICATE_FUNCTIONS["source"]
    functions = registry.PREDICATE_FUNCTIONS
    verdicts: dict[tuple, Any] = {}

    def evaluate(ctx: StepContext, params: dict) -> Any:
        if functions.get("source") is not function:
            return general(ctx, params)
        found = ctx.sources()
        verdict = verdicts.get(found)
        if verdict is None:
            verdict = verdicts[found] = general(ctx, params)
        return verdict
    # What StepPredicate.holds reads to answer from the verdicts without a call.
    evaluate.verdicts, evaluate.function = verdicts, function
    return evaluate


def _call(expr: ast.Call):
    general = _general_call(expr)
    args = expr.args
    producer = producer_call(expr)
    if producer is not None:
        return producer_question(*producer, general)
    fact = fact_call(expr)
    if fact is not None:
        return fact_question(*fact, general)
    if expr.func.id == "source" and args and all(isinstance(a, ast.StringLit) for a in args):
        return _source_question(general)
    return general


def _general_call(expr: ast.Call):
    name, args = expr.func.id, expr.args
    compiled = [_compile(arg) for arg in args]
    # (declaration, its argument kinds zipped with the arguments), for the declaration
    # last seen: rebuilt only when the registry holds another one.
    bound: list = [None, ()]

    def evaluate(ctx: StepContext, params: dict) -> Any:
        # The declaration is looked up per call: registries may change after compiling.
        function = registry.PREDICATE_FUNCTIONS[name]
        if bound[0] is not function:
            bound[:] = [function, tuple(
                (kind, arg, _role_getter(arg) if kind == "role" else value_of)
                for kind, arg, value_of in zip(function.kinds_for(len(args)), args, compiled))]
        values = []   # what the implementation receives, by argument kind
        for kind, arg, value_of in bound[1]:
            if kind == "role":
                try:
                    values.append(value_of(ctx))
                except LookupError:
                    values.append(None)   # the node lacks that argument (a conv without bias)
            elif kind == "op":
                values.append(arg.id)
            else:
                value = value_of(ctx, params)
                values.append(value.value if kind == "any" and isinstance(value, RoleValue)
                              else value)
        return function.implementation(ctx, *values)
    return evaluate


def _literal(expr):
    value = expr.value
    return lambda ctx, params: value


def _none(expr):
    return lambda ctx, params: None


def _name(expr):
    name = expr.id

    def evaluate(ctx: StepContext, params: dict) -> Any:
        if name in ctx.roles or name == "output":
            return ctx.role(name)
        if name in params:
            return params[name]
        return name  # an enum choice or a dtype name, compared as a string
    return evaluate


def _each(expr):
    role = _role_getter(expr)
    return lambda ctx, params: role(ctx)


def _attribute(expr):
    base, attr = _compile(expr.value), expr.attr

    def evaluate(ctx: StepContext, params: dict) -> Any:
        value = base(ctx, params)
        if isinstance(value, RoleValue):
            return value.fact(attr)
        if isinstance(value, list) and all(isinstance(b, RoleValue) for b in value):
            return [b.fact(attr) for b in value]
        raise LookupError(f"no fact {attr}")

    literal = literal_role(expr.value)
    if literal is None:
        return evaluate
    role, position = literal
    facts = registry.FACTS

    def of_role(ctx: StepContext, params: dict) -> Any:
        # `input[0].dtype` on a role the op binds: what `evaluate` reads, without its
        # closures (`weight` or `input[0]`, then the role value's `fact`).
        values = ctx.roles.get(role)
        if values is not None and position < len(values):
            return facts[attr].implementation(RoleValue(values[position], ctx))
        return evaluate(ctx, params)
    return of_role


def _index(expr):
    index = expr.index
    role = expr.value.id if isinstance(expr.value, ast.Name) else None
    container, at = _compile(expr.value), _compile(index)
    first = isinstance(index, ast.FirstOf)

    def evaluate(ctx: StepContext, params: dict) -> Any:
        if role is not None and role in ctx.roles:
            if first:
                return ctx.role(role, _position(index, role, ctx, params))
            return ctx.role(role, at(ctx, params))
        return container(ctx, params)[at(ctx, params)]
    return evaluate


def _unary(expr):
    operand = _compile(expr.operand)
    if expr.op == "not":
        return lambda ctx, params: not operand(ctx, params)
    return lambda ctx, params: -operand(ctx, params)


def _binary(expr):
    op, left, right = expr.op, _compile(expr.left), _compile(expr.right)
    if op == "and":
        return lambda ctx, params: bool(left(ctx, params)) and bool(right(ctx, params))
    if op == "or":
        return lambda ctx, params: bool(left(ctx, params)) or bool(right(ctx, params))

    def evaluate(ctx: StepContext, params: dict) -> Any:
        a, b = left(ctx, params), right(ctx, params)
        if isinstance(a, RoleValue):
            a = a.value
        if isinstance(b, RoleValue):
            b = b.value
        return _BINARY[op](a, b)
    return evaluate


def _conditional(expr):
    cond, then, otherwise = (_compile(expr.cond), _compile(expr.then),
                             _compile(expr.otherwise))
    return lambda ctx, params: (then if cond(ctx, params) else otherwise)(ctx, params)


def _list(expr):
    items = [_compile(item) for item in expr.items]
    return lambda ctx, params: [item(ctx, params) for item in items]


# Each expression class compiles to a closure over its compiled children, once per
# step predicate: the matcher runs them at every candidate node, where walking the
# tree with isinstance tests was most of the matching time.
_COMPILERS = {
    ast.IntLit: _literal, ast.FloatLit: _literal, ast.StringLit: _literal,
    ast.BoolLit: _literal, ast.NoneLit: _none, ast.Name: _name, ast.Each: _each,
    ast.Attribute: _attribute, ast.Index: _index, ast.Call: _call, ast.Unary: _unary,
    ast.Binary: _binary, ast.Conditional: _conditional, ast.ListLit: _list,
}


def _compile(expr):
    """``expr`` as a function of (step context, parameters)."""
    compiler = _COMPILERS.get(type(expr))
    if compiler is None:
        kind = type(expr).__name__

        def fail(ctx: StepContext, params: dict) -> Any:
            raise LookupError(f"cannot evaluate {kind}")
        return fail
    return compiler(expr)


def evaluate(expr, ctx: StepContext, params: dict) -> Any:
    """One expression's value here (explain, positions and derive arguments; predicates
    run compiled)."""
    return _compile(expr)(ctx, params)


def _declarations(expr):
    """The fact and function declarations an expression uses; QruleError for a name
    that has none (lint reports it as QR209; this catches code that skipped lint)."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        found = registry.PREDICATE_FUNCTIONS.get(expr.func.id)
        if found is None:
            raise QruleError([diagnostic("QR209", f"unknown predicate function "
                                         f"`{expr.func.id}`", expr.func.span)])
        yield found
    if isinstance(expr, ast.FirstOf):
        found = registry.PREDICATE_FUNCTIONS.get(expr.predicate)
        if found is None:
            raise QruleError([diagnostic("QR223", f"unknown predicate function "
                                         f"`{expr.predicate}`", expr.span)])
        yield found
    if isinstance(expr, ast.Attribute):
        found = registry.FACTS.get(expr.attr)
        if found is None:
            raise QruleError([diagnostic("QR209", f"unknown fact `.{expr.attr}`",
                                         expr.span)])
        yield found
    children = [getattr(expr, name) for name in type(expr).model_fields
                if name not in ("span", "kind")]
    for child in children:
        items = child if isinstance(child, tuple) else (child,)
        for item in items:
            if isinstance(item, ast.Keyword):
                item = item.value
            if isinstance(item, ast.Node):
                yield from _declarations(item)


class StepPredicate:
    """All predicates of a step as one callable. ``static``: it reads no annotations,
    so its result for a node holds for the whole annotate call (the matcher caches
    it: every conv2d rule of a ruleset shares `conv2d[source(...)]`)."""

    __slots__ = ("exprs", "params", "static", "key", "compiled", "checks", "sources")

    def __init__(self, exprs: tuple, params: dict):
        self.exprs = exprs
        self.checks = producer_checks(exprs)
        self.params = params
        declared = [found for expr in exprs for found in _declarations(expr)]
        # All must hold, and one that fails or raises makes the step false wherever it
        # is: when every declaration is qrules' own (pure reads of the graph and the
        # state, failing only with the errors __call__ catches), the cheapest run
        # first: `(add | mul)[..., not is_node(input[1])]` fails before the dtype and
        # value checks of the other input. explain's first_failure keeps source order.
        ordered = sorted(exprs, key=_cost) if all(
            id(found) in _BUILT_IN_IDS for found in declared) else exprs
        self.compiled = tuple(_compile(expr) for expr in ordered)
        # Only literal `source(...)` questions (X86's `conv2d[source("torch.nn.Conv2d",
        # ...)]`): `holds` reads their verdicts for the node's sources directly.
        self.sources = self.compiled if all(
            hasattr(evaluate, "verdicts") for evaluate in self.compiled) else None
        # Only annotations change while one graph is annotated; tensor facts, users,
        # modules and sources do not.
        self.static = not any(found.reads_annotations for found in declared)
        self.key = tree.structure(exprs)   # the same text at two places: one key

    def holds(self, node, roles: dict, state) -> bool:
        """``self(StepContext(node, roles, state))``; a predicate of producer questions
        only (``checks``) asks them of ``state`` without building the context."""
        checks = self.checks
        if checks is None:
            if self.sources is not None:
                return self._source_verdicts(node, roles, state)
            return self(StepContext(node, roles, state))
        bound = self.bound_checks(state)
        if bound is None:   # a registry holds another declaration now: ask it, as compiled
            return self(StepContext(node, roles, state))
        return holds_bound(bound, node, roles)

    def bound_checks(self, state) -> Optional[tuple]:
        """``checks`` with each question bound to ``state``'s method, as (negated, role,
        question), for ``holds_bound``: a planner binds them once per plan and asks them at
        every head. None for any other predicate, or when a registry holds another
        declaration of one of its functions or facts now (``__call__`` asks it)."""
        if self.checks is None:
            return None
        functions, facts = registry.PREDICATE_FUNCTIONS, registry.FACTS
        bound = []
        for negated, role, question, name, function, fact in self.checks:
            if functions.get(name) is not function or facts.get(name) is not fact:
                return None
            bound.append((negated, role, getattr(state, question)))
        return tuple(bound)

    def _source_verdicts(self, node, roles: dict, state) -> bool:
        """``holds`` of a predicate of literal `source(...)` questions: each one's
        verdict for the node's source names, once they are known (the first node with
        those names, or another declaration of `source`, goes the compiled way)."""
        context = StepContext(node, roles, state)
        try:
            found = context.sources()
        except (LookupError, TypeError, ValueError, AttributeError, IndexError):
            return self(context)   # as compiled: what raises makes the step false
        function = registry.PREDICATE_FUNCTIONS.get("source")
        for evaluate in self.sources:
            verdict = evaluate.verdicts.get(found)
            if verdict is None or evaluate.function is not function:
                return self(context)
            if not verdict:
                return False
        return True

    def __call__(self, ctx: StepContext) -> bool:
        for evaluate in self.compiled:
            try:
                if not evaluate(ctx, self.params):
                    return False
            except (LookupError, TypeError, ValueError, AttributeError, IndexError,
                    ZeroDivisionError):
                return False
        return True

    def first_failure(self, ctx: StepContext) -> Optional[tuple[Any, str]]:
        """The first expression that is false here, with what it read (``left: 3,
        right: 4``, or the error that made it false); None when all hold. For explain:
        the matcher only asks ``__call__``."""
        for expr in self.exprs:
            try:
                if not evaluate(expr, ctx, self.params):
                    return expr, _read_values(expr, ctx, self.params)
            except (LookupError, TypeError, ValueError, AttributeError, IndexError,
                    ZeroDivisionError) as err:
                return expr, f"error: {err}"
        return None


def _shown(value: Any) -> str:
    if isinstance(value, RoleValue):
        node = value.node
        return node.name if node is not None else repr(value.value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_shown, value)) + "]"
    return repr(value) if not isinstance(value, str) else value


def _read_values(expr, ctx: StepContext, params: dict) -> str:
    """The operands a failed expression read: both sides of a comparison, the operand
    of `not`, a call's result; what a rule author compares against the source."""
    if isinstance(expr, ast.Binary) and expr.op not in ("and", "or"):
        parts = (("left", expr.left), ("right", expr.right))
    elif isinstance(expr, ast.Unary):
        parts = (("operand", expr.operand),)
    else:
        parts = (("value", expr),)
    shown = []
    for name, part in parts:
        try:
            shown.append(f"{name}: {_shown(evaluate(part, ctx, params))}")
        except (LookupError, TypeError, ValueError, AttributeError, IndexError,
                ZeroDivisionError) as err:
            shown.append(f"{name}: error: {err}")
    return ", ".join(shown)


#: The identities of qrules' own declarations (BUILT_IN_DECLARATIONS holds them).
_BUILT_IN_IDS = frozenset(map(id, BUILT_IN_DECLARATIONS))


def _cost(expr) -> int:
    """An expression's evaluation cost, roughly: its syntax nodes, a fact read
    (`input[0].dtype`: a dispatch and a tensor's metadata) counting three, so that
    `not is_node(input[1])` runs before `input[0].dtype == float32`."""
    return sum(3 if isinstance(node, ast.Attribute) else 1 for node in tree.walk(expr))


def compile_predicates(predicates, params: dict,
                       shared: Optional[dict] = None) -> Optional[StepPredicate]:
    """All predicates of a step as one callable; None when there are none. With
    ``shared`` (one dict per compiled ruleset), steps with the same predicate text get
    the same object, so the matcher computes a static one once per node."""
    if not predicates:
        return None
    predicate = StepPredicate(tuple(predicates), params)
    if shared is None:
        return predicate
    return shared.setdefault(predicate.key, predicate)
