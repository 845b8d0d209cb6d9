"""What a plan records, and where a rule's config puts its specs.

A plan (``qrules.passes.plan``) says, per node, which ``Placed`` spec each input edge
and the output get and which rule decided it (``NodeAnnotation``). How a rule's config
keys are placed is worked out once per compiled rule (``rule_config``): their order
(least specific first, so a specific key overrides a general one), where each goes,
and one shared ``Placed`` for every spec that names no edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from torch.fx import Node

from qrules.compile.matchers import CompiledRule
from qrules.passes.bindings import owned_in
from qrules.passes.edges import Edge
from qrules.semantics.values import Spec


@dataclass(slots=True)
class Placed:
    """A spec on one edge, with its same_as/derived references resolved to edges."""

    spec: Spec
    key: str                       # the config key that put it there, e.g. "input[1]"
    refs: tuple[Edge, ...] = ()


class _NoInputs(dict):
    """The input edges of a node a match only marks (``take_owned``): none, and none
    can be added, so one empty mapping serves every mark (most of a CNN's notes are
    its weights and biases). Filling one in (`amend`) replaces it first."""

    __slots__ = ()

    def _fixed(self, *args, **kwargs):
        raise TypeError("a marked node's inputs are empty; give the note its own dict")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _fixed


NO_INPUTS = _NoInputs()


@dataclass(slots=True)
class NodeAnnotation:
    """What a plan says about one node. ``node`` is None on a rule's shared mark
    (``mark``): read the node from the plan's key."""

    node: Optional[Node]
    rule: CompiledRule
    inputs: dict[Any, Optional[Placed]] = field(default_factory=dict)
    output: Optional[Placed] = None
    output_key: Optional[str] = None
    # Tuples: most notes have neither, and an empty tuple costs no allocation.
    errors: tuple[tuple[str, str], ...] = ()  # (code, message)
    amended_by: tuple[str, ...] = ()  # `amend` rules that filled edges
    # The last node of a match that quantized its `input` edges (a fused int8 pattern,
    # X86's `_is_output_of_quantized_pattern`): `quantized(...)` holds for its output
    # even when the config leaves the output itself to the next op.
    ends_quantized_pattern: bool = False


class _Mark(NodeAnnotation):
    """The one annotation of every node the matches of one rule only mark (`takes`):
    no spec on any edge, no error, so one record serves them all (most of a CNN's notes
    are its weights and biases). Its ``node`` is None: a plan's key names the node. It
    cannot change; ``own_note`` gives a marked node a record of its own to fill in."""

    __slots__ = ()

    def __init__(self, rule: CompiledRule):
        empty = NodeAnnotation(None, rule, NO_INPUTS)   # every other field its default
        for name in NodeAnnotation.__slots__:
            object.__setattr__(self, name, getattr(empty, name))

    def __setattr__(self, name, value):
        raise TypeError("a rule's mark is shared by every node it marks; "
                        "give the node its own note (own_note) first")


def mark(rule: CompiledRule) -> NodeAnnotation:
    """``rule``'s shared mark (``_Mark``), made once per compiled rule."""
    found = rule.memo.get("mark")
    if found is None:
        found = rule.memo["mark"] = _Mark(rule)
    return found


def own_note(node: Node, note: NodeAnnotation) -> NodeAnnotation:
    """``note`` if it is ``node``'s own; for a shared mark, a new empty note of its rule."""
    return note if note.node is not None else NodeAnnotation(node, note.rule, NO_INPUTS)


@dataclass
class Plan:
    """What a ruleset annotates on one graph: the annotation of each node (with the
    rule that made it). The matches themselves are not kept: the plan outlives the
    annotate call (``RulesetQuantizer.last_plan``), and nothing reads them after it."""

    annotations: dict[Node, NodeAnnotation]
    # node -> the torchao annotation other quantizers wrote before this plan was made
    existing: Mapping[Node, Any] = field(default_factory=dict)


def key_text(key) -> str:
    text = f"{key.step}.{key.role}" if key.step else key.role
    return text if key.index is None else f"{text}[{key.index}]"


def specificity(key) -> int:
    return (key.step is not None) * 2 + (key.index is not None)


def names_no_edge(spec: Spec) -> bool:
    """Is the spec placed the same wherever it goes: no `same_as`/derived reference to
    resolve, no argument read from the match, no neighbour to copy?"""
    return not (spec.copies_neighbour or spec.refs or getattr(spec, "reads_match", False))


# Where a config key puts its spec (`config_order`): the match's whole output
# (`output`, `output[*]`), the head's own edges of one role (`input`, `weight`:
# `MatchEdges.head_edges`), or edges `MatchEdges.select` works out.
WHOLE_OUTPUT, HEAD_EDGES, SELECTED_EDGES = "whole output", "head edges", "selected edges"


def rule_config(rule: CompiledRule) -> tuple[list, bool, bool]:
    """(``config_order``, ``may_share``, whether a chain match needs its
    ``MatchEdges`` to be placed) of a rule, worked out once per rule: a config whose
    specs all name no edge, on the head's own edges and the output, needs none."""
    found = rule.memo.get("plan config")
    if found is None:
        order = config_order(rule)
        needs_edges = any(where is SELECTED_EDGES or (spec is not None and fixed is None)
                          for _, _, spec, where, fixed in order)
        found = rule.memo["plan config"] = (order, may_share(order), needs_edges)
    return found


def config_order(rule: CompiledRule) -> list:
    """(key, its text, spec, where it goes, its `Placed` if it names no edge) of a
    rule's config, least specific key first: the order its specs are placed in (a
    more specific key overrides a general one). A spec that names no edge is placed
    the same on every edge and in every plan: one record per rule and key."""
    ordered = sorted(rule.config or (), key=lambda kv: specificity(kv[0]))
    config = []
    for key, spec in ordered:
        text = key_text(key)
        fixed = Placed(spec, text) if spec is not None and names_no_edge(spec) else None
        if key.role == "output" and key.step is None:
            where = WHOLE_OUTPUT
        elif key.step is None and key.index is None and key.role != "extra":
            where = HEAD_EDGES
        else:
            where = SELECTED_EDGES
        config.append((key, text, spec, where, fixed))
    return config


def may_share(config: list) -> bool:
    """Can a match of this config place a spec that shares an input's observer (so
    that `_owners_first` has inputs to reorder)? `neighbour()` copies whatever spec
    is next to it."""
    return any(spec is not None and (spec.shares or spec.copies_neighbour)
               for _, _, spec, _, _ in config)


def take_owned(notes: dict, owned: dict, rule: CompiledRule) -> None:
    """`takes(...)` applied to one match's annotations: the ``owned`` nodes (dict
    keys, in order) get an (empty) annotation, which marks them; a step left out gets
    none unless the config put a spec on one of its edges."""
    unplaced = ()   # mostly none: no list is made for them
    for node, note in notes.items():
        if note.output is None and not note.inputs and node not in owned:
            unplaced += (node,)
    for node in unplaced:
        del notes[node]
    marked = mark(rule)
    for node in owned:
        if node not in notes:
            notes[node] = marked


def take_named(notes: dict, takes: tuple, nodes, every_roles, rule: CompiledRule,
               partition_of) -> None:
    """``take_owned(notes, owned_in(nodes, every_roles, (), False, takes, partition_of),
    rule)`` for a chain match. When no note is left without a spec (so none is dropped
    for not being owned), the nodes ``takes`` names are marked straight from it, in
    the order named, without the dict of owned nodes."""
    for note in notes.values():
        if note.output is None and not note.inputs:
            take_owned(notes, owned_in(nodes, every_roles, (), False, takes, partition_of),
                       rule)
            return
    marked = mark(rule)
    for item in takes:   # what ``owned_in`` reads from each kind of item
        kind = item[0]
        if kind == "steps":
            for index in item[1]:
                if nodes[index] not in notes:
                    notes[nodes[index]] = marked
            continue
        if kind == "partition":
            named = partition_of(nodes[item[1]])
        else:
            _, step, role, index = item
            named = every_roles[step].get(role, ())
            if index not in (None, "*"):
                named = named[index:index + 1]
        for node in named:
            if isinstance(node, Node) and node not in notes:
                notes[node] = marked
