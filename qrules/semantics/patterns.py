"""Patterns as the matcher sees them: op names resolved, expanded into step sequences.

``a -> b? -> (c | d)`` expands to the sequences [a, b, c], [a, b, d], [a, c], [a, d].
Checks use the expansions to decide which roles a match has, whether one rule
shadows another, and whether an optional step can ever be taken; the compiler
(issue 3) uses the same resolution of names to aten targets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from itertools import product
from typing import Optional

from qrules.diagnostics import Diagnostic, diagnostic, note
from qrules.syntax import ast
from qrules.syntax.tree import walk

#: The wildcard op name: any call_function node.
ANY_OP = "any"
MAX_EXPANSIONS = 512


@dataclass(frozen=True)
class OpInfo:
    """A concrete op: its aten targets and, per role, the argument positions."""

    name: str
    targets: tuple[str, ...]
    roles: tuple[ast.RoleBinding, ...]
    node: object

    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}

    def role_count(self, role: str) -> Optional[int]:
        """How many edges a role has; None when a list binding makes it open-ended."""
        bindings = [r for r in self.roles if r.role == role]
        if any(r.element == "*" for r in bindings):
            return None
        return len(bindings)


@dataclass(frozen=True)
class StepInfo:
    node: object                      # the OpRef, Region or Step written
    label: Optional[str]              # the op name as written, for `label.role` keys
    ops: tuple[OpInfo, ...]           # () for regions; (ANY,) for the wildcard
    predicates: tuple[ast.Expr, ...]
    region: Optional[ast.Region] = None
    shared_input: bool = False        # reached through `~>`: its producer may fan out

    @property
    def is_any(self) -> bool:
        return any(op.name == ANY_OP for op in self.ops)

    @cached_property
    def _targets(self) -> frozenset[str]:
        return frozenset(t for op in self.ops for t in op.targets)

    def targets(self) -> frozenset[str]:
        return self._targets


@dataclass(frozen=True)
class Expansion:
    steps: tuple[StepInfo, ...]
    optionals: frozenset[int]         # id()s of the optional Step nodes taken


ANY = OpInfo(ANY_OP, ("*",), (ast.RoleBinding.model_construct(role="input", position=0),),
             None)


class OpResolver:
    """Resolves op names (definitions and aliases) to concrete ops, once each."""

    def __init__(self, ops: dict[str, list], pick=None):
        self.ops = ops
        self.pick = pick  # chooses the definition in force; default: the last
        self._cache: dict[str, Optional[tuple[OpInfo, ...]]] = {}
        self.cycles: list[tuple[str, object]] = []

    def current(self, name: str):
        """The definition in force (the last override wins for analysis)."""
        definitions = self.ops.get(name)
        if not definitions:
            return None
        return (self.pick(definitions) if self.pick else definitions[-1]).node

    def resolve(self, name: str, _stack: tuple[str, ...] = ()) -> Optional[tuple[OpInfo, ...]]:
        if name == ANY_OP and name not in self.ops:
            return (ANY,)
        if name in self._cache:
            return self._cache[name]
        node = self.current(name)
        if node is None:
            return None
        if name in _stack:
            self.cycles.append((name, node))
            return ()
        if isinstance(node, ast.OpDef):
            result = (OpInfo(name, node.targets, node.roles, node),)
        else:
            members: list[OpInfo] = []
            for member in node.members:
                resolved = self.resolve(member.name, _stack + (name,))
                for op in resolved or ():
                    if op not in members:
                        members.append(op)
            result = tuple(members)
        self._cache[name] = result
        return result


def _step(atom, resolver: OpResolver, predicates=(), label=None) -> StepInfo:
    if isinstance(atom, ast.Region):
        return StepInfo(atom, label, (), tuple(predicates), region=atom)
    ops = resolver.resolve(atom.name) or ()
    return StepInfo(atom, label or atom.name, ops, tuple(predicates))


def expand(pattern, resolver: OpResolver) -> list[Expansion]:
    """Every step sequence the pattern can match, longest alternatives first."""
    out = _expand(pattern, resolver, ())
    return [e for e in out[:MAX_EXPANSIONS] if e.steps]


def _expand(node, resolver, predicates, label=None) -> list[Expansion]:
    if isinstance(node, (ast.OpRef, ast.Region)):
        return [Expansion((_step(node, resolver, predicates, label),), frozenset())]
    if isinstance(node, ast.Step):
        inner = _expand(node.atom, resolver, tuple(predicates) + node.predicates,
                        node.label or label)
        if node.optional:
            taken = [Expansion(e.steps, e.optionals | {id(node)}) for e in inner]
            return taken + [Expansion((), frozenset())]
        return inner
    if isinstance(node, ast.Alternation):
        out: list[Expansion] = []
        for option in node.options:
            out.extend(_expand(option, resolver, predicates, label))
        return out
    if isinstance(node, ast.Chain):
        parts = [_expand(step, resolver, predicates, label) for step in node.steps]
        out = []
        for combo in product(*parts):
            steps: list[StepInfo] = []
            pending = False  # a `~>` whose step was an optional one left out
            for index, expansion in enumerate(combo):
                link = index > 0 and bool(node.shared) and node.shared[index - 1]
                pending = pending or link
                if expansion.steps and steps and pending:
                    steps.append(replace(expansion.steps[0], shared_input=True))
                    steps.extend(expansion.steps[1:])
                    pending = False
                elif expansion.steps:
                    steps.extend(expansion.steps)
                    pending = False
            out.append(Expansion(tuple(steps),
                                 frozenset().union(*(e.optionals for e in combo))))
            if len(out) >= MAX_EXPANSIONS:
                break
        return out
    return []


def nullable(pattern) -> bool:
    """Can the pattern match the empty sequence (``a?``, ``a? -> b?``, ``(a | b?)``)?"""
    if isinstance(pattern, ast.Step):
        return pattern.optional or nullable(pattern.atom)
    if isinstance(pattern, ast.Chain):
        return all(nullable(step) for step in pattern.steps)
    if isinstance(pattern, ast.Alternation):
        return any(nullable(option) for option in pattern.options)
    return False  # an op or a region matches one node


def optional_steps(pattern) -> list[ast.Step]:
    """Every ``x?`` in a pattern, outermost first."""
    return [n for n in walk(pattern) if isinstance(n, ast.Step) and n.optional]


def op_refs(pattern) -> list[ast.OpRef]:
    return [n for n in walk(pattern) if isinstance(n, ast.OpRef)]




def repeated_alternatives(refs, resolver: OpResolver, where: str) -> list[Diagnostic]:
    """QR407 for each alternative that adds no aten overload to the ones before it:
    the same name twice, or ``relu6`` after ``hardtanh`` (the alias expands to the same
    overloads), so it is never the alternative that matches. Unknown ops are QR201's."""
    out: list[Diagnostic] = []
    earlier: list[tuple[ast.OpRef, frozenset[str]]] = []
    for ref in refs:
        targets = frozenset(t for op in resolver.resolve(ref.name) or () for t in op.targets)
        same = [e for e, _ in earlier if e.name == ref.name]
        if same:
            out.append(diagnostic("QR407", f"`{ref.name}` is listed twice in {where}", ref.span,
                                  [note(message="first listed here", span=same[0].span)]))
        elif targets and "*" not in targets and targets <= frozenset().union(
                *(t for _, t in earlier)):
            covering = [e for e, t in earlier if t & targets]
            names = ", ".join(f"`{e.name}`" for e in covering)
            out.append(diagnostic(
                "QR407", f"`{ref.name}` adds nothing to {where}: the aten ops it stands for "
                f"({', '.join(sorted(targets))}) are already matched by {names}", ref.span,
                [note(message=f"`{e.name}` is here", span=e.span) for e in covering]))
        earlier.append((ref, targets))
    return out
