"""Connected regions: `region(connected "OP")`, a group of ops that share one observer.

A connected region is the set of nodes reached from its head through inputs and users
whose op is `OP` (an op or alias of the vocabulary) and that no rule took yet, as
executorch's Arm ``SharedQspecQuantizer`` groups its shared-qspec ops; a head without a
float input matches none. Its `input`
edges are every floating-point input of every member, the head's first; its `output`
nodes every member with a floating-point output and a user. Its *neighbour* is the
first spec found on an edge touching it, walking the group breadth-first from the head:
the output spec of a taken producer, or the spec a taken user gives a member's output.
`neighbour()` in the config copies it.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.fx import Node

from qrules.passes.state import State

#: Where the neighbour's spec sits: ("output", node) or ("input", user, source).
NeighbourEdge = tuple


def float_tensor(node: Node) -> bool:
    """A node whose value is one floating-point tensor (not a tuple of them): what
    executorch's ``has_float_output`` reads, so a `split` feeding getitems is not one."""
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype.is_floating_point


def _has_spec(state: State, edge: NeighbourEdge) -> bool:
    note = state.planned.get(edge[1])
    if note is None:
        return False
    if edge[0] == "output":
        return note.output is not None
    return note.inputs.get(edge[2]) is not None


def touches_graph_io(members: list[Node], state: State) -> bool:
    """A member takes a taken graph input, or the taken output node uses a member
    (executorch's ``_is_quantized_io_boundary``)."""
    return any((source.op == "placeholder" and state.taken(source))
               for member in members for source in member.all_input_nodes) or any(
        user.op == "output" and state.taken(user) for member in members for user in member.users)


def connected_region(head: Node, targets: frozenset, state: State, order: dict):
    """(members in graph order, input edges, output nodes, neighbour edge or None) of
    the connected region whose head is ``head``; None when ``head`` is not its first
    member in graph order (the region is matched at that one)."""
    members: list[Node] = []
    seen: set[Node] = set()
    queue = [head]
    neighbours: list[NeighbourEdge] = []
    while queue:
        node = queue.pop(0)
        if node in seen:
            continue
        seen.add(node)
        members.append(node)
        for source in node.all_input_nodes:
            if source.target in targets and source not in seen and not state.taken(source):
                queue.append(source)
            if state.taken(source) and _has_spec(state, ("output", source)):
                neighbours.append(("output", source))
        for user in node.users:
            if user.target in targets and user not in seen and not state.taken(user):
                queue.append(user)
            if state.taken(user) and _has_spec(state, ("input", user, node)):
                neighbours.append(("input", user, node))
    members.sort(key=order.__getitem__)
    if members[0] is not head:
        return None
    inputs = [(source, member) for member in members for source in member.all_input_nodes
              if float_tensor(source)]
    if not inputs or inputs[0][1] is not head:
        return None  # the head has no float input: nothing to share the others with
    outputs = [member for member in members if member.users and float_tensor(member)]
    neighbour: Optional[NeighbourEdge] = neighbours[0] if neighbours else None
    return members, inputs, outputs, neighbour
