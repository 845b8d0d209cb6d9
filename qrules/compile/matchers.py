"""Bound ruleset -> compiled matchers: aten overloads resolved, indexed by head op.

Compiling is done once per bound ruleset; matching a graph never traces anything.
Each rule becomes a list of expansions (step sequences, longest first); each step
knows the aten overloads it accepts, where each role sits among the arguments,
whether its tensor output is reached through ``getitem``, and its predicates.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Optional

from qrules.compile.predicates import compile_predicates
from qrules.compile.targets import CompileError, resolve_target
from qrules.errors import QruleError
from qrules.semantics import registry
from qrules.semantics.patterns import ANY, ANY_OP, OpInfo, expand
from qrules.semantics.ruleset import BoundRule, BoundRuleset, BoundTransform
from qrules.semantics.entries import ScopeRef
from qrules.semantics.values import Spec
from qrules.span import Span
from qrules.syntax import ast


@dataclass(frozen=True)
class Binding:
    """Where one role sits: ``args[position]``, or its list elements (``element``)."""

    role: str
    position: int
    element: Any = None  # None: the arg itself; "*": every element; int: that element


@dataclass(frozen=True)
class OpMatch:
    """One concrete op of a step: its overloads and argument roles."""

    name: str
    targets: frozenset
    bindings: tuple[Binding, ...]
    output_item: Optional[int] = None   # tensor output is getitem(node, k)

    @cached_property
    def positional(self) -> Optional[tuple[tuple[str, int], ...]]:
        """(role, argument position) of each binding when each names a whole argument
        and no role has two (`conv2d { input: 0, weight: 1, bias: 2 }`), else None."""
        roles = [binding.role for binding in self.bindings]
        if len(set(roles)) != len(roles) or any(
                binding.element is not None or binding.position < 0
                for binding in self.bindings):
            return None
        return tuple((binding.role, binding.position) for binding in self.bindings)


@dataclass(frozen=True)
class CompiledStep:
    label: Optional[str]
    ops: tuple[OpMatch, ...]
    any_op: bool
    predicate: Optional[Callable]
    region: Optional[ast.Region]
    predicate_exprs: tuple = ()        # the source predicates, for explain
    shared_input: bool = False         # `a ~> b`: a's output may have other users

    def op_for(self, key: int) -> Optional[OpMatch]:
        """The first op of the step accepting a node of this ``target_key``."""
        return self._by_key.get(key)

    @cached_property
    def any_match(self) -> Optional[OpMatch]:
        """The step's `any` op, which matches a call of any target (None without one)."""
        return next((op for op in self.ops if op.name == "any"), None) if self.any_op else None

    @cached_property
    def _by_key(self) -> dict:
        # target key -> the first op accepting it: one int hash per candidate node
        # instead of one OpOverload hash per op. Built on first use; the step is
        # frozen, so it never goes stale.
        index: dict = {}
        for op in self.ops:
            for target in op.targets:
                index.setdefault(id(target), op)
        return index


@dataclass(frozen=True)
class CompiledRule:
    """One rule as the passes use it: its patterns, its config, and how it takes nodes."""

    name: str
    ruleset: str
    span: Span                         # the rule's name in its file
    phase: int
    rank: tuple
    scopes: tuple[ScopeRef, ...]
    expansions: tuple[tuple[CompiledStep, ...], ...]
    config: Optional[tuple[tuple[ast.RoleKey, Optional[Spec]], ...]]
    # May match nodes taken by earlier rules; fills only edges without a spec.
    amend: bool = False
    # `takes(...)`: the steps and edge producers a match owns; None: its steps.
    takes: Optional[tuple[ast.RoleKey, ...]] = None
    # Its annotations leave `_annotated` false; its nodes are still taken.
    unmarked: bool = False
    # Its phase is `per node`: the plan tries the phase's rules at each node in turn.
    per_node: bool = False
    # (step, role, FirstOf) of every `ROLE[first PRED]` its config names: a match
    # where one of them selects no edge is not accepted (`each` may select none).
    selections: tuple = ()
    # `any_dtype`: also matches ops whose output is not a floating-point tensor.
    any_dtype: bool = False
    # The ruleset's `annotation` kind (None: torchao's QuantizationAnnotation): what
    # the adapter writes for the nodes this rule annotates.
    annotation_kind: Optional[str] = None
    # `scoped(...)`: what its scope test reads under `scoping filters`; None: its steps.
    scoped: Optional[tuple[ast.RoleKey, ...]] = None
    # What the passes work out from the rule alone (plan.py: its config in placing
    # order), once per rule rather than once per annotate. Not an __init__ argument,
    # so `dataclasses.replace` (a rule limited to a scope) starts a fresh one.
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    @cached_property
    def location(self) -> str:
        """``file:line:col`` of the rule's name, as provenance and explain show it."""
        return str(self.span)

    @property
    def neighbour_at_io(self) -> Optional[Spec]:
        """The spec its ``neighbour(at_io=SPEC)`` takes at graph inputs and outputs."""
        return next((spec.at_io for _, spec in self.config or ()
                     if spec is not None and getattr(spec, "at_io", None) is not None), None)

    @property
    def copies_neighbour(self) -> bool:
        """Its config copies a connected region's neighbour spec (``neighbour()``)."""
        return any(spec is not None and spec.copies_neighbour for _, spec in self.config or ())

    def head_keys(self) -> frozenset:
        """The ``target_key``s of the ops its expansions start with."""
        return self._heads[0]

    def head_is_open(self) -> bool:
        """Matches at any node (wildcard or region head): not indexable by target."""
        return self._heads[1]

    @cached_property
    def _heads(self) -> tuple[frozenset, bool]:
        # Asked for every rule by every plan: computed once per compiled rule.
        heads: set = set()
        for steps in self.expansions:
            for op in steps[0].ops:
                heads.update(map(id, op.targets))
        return frozenset(heads), any(steps[0].any_op or steps[0].region is not None
                                     for steps in self.expansions)

    def expansions_at(self, key: int) -> tuple:
        """The expansions whose first step can match a node of this ``target_key``,
        in order: `(add | mul) -> relu` tries one of its two at an add, and a rule of
        ten alternative ops one of ten. Open first steps (`any`, regions) always."""
        by_target, open_ones = self._expansions_by_target
        return by_target.get(key, open_ones)

    def tries_at(self, key: int) -> tuple:
        """``expansions_at(key)``, each with the targets the head's next node must have
        (the second step's, when the head's own output feeds it: else None; a head
        with no such user is skipped untried) and the first step's op for the key."""
        tries = self._tries.get(key)
        if tries is None:
            tries = self._tries[key] = tuple((steps, _next_targets(steps),
                                              steps[0].op_for(key))
                                             for steps in self.expansions_at(key))
        return tries

    @cached_property
    def _tries(self) -> dict:
        return {}

    @cached_property
    def head_tries(self) -> dict:
        """``tries_at`` of each of ``head_keys()``: one table lookup per candidate head
        (the planners visit every candidate of every rule)."""
        return {key: self.tries_at(key) for key in self._heads[0]}

    @cached_property
    def _expansions_by_target(self) -> tuple[dict, tuple]:
        def is_open(steps) -> bool:
            return steps[0].any_op or steps[0].region is not None

        by_target = {key: tuple(steps for steps in self.expansions if is_open(steps)
                                or steps[0].op_for(key) is not None)
                     for key in self._heads[0]}
        return by_target, tuple(steps for steps in self.expansions if is_open(steps))


def _next_targets(steps) -> Optional[frozenset]:
    if len(steps) < 2 or steps[0].any_op or steps[0].region is not None or any(
            op.output_item is not None for op in steps[0].ops):
        return None
    second = steps[1]
    if second.any_op or second.region is not None:
        return None
    return frozenset(id(target) for op in second.ops for target in op.targets)


@dataclass(frozen=True)
class CompiledRuleset:
    """Everything the passes need, resolved once: no pass reads the bound ruleset."""

    name: str
    rules: tuple[CompiledRule, ...]    # in acceptance order (rank)
    transforms: tuple                  # BoundTransforms, op-list keywords resolved
    # Op name -> its overloads, for predicates like `any_user(relu)` and op scopes.
    op_targets: dict[str, frozenset] = field(default_factory=dict, compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    # Rules these parameters turn off (reason, span), compiled for explain only.
    off: tuple[tuple[CompiledRule, str, Span], ...] = field(default=(), compare=False)
    # `scoping MODE`: how the quantizer applies the scopes set from Python to it.
    scoping: str = "nodes"

    @cached_property
    def quantizable_heads(self) -> tuple[frozenset, bool]:
        """(target keys of the head ops of the rules that quantize, whether one of them
        has an open head): what `any_user_quantizable()` asks, once per ruleset."""
        heads: set = set()
        open_head = False
        for rule in self.rules:
            if rule.config is None:
                continue
            open_head = open_head or rule.head_is_open()
            heads |= rule.head_keys()
        return frozenset(heads), open_head

    def within(self, scope: ScopeRef) -> "CompiledRuleset":
        """The same rules, each limited to ``scope`` as well (a scope set from Python)."""
        rules = tuple(dataclasses.replace(rule, scopes=rule.scopes + (scope,))
                      for rule in self.rules)
        return dataclasses.replace(self, rules=rules)


def interleave(rulesets: list[CompiledRuleset]) -> CompiledRuleset:
    """One ruleset running the given ones phase by phase: each phase's rules of the
    first ruleset, then of the second, and so on, before the next phase (executorch's
    Arm quantizer runs every pattern quantizer before its shared-qspec one). Phases are
    paired by index; the first ruleset's transforms and parameters are kept (one pass
    manager, as the anchor has), the others' transforms only when they are new."""
    rules = sorted((rule for ruleset in rulesets for rule in ruleset.rules),
                   key=operator.attrgetter("phase"))   # stable: ruleset order within a phase
    transforms: list = []
    for ruleset in rulesets:
        names = {transform.name for transform in transforms}
        transforms.extend(t for t in ruleset.transforms if t.name not in names)
    op_targets: dict[str, frozenset] = {}
    for ruleset in reversed(rulesets):
        op_targets.update(ruleset.op_targets)
    first = rulesets[0]
    return dataclasses.replace(first, rules=tuple(rules), transforms=tuple(transforms),
                               op_targets=op_targets, off=())


#: Each distinct OpMatch once per process: steps of different rules naming the same op
#: share it, so the matcher binds a node's roles once per op, not once per rule.
_OP_MATCHES: dict[OpMatch, OpMatch] = {}


def _op_match(op: OpInfo) -> OpMatch:
    found = _new_op_match(op)
    return _OP_MATCHES.setdefault(found, found)


def _new_op_match(op: OpInfo) -> OpMatch:
    if op.name == ANY_OP:
        return OpMatch(ANY_OP, frozenset(), (Binding("input", 0),))
    targets = frozenset(resolve_target(t) for t in op.targets)
    bindings, output_item = [], None
    for role in op.roles:
        if role.through is not None:
            output_item = role.position
        else:
            bindings.append(Binding(role.role, role.position, role.element))
    return OpMatch(op.name, targets, tuple(bindings), output_item)


def _compile_rule(rule: BoundRule, bound: BoundRuleset,
                  shared: Optional[dict] = None) -> CompiledRule:
    params = bound.params
    expansions = []
    for expansion in expand(rule.entry.rule.pattern, bound.resolver):
        steps = []
        for step in expansion.steps:
            ops = tuple(_op_match(op) for op in step.ops)
            steps.append(CompiledStep(
                label=step.label, ops=ops, any_op=step.is_any,
                predicate=compile_predicates(step.predicates, params, shared),
                region=step.region, predicate_exprs=tuple(step.predicates),
                shared_input=step.shared_input))
        expansions.append(tuple(steps))
    # Longest first: at one head node a rule takes its longest expansion that matches.
    expansions.sort(key=len, reverse=True)
    config = None
    if rule.config is not None:
        config = tuple((key, specs[0] if specs else None) for key, specs in rule.config.entries)
    edges = [(key.step, key.role, key.index) for key, _ in config or ()]
    edges += [(ref.step, ref.role, ref.index) for _, spec in config or () if spec is not None
              for ref in spec.refs]
    selections = tuple(dict.fromkeys(e for e in edges if isinstance(e[2], ast.FirstOf)
                                     and not e[2].each))
    entry = rule.entry
    return CompiledRule(rule.name, entry.ruleset, entry.rule.name_span, entry.phase_index,
                        entry.rank, entry.context.scopes, tuple(expansions), config,
                        amend=entry.rule.amend, takes=entry.rule.takes,
                        unmarked=entry.rule.unmarked, per_node=entry.per_node,
                        selections=selections,
                        annotation_kind=bound.annotation_kind,
                        any_dtype=entry.rule.any_dtype,
                        scoped=entry.rule.scoped if bound.scoping == "filters" else None)


def _compile_transform(transform: BoundTransform, bound: BoundRuleset) -> BoundTransform:
    """Op-list keywords (``ops=[add, mul]``) become the frozenset of those ops' overloads,
    resolved like a pattern's ops (overrides and aliases included)."""
    entry = registry.TRANSFORMS.get(transform.name)
    if entry is None or not entry.op_kwargs:
        return transform
    kwargs = []
    for key, value in transform.kwargs:
        if key in entry.op_kwargs:
            value = frozenset(resolve_target(target) for name in value
                              for op in bound.resolver.resolve(name) or ()
                              for target in op.targets)
        kwargs.append((key, value))
    return dataclasses.replace(transform, kwargs=tuple(kwargs))


def _op_targets(bound: BoundRuleset) -> dict[str, frozenset]:
    """Op name -> overloads, for every op the ruleset can name. An op whose overloads
    this torch lacks resolves to fewer (or none): a predicate naming it is false."""
    resolver = bound.resolver
    out = {}
    for name in resolver.ops:
        targets = set()
        for op in resolver.resolve(name) or ():
            for target in op.targets:
                try:
                    targets.add(resolve_target(target))
                except CompileError:
                    pass
        out[name] = frozenset(targets)
    return out


def compile_ruleset(bound: BoundRuleset) -> CompiledRuleset:
    shared: dict = {}   # predicate text -> one StepPredicate, see compile_predicates
    rules = tuple(_compile_rule(rule, bound, shared) for rule in bound.rules)
    transforms = tuple(_compile_transform(t, bound) for t in bound.transforms)
    return CompiledRuleset(bound.name, rules, transforms, _op_targets(bound),
                           dict(bound.params), tuple(_compile_off(bound, shared)),
                           bound.scoping)


def _compile_off(bound: BoundRuleset, shared: dict):
    for rule, reason, span in bound.off:
        try:
            yield _compile_rule(rule, bound, shared), reason, span
        except (CompileError, QruleError, LookupError):
            continue  # an op only defined when the rule is on: explain skips it


def leave_in_float(scope: ScopeRef) -> CompiledRuleset:
    """`rule leave_in_float: any : none` limited to ``scope``: it takes every node of
    the scope and leaves it in float (what ``None`` means in ``set_module_name``)."""
    return _LEAVE_IN_FLOAT.within(scope)


# What compiling this file, named `<leave in float>`, gives (without parsing it at
# annotate time, or importing the API from here):
#     ruleset leave_in_float version "1.0"
#     rule leave_in_float: any : none
# Its provenance location, `<leave in float>:2:6`, is the rule's name in that text.
_ANY_STEP = CompiledStep(label=ANY_OP, ops=(_op_match(ANY),), any_op=True,
                         predicate=None, region=None)
_LEAVE_IN_FLOAT = CompiledRuleset("leave_in_float", (CompiledRule(
    "leave_in_float", "leave_in_float", Span.point("<leave in float>", 2, 6), phase=0,
    rank=(0, 3, 0, 0), scopes=(),  # phase 0, no scope, priority 0, first rule
    expansions=((_ANY_STEP,),), config=None),), transforms=())
