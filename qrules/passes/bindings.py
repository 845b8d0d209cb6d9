"""A match and what it binds: the ``Match`` record the matcher returns and the plan
reads, the role bindings of one node, the node carrying a step's output, and the nodes
a match owns (`takes(...)`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

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
    region_inputs: list[tuple[Any, Node]] = field(default_factory=list)
    region_outputs: list[Node] = field(default_factory=list)
    interior: list[Node] = field(default_factory=list)   # getitems between two steps
    # A connected region's neighbour (clusters.NeighbourEdge), copied by `neighbour()`.
    neighbour: Optional[tuple] = None
    connected: bool = False   # a `region(connected ...)` match: its outputs are exact
    # With `takes(...)`: the nodes the match owns (marked annotated); None: its steps.
    owned: Optional[list[Node]] = None

    @property
    def is_region(self) -> bool:
        """A `region(...)` match: one step made of all the module instance's members."""
        return bool(self.region_inputs or self.region_outputs or self.connected)

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


def owned_nodes(match: Match, takes, partition_of) -> list[Node]:
    """The nodes `takes(...)` names in this match: steps by label, producers by role,
    `STEP.partition` (or `partition`, the first step's) the step's source partition;
    getitems between steps always belong to the match."""
    owned: list[Node] = []
    for key in takes:
        if key.step is None and key.index is None and key.role in match.labels:
            owned.extend(n for n, label in zip(match.nodes, match.labels) if label == key.role)
            continue
        if key.step is None:
            step = 0
        elif key.step in match.labels:
            step = match.labels.index(key.step)
        else:
            continue
        if key.role == "partition":
            # A region is one step made of all its members.
            members = match.nodes if match.is_region else [match.nodes[step]]
            for member in members:
                owned.extend(partition_of(member))
            continue
        values = match.roles[step].get(key.role, [])
        if key.index not in (None, "*"):
            values = values[key.index:key.index + 1]
        owned.extend(v for v in values if isinstance(v, Node))
    owned.extend(match.interior)
    return list(dict.fromkeys(owned))
