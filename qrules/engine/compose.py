"""Compose rulesets and torchao quantizers, in order, with conflict detection.

Each quantizer annotates after the ones before it. qrules rulesets never take a
node that is already annotated; a torchao quantizer might overwrite one. When a
later quantizer changes or removes an earlier annotation, ``ComposeConflictError``
(a ``RuntimeError``, as torchao's ComposableQuantizer raises) names both sides
and their rules; with ``first_wins=True`` the earlier annotation is restored instead.
"""

from __future__ import annotations

from typing import Any, Optional

from torch.fx import GraphModule, Node

from qrules.adapter.quantizer import RulesetQuantizer
from qrules.adapter.torchao import ANNOTATION_KEY, Quantizer
from qrules.adapter.write import PROVENANCE_KEY
from qrules.diagnostics import Note, diagnostic
from qrules.errors import QruleError
from qrules.span import Span


class ComposeConflictError(QruleError, RuntimeError):
    """A later quantizer changed an annotation an earlier one made."""


def as_quantizer(item) -> Quantizer:
    """A loaded ruleset, a compiled ruleset, or any torchao Quantizer."""
    if isinstance(item, Quantizer):
        return item
    if hasattr(item, "quantizer"):
        return item.quantizer()
    raise TypeError(f"cannot compose {type(item).__name__}: expected a qrules ruleset or a "
                    "torchao Quantizer")


def _describe(quantizer: Quantizer, provenance: Optional[dict]) -> str:
    if provenance:
        return (f"rule `{provenance['rule']}` of ruleset `{provenance['ruleset']}` "
                f"({provenance['location']})")
    return f"{type(quantizer).__name__}"


def _location(provenance: Optional[dict]) -> Span:
    """The annotating rule's span; a quantizer that is not a ruleset has none."""
    span = getattr(provenance, "span", None)
    return Span.point(span.file, span.line, span.col) if span is not None \
        else Span.point("<quantizer>", 1, 1)


def _snapshot(model: GraphModule) -> dict[Node, tuple]:
    out = {}
    for node in model.graph.nodes:
        annotation = node.meta.get(ANNOTATION_KEY)
        if annotation is not None:
            out[node] = (annotation, dict(annotation.input_qspec_map), annotation.output_qspec,
                         node.meta.get(PROVENANCE_KEY))
    return out


def _restore(model: GraphModule, snapshot: dict, only=None) -> None:
    """Put annotations (and provenance) back as ``snapshot`` has them; with ``only``,
    just for those nodes."""
    nodes = only if only is not None else list(model.graph.nodes)
    for node in nodes:
        saved = snapshot.get(node)
        if saved is None:
            node.meta.pop(ANNOTATION_KEY, None)
            node.meta.pop(PROVENANCE_KEY, None)
            continue
        annotation, inputs, output, provenance = saved
        annotation.input_qspec_map = inputs
        annotation.output_qspec = output
        node.meta[ANNOTATION_KEY] = annotation
        if provenance is None:
            node.meta.pop(PROVENANCE_KEY, None)
        else:
            node.meta[PROVENANCE_KEY] = provenance


def _changed(before: tuple, node: Node) -> bool:
    annotation = node.meta.get(ANNOTATION_KEY)
    if annotation is None or annotation is not before[0]:
        return True
    return (dict(annotation.input_qspec_map) != before[1]
            or annotation.output_qspec is not before[2])


class ComposedQuantizer(Quantizer):
    def __init__(self, quantizers: list[Quantizer], first_wins: bool = False):
        super().__init__()
        self.quantizers = quantizers
        self.first_wins = first_wins
        self.owner: dict[Node, Quantizer] = {}

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        for quantizer in self.quantizers:
            model = quantizer.transform_for_annotation(model) or model
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        """Annotate with each quantizer in order. Atomic as a whole: if any of them
        raises (a validation error, a conflict), every annotation made by the earlier
        ones is undone too, and the graph is as it was before the call."""
        start = _snapshot(model)
        try:
            self._annotate_all(model)
        except BaseException:
            _restore(model, start)
            raise
        return model

    def _annotate_all(self, model: GraphModule) -> None:
        for quantizer in self.quantizers:
            before = _snapshot(model)
            quantizer.annotate(model)
            conflicts = [n for n, snap in before.items() if _changed(snap, n)]
            if conflicts and self.first_wins:
                _restore(model, before, only=conflicts)
            elif conflicts:
                # with the rulesets' sources, so str() shows the rules' lines
                sources = {}
                for each in self.quantizers:
                    sources.update(getattr(each, "sources", None) or {})
                raise ComposeConflictError(
                    [self._conflict(n, before[n], quantizer) for n in conflicts], sources)
            for node in model.graph.nodes:
                if node.meta.get(ANNOTATION_KEY) is not None and node not in self.owner:
                    self.owner[node] = quantizer

    def _conflict(self, node: Node, before: tuple, later: Quantizer):
        earlier = self.owner.get(node)
        first = _describe(earlier, before[3]) if earlier is not None else "an earlier quantizer"
        after = node.meta.get(PROVENANCE_KEY)
        after = after if after is not before[3] else None
        second = _describe(later, after)
        return diagnostic(
            "QR605", f"node `{node.name}` ({node.target}) was annotated by {first}; {second} "
            "then changed that annotation. Scope one of them away from this node, or compose "
            "with first_wins=True", _location(after or before[3]),
            [Note(message=f"first annotated by {first}", span=_location(before[3]))])

    def validate(self, model: GraphModule) -> None:
        for quantizer in self.quantizers:
            quantizer.validate(model)


def compose(*items: Any, first_wins: bool = False) -> ComposedQuantizer:
    """Compose rulesets (``qrules.load(...)``) and torchao quantizers, in order."""
    if not items:
        raise ValueError("compose() needs at least one ruleset or quantizer")
    return ComposedQuantizer([as_quantizer(i) for i in items], first_wins=first_wins)


__all__ = ["compose", "ComposedQuantizer", "ComposeConflictError", "RulesetQuantizer"]
