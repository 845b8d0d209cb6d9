"""A match and what it binds: the ``Match`` record the matcher returns and the plan
reads, the role bindings of one node, the node carrying a step's output, and the nodes
a match owns (`takes(...)`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from torch.fx import Node

from qrules.compile.matchers import CompiledRule, OpMatch
from qrules.syntax.ast import EVERY_NODE


@dataclass(slots=True)
class Match:
    rule: CompiledRule
    nodes: list[Node]                 # one per step; a region lists all its nodes
    ops: list[Optional[OpMatch]]
    roles: list[dict[str, list[Any]]]
    labels: list[Optional[str]]
    # Empty tuples by default: a chain match (most of them) allocates no empty lists.
    region_inputs: Sequence[tuple[Any, Node]] = ()
    region_outputs: Sequence[Node] = ()
    interior: Sequence[Node] = ()   # getitems between two steps
    # A connected region's neighbour (clusters.NeighbourEdge), copied by `neighbour()`.
    neighbour: Optional[tuple] = None
    connected: bool = False   # a `region(connected ...)` match: its outputs are exact
    # With `takes(...)`: the nodes the match owns (marked annotated), in order as the
    # keys of a dict; None: its steps.
    owned: Optional[dict[Node, None]] = None
    # A `region(...)` match with inputs, outputs or a connected region: one step made of
    # all the instance's members (MatchEdges reads its edges from the region).
    is_region: bool = False

    @property
    def head(self) -> Node:
        return self.nodes[0]

    def output_of_step(self, index: int) -> Node:
        return output_of(self.nodes[index], self.ops[index]) or self.nodes[index]

    def output_node(self) -> Node:
        if self.region_outputs:
            return self.region_outputs[-1]
        return self.output_of_step(len(self.nodes) - 1)


def output_of(node: Node, op: Optional[OpMatch]) -> Optional[Node]:
    """The node carrying a step's tensor output (a getitem for tuple-returning ops)."""
    if op is None or op.output_item is None:
        return node
    items = [u for u in node.users if u.op == "call_function"
             and getattr(u.target, "__name__", "") == "getitem" and u.args[1] == op.output_item]
    return items[0] if len(items) == 1 else None


def bind_roles(node: Node, op: OpMatch) -> dict[str, list[Any]]:
    roles: dict[str, list[Any]] = {}
    args = node.args   # a property on fx nodes: read once
    positional = op.positional
    if positional is not None:
        count = len(args)
        for role, position in positional:
            if position < count:
                roles[role] = [args[position]]
        return roles
    for binding in op.bindings:
        if binding.position == EVERY_NODE:
            roles.setdefault(binding.role, []).extend(node.all_input_nodes)
            continue
        if binding.position >= len(args):
            continue
        value = args[binding.position]
        if binding.element is None:
            roles.setdefault(binding.role, []).append(value)
        elif isinstance(value, (list, tuple)):
            if binding.element == "*":
                roles.setdefault(binding.role, []).extend(value)
            elif binding.element < len(value):
                roles.setdefault(binding.role, []).append(value[binding.element])
    return roles


def takes_plan(takes, labels) -> tuple:
    """What `takes(...)` names, worked out against one expansion's step labels: per
    key, ("steps", indices) for steps by label, ("partition", step) or ("role", step,
    role, index) for producers; keys naming a label the expansion lacks are left out."""
    plan = []
    for key in takes:
        if key.step is None and key.index is None and key.role in labels:
            plan.append(("steps", tuple(i for i, label in enumerate(labels)
                                        if label == key.role)))
            continue
        if key.step is None:
            step = 0
        elif key.step in labels:
            step = labels.index(key.step)
        else:
            continue
        if key.role == "partition":
            plan.append(("partition", step))
        else:
            plan.append(("role", step, key.role, key.index))
    return tuple(plan)


def owned_nodes(match: Match, takes, partition_of, plan: Optional[tuple] = None
                ) -> dict[Node, None]:
    """The nodes `takes(...)` names in this match (``owned_in``). ``plan``:
    ``takes_plan`` of the match's labels, when the caller keeps it per expansion."""
    return owned_in(match.nodes, match.roles, match.interior, match.is_region,
                    plan if plan is not None else takes_plan(takes, match.labels),
                    partition_of)


def owned_in(nodes: Sequence[Node], roles: Sequence[dict], interior: Sequence[Node],
             is_region: bool, plan: tuple, partition_of) -> dict[Node, None]:
    """The nodes a ``takes_plan`` names among a match's steps (``nodes``, each with its
    ``roles``): steps by label, producers by role, `STEP.partition` (or `partition`,
    the first step's) the step's source partition; getitems between steps
    (``interior``) always belong to the match. In the order named, each once: the
    keys of the dict returned."""
    owned: dict[Node, None] = {}
    for item in plan:
        kind = item[0]
        if kind == "steps":
            for index in item[1]:
                owned[nodes[index]] = None
        elif kind == "partition":
            # A region is one step made of all its members.
            for member in nodes if is_region else (nodes[item[1]],):
                for node in partition_of(member):
                    owned[node] = None
        else:
            _, step, role, index = item
            values = roles[step].get(role, ())
            if index not in (None, "*"):
                values = values[index:index + 1]
            for value in values:
                if isinstance(value, Node):
                    owned[value] = None
    for node in interior:
        owned[node] = None
    return owned
