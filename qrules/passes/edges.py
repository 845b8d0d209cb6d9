"""The edges of one match, by the role and step label a config key names: where
`input[1]`, `add.extra` or `weight` points, which edges between steps are fused, and
which edge a `same_as` reference resolves to."""

from __future__ import annotations

from typing import Any, Optional

from torch.fx import Node

from qrules.compile.context import StepContext, first_position
from qrules.passes.bindings import Match
from qrules.passes.state import State
from qrules.semantics.values import EdgeRef
from qrules.syntax import ast

# An edge: (source, user) for an input edge, or a node for its output.
Edge = Any


class MatchEdges:
    """The edges of one match, by role: where `input[1]` or `add.extra` points. Built
    on demand, per (step label, role) the config or a reference asks for: most
    matches ask for two or three of their many role and label pairs."""

    __slots__ = ("match", "state", "edges", "neighbour", "_fused", "_extras", "placed")

    def __init__(self, match: Match, state: State, placed: dict):
        self.match = match
        self.state = state   # what `input[first quantized]` reads
        # (id(spec), key text) -> its Placed, for specs naming no edge: one per plan
        self.placed = placed
        self.edges: dict[tuple, list[tuple[Any, Node]]] = {}
        self.neighbour = None   # the neighbour's Placed spec (plan.Placed)
        self._fused: Optional[dict] = None
        self._extras: Optional[list] = None
        if match.neighbour is not None:
            note = state.planned[match.neighbour[1]]
            self.neighbour = (note.output if match.neighbour[0] == "output"
                              else note.inputs[match.neighbour[2]])

    def _chain_edges(self) -> None:
        """The fused edges between steps, and the `extra` inputs of later steps."""
        match = self.match
        # user -> the sources of its edges from the step before: fused, never given a
        # spec (compared by identity: an edge's source may be an unhashable constant)
        fused: dict[Node, tuple] = {}
        extras: list[tuple[Any, Node]] = []
        nodes, roles = match.nodes, match.roles
        for index in range(1, len(nodes)):
            node, previous = nodes[index], nodes[index - 1]
            chained = {previous, match.output_of_step(index - 1)}
            fused[node] = fused.get(node, ()) + tuple(chained)
            for value in roles[index].get("input", []):
                if value not in chained:
                    extras.append((value, node))
        self._fused, self._extras = fused, extras

    def head_edges(self, role: str) -> list[tuple[Any, Node]]:
        """``select(None, role, None)``: the first step's edges of one role, read straight
        from a chain head's bindings (no edge into the head is fused, so the chain's
        edges need not be worked out; a region's come from its inputs)."""
        match = self.match
        if match.is_region:
            return self.select(None, role, None)
        head = match.nodes[0]
        return [(v, head) for v in match.roles[0].get(role, ())]

    def _edges(self, step, role) -> list[tuple[Any, Node]]:
        match = self.match
        if match.is_region:
            return list(match.region_inputs) if (step, role) == (None, "input") else []
        if step is None and role != "extra":
            # The head's own edges: no edge into the head is fused (it has no step
            # before it), so the chain's edges need not be worked out.
            head = match.nodes[0]
            return [(v, head) for v in match.roles[0].get(role, ())]
        if self._extras is None:
            self._chain_edges()
        if step is None:
            return self._extras
        # The first step with that label that has the role names it; `extra`, unless
        # a step binds a role of that name, is the first such step's extra inputs.
        for index, label in enumerate(match.labels):
            if label != step:
                continue
            node = match.nodes[index]
            values = match.roles[index].get(role)
            if values is not None:
                return [(v, node) for v in values]
            if role == "extra":
                return [e for e in self._extras if e[1] is node]
        return []

    def select(self, step, role, index) -> list[tuple[Any, Node]]:
        edges = self.edges.get((step, role))
        if edges is None:
            edges = self.edges[(step, role)] = self._edges(step, role)
        if isinstance(index, ast.FirstOf):
            # The annotations as they stand when the match is accepted: earlier rules',
            # and in a `per node` phase those of earlier nodes.
            context = StepContext(edges[0][1] if edges else self.match.head, {}, self.state)
            if index.each:
                edges = [edge for edge in edges if first_position(
                    index, [edge[0]], context) is not None]
            else:
                index = first_position(index, [source for source, _ in edges], context)
                edges = [] if index is None else edges[index:index + 1]
        elif index is not None and index != "*":
            edges = edges[index:index + 1]
        # Edges between steps are fused: `relu.input` in `conv2d -> relu` names no edge
        # (it used to get a spec, putting an observer inside the match). Indices still
        # count argument positions: `add.input[1]` is the add's second argument.
        # (A region is one step; its members are not a chain: nothing is fused.)
        fused = self._fused
        if not fused or step is None:
            return edges   # callers only read it; the head's edges are never fused
        return [(source, user) for source, user in edges
                if user not in fused or all(source is not chained for chained in fused[user])]

    def resolve(self, ref: EdgeRef, current: Optional[tuple] = None) -> Optional[Edge]:
        match = self.match
        if ref.role == "output":
            return match.output_node()
        index = ref.index
        if ref.step is None and ref.role != "extra" and (
                index is None or type(index) is int and index >= 0):
            # `producer(input)`, `input[1]`: one of the head's own edges, what `select`
            # picks, without the edge table it keeps.
            position = index or 0
            picked = self.head_edges(ref.role)[position:position + 1]
        else:
            picked = self.select(ref.step, ref.role, 0 if index is None else index)
        if not picked:
            return None
        # `ROLE[each PRED]` in a reference names the edge its entry is being placed on.
        each = isinstance(ref.index, ast.FirstOf) and ref.index.each
        source, user = current if each and current in picked else picked[0]
        return source if ref.producer else (source, user)
