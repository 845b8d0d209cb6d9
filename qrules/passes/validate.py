"""Validate a plan against its graph before anything is written or observed.

Pre: a Plan from ``qrules.passes.plan``. Post: a list of QR6xx diagnostics, each
naming the node, the rule and the rule's ``file:line:col``; empty means the plan
can be written. Checks: specs on edges whose source is not a graph tensor (``x + 6``),
shared/derived specs pointing at edges nobody annotates, sharing cycles, channel
axes the tensor does not have. ``requantized`` finds what is valid but likely
unintended: an input edge whose spec torchao cannot merge with its producer's output
spec, so the tensor is quantized twice (QR615, a warning).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

from torch.fx import Node

from qrules.compile.targets import resolve_target
from qrules.diagnostics import Diagnostic, Note, diagnostic
from qrules.passes.placing import NodeAnnotation, Placed, Plan
from qrules.semantics import registry


def _report(code: str, note: NodeAnnotation, message: str) -> Diagnostic:
    rule = note.rule
    span = rule.span
    return diagnostic(code, f"node `{note.node.name}` ({note.node.target}): {message}", span,
                      [Note(message=f"rule `{rule.name}` of ruleset `{rule.ruleset}` made "
                            "this annotation", span=span)])


def _edge_annotated(edge: Any, plan: Plan) -> bool:
    """Does someone (this plan, or an annotation already on the graph) quantize it?"""
    if isinstance(edge, tuple):
        source, user = edge
        note = plan.annotations.get(user)
        if note is not None:
            return note.inputs.get(source) is not None
        existing = plan.existing.get(user)
        return existing is not None and existing.input_qspec_map.get(source) is not None
    note = plan.annotations.get(edge)
    if note is not None:
        return note.output is not None
    existing = plan.existing.get(edge) if isinstance(edge, Node) else None
    return existing is not None and existing.output_qspec is not None


def _shared_target(edge: Any, plan: Plan):
    """The edge that `edge`'s own spec shares with, if it is a planned same_as."""
    if isinstance(edge, tuple):
        note = plan.annotations.get(edge[1])
        placed = note.inputs.get(edge[0]) if note else None
    else:
        note = plan.annotations.get(edge)
        placed = note.output if note else None
    if placed is not None and placed.spec.shares and placed.refs:
        return placed.refs[0]
    return None


@functools.cache
def _min_ranks() -> dict[int, tuple[tuple[int, int], ...]]:
    """``registry.ARGUMENT_MIN_RANKS`` by target key: (position, least rank) pairs."""
    return {id(resolve_target(name)): tuple(ranks.items())
            for name, ranks in registry.ARGUMENT_MIN_RANKS.items()}


def _axis_holds(user: Node, source: Node, axis: int, min_ranks: dict) -> bool:
    """Does ``user``'s op give its argument ``source`` more than ``axis`` dimensions on
    every graph torch runs (``min_ranks``: ``_min_ranks()``)? Then nothing is read."""
    ranks = min_ranks.get(id(user.target))
    if ranks is not None:
        args = user.args
        for position, rank in ranks:
            if position < len(args) and args[position] is source:
                return axis < rank
    return False


def _rank(value) -> int:
    val = value.meta.get("val") if isinstance(value, Node) else None
    try:
        return val.dim()   # one attribute read of a tensor nothing else reads
    except AttributeError:
        return 0


def _check_placed(note: NodeAnnotation, placed: Placed, source: Optional[Node], plan: Plan,
                  out: list[Diagnostic]) -> None:
    """Check a spec placed on the input edge from ``source`` (None: on the output)."""
    spec = placed.spec
    axis = spec.per_channel_axis
    if axis is not None and not (source is not None and _axis_holds(note.node, source, axis,
                                                                    _min_ranks())):
        rank = _rank(source if source is not None else note.node)
        if axis >= rank:
            where = f"input `{source.name}`" if source is not None else "its output"
            out.append(_report("QR604", note, f"`{placed.key}` quantizes {where} per channel "
                               f"along axis {axis}, but that tensor has {rank} "
                               "dimension(s)"))
    refs = placed.refs
    if not refs:
        return
    notes = plan.annotations
    for edge in refs:
        # Most refs name a node's output that this plan quantized: read here.
        referred = None if isinstance(edge, tuple) else notes.get(edge)
        if referred is not None and referred.output is not None:
            continue
        if referred is None and _edge_annotated(edge, plan):
            continue
        target = edge[0].name if isinstance(edge, tuple) else edge.name
        verb = "shares" if spec.shares else "is derived"
        what = "input edge from" if isinstance(edge, tuple) else "output of"
        out.append(_report("QR602", note, f"`{placed.key}` {verb} with the {what} "
                           f"`{target}`, which nothing quantizes"))
    if spec.shares:
        # Most share one spec with its own observer: the first step decides, without
        # the walk's list.
        current = _shared_target(refs[0], plan)
        if current is None:
            return
        seen = [refs[0]]
        while current is not None and len(seen) < 10_000:
            if current in seen:
                out.append(_report("QR603", note, f"`{placed.key}` shares in a circle that "
                                   "never reaches a spec with its own observer"))
                break
            seen.append(current)
            current = _shared_target(current, plan)


def _needs_check(note: NodeAnnotation, placed: Placed, source: Optional[Node],
                 notes: Mapping[Node, NodeAnnotation], min_ranks: dict) -> bool:
    """May ``_check_placed`` find something wrong with a spec that refers to edges or
    is per channel? Not when it is a `same_as` of one node's output that this plan
    quantizes with an observer of its own (the most common reference: the output is
    quantized, and the sharing ends there), nor when it has no references and its
    axis is one the op vouches for (``_axis_holds``)."""
    spec, refs = placed.spec, placed.refs
    if refs:
        if not spec.shares or len(refs) != 1 or isinstance(refs[0], tuple):
            return True
        referred = notes.get(refs[0])
        output = None if referred is None else referred.output
        return output is None or output.spec.shares
    return source is None or not _axis_holds(note.node, source, spec.per_channel_axis,
                                             min_ranks)


def validate(plan: Plan, warnings: Optional[list[Diagnostic]] = None) -> list[Diagnostic]:
    """The plan's errors. With ``warnings``, the QR615 warnings ``requantized`` finds
    in ``plan.annotations`` are added to it in the same walk over the edges."""
    out: list[Diagnostic] = []
    notes = plan.annotations
    twice = None if warnings is None else _Requantized(notes, warnings)
    min_ranks = _min_ranks()
    for note in notes.values():
        if note.node is None:   # a rule's shared mark: no spec, no error
            continue
        for code, message in note.errors:
            out.append(_report(code, note, message))
        for source, placed in note.inputs.items():
            if placed is None:
                continue
            if not isinstance(source, Node):
                out.append(_report(
                    "QR601", note, f"`{placed.key}` puts a spec on the input {source!r}, a "
                    "Python constant rather than a tensor in the graph; quantize only tensor "
                    "inputs, or convert scalars first with `transform scalars_to_attrs`"))
                continue
            # Most placed specs need nothing: no edge to refer to, no per-channel axis
            # to hold against the tensor.
            spec, refs = placed.spec, placed.refs
            if (refs or spec.per_channel_axis is not None) and _needs_check(
                    note, placed, source, notes, min_ranks):
                _check_placed(note, placed, source, plan, out)
            if twice is not None:
                # ``twice.edge``'s common answers first: no producer annotation, one
                # output spec object on both sides, neither sharing, or sharing the very
                # output it reads (`same_as(producer(input))`).
                producer = notes.get(source)
                output = None if producer is None else producer.output
                if output is not None and (spec is not output.spec or spec.shares) and not (
                        spec.shares and refs and refs[0] is source):
                    twice.edge(note, source, placed)
        output = note.output
        if output is not None and (output.refs or output.spec.per_channel_axis is not None) \
                and _needs_check(note, output, None, notes, min_ranks):
            _check_placed(note, output, None, plan, out)
    unique = {(d.code, d.message): d for d in out}
    return list(unique.values())


#: What torchao's prepare compares to let an input edge reuse its producer's output
#: observer (``_union_input_edge_with`` in torchao/quantization/pt2e/prepare.py); an
#: attribute one spec kind has and the other lacks (a fixed spec's scale) also differs.
_MERGED_ON = ("dtype", "is_dynamic", "quant_min", "quant_max", "qscheme", "ch_axis",
              "scale", "zero_point")


def _root(placed: Placed, notes: Mapping[Node, NodeAnnotation]) -> Optional[Placed]:
    """The spec with its own observer that ``placed`` shares (itself if it shares none);
    None when the sharing leads outside these annotations."""
    for _ in range(10_000):  # validate() refused cycles (QR603) before this runs
        if not (placed.spec.shares and placed.refs):
            return placed
        edge = placed.refs[0]
        note = notes.get(edge[1] if isinstance(edge, tuple) else edge)
        following = None if note is None else (
            note.inputs.get(edge[0]) if isinstance(edge, tuple) else note.output)
        if following is None:
            return None
        placed = following
    return None


def _merge_key(spec) -> tuple:
    return tuple((name, getattr(spec, name)) for name in _MERGED_ON if hasattr(spec, name))


def requantized(notes: Mapping[Node, NodeAnnotation]) -> list[Diagnostic]:
    """QR615 for each input edge whose spec differs from its producer's output spec in
    what torchao compares: prepare then observes the tensor twice, and the converted
    model quantizes it, dequantizes it and quantizes it again at other qparams (a fixed
    1/256 sigmoid output re-quantized by a `mul` that takes `act`). ``notes``: the
    annotations of every pass of one quantizer, by node."""
    out: list[Diagnostic] = []
    twice = _Requantized(notes, out)
    for note in notes.values():
        for source, placed in note.inputs.items():
            if placed is not None and isinstance(source, Node):
                twice.edge(note, source, placed)
    return out


class _Requantized:
    """``requantized``'s test of one input edge at a time, for the annotations
    ``notes``; its warnings go to ``out``."""

    def __init__(self, notes: Mapping[Node, NodeAnnotation], out: list[Diagnostic]):
        self.notes, self.out = notes, out
        self.keys: dict[int, tuple] = {}   # id(spec) -> its merge key: few specs, many edges

    def _merge_key(self, spec) -> tuple:
        key = self.keys.get(id(spec))
        if key is None:
            key = self.keys[id(spec)] = _merge_key(spec)
        return key

    def edge(self, note: NodeAnnotation, source: Node, placed: Placed) -> None:
        """Warn if the edge from ``source`` into ``note``'s node (with its ``placed``
        spec) quantizes the tensor with other qparams than its producer's output."""
        notes = self.notes
        producer = notes.get(source)
        if producer is None:
            return
        output = producer.output
        # One spec on both sides, neither sharing (the common case), or the edge
        # shares the very output it reads (`same_as(producer(input))`): nothing to
        # follow or compare.
        if output is None or (placed.spec is output.spec and not placed.spec.shares):
            return
        refs = placed.refs
        if refs and refs[0] is source and placed.spec.shares:
            return
        # ``_root`` of each, read here when it is the spec itself (most are)
        mine = _root(placed, notes) if placed.spec.shares and refs else placed
        theirs = _root(output, notes) if output.spec.shares and output.refs else output
        # One compiled spec object on both sides (the common case) compares equal
        # without building the two merge keys.
        if mine is None or theirs is None or mine is theirs or mine.spec is theirs.spec \
                or self._merge_key(mine.spec) == self._merge_key(theirs.spec):
            return
        rule, other, user = note.rule, producer.rule, note.node
        self.out.append(diagnostic(
            "QR615", f"node `{user.name}` ({user.target}): rule `{rule.name}` quantizes "
            f"its input edge from `{source.name}` (`{placed.key}`) with other qparams "
            f"than rule `{other.name}` gives the output of `{source.name}` "
            f"(`{producer.output.key}`): torchao observes the tensor twice, and the "
            "converted model dequantizes it and quantizes it again. Share the "
            "producer's qparams (the same spec, or `same_as`), or leave the edge in float",
            rule.span, [Note(message=f"rule `{other.name}` of ruleset `{other.ruleset}` "
                             f"quantizes the output of `{source.name}`", span=other.span)]))
