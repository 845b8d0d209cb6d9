"""A compiled ruleset as a torchao ``Quantizer``.

``annotate`` plans every annotation first, validates the plan, and only then writes
``node.meta["quantization_annotation"]`` (plus ``node.meta["qrules"]``, the
provenance: rule, ruleset, file:line:col). Any validation error raises before the
graph is touched. Python-side scoping (``set_global``, ``set_module_type``,
``set_module_name``, ``set_operator_type``) follows XNNPACKQuantizer: module-name
entries first, then module types, then operator types, then the global ruleset;
``None`` leaves that scope in float.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Union

from torch.fx import GraphModule, Node

from qrules.adapter.torchao import (
    QuantizationAnnotation, Quantizer, SpecBuilder, resolve_entry,
)
from qrules.compile.matchers import CompiledRuleset, resolve_target
from qrules.diagnostics import QruleError
from qrules.passes.match import ANNOTATION_KEY
from qrules.passes.plan import Plan, plan
from qrules.passes.validate import validate
from qrules.semantics import registry
from qrules.semantics.symbols import ScopeRef

PROVENANCE_KEY = "qrules"


class ValidationError(QruleError, ValueError):
    """The annotations a ruleset would make on this graph are invalid; the graph is
    left exactly as it was. ``diagnostics`` name each node, rule and span."""


def _op_targets(compiled: CompiledRuleset) -> dict[str, frozenset]:
    """Op name -> overloads, for predicates like ``any_user(relu)`` and op scopes."""
    resolver = compiled.bound.resolver
    out = {}
    for name in resolver.ops:
        ops = resolver.resolve(name) or ()
        targets = set()
        for op in ops:
            for target in op.targets:
                try:
                    targets.add(resolve_target(target))
                except ValueError:
                    pass
        out[name] = frozenset(targets)
    return out


def _scoped(compiled: CompiledRuleset, scope: Optional[ScopeRef]) -> CompiledRuleset:
    if scope is None:
        return compiled
    rules = tuple(dataclasses.replace(rule, scopes=rule.scopes + (scope,))
                  for rule in compiled.rules)
    return dataclasses.replace(compiled, rules=rules)


@functools.lru_cache(maxsize=1)
def _leave_in_float() -> CompiledRuleset:
    """`rule leave_in_float: any : none`, parsed, checked and compiled once."""
    from qrules.api import load_text  # local: api builds on the adapter

    text = 'ruleset leave_in_float version "1.0"\nrule leave_in_float: any : none\n'
    return load_text(text, "<leave in float>").compiled()


def _float_rule(scope: ScopeRef) -> CompiledRuleset:
    """A ruleset that takes every node of a scope and leaves it in float."""
    return _scoped(_leave_in_float(), scope)


class RulesetQuantizer(Quantizer):
    """A torchao Quantizer whose annotations come from qrules rulesets."""

    def __init__(self, compiled: Optional[CompiledRuleset] = None, *, sources=None):
        super().__init__()
        self._global = compiled
        self._scoped: list[tuple[int, ScopeRef, Optional[CompiledRuleset]]] = []
        self._sources = dict(sources or {})
        self.last_plan: Optional[Plan] = None

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
        return self._set(0, ScopeRef("module_name", name, None), ruleset)

    def set_module_type(self, module_type: Union[type, str], ruleset) -> "RulesetQuantizer":
        if isinstance(module_type, type):
            module_type = f"{module_type.__module__}.{module_type.__qualname__}"
        return self._set(1, ScopeRef("module_type", module_type, None), ruleset)

    def set_operator_type(self, op, ruleset) -> "RulesetQuantizer":
        name = op if isinstance(op, str) else str(op)
        return self._set(2, ScopeRef("operator_target", name, None), ruleset)

    def _set(self, rank: int, scope: ScopeRef, ruleset) -> "RulesetQuantizer":
        self._add_sources(ruleset)
        self._scoped.append((rank, scope, None if ruleset is None else _compiled_of(ruleset)))
        return self

    def _passes(self) -> list[CompiledRuleset]:
        """Rulesets in the order they annotate: specific scopes first, global last;
        the global ruleset skips what the scoped ones cover (XNNPACK's filters)."""
        out = []
        scoped = sorted(self._scoped, key=lambda item: item[0])
        for _, scope, compiled in scoped:
            out.append(_scoped(compiled, scope) if compiled is not None
                       else _float_rule(scope))
        if self._global is not None:
            # What the docstring promises and XNNPACK's filters do: the global ruleset
            # never annotates inside a scope set from Python, even a node the scope's
            # own ruleset left alone (it used to fill those in).
            out.extend(_float_rule(scope) for _, scope, compiled in scoped
                       if compiled is not None)
            out.append(self._global)
        return out

    # ------------------------------------------------------------------ Quantizer API
    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        for compiled in self._passes():
            for transform in compiled.transforms:
                function = resolve_entry(registry.TRANSFORMS[transform.name])
                model = function(model, **dict(transform.kwargs)) or model
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        builder = SpecBuilder()
        plans = []
        taken: dict[Node, Any] = {}
        for compiled in self._passes():
            current = plan(model, compiled, _op_targets(compiled), taken)
            errors = validate(current)
            if errors:
                raise ValidationError(errors, self._sources)
            plans.append((current, compiled))
            taken.update(current.annotations)
        for current, compiled in plans:
            _write(current, builder, compiled.bound.annotation_kind)
        self.last_plan = plans[-1][0] if plans else None
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


def _write(current: Plan, builder: SpecBuilder, kind: Optional[str] = None) -> None:
    annotation_class, flag = _annotation_factory(kind)
    for node, note in current.annotations.items():
        input_map = {}
        for source, placed in note.inputs.items():
            input_map[source] = None if placed is None else builder.build(placed.spec,
                                                                          placed.refs)
        output = None if note.output is None else builder.build(note.output.spec,
                                                               note.output.refs)
        rule = note.rule
        # An `unmarked` rule writes what torchao's EmbeddingQuantizer writes: specs
        # without `_annotated`. Later rules of this ruleset still skip the node (it is
        # in the plan), and so do later qrules passes (they read the plan, or the spec).
        extra = {flag: note.ends_quantized_pattern} if flag else {}
        node.meta[ANNOTATION_KEY] = annotation_class(
            input_qspec_map=input_map, output_qspec=output, _annotated=not rule.unmarked,
            **extra)
        node.meta[PROVENANCE_KEY] = {"rule": rule.name, "ruleset": rule.ruleset,
                                     "location": rule.location}
        if note.amended_by:
            node.meta[PROVENANCE_KEY]["amended_by"] = list(dict.fromkeys(note.amended_by))


def annotation_of(node: Node) -> Optional[dict]:
    """Which qrules rule annotated a node: rule, ruleset and file:line:col."""
    return node.meta.get(PROVENANCE_KEY)

