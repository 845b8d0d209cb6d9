"""Write a validated plan onto its graph: each node's torchao annotation
(``node.meta["quantization_annotation"]``, with the torchao spec objects its placed
specs build) and its provenance (``node.meta["qrules"]``: rule, ruleset,
file:line:col). ``RulesetQuantizer.annotate`` calls it once the plan is valid."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from qrules.adapter.torchao import (
    ANNOTATION_KEY, QuantizationAnnotation, SpecBuilder, resolve_entry, resolve_target,
)
from qrules.passes.placing import Plan
from qrules.semantics import registry
from qrules.span import Span

# qrules' own node.meta key: which rule annotated a node (see `annotation_of`).
PROVENANCE_KEY = "qrules"


class Provenance(dict):
    """``node.meta["qrules"]``: a plain dict (rule, ruleset, location, amended_by) that
    also keeps the rule's ``span``, so a compose conflict points at the rule without
    parsing ``location`` back. Copies (deepcopy, pickle) keep it."""

    span: Optional[Span] = None


def _annotation_factory(kind: Optional[str]):
    """(annotation class, name of its pattern-output flag or None) for `annotation`."""
    if kind is None:
        return QuantizationAnnotation, None
    entry = registry.ANNOTATION_KINDS[kind]
    return resolve_entry(entry), entry.extra.get("pattern_output_field")


#: torchao's QuantizationAnnotation fields, in order.
_TORCHAO_FIELDS = ("input_qspec_map", "output_qspec", "allow_implicit_sharing", "_annotated")


def _positional(annotation_class) -> Optional[tuple]:
    """``(allow_implicit_sharing's default,)`` when the class's fields are exactly
    torchao's, in order: it is then built with positional arguments, which costs half a
    keyword call at every node. None for any other class."""
    try:
        fields = dataclasses.fields(annotation_class)
    except TypeError:
        return None
    if tuple(f.name for f in fields) != _TORCHAO_FIELDS or not all(f.init for f in fields) \
            or fields[2].default is dataclasses.MISSING:
        return None
    return (fields[2].default,)


class BuiltSpecs:
    """The torchao spec objects ``annotate`` writes for specs that name no edge and
    whose observer does not want the node, built once per quantizer: equal specs are
    one object (so torchao can share observers between them), and a graph annotated
    after another reuses them, as a torchao quantizer reuses its config's specs.
    Specs that name edges, or whose observer wants the node, are built per node."""

    def __init__(self):
        self.builder = SpecBuilder()
        # id(spec) -> (spec, its torchao spec or None when it is built per node); the
        # spec is held, so its id names no other object while the entry lives. Only
        # specs of the compiled rulesets come here (see `for_spec`), not the copies a
        # plan makes per match, so it grows with the rulesets, not with the calls.
        self._by_spec: dict[int, tuple] = {}

    def for_spec(self, spec):
        """``spec``'s one torchao object, or None when it is built per node."""
        same = self._by_spec.get(id(spec))
        if same is None or same[0] is not spec:
            built = None if self.builder.per_node(spec) else self.builder.build(spec)
            if getattr(spec, "reads_match", False):
                return built   # a per-match copy: not kept
            same = self._by_spec[id(spec)] = (spec, built)
        return same[1]


def write_plan(current: Plan, specs: BuiltSpecs) -> None:
    """Write a validated plan: each node's torchao annotation and its provenance."""
    # id(placed) -> its torchao spec, for placed specs naming no edge (one record per
    # spec and config key; each alive in the plan while it is written). A torchao spec
    # is never falsy, so `known(...) or build(...)` builds only what is not known.
    built: dict[int, Any] = {}
    known = built.get
    builder = specs.builder
    # The edges shared specs share -> their one torchao spec: an op whose input and
    # output share its producer's observer gets one object for both, as torchao's
    # propagate_annotation writes them (equal specs either way).
    sharing: dict[tuple, Any] = {}

    def build(placed, node):
        spec = placed.spec
        if spec.refs:
            if not spec.shares:
                return builder.build(spec, placed.refs)
            found = sharing.get(placed.refs)   # one spec kind shares: SharedSpec
            if found is None:
                found = sharing[placed.refs] = builder.build(spec, placed.refs)
            return found
        shared = specs.for_spec(spec)
        if shared is None:
            return builder.build(spec, (), node)
        built[id(placed)] = shared
        return shared

    # id(rule) -> (annotation class, its pattern-output flag, provenance, the {node:
    # quantized?} of its kind's node marker or None, `annotated`, ``_positional``),
    # once per rule and call. One provenance record per rule, shared by the nodes it
    # annotated (readers copy or replace it, never change it); an amended node gets
    # its own.
    per_rule: dict[int, tuple] = {}
    kinds: dict = {}   # kind -> (class, flag, node marker, _positional), once per call
    marked: dict = {}   # annotation kind -> (its node marker, {node: quantized?})
    rule = None
    for node, note in current.annotations.items():
        # A match's notes are consecutive: the rule's record is looked up when it changes.
        if note.rule is not rule:
            rule = note.rule
            written = per_rule.get(id(rule))
            if written is None:
                kind = rule.annotation_kind
                if kind not in kinds:
                    found = _annotation_factory(kind)
                    kinds[kind] = (*found, _marker(kind), _positional(found[0]))
                annotation_class, flag, marker, positional = kinds[kind]
                # The kind's {node: quantized?} for its node marker, found once per rule.
                marks = None if marker is None else marked.setdefault(kind, (marker, {}))[1]
                # An `unmarked` rule writes specs without `_annotated`, as torchao's
                # EmbeddingQuantizer does; later rules and passes still skip the node.
                written = per_rule[id(rule)] = (annotation_class, flag, _provenance(rule),
                                                marks, not rule.unmarked, positional)
            annotation_class, flag, provenance, marks, annotated, positional = written
        input_map = {}   # a loop, not a comprehension: no extra frame per node
        output = None
        if note.node is not None:   # else a rule's shared mark: an empty annotation
            for source, placed in note.inputs.items():
                input_map[source] = None if placed is None else (known(id(placed))
                                                                 or build(placed, node))
            output = note.output
            if output is not None:
                output = known(id(output)) or build(output, node)
        meta = node.meta   # keywords spelled out: a `**` call makes a dict per node
        if positional is not None:
            meta[ANNOTATION_KEY] = annotation_class(input_map, output, positional[0],
                                                    annotated)
        elif flag is None:
            meta[ANNOTATION_KEY] = annotation_class(
                input_qspec_map=input_map, output_qspec=output, _annotated=annotated)
        else:
            meta[ANNOTATION_KEY] = annotation_class(
                input_qspec_map=input_map, output_qspec=output, _annotated=annotated,
                **{flag: note.ends_quantized_pattern})
        if note.amended_by:
            amended = meta[PROVENANCE_KEY] = _provenance(rule)
            amended["amended_by"] = list(dict.fromkeys(note.amended_by))
        else:
            meta[PROVENANCE_KEY] = provenance
        if marks is not None:
            marks[node] = rule.config is not None
    # The annotation kinds' node markers (backend metadata beside the annotation).
    for marker, quantized in marked.values():
        resolve_target(marker)(next(iter(quantized)).graph.owning_module, quantized)


def _provenance(rule) -> Provenance:
    provenance = Provenance(rule=rule.name, ruleset=rule.ruleset, location=rule.location)
    provenance.span = rule.span
    return provenance


def _marker(kind: Optional[str]):
    """The annotation kind's node marker (a target name), if it has one."""
    return None if kind is None else registry.ANNOTATION_KINDS[kind].extra.get("node_marker")
