"""A compiled ruleset as a torchao ``Quantizer``.

``annotate`` plans every annotation first, validates the plan, and only then writes
``node.meta["quantization_annotation"]`` (plus ``node.meta["qrules"]``, the
provenance: rule, ruleset, file:line:col). Any validation error raises before the
graph is touched. Python-side scoping (``set_global``, ``set_module_type``,
``set_module_name``, ``set_operator_type``, ``set_node_name``, ``set_node_target``,
``set_io``, ``set_node_filter``, ``set_filter_function``) follows XNNPACKQuantizer by
default: node names first, then module names, module types, operator types, then the
global ruleset; ``None`` leaves that scope in float; a filter function limits every
pass to the nodes it accepts. ``precedence="last_set_first"`` follows executorch's Arm
quantizer instead (``annotation_passes``).
"""

from __future__ import annotations

import dataclasses
import gc
import warnings
from typing import Any, Callable, Optional, Union

from torch.fx import GraphModule, Node

from qrules.adapter.torchao import ANNOTATION_KEY, Quantizer, resolve_entry
from qrules.adapter.write import PROVENANCE_KEY, BuiltSpecs, write_plan
from qrules.compile.matchers import CompiledRuleset, interleave, leave_in_float
from qrules.errors import AnnotationWarning, QruleError
from qrules.passes.plan import Plan, plan
from qrules.passes.scopes import in_scope
from qrules.passes.validate import requantized, validate
from qrules.semantics import registry
from qrules.semantics.entries import ScopeRef


class ValidationError(QruleError, ValueError):
    """The annotations a ruleset would make on this graph are invalid; the graph is
    left exactly as it was. ``diagnostics`` name each node, rule and span."""


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

    #: How scopes set from Python take precedence (``set_precedence``).
    PRECEDENCES = ("ranked", "last_set_first")

    def __init__(self, compiled: Optional[CompiledRuleset] = None, *, sources=None,
                 precedence: str = "ranked"):
        super().__init__()
        self.set_precedence(precedence)
        self._global = compiled
        self._scoped: list[tuple[int, ScopeRef, Optional[CompiledRuleset]]] = []
        self._sources = dict(sources or {})
        self._filter: Optional[Callable[[Node], bool]] = None
        self.last_plan: Optional[Plan] = None
        self.last_warnings: list = []  # QR615 diagnostics of the last annotate
        # The torchao spec objects of the specs that name no edge, kept from call to
        # call as torchao's quantizers keep theirs (see `write_plan`).
        self._built = BuiltSpecs()

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

    def set_node_name(self, name: str, ruleset) -> "RulesetQuantizer":
        """The node called ``name`` (a glob), as ``scope node_name`` says it."""
        return self._set(-1, ScopeRef("node_name", (name,), None), ruleset)

    def set_node_target(self, target, ruleset) -> "RulesetQuantizer":
        """Nodes calling ``target`` (an OpOverload or its name), executorch Arm's
        ``set_node_target``; ranked as an operator type."""
        return self.set_operator_type(target, ruleset)

    def set_io(self, ruleset) -> "RulesetQuantizer":
        """The graph's inputs (placeholders) and its output node, which the ruleset's
        ``graph_input`` / ``graph_output`` rules annotate (Arm's ``set_io``)."""
        return self._set(-1, ScopeRef("graph_io", ("placeholder", "output"), None), ruleset)

    def set_node_filter(self, filter_fn: Callable[[Node], bool], ruleset
                        ) -> "RulesetQuantizer":
        """The nodes ``filter_fn(node)`` accepts, every node of a match (Arm's
        ``set_node_finder`` with a finder yielding those nodes); ranked with node
        names. Python only, like ``set_filter_function``."""
        return self._set(-1, ScopeRef("node_filter", (filter_fn,), None), ruleset)

    def set_precedence(self, precedence: str) -> "RulesetQuantizer":
        """``"ranked"`` (the default, XNNPACKQuantizer's) or ``"last_set_first"``
        (executorch's Arm quantizer); see ``annotation_passes``."""
        if precedence not in self.PRECEDENCES:
            raise ValueError(f"precedence is one of {', '.join(self.PRECEDENCES)}, "
                             f"not {precedence!r}")
        self._precedence = precedence
        return self

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
        limits each of them. ``explain`` plans the same passes.

        A ruleset that says ``scoping filters`` is scoped as XNNPACKQuantizer scopes
        its configs instead (docs/semantics.md, "Scoping from Python"): the module
        scopes are filters that later passes apply without taking the scope's nodes,
        and an operator type selects the nodes whose target is that very overload.

        With ``precedence="last_set_first"`` (executorch's Arm ``TOSAQuantizer``) there
        is one pass: the scope set last first, then the others back to the first, then
        the global ruleset, phase by phase (every scope's and the global's first phase
        before any second phase); a scope holds a match only when it holds every node
        of it (Arm's node finders yield nodes; its chains are built from them), and
        the global ruleset annotates whatever the scopes left."""
        if not self._scoped and self._filter is None and self._precedence == "ranked":
            # Nothing set from Python: the global ruleset as it is (what the general
            # case below gives then, without building it at every annotate).
            return [self._global] if self._global is not None else []
        if self._precedence == "last_set_first":
            return self._filtered([self._last_set_first()])
        out = []
        scoped = sorted(self._scoped, key=lambda item: item[0])
        modules = [scope for _, scope, compiled in scoped if compiled is not None
                   and scope.kind in ("module_name", "module_type")]
        for _, scope, compiled in scoped:
            if compiled is None:
                out.append(leave_in_float(scope))
            elif compiled.scoping == "filters":
                out.append(_as_filters(compiled, scope, modules))
            else:
                out.append(compiled.within(scope))
        if self._global is not None:
            if self._global.scoping == "filters":
                out.append(_as_filters(self._global, None, modules))
            else:
                # What the docstring promises: the global ruleset never annotates
                # inside a scope set from Python, even a node the scope's own ruleset
                # left alone (it used to fill those in).
                out.extend(leave_in_float(scope) for _, scope, compiled in scoped
                           if compiled is not None)
                out.append(self._global)
        return self._filtered(out)

    def _filtered(self, passes: list[CompiledRuleset]) -> list[CompiledRuleset]:
        if self._filter is None:
            return passes
        accepted = ScopeRef("node_filter", (self._filter,), None)
        return [compiled.within(accepted) for compiled in passes]

    def _last_set_first(self) -> CompiledRuleset:
        rulesets = []
        for _, scope, compiled in reversed(self._scoped):
            every_node = ScopeRef("node_filter", (_Holds(scope),), None)
            rulesets.append(compiled.within(every_node) if compiled is not None
                            else leave_in_float(every_node))
        if self._global is not None:
            rulesets.append(self._global)
        # The global ruleset's transforms first: the anchor has one pass manager.
        order = rulesets[-1:] + rulesets[:-1] if self._global is not None else rulesets
        merged = interleave(order)
        return dataclasses.replace(merged, rules=interleave(rulesets).rules)

    # ------------------------------------------------------------------ Quantizer API
    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        for compiled in self.annotation_passes():
            for transform in compiled.transforms:
                if transform.after_annotate:
                    continue
                entry = registry.TRANSFORMS[transform.name]
                kwargs = dict(transform.kwargs)
                if entry.extra.get("reads_plan"):
                    kwargs["quantized"] = self._quantized_nodes(model)
                model = resolve_entry(entry)(model, **kwargs) or model
        return model

    def _plans(self, model: GraphModule, passes: Optional[list] = None,
               warnings: Optional[list] = None) -> list[Plan]:
        """Each pass's plan, validated (one pass: QR615 warnings go to ``warnings``)."""
        plans, taken, existing = [], {}, None   # existing: read by the first plan
        passes = passes if passes is not None else self.annotation_passes()
        for compiled in passes:
            current = plan(model, compiled, taken, existing, ANNOTATION_KEY)
            existing = current.existing
            # Judged with the earlier passes' annotations in view: a global rule may
            # share with an output a scoped pass quantized (propagation out of a scope).
            errors = validate(Plan({**taken, **current.annotations}, existing) if taken
                              else current, warnings if len(passes) == 1 else None)
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
        # (and resumed as it was): annotating allocates a few acyclic containers per
        # node, alive until it returns, and the full collections their number triggers
        # walk the whole graph each time (at 100k nodes ~40% of the annotate time).
        running = gc.isenabled()
        gc.disable()
        passes = self.annotation_passes()
        found: list = []   # a single pass's QR615 warnings, found by its validation
        try:
            plans = self._plans(model, passes, found)
            for current in plans:
                write_plan(current, self._built)
        finally:
            if running:
                gc.enable()
        self.last_plan = plans[-1] if plans else None
        self.last_warnings = found if len(plans) <= 1 else requantized({
            node: note for current in plans for node, note in current.annotations.items()})
        if self.last_warnings:
            warnings.warn(AnnotationWarning(self.last_warnings, self._sources), stacklevel=2)
        # `transform NAME after annotate`: rewrites that read the annotations just written.
        for compiled in passes:
            for transform in compiled.transforms:
                if transform.after_annotate:
                    entry = registry.TRANSFORMS[transform.name]
                    model = resolve_entry(entry)(model, **dict(transform.kwargs)) or model
        return model

    def validate(self, model: GraphModule) -> None:
        """Validation happens in ``annotate``, before anything is written."""


class _Holds:
    """A scope set from Python as a node test (``in_scope`` of one node), so that a
    ``node_filter`` scope asks it of every node of a match."""

    def __init__(self, scope: ScopeRef):
        self.scope = scope

    def __call__(self, node: Node) -> bool:
        return any(in_scope(node, self.scope.kind, selector)
                   for selector in self.scope.selectors)


def _as_filters(compiled: CompiledRuleset, scope: Optional[ScopeRef],
                modules: list[ScopeRef]) -> CompiledRuleset:
    """One pass of a `scoping filters` ruleset, as XNNPACKQuantizer's
    ``_annotate_for_quantization_config`` runs a config: a module scope limits its own
    pass; an operator type selects the exact overload (an OpOverloadPacket selects
    nothing) and, like the global pass, skips the nodes of every module scope set."""
    if scope is not None and scope.kind in ("module_name", "module_type"):
        return compiled.within(scope)
    if scope is not None and scope.kind == "operator_target":
        compiled = compiled.within(ScopeRef("operator_overload", scope.selectors, None))
    for module in modules:
        compiled = compiled.within(ScopeRef("outside", (module,), None))
    return compiled


def _compiled_of(ruleset) -> CompiledRuleset:
    if isinstance(ruleset, CompiledRuleset):
        return ruleset
    if hasattr(ruleset, "compiled"):
        return ruleset.compiled()
    raise TypeError(f"expected a loaded qrules ruleset, got {type(ruleset).__name__}")


def annotation_of(node: Node) -> Optional[dict]:
    """Which qrules rule annotated a node: rule, ruleset and file:line:col."""
    return node.meta.get(PROVENANCE_KEY)

