"""Plan annotations: turn accepted matches and their configs into per-node edge specs.

Nothing is written to the graph here. A plan says, for each node, which input
edges get which spec, what its output gets, and which rule (and source span)
decided it; ``qrules.passes.validate`` checks the plan and the adapter writes it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from itertools import groupby, repeat
from operator import attrgetter, getitem
from typing import Any, Mapping, Optional

from torch.fx import GraphModule, Node

from qrules.compile.graph_meta import is_float_value
from qrules.compile.matchers import CompiledRule, CompiledRuleset
from qrules.compile.predicates import StepContext, evaluate
from qrules.passes.bindings import Match
from qrules.passes.edges import Edge, MatchEdges
from qrules.passes.match import Matcher
from qrules.passes.templates import plan_chains, plan_match, template
from qrules.passes.placing import (
    HEAD_EDGES, NO_INPUTS, WHOLE_OUTPUT, NodeAnnotation, Placed, Plan, names_no_edge,
    own_note, rule_config, take_owned,
)
from qrules.passes.state import State
from qrules.semantics.values import MatchExpr, Spec


def _place(spec: Spec, key_text: str, edges: MatchEdges,
           current: Optional[tuple] = None) -> tuple[Placed, Optional[str]]:
    if spec.copies_neighbour:
        # `neighbour()`: the very spec (and its shared or derived edges) on the edge
        # next to the region, as executorch's SharedQspecQuantizer copies it; with
        # none, the region matched at a graph input or output: `at_io`.
        if edges.neighbour is None:
            return _place(spec.at_io, key_text, edges)
        return dataclasses.replace(edges.neighbour, key=key_text), None
    if names_no_edge(spec):
        return _shared_placed(edges.placed, spec, key_text), None
    missing = None
    if getattr(spec, "reads_match", False):
        spec, missing = _with_match_args(spec, edges)
    refs: list[Edge] = []
    for ref in spec.refs:
        edge = edges.resolve(ref, current)
        if edge is None:
            missing = str(ref)
        else:
            refs.append(edge)
    return Placed(spec, key_text, tuple(refs)), missing


def _with_match_args(spec, edges: MatchEdges) -> tuple[Any, Optional[str]]:
    """A derived spec whose function arguments read the match (`arg(6)`), with their
    values on this match's first step; and the argument the match cannot give, if any
    (a role it does not have: QR602)."""
    match = edges.match
    context = StepContext(match.head, match.roles[0] if match.roles else {}, edges.state)
    values, missing = [], None
    for key, value in spec.fn_args:
        if isinstance(value, MatchExpr):
            try:
                value = evaluate(value.expr, context, edges.state.params)
            except (LookupError, TypeError, ValueError, AttributeError):
                missing = f"the value of its `{key}` argument"
        values.append((key, value))
    return dataclasses.replace(spec, fn_args=tuple(values)), missing


def _shared_placed(placed: dict, spec: Spec, key_text: str) -> Placed:
    """The one `Placed` of a spec that names no edge under one config key: placed on no
    edge of its own, it is the same record wherever a rule of the plan puts it."""
    found = placed.get((id(spec), key_text))
    if found is None:
        found = placed[(id(spec), key_text)] = Placed(spec, key_text)
    return found


def _annotate_match(match: Match, edges: Optional[MatchEdges], plan_state: State,
                    out: dict, config: list, may_share: bool) -> None:
    """Plan the match's annotations into ``out``. ``edges`` may be None for a chain
    whose config needs none (``placing.rule_config``)."""
    rule = match.rule
    notes = {}   # a loop, not a comprehension: no extra frame per match
    for node in match.nodes:
        notes[node] = NodeAnnotation(node, rule)
    for node in match.interior:
        notes[node] = NodeAnnotation(node, rule)
    # A chain's head edges are its first step's role values, all into the head; a
    # region's come from MatchEdges.
    chain = not match.is_region
    last = match.ops[-1] if chain else None
    output_node = match.nodes[-1] if last is not None and last.output_item is None \
        else match.output_node()
    if output_node not in notes:
        notes[output_node] = NodeAnnotation(output_node, rule)
    head, head_roles = match.nodes[0], match.roles[0] if match.roles else {}
    for key, text, spec, where, fixed in config:
        if where is WHOLE_OUTPUT:
            # A connected region's outputs are its float members with users, possibly
            # none (a comparison's bool output).
            targets = match.region_outputs or ([] if match.connected else [output_node])
            if key.index is not None:
                targets = tuple_items(output_node, key.index)
            for node in targets:
                # A graph input, or the op of an `any_dtype` rule, whose value is not a
                # float tensor has no output to observe.
                floating = (node.op != "placeholder" and not rule.any_dtype
                            or plan_state.is_float(node))
                placed = None if spec is None or not floating else (
                    (fixed, None) if fixed is not None else _place(spec, text, edges))
                if node not in notes:
                    notes[node] = NodeAnnotation(node, rule)
                notes[node].output = None if placed is None else placed[0]
                notes[node].output_key = text
                if placed is not None and placed[1]:
                    notes[node].errors += (("QR602", f"`{text}` refers to `{placed[1]}`, "
                                            "which this match does not have"),)
            continue
        if where is not HEAD_EDGES:
            selected = edges.select(key.step, key.role, key.index)
        elif chain:
            selected = zip(head_roles.get(key.role, ()), repeat(head))
        else:
            selected = edges.head_edges(key.role)
        for source, user in selected:
            if isinstance(source, Node):
                if not plan_state.is_float_input(source, user):
                    continue  # integer and bool tensors are never quantized
            elif source is None or spec is None:
                # An optional tensor argument left out (`conv2d.padding(x, w, None, …)`
                # without bias) is no edge, and `none` on a constant says nothing. Both
                # used to be written as input_qspec_map keys, which torchao's prepare
                # rejects ("Expected input_edge to have type Tuple[Node, Node]").
                continue
            if fixed is not None:
                notes[user].inputs[source] = fixed
                continue
            placed = None if spec is None else _place(spec, text, edges, (source, user))
            notes[user].inputs[source] = None if placed is None else placed[0]
            if placed is not None and placed[1]:
                notes[user].errors += (("QR602", f"`{text}` refers to `{placed[1]}`, which "
                                        "this match does not have"),)
    if may_share:
        for note in notes.values():
            _owners_first(note)
    if match.owned is not None:
        take_owned(notes, match.owned, rule)
    if chain:
        head_note = notes.get(head)
        quantized = head_note is not None and any(
            head_note.inputs.get(source) is not None for source in head_roles.get("input", ()))
    else:
        quantized = any(notes[user].inputs.get(source) is not None for source, user in
                        edges.head_edges("input") if user in notes)
    if quantized and output_node in notes:
        # Its output node ends a quantized pattern (`quantized(...)` holds for it).
        notes[output_node].ends_quantized_pattern = True
    planned = plan_state.planned
    if not rule.amend:
        out.update(notes)
        if out is not planned:
            planned.update(notes)
        return
    for node, note in notes.items():
        existing = out.get(node)
        if existing is not None:
            if existing.node is None:   # a shared mark: filled in, it is the node's own
                existing = out[node] = planned[node] = own_note(node, existing)
            _amend(existing, note)
            continue
        out[node] = note
        planned[node] = note


def tuple_items(node: Node, index) -> list[Node]:
    """`output[*]` / `output[N]`: the `operator.getitem` users of a tuple result (all of
    them, or those taking item N) whose values are float tensors, in graph order."""
    return [user for user in node.users
            if user.op == "call_function" and user.target is getitem
            and (index == "*" or user.args[1] == index) and is_float_value(user)]


def _owners_first(note: NodeAnnotation) -> None:
    """Write an input whose observer the node's other inputs share before them, then
    the rest in argument order: the order torchao's and executorch's annotators fill
    ``input_qspec_map`` in (executorch's cat: the input that owns the qparams first),
    which decides the order prepare inserts observers in."""
    owners = {ref[0] for placed in note.inputs.values() if placed is not None
              and placed.spec.shares for ref in placed.refs
              if isinstance(ref, tuple) and ref[1] is note.node and ref[0] in note.inputs}
    if owners:
        note.inputs = {**{s: p for s, p in note.inputs.items() if s in owners},
                       **{s: p for s, p in note.inputs.items() if s not in owners}}


def _amend(existing: NodeAnnotation, new: NodeAnnotation) -> None:
    """Fill the edges `existing` leaves without a spec; never change one it has."""
    for source, placed in new.inputs.items():
        if existing.inputs.get(source) is None and placed is not None:
            if existing.inputs is NO_INPUTS:
                existing.inputs = {}
            existing.inputs[source] = placed
            existing.amended_by += (new.rule.name,)
    if existing.output is None and new.output is not None:
        existing.output, existing.output_key = new.output, new.output_key
        existing.amended_by += (new.rule.name,)
    existing.errors += new.errors


def plan(gm: GraphModule, compiled: CompiledRuleset, taken: Optional[dict] = None,
         existing: Optional[Mapping[Node, Any]] = None,
         annotation_key: Optional[str] = None) -> Plan:
    """Every annotation the ruleset makes on this graph, in acceptance order.

    ``taken``: annotations planned by rulesets that ran before this one (scoped
    rulesets of the same quantizer); their nodes are not matched again.
    ``existing``: node -> the annotation another quantizer already wrote on it; those
    nodes are taken too. Without it, ``annotation_key`` names the ``node.meta`` key
    they are read from (the adapter's), in the walk that indexes the graph
    (``Plan.existing`` holds them then).
    """
    matcher = Matcher(gm, compiled, annotation_key if existing is None else None)
    existing = existing if existing is not None else matcher.annotated
    state = State(compiled, existing)
    # With no earlier pass, what this plan annotates is all that is planned: one dict
    # is both (``out is state.planned`` for the planners, which then update it once).
    if taken:
        state.planned.update(taken)
        annotations: dict[Node, NodeAnnotation] = {}
    else:
        annotations = state.planned
    placed: dict = {}   # shared Placed records (MatchEdges.placed)

    def accept(rule: CompiledRule, head: Node) -> bool:
        """Take the rule's match at ``head``, if it has one. The caller has checked
        that the head is free (taken, for an `amend` rule)."""
        match = matcher.try_rule(rule, head, state)
        if match is None:
            return False
        found = template(rule)
        if found is not None:
            plan_match(match, found, state, annotations)
            return True
        config, may_share, needs_edges = rule_config(rule)
        edges = MatchEdges(match, state, placed) if (
            needs_edges or rule.selections or match.is_region) else None
        # `input[first quantized]` with no such input and no `else`: no match here.
        if rule.selections and not all(edges.select(*selection)
                                       for selection in rule.selections):
            return False
        _annotate_match(match, edges, state, annotations, config, may_share)
        return True

    # Rules come in rank order, so each phase's rules are consecutive.
    for _, phase in groupby(compiled.rules, key=attrgetter("phase")):
        rules = list(phase)
        if rules[0].per_node:
            # Node by node in graph order; at each node the first rule (in rank order)
            # that matches is accepted, and later nodes see what it wrote.
            at: dict[Node, list[CompiledRule]] = defaultdict(list)
            for rule in rules:
                for head in matcher.candidates(rule):
                    at[head].append(rule)
            for head in sorted(at, key=matcher.order.__getitem__):
                for rule in at[head]:
                    # amend rules visit only taken heads, the others only free ones
                    if state.taken(head) == rule.amend and accept(rule, head):
                        break
            continue
        for rule in rules:
            found = template(rule)
            if found is not None and found.chain:
                plan_chains(rule, found, matcher.candidates(rule, state), matcher, state,
                            annotations)
                continue
            amend = rule.amend
            for head in matcher.candidates(rule, state):
                if state.taken(head) == amend:
                    accept(rule, head)
    return Plan(annotations, existing)
