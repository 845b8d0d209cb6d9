"""The entries of the symbol tables: a rule with its context, a definition with the
conditions it holds under, an `extend rule` item, and how rules rank.

symbols.py fills the tables; the checks, the evaluator and the compiler read these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from qrules.semantics.loader import Unit
from qrules.syntax import ast

MAIN_PHASE = "main"

#: Scope kinds ranked from most to least specific; rules of a more specific scope
#: run first, as XNNPACKQuantizer applies module-name, then module-type, then global.
#: Node names (Arm's set_node_name) are the most specific of all.
SCOPE_RANK = {"node_name": -1, "module_name": 0, "module_type": 1, "operator": 2}
GLOBAL_RANK = 3


@dataclass(frozen=True)
class ScopeRef:
    kind: str
    selectors: tuple[str, ...]  # in scope when any of them is
    node: ast.Scope


@dataclass(frozen=True)
class Context:
    phase: str = MAIN_PHASE
    scopes: tuple[ScopeRef, ...] = ()
    conditions: tuple[ast.Expr, ...] = ()


@dataclass(frozen=True)
class Definition:
    """One definition (or override) of a name, and the conditions it holds under."""

    node: object
    unit: Unit
    conditions: tuple[ast.Expr, ...] = ()


@dataclass(frozen=True)
class RuleEntry:
    rule: ast.Rule
    unit: Unit
    ruleset: str
    context: Context
    phase_index: int
    order: int
    #: Its phase is `per node`: rules are tried node by node, not rule by rule.
    per_node: bool = False

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def scope_rank(self) -> int:
        return min((SCOPE_RANK.get(s.kind, GLOBAL_RANK) for s in self.context.scopes),
                   default=GLOBAL_RANK)

    @property
    def rank(self) -> tuple:
        """Smaller runs first: phase, scope specificity, priority, file order."""
        return (self.phase_index, self.scope_rank, -self.rule.priority, self.order)

    @property
    def conditions(self) -> tuple[ast.Expr, ...]:
        extra = (self.rule.condition,) if self.rule.condition is not None else ()
        return self.context.conditions + extra


@dataclass(frozen=True)
class Extension:
    """An `extend rule` item: the alternative it adds to a rule, and the conditions of
    the `when` blocks around it (none: applied to the rule when collected)."""

    node: ast.ExtendRule
    unit: Unit
    conditions: tuple[ast.Expr, ...] = ()


def extended(entry: RuleEntry, pattern) -> RuleEntry:
    """``entry`` with ``pattern`` as one more alternative of its pattern, after the
    ones it has: the rule's name, config, options, scope, phase and place are kept."""
    base = entry.rule.pattern
    options = base.options if isinstance(base, ast.Alternation) else (base,)
    merged = ast.Alternation.model_construct(span=base.span, options=options + (pattern,))
    return dataclasses.replace(entry, rule=entry.rule.model_copy(update={"pattern": merged}))


def under_conditions(entry: RuleEntry, conditions: tuple) -> RuleEntry:
    """``entry`` guarded by ``conditions`` too (an extension inside `when` blocks)."""
    context = dataclasses.replace(entry.context,
                                  conditions=entry.context.conditions + conditions)
    return dataclasses.replace(entry, context=context)
