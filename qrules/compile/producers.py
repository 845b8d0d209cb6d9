"""Producer questions (``annotated(weight)``, ``quantized(input)``, ...): the built-in
predicate functions that ask the annotation state about the node producing one role,
compiled to a direct question of the state (the most common predicates of the
built-in rulesets; ``compile.predicates`` uses these); and the other built-in facts
asked of one literal role (``is_node(input[1])``), compiled to one fact read."""

from __future__ import annotations

from typing import Any, Optional

from qrules.compile.context import RoleValue, StepContext
from qrules.semantics import registry
from qrules.syntax import ast

#: The built-in facts about a role's producer that ask the annotation state
#: (``annotated(weight)``), by the ``StepContext`` question each one asks.
_PRODUCER_QUESTIONS = {"annotated": "is_annotated", "quantized": "output_quantized",
                       "shared": "output_shared", "has_output_spec": "has_output_spec"}
_BUILT_IN = {name: (registry.PREDICATE_FUNCTIONS[name], registry.FACTS[name])
             for name in _PRODUCER_QUESTIONS}


def producer_call(expr) -> Optional[tuple[str, str]]:
    """(function, role) of ``annotated(weight)``-style calls: a producer question on
    one plain role name; None for any other expression."""
    if (isinstance(expr, ast.Call) and expr.func.id in _PRODUCER_QUESTIONS
            and len(expr.args) == 1 and isinstance(expr.args[0], ast.Name)):
        return expr.func.id, expr.args[0].id
    return None


def producer_of(roles: dict, node, role: str):
    """The graph node a producer question asks about: the role's first value (`output`
    without a binding: the node itself); None when the node lacks that argument or it
    is a Python constant, which is never annotated."""
    values = roles.get(role)
    if values is None:
        value = node if role == "output" else None
    else:
        value = values[0] if values else None
    return value if hasattr(value, "meta") and hasattr(value, "op") else None


def holds_bound(bound: tuple, node, roles: dict) -> bool:
    """``StepPredicate.holds`` of a predicate of producer questions, with its
    ``bound_checks``: each asked of ``producer_of`` the role, when that is a node."""
    for negated, role, question in bound:
        value = producer_of(roles, node, role)
        if (value is not None and bool(question(value))) == negated:
            return False
    return True


def producer_question(name: str, role: str, general):
    """``annotated(weight)`` as one lookup in the annotation state: the role's first
    value, if it is a node, asked the fact's question directly. What the declared
    implementation does, without a role value, a fact dispatch and two delegations per
    node; ``general`` still runs when a registry holds another declaration."""
    question = getattr(StepContext, _PRODUCER_QUESTIONS[name])
    function, fact = _BUILT_IN[name]
    functions, facts = registry.PREDICATE_FUNCTIONS, registry.FACTS

    def evaluate(ctx: StepContext, params: dict) -> Any:
        if functions.get(name) is not function or facts.get(name) is not fact:
            return general(ctx, params)
        value = producer_of(ctx.roles, ctx.node, role)
        return value is not None and question(ctx, value)
    return evaluate


def producer_checks(exprs: tuple):
    """A step predicate made only of ``annotated(ROLE)``-style questions, each maybe
    negated (``conv2d[not annotated(weight), not annotated(bias)]``, the most common
    predicate of the built-in rulesets), as (negated, role, the state's question) per
    expression; None for any other predicate. The matcher asks these of the annotation
    state directly, without a step context (``StepPredicate.holds``)."""
    checks = []
    for expr in exprs:
        negated = isinstance(expr, ast.Unary) and expr.op == "not"
        producer = producer_call(expr.operand if negated else expr)
        if producer is None:
            return None
        name, role = producer
        checks.append((negated, role, _PRODUCER_QUESTIONS[name], name, *_BUILT_IN[name]))
    return tuple(checks)


#: The built-in predicate functions that read one fact of a role's own value.
_ROLE_FACTS = {name: (registry.PREDICATE_FUNCTIONS[name], registry.FACTS[name])
               for name in ("is_float", "is_node", "is_constant", "rank")}


def literal_role(expr) -> Optional[tuple[str, int]]:
    """(role, position) of `ROLE` (position 0) or `ROLE[N]` with a literal N >= 0."""
    if isinstance(expr, ast.Name):
        return expr.id, 0
    if isinstance(expr, ast.Index) and isinstance(expr.value, ast.Name) \
            and isinstance(expr.index, ast.IntLit) and expr.index.value >= 0:
        return expr.value.id, expr.index.value
    return None


def fact_call(expr) -> Optional[tuple[str, str, int]]:
    """(function, role, position) of ``is_node(input[1])``-style calls: a built-in
    fact function of one literal role; None for any other expression."""
    if isinstance(expr, ast.Call) and expr.func.id in _ROLE_FACTS and len(expr.args) == 1:
        literal = literal_role(expr.args[0])
        if literal is not None:
            return (expr.func.id, *literal)
    return None


def fact_question(name: str, role: str, position: int, general):
    """``is_node(input[1])`` as the fact's implementation on that value, when the node
    binds it; ``general`` (the compiled call) otherwise, or when a registry holds
    another declaration of the function or the fact."""
    function, fact = _ROLE_FACTS[name]
    functions, facts = registry.PREDICATE_FUNCTIONS, registry.FACTS
    implementation = fact.implementation

    def evaluate(ctx: StepContext, params: dict) -> Any:
        if functions.get(name) is function and facts.get(name) is fact:
            values = ctx.roles.get(role)
            if values is not None and position < len(values):
                return implementation(RoleValue(values[position], ctx))
        return general(ctx, params)
    return evaluate
