"""Plan rules whose config places specs that name no edge, from a template.

Most rules of the built-in rulesets place specs that name no edge, or only the
producer of one of the head's own edges: `conv2d -> relu? : { input: act, weight: w8,
bias: none, output: act } takes(conv2d, weight, bias)`, `relu[quantized(input)] :
{ input: same_as(producer(input)), output: same_as(producer(input)) }`. Their matches
need nothing the general planner works out per match (an edge table, references into
the match), so a ``Template``, worked out once per rule, says which ``Placed`` each of
the head's edges and the output get (``plan_match``). A rule whose expansions are
chains of plain ops (one op, `conv2d -> relu`, `conv2d ~> relu`), with no scope, is
also matched here, over all its candidate heads in one loop (``plan_chains``): what
``Matcher.try_rule`` would find there, without a ``Match`` record per head.
What a template plans is what ``plan._annotate_match`` plans for the same match
(tests/engine/test_templates.py compares the two on every built-in ruleset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional

from torch.fx import Node

from qrules.compile.graph_meta import is_float_value
from qrules.compile.matchers import CompiledRule
from qrules.compile.producers import holds_bound
from qrules.compile.targets import GraphNodeKind
from qrules.passes.bindings import Match, bind_roles, takes_plan
from qrules.passes.match import Matcher
from qrules.passes.placing import (
    HEAD_EDGES, WHOLE_OUTPUT, NodeAnnotation, Placed, rule_config, take_named, take_owned,
)
from qrules.passes.state import State, same_dtype_keys
from qrules.semantics.values import Spec


class Entry(NamedTuple):
    """One config key of a one-op rule, as placed on its edges or its output."""

    role: str                    # the role whose edges it names (`output`: the output)
    is_output: bool              # it places the op's output, not edges into it
    position: Optional[int]      # which of the role's values; None: all of them
    fixed: Optional[Placed]      # the one Placed of a spec naming no edge, else None
    spec: Optional[Spec]         # None: `none`
    key: str                     # the config key's text, for the Placed it makes
    # The head edges a `same_as(producer(ROLE[N]))` (or, for the output,
    # `same_as(ROLE[N])`) spec refers to: (role, position, the reference's text,
    # whether it names the edge itself rather than its producer); None when the spec
    # names no edge.
    refs: Optional[tuple[tuple[str, int, str, bool], ...]] = None


@dataclass(frozen=True)
class Template:
    """What a rule places at every match, worked out from its config once."""

    entries: tuple[Entry, ...]        # the config's keys, in placing order
    # A rule whose every expansion is a chain of ops (no region, graph input or
    # output, tuple item; `any` after the first step), and no scope: ``plan_chains``
    # matches it too.
    chain: bool = False
    # For a chain rule with `takes(...)`: its ``takes_plan`` (the same for every
    # expansion); None without `takes`.
    owned: Optional[tuple] = None


def template(rule: CompiledRule) -> Optional[Template]:
    """The rule's template, or None when the general planner must plan it: a region,
    graph inputs or outputs, a spec referring to anything but the producer of one of
    the head's own edges, a key naming a later step, an output item (or an `extra`
    edge past a tuple item), `amend`, `any_dtype`, `ROLE[first ...]` selections.
    Worked out once per compiled rule."""
    found = rule.memo.get("template", False)
    if found is False:
        found = rule.memo["template"] = _template(rule)
    return found


def _template(rule: CompiledRule) -> Optional[Template]:
    if rule.amend or rule.selections or rule.any_dtype:
        return None
    if any(step.region is not None or any(isinstance(target, GraphNodeKind)
                                          for op in step.ops for target in op.targets)
           for steps in rule.expansions for step in steps):
        return None
    # A tuple op's output is a getitem after it (`Match.output_of_step`), which neither
    # the `extra` edges nor ``plan_chains`` reads.
    items = any(op.output_item is not None for steps in rule.expansions
                for step in steps for op in step.ops)
    entries = []
    for key, text, spec, where, fixed in rule_config(rule)[0]:
        refs = None
        if spec is not None and fixed is None:
            refs = _head_refs(spec, where is WHOLE_OUTPUT)
            if refs is None:
                return None   # it names an edge the template cannot resolve
        if where is WHOLE_OUTPUT:
            if key.index is not None:
                return None
            entries.append(Entry("output", True, None, fixed, spec, text, refs))
        elif where is HEAD_EDGES:
            entries.append(Entry(key.role, False, None, fixed, spec, text, refs))
        elif key.step is None and key.role != "extra" and (
                key.index == "*" or type(key.index) is int and key.index >= 0):
            position = None if key.index == "*" else key.index
            entries.append(Entry(key.role, False, position, fixed, spec, text, refs))
        elif key.step is None and key.role == "extra" and key.index is None and not items:
            # `extra`: the later steps' `input` edges from outside the chain (X86's
            # `conv2d -> add : { ..., extra: act }`), read from their own bindings
            entries.append(Entry("extra", False, None, fixed, spec, text, refs))
        else:
            return None
    entries = tuple(entries)
    if rule.per_node or rule.scopes or items or any(steps[0].any_op
                                                    for steps in rule.expansions):
        return Template(entries)
    if rule.takes is None:
        return Template(entries, chain=True)
    # What `takes` names depends on the steps' labels: the same in every expansion,
    # or the rule's matches come from the general matcher.
    plans = {takes_plan(rule.takes, [step.label for step in steps])
             for steps in rule.expansions}
    if len(plans) != 1:
        return Template(entries)
    return Template(entries, chain=True, owned=plans.pop())


def _head_refs(spec: Spec, output: bool) -> Optional[tuple[tuple[str, int, str, bool], ...]]:
    """(role, position, text, names the edge) of each `producer(ROLE[N])` the spec
    refers to, and for the ``output`` also each `ROLE[N]` (the edge into the head), when
    those are all it refers to (what ``MatchEdges.resolve`` reads from the head's own
    edges); None for anything else: an edge into the match from an input's spec (which
    `_owners_first` may reorder), a later step, `extra`, `neighbour()`, arguments read
    from the match."""
    if spec.copies_neighbour or getattr(spec, "reads_match", False):
        return None
    refs = []
    for ref in spec.refs:
        index = ref.index
        if not (ref.producer or output) or ref.step is not None \
                or ref.role in ("extra", "output") \
                or not (index is None or type(index) is int and index >= 0):
            return None
        refs.append((ref.role, index or 0, str(ref), not ref.producer))
    return tuple(refs)


def _placed(refs: tuple, spec: Spec, key: str, head: Node, roles: dict,
            note: NodeAnnotation, outputs: dict) -> Placed:
    """The Placed of an entry whose spec refers to the head's edges or their producers
    (``Entry.refs``) at one match; a reference the match lacks is a QR602 of ``note``.
    ``outputs``: ``State.output_refs``."""
    if len(refs) == 1:   # most: `same_as(producer(input))`, found at once
        role, position, _, edge = refs[0]
        values = roles.get(role, ())
        if position < len(values):
            if edge:
                return Placed(spec, key, ((values[position], head),))
            value = values[position]
            one = outputs.get(value)
            if one is None:
                one = outputs[value] = (value,)
            return Placed(spec, key, one)
    found = []
    for role, position, text, edge in refs:
        values = roles.get(role, ())
        if position < len(values):
            found.append((values[position], head) if edge else values[position])
        else:
            note.errors += (("QR602", f"`{key}` refers to `{text}`, which this match does "
                                      "not have"),)
    return Placed(spec, key, tuple(found))


def plan_chains(rule: CompiledRule, found: Template, heads: Iterable[Node],
                matcher: Matcher, state: State, out: dict) -> None:
    """Match a chain rule (``Template.chain``) at ``heads`` (graph order) and plan
    each match into ``out`` and the state before trying the next head, as the
    general planner does; no ``Match`` record is made."""
    tries, owned = rule.head_tries, found.owned
    same_dtype = same_dtype_keys()
    bound_roles, holds = matcher.bound_roles, matcher.holds
    bound = matcher.bound_for(state)   # id(predicate) -> its bound_checks
    # ``state.taken`` and ``state.is_float``, their common answers read inline: this
    # loop visits every candidate head of most rules.
    taken, planned, existing, floats = state.taken, state.planned, state.existing, state.floats
    for head in heads:
        if head in planned or existing and taken(head):
            continue
        # The first expansion (an op of `a | b`) that has the head's op, whose later
        # steps follow it, and whose predicates hold everywhere.
        key = id(head.target)   # its target_key: a template's heads and steps are ops
        nodes = None
        for steps, follow, op in tries[key]:
            if follow is not None:   # the second step's targets (no `any` there)
                # The head's one user (`a ~> b`: one of its users) must have the second
                # step's op: most heads of a chain fail here.
                users = head.users
                if steps[1].shared_input:
                    for user in users:
                        if id(user.target) in follow:
                            break
                    else:
                        continue
                elif len(users) != 1 or id(next(iter(users)).target) not in follow:
                    continue
            floating = floats.get(head)
            if floating is None:
                floating = floats[head] = is_float_value(head)
            if not floating:
                break
            if len(steps) == 1:   # most rules
                by_node = bound_roles[id(op)]   # ``roles_of``, read inline
                roles = by_node.get(head)
                if roles is None:
                    roles = by_node[head] = bind_roles(head, op)
                predicate = steps[0].predicate
                if predicate is None:
                    passed = True
                elif predicate.static:   # ``holds``' cache serves static ones only
                    passed = holds(predicate, op, head, roles, state)
                else:   # producer questions (`not annotated(weight)`), bound once
                    checks = bound.get(id(predicate), False)
                    if checks is False:
                        checks = bound[id(predicate)] = predicate.bound_checks(state)
                    passed = predicate.holds(head, roles, state) if checks is None \
                        else holds_bound(checks, head, roles)
                if passed:
                    nodes, every_roles = (head,), (roles,)
                    # Taken now, it is no later rule's candidate (an `amend` rule's
                    # binds it again): its roles go once this match is planned, and
                    # the next bindings reuse their memory.
                    del by_node[head]
                    break
                continue
            if len(steps) == 2:
                found_chain = _pair(steps, head, op, matcher, state)
            else:
                found_chain = _follow(steps, [head], [op], [None], matcher, state)
            if found_chain is not None:
                nodes, every_roles = found_chain
                break
        if nodes is None:
            continue
        _plan(rule, found, nodes, (), nodes[-1], every_roles, None, state, out,
              key in same_dtype, owned, matcher.partitions.of)


def _pair(steps, head: Node, op, matcher: Matcher, state: State):
    """``_follow`` and ``_linked`` of a chain of two steps, without their lists:
    ((head, user), their roles) for the first user of the head (`a -> b`: its only
    one) that has the second step's op (or any op, for `any`), is free and float,
    takes the head as an `input` and satisfies the second step's predicates, when the
    head's hold too; else None."""
    step, users = steps[1], head.users
    if len(users) != 1 and not step.shared_input:
        return None
    taken, is_float = state.taken, state.is_float
    roles_of, holds = matcher.roles_of, matcher.holds
    roles = None
    for user in users:
        if user.op != "call_function":
            continue
        second = step.op_for(id(user.target))
        if second is None:
            second = step.any_match
            if second is None:
                continue
        if taken(user) or not is_float(user):
            continue
        user_roles = roles_of(second, user)
        if head not in user_roles.get("input", ()):
            continue
        predicate = step.predicate
        if predicate is not None and not holds(predicate, second, user, user_roles, state):
            continue
        if roles is None:   # the head's own predicates: the same whichever user follows
            roles = roles_of(op, head)
            predicate = steps[0].predicate
            if predicate is not None and not holds(predicate, op, head, roles, state):
                return None
        return (head, user), (roles, user_roles)
    return None


def _follow(steps, nodes: list, ops: list, checked: list, matcher: Matcher, state: State):
    """(nodes, their roles) of a chain from ``nodes`` (the steps matched so far, by
    ``ops``), or None: each next node a user of the one before (`a -> b`: its only
    user; `a ~> b`: each user in turn), free, float, of the step's op; then each takes
    the one before as an `input` and every step's predicates hold (``Matcher._extend``
    and ``_finish``, for these steps). Shape first: most heads fail on it. ``checked``:
    per step, its roles when its link and predicates were asked already, else None."""
    index = len(nodes)
    if index == len(steps):
        return _linked(steps, nodes, ops, checked, matcher, state)
    step, users = steps[index], nodes[-1].users
    if len(users) != 1 and not step.shared_input:
        return None
    taken, is_float = state.taken, state.is_float
    for user in users:
        if user.op != "call_function":
            continue
        op = step.op_for(id(user.target))
        roles = None
        if op is None:
            # `any`: every op has its shape, so its link and predicates are what
            # decide; asked now, before the steps after it are looked for.
            op = step.any_match
            if op is None:
                continue
            roles = matcher.roles_of(op, user)
            predicate = step.predicate
            if nodes[-1] not in roles.get("input", ()) or predicate is not None and \
                    not matcher.holds(predicate, op, user, roles, state):
                continue
        if taken(user) or not is_float(user):
            continue
        found = _follow(steps, nodes + [user], ops + [op], checked + [roles], matcher,
                        state)
        if found is not None:
            return found
    return None


def _linked(steps, nodes: list, ops: list, checked: list, matcher: Matcher, state: State):
    """(nodes, their roles) when each node takes the one before as an `input` and
    every step's predicates hold there (those ``checked`` were asked already); else
    None."""
    roles_of, holds = matcher.roles_of, matcher.holds
    every_roles = []
    for index, (node, op, roles) in enumerate(zip(nodes, ops, checked)):
        if roles is None:
            roles = roles_of(op, node)
            if index and nodes[index - 1] not in roles.get("input", ()):
                return None
        every_roles.append(roles)
    for step, node, op, roles, asked in zip(steps, nodes, ops, every_roles, checked):
        predicate = step.predicate
        if asked is None and predicate is not None and not holds(predicate, op, node,
                                                                 roles, state):
            return None
    return nodes, every_roles


def plan_match(match: Match, found: Template, state: State, out: dict) -> None:
    """Plan a match the general matcher found for a rule with a template (a chain)."""
    last = match.ops[-1]
    output_node = match.nodes[-1] if last is None or last.output_item is None \
        else match.output_node()
    _plan(match.rule, found, match.nodes, match.interior, output_node,
          match.roles or ({},), match.owned, state, out,
          id(match.head.target) in same_dtype_keys())


def _plan(rule: CompiledRule, found: Template, nodes, interior, output_node: Node,
          every_roles, owned: Optional[dict], state: State, out: dict,
          same_dtype: bool = False, takes: Optional[tuple] = None,
          partition_of=None) -> None:
    """The annotations of one match: an empty one on each of its nodes, the entries'
    specs on the head's edges and the output, `takes` applied (``take_owned``), the
    output marked as ending a quantized pattern when an input got a spec.
    ``same_dtype``: the head's op gives its tensors one kind of dtype
    (``same_dtype_keys``); its output is float, so are the values its roles bind.
    ``owned``: the nodes the match owns; or, for a chain, ``takes``: its
    ``takes_plan``, read by ``take_named`` (``partition_of``: ``SourcePartitions.of``)."""
    head, roles, floats, output_refs = nodes[0], every_roles[0], state.floats, state.output_refs
    notes = {}
    for node in nodes:
        notes[node] = NodeAnnotation(node, rule)
    for node in interior:
        notes[node] = NodeAnnotation(node, rule)
    if output_node not in notes:
        notes[output_node] = NodeAnnotation(output_node, rule)
    head_note = notes[head]
    inputs = head_note.inputs
    # Unpacked, not read by field: this runs for every entry of every match.
    for role, is_output, position, fixed, spec, key, refs in found.entries:
        if is_output:
            note = notes[output_node]
            note.output = fixed if refs is None else _placed(refs, spec, key, head,
                                                             roles, note, output_refs)
            note.output_key = key
            continue
        if role == "extra":
            _place_extras(nodes, every_roles, notes, fixed, spec, key, refs, roles, state)
            continue
        values = roles.get(role, ())
        if position is not None:
            values = values[position:position + 1]
        for source in values:
            if isinstance(source, Node):
                # ``state.is_float_input``, read inline (the head is float: tested)
                floating = floats.get(source)
                if floating is None:
                    floating = floats[source] = same_dtype or is_float_value(source)
                if not floating:
                    continue   # integer and bool tensors are never quantized
            elif source is None or spec is None:
                continue   # an optional argument left out; `none` on a constant
            # A spec naming no edge (or `none`) is its one record; one naming producers
            # is resolved per edge.
            inputs[source] = fixed if refs is None else _placed(refs, spec, key, head,
                                                                roles, head_note, output_refs)
    if owned is not None:
        take_owned(notes, owned, rule)
    elif takes is not None:
        take_named(notes, takes, nodes, every_roles, rule, partition_of)
    if head in notes and output_node in notes:
        for source in roles.get("input", ()):
            if inputs.get(source) is not None:
                notes[output_node].ends_quantized_pattern = True
                break
    out.update(notes)
    if out is not state.planned:   # `plan` makes them one dict when it can
        state.planned.update(notes)


def _place_extras(nodes, every_roles, notes: dict, fixed, spec, key: str, refs, roles: dict,
                  state: State) -> None:
    """An `extra` entry on each later step's `input` edges from outside the chain
    (what ``MatchEdges`` calls its extras); a reference the match lacks: QR602 on the
    step's node."""
    for index in range(1, len(nodes)):
        chained = {nodes[index - 1]}
        note = notes[nodes[index]]
        for source in every_roles[index].get("input", ()):
            if source in chained:
                continue   # the edge from the step before is fused
            if isinstance(source, Node):
                if not state.is_float_input(source, nodes[index]):
                    continue
            elif source is None or spec is None:
                continue
            note.inputs[source] = fixed if refs is None else _placed(
                refs, spec, key, nodes[0], roles, note, state.output_refs)
