"""A compiled ruleset as a torchao ``Quantizer``.

``annotate`` plans every annotation first, validates the plan, and only then writes
``node.meta["quantization_annotation"]`` (plus ``node.meta["qrules"]``, the
provenance: rule, ruleset, file:line:col). Any validation error raises before the
graph is touched. Python-side scoping (``set_global``, ``set_module_type``,
``set_module_name``, ``set_operator_type``, ``set_filter_function``) follows
XNNPACKQuantizer: module-name entries first, then module types, then operator types,
then the global ruleset; ``None`` leaves that scope in float; a filter function limits
every pass to the nodes it accepts.
"""

from __future__ import annotations

import gc
import warnings
from typing import Any, Callable, Optional, Union

from torch.fx import GraphModule, Node

from qrules.adapter.torchao import (
    ANNOTATION_KEY, QuantizationAnnotation, Quantizer, SpecBuilder, resolve_entry,
    resolve_target,
)
from qrules.compile.matchers import CompiledRuleset, leave_in_float
from qrules.errors import AnnotationWarning, QruleError
from qrules.passes.plan import Plan, plan
from qrules.passes.validate import requantized, validate
from qrules.semantics import registry
from qrules.semantics.entries import ScopeRef
from qrules.span import Span

# qrules' own node.meta key: which rule annotated a node (see `annotation_of`).
PROVENANCE_KEY = "qrules"


class ValidationError(QruleError, ValueError):
    """The annotations a ruleset would make on this graph are invalid; the graph is
    left exactly as it was. ``diagnostics`` name each node, rule and span."""


class Provenance(dict):
    """``node.meta["qrules"]``: a plain dict (rule, ruleset, location, amended_by) that
    also keeps the rule's ``span``, so a compose conflict points at the rule without
    parsing ``location`` back. Copies (deepcopy, pickle) keep it."""

    span: Optional[Span] = None


def annotations_on(model: GraphModule) -> dict[Node, Any]:
    """The torchao annotations already on the graph (other quantizers'), by node: what
    the passes treat as taken."""
    out = {}
    for node in model.graph.nodes:
        annotation = node.meta.get(ANNOTATION_KEY)
        if annotation is not None:
            out[node] = annotation
    return out


class RulesetQuantizer(Quantizer):
    """A torchao Quantizer whose annotations come from qrules rulesets."""

    def __init__(self, compiled: Optional[CompiledRuleset] = None, *, sources=None):
        super().__init__()
        self._global = compiled
        self._scoped: list[tuple[int, ScopeRef, Optional[CompiledRuleset]]] = []
        self._sources = dict(sources or {})
        self._filter: Optional[Callable[[Node], bool]] = None
        self.last_plan: Optional[Plan] = None
        self.last_warnings: list = []  # QR615 diagnostics of the last annotate

    # ------------------------------------------------------------------ scoping
    def set_global(self, ruleset) -> "RulesetQuantizer":
        self._global = _compiled_of(ruleset)
        self._add_sources(ruleset)
        return self

    def _add_sources(self, ruleset) -> None:
        # The .qrule texts of every ruleset set here, so a ValidationError from a
        # scoped ruleset shows its source lines too (only the first one's were kept).
        self._sources.update(getattr(getattr(ruleset, "checked", None), "sources", None) or {})

    def set_module_name(self, name: str, ruleset) -> "RulesetQuantizer":
        return self._set(0, ScopeRef("module_name", (name,), None), ruleset)

    def set_module_type(self, module_type: Union[type, str], ruleset) -> "RulesetQuantizer":
        if isinstance(module_type, type):
            module_type = f"{module_type.__module__}.{module_type.__qualname__}"
        return self._set(1, ScopeRef("module_type", (module_type,), None), ruleset)

    def set_operator_type(self, op, ruleset) -> "RulesetQuantizer":
        name = op if isinstance(op, str) else str(op)
        return self._set(2, ScopeRef("operator_target", (name,), None), ruleset)

    def set_filter_function(self, filter_fn: Optional[Callable[[Node], bool]]
                            ) -> "RulesetQuantizer":
        """Annotate only where ``filter_fn(node)`` is true for every node of a match
        (XNNPACKQuantizer's filter; ``None`` removes it). It limits every pass, scoped
        and global, and is Python only: a rule file never runs code."""
        self._filter = filter_fn
        return self

    def _set(self, rank: int, scope: ScopeRef, ruleset) -> "RulesetQuantizer":
        self._add_sources(ruleset)
        self._scoped.append((rank, scope, None if ruleset is None else _compiled_of(ruleset)))
        return self

    @property
    def global_ruleset(self) -> Optional[CompiledRuleset]:
        """The ruleset set with ``set_global`` (or given to the constructor), if any."""
        return self._global

    @property
    def sources(self) -> dict[str, str]:
        """The .qrule texts of every ruleset set here, by file name (for diagnostics)."""
        return self._sources

    def annotation_passes(self) -> list[CompiledRuleset]:
        """The rulesets ``annotate`` runs, in order, each limited to its scope: module
        names first, then module types, then operator types, global last. None set for
        a scope becomes a rule leaving that scope in float; and the global ruleset
        skips every scope set from Python (XNNPACK's filters). A filter function
        limits each of them. ``explain`` plans the same passes."""
        out = []
        scoped = sorted(self._scoped, key=lambda item: item[0])
        for _, scope, compiled in scoped:
            out.append(compiled.within(scope) if compiled is not None
                       else leave_in_float(scope))
        if self._global is not None:
            # What the docstring promises and XNNPACK's filters do: the global ruleset
            # never annotates inside a scope set from Python, even a node the scope's
            # own ruleset left alone (it used to fill those in).
            out.extend(leave_in_float(scope) for _, scope, compiled in scoped
                       if compiled is not None)
            out.append(self._global)
        if self._filter is not None:
            accepted = ScopeRef("node_filter", (self._filter,), None)
            out = [compiled.within(accepted) for compiled in out]
        return out

    # ------------------------------------------------------------------ Quantizer API
    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        for compiled in self.annotation_passes():
            for transform in compiled.transforms:
                entry = registry.TRANSFORMS[transform.name]
                kwargs = dict(transform.kwargs)
                if entry.extra.get("reads_plan"):
                    kwargs["quantized"] = self._quantized_nodes(model)
                model = resolve_entry(entry)(model, **kwargs) or model
        return model

    def _plans(self, model: GraphModule) -> list[Plan]:
        plans = []
        taken: dict[Node, Any] = {}
        existing = annotations_on(model)
        for compiled in self.annotation_passes():
            current = plan(model, compiled, taken, existing)
            # Judged with the earlier passes' annotations in view: a global rule may
            # share with an output a scoped pass quantized (propagation out of a scope).
            errors = validate(Plan({**taken, **current.annotations}, current.matches,
                                   existing))
            if errors:
                raise ValidationError(errors, self._sources)
            plans.append(current)
            taken.update(current.annotations)
        return plans

    def _quantized_nodes(self, model: GraphModule) -> frozenset:
        """The nodes ``annotate`` would give an annotation by a rule that quantizes
        (its config is not ``none``), on the graph as it stands."""
        return frozenset(node for current in self._plans(model)
                         for node, note in current.annotations.items()
                         if note.rule.config is not None)

    def annotate(self, model: GraphModule) -> GraphModule:
        # The cyclic garbage collector is paused while the plan is made and written
        # (and resumed as it was): annotating allocates a few containers per node, all
        # alive until it returns and without cycles, and the full collections their
        # number triggers walk the whole graph each time (at 100k nodes about 40% of
        # the annotate time, growing with the graph).
        running = gc.isenabled()
        gc.disable()
        try:
            plans = self._plans(model)
            builder = SpecBuilder()
            for current in plans:
                _write(current, builder)
        finally:
            if running:
                gc.enable()
        self.last_plan = plans[-1] if plans else None
        self.last_warnings = requantized({node: note for current in plans
                                          for node, note in current.annotations.items()})
        if self.last_warnings:
            warnings.warn(AnnotationWarning(self.last_warnings, self._sources), stacklevel=2)
        return model

    def validate(self, model: GraphModule) -> None:
        """Validation happens in ``annotate``, before anything is written."""


def _compiled_of(ruleset) -> CompiledRuleset:
    if isinstance(ruleset, CompiledRuleset):
        return ruleset
    if hasattr(ruleset, "compiled"):
        return ruleset.compiled()
    raise TypeError(f"expected a loaded qrules ruleset, got {type(ruleset).__name__}")


def _annotation_factory(kind: Optional[str]):
    """(annotation class, name of its pattern-output flag or None) for `annotation`."""
    if kind is None:
        return QuantizationAnnotation, None
    entry = registry.ANNOTATION_KINDS[kind]
    return resolve_entry(entry), entry.extra.get("pattern_output_field")


def _write(current: Plan, builder: SpecBuilder) -> None:
    # id(spec) -> (spec, torchao spec) for specs naming no edge: a compiled spec is one
    # object wherever the ruleset places it, so the builder's value key (a walk over
    # the spec's fields) is computed once per spec, not once per edge.
    built: dict[int, tuple] = {}

    def build(placed):
        if placed is None:
            return None
        spec = placed.spec
        if spec.refs:
            return builder.build(spec, placed.refs)
        known = built.get(id(spec))
        if known is None or known[0] is not spec:
            known = built[id(spec)] = (spec, builder.build(spec, placed.refs))
        return known[1]

    factories: dict = {}   # annotation kind -> _annotation_factory(kind), once per write
    for node, note in current.annotations.items():
        kind = note.rule.annotation_kind
        factory = factories.get(kind)
        if factory is None:
            factory = factories[kind] = _annotation_factory(kind)
        annotation_class, flag = factory
        input_map = {source: build(placed) for source, placed in note.inputs.items()}
        output = build(note.output)
        rule = note.rule
        # An `unmarked` rule writes what torchao's EmbeddingQuantizer writes: specs
        # without `_annotated`. Later rules of this ruleset still skip the node (it is
        # in the plan), and so do later qrules passes (they read the plan, or the spec).
        extra = {flag: note.ends_quantized_pattern} if flag else {}
        node.meta[ANNOTATION_KEY] = annotation_class(
            input_qspec_map=input_map, output_qspec=output, _annotated=not rule.unmarked,
            **extra)
        provenance = Provenance(rule=rule.name, ruleset=rule.ruleset, location=rule.location)
        provenance.span = rule.span
        node.meta[PROVENANCE_KEY] = provenance
        if note.amended_by:
            node.meta[PROVENANCE_KEY]["amended_by"] = list(dict.fromkeys(note.amended_by))
    _mark_nodes(current)


def _mark_nodes(current: Plan) -> None:
    """The annotation kinds' node markers (backend metadata beside the annotation)."""
    by_kind: dict = {}
    for node, note in current.annotations.items():
        by_kind.setdefault(note.rule.annotation_kind, {})[node] = note.rule.config is not None
    for kind, quantized in by_kind.items():
        marker = None if kind is None else registry.ANNOTATION_KINDS[kind].extra.get(
            "node_marker")
        if marker is not None:
            resolve_target(marker)(next(iter(quantized)).graph.owning_module, quantized)


def annotation_of(node: Node) -> Optional[dict]:
    """Which qrules rule annotated a node: rule, ruleset and file:line:col."""
    return node.meta.get(PROVENANCE_KEY)

