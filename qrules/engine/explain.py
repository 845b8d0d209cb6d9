"""Explain a ruleset on a graph: which rule annotated each node, and why others stay float.

Runs the same planning as the quantizer (on a copy, so the graph is untouched) and
then, for every call node left in float, finds the first reason in this order:
non-float output, left in float by a `none` rule, the predicates of a region it lies
in failed (which one), no rule mentions the op, every rule for the op is out of scope
here, a predicate failed (which one) or a `first` selection picked no edge, or the op
only appears inside patterns whose other steps are not around it. For a float node,
every rule that could have taken it also says what failed first (``why_not``: the step,
link, predicate, scope, phase or `when`, see qrules.engine.why_not).

One data structure, two forms: ``format()`` (text) and ``as_dict()`` (the JSON schema
of docs/cli.md), each over the nodes ``select`` keeps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

from torch.fx import GraphModule, Node

from qrules.adapter.quantizer import RulesetQuantizer, annotations_on
from qrules.adapter.torchao import fold_batch_norms
from qrules.compile.graph_meta import is_float_value
from qrules.compile.targets import target_key
from qrules.compile.context import first_position
from qrules.compile.predicates import StepContext, compile_predicates
from qrules.engine.progress import stage
from qrules.engine.why_not import Turns, WhyNot, why_not
from qrules.passes.bindings import bind_roles
from qrules.passes.match import Matcher
from qrules.passes.plan import plan
from qrules.passes.scopes import region_roles
from qrules.passes.validate import requantized
from qrules.passes.state import State


@dataclass(frozen=True)
class NodeExplanation:
    node: str
    target: str
    rule: Optional[str]          # the rule that annotated it, or None
    location: Optional[str]      # file:line:col of that rule
    quantized: bool              # has at least one spec (not left in float)
    reason: Optional[str] = None  # why it is float
    # (config key, source node or None for the output, spec name) per edge with a spec
    specs: tuple[tuple[str, Optional[str], str], ...] = ()
    why_not: tuple[WhyNot, ...] = ()   # for a float node: rules that could have taken it

    def as_dict(self) -> dict:
        return {"node": self.node, "target": self.target, "rule": self.rule,
                "location": self.location, "quantized": self.quantized,
                "specs": [{"edge": key, "source": source, "spec": spec}
                          for key, source, spec in self.specs],
                "float_reason": self.reason,
                "why_not": [entry.as_dict() for entry in self.why_not]}


@dataclass
class Explanation:
    ruleset: str
    nodes: list[NodeExplanation] = field(default_factory=list)
    #: What annotating would warn about (QR615), as diagnostics with the rules' spans.
    warnings: list = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Percent of float-valued call nodes that a rule annotated, a `none` rule (left
        in float) included: "covered by a rule". See ``quantized_coverage``."""
        return self._percent(lambda n: n.rule is not None)

    @property
    def quantized_coverage(self) -> float:
        """Percent of float-valued call nodes given at least one spec: "quantized". Less
        than ``coverage`` by the nodes `none` rules leave in float."""
        return self._percent(lambda n: n.quantized)

    def _percent(self, counted) -> float:
        countable = [n for n in self.nodes if n.reason != "non-float output"]
        if not countable:
            return 100.0
        return 100.0 * sum(map(counted, countable)) / len(countable)

    def select(self, *, float_only: bool = False, rule: Optional[str] = None,
               node: Optional[str] = None) -> list[NodeExplanation]:
        """The nodes the filters keep: left in float (no spec), annotated by ``rule`` or
        with a why-not entry for it, named ``node``. Coverage always counts them all."""
        return [n for n in self.nodes
                if not (float_only and n.quantized)
                and (rule is None or n.rule == rule or any(w.rule == rule for w in n.why_not))
                and (node is None or n.node == node)]

    def as_dict(self, nodes: Optional[list[NodeExplanation]] = None) -> dict:
        """The JSON form (schema in docs/cli.md, "qrules explain")."""
        counted = [n for n in self.nodes if n.reason != "non-float output"]
        return {"version": 1, "ruleset": self.ruleset,
                "coverage": {"call_nodes": len(self.nodes), "float_nodes": len(counted),
                             "covered_by_rule": round(self.coverage, 2),
                             "quantized": round(self.quantized_coverage, 2)},
                "nodes": [n.as_dict() for n in (self.nodes if nodes is None else nodes)],
                "warnings": [{"code": d.code, "message": d.message, "location": str(d.span),
                              "notes": [{"message": n.message, "location": str(n.span)}
                                        for n in d.notes if n.span is not None]}
                             for d in self.warnings]}

    def format(self, nodes: Optional[list[NodeExplanation]] = None) -> str:
        """The text form: a header with both coverages, a line per node, and under a
        float node one indented line per rule that could have taken it."""
        nodes = self.nodes if nodes is None else nodes
        width = max((len(n.node) for n in nodes), default=4)
        lines = [f"ruleset {self.ruleset}: {len(self.nodes)} call nodes, "
                 f"{self.coverage:.1f}% covered by a rule, "
                 f"{self.quantized_coverage:.1f}% quantized"]
        for n in nodes:
            if n.rule is not None:
                what = f"{'quantized' if n.quantized else 'float    '} by {n.rule} ({n.location})"
            else:
                what = f"float: {n.reason}"
            lines.append(f"  {n.node:<{width}}  {n.target:<40}  {what}")
            lines.extend(f"      why not {entry.format()}" for entry in n.why_not)
        for d in self.warnings:
            lines.append(f"{d.span.file}:{d.span.line}:{d.span.col}: {d.code} warning: "
                         f"{d.message}")
            lines.extend(f"  note: {n.span.file}:{n.span.line}:{n.span.col}: {n.message}"
                         for n in d.notes if n.span is not None)
        return "\n".join(lines)


def _float_reason(node: Node, compiled, matcher: Matcher, state: State) -> str:
    if not is_float_value(node):
        return "non-float output"
    failed = _region_predicate_failed(node, compiled, matcher, state)
    if failed is not None:
        return failed
    relevant = []
    for rule in compiled.rules:
        for steps in rule.expansions:
            for step in steps:
                op = step.op_for(target_key(node))
                if op is not None:
                    relevant.append((rule, step, op))
    if not relevant:
        return "no rule for this op"
    in_scope = [(r, s, o) for r, s, o in relevant if matcher.in_rule_scope(r, [node])]
    if not in_scope:
        return f"out of scope for rule(s) {', '.join(sorted({r.name for r, _, _ in relevant}))}"
    for rule, step, op in in_scope:
        context = StepContext(node, bind_roles(node, op), state)
        failed = (_first_failure(rule, step, context, compiled)
                  or _no_selection(rule, step, context))
        if failed is not None:
            return failed
    names = ", ".join(sorted({r.name for r, _, _ in in_scope}))
    return f"no pattern matches around it (rules with this op: {names})"


def _first_failure(rule, step, context: StepContext, compiled) -> Optional[str]:
    for expr in step.predicate_exprs:
        check = compile_predicates((expr,), compiled.params)
        if not check(context):
            span = expr.span
            return f"predicate of rule {rule.name} failed at {span.file}:{span.line}:{span.col}"
    return None


def _no_selection(rule, step, context: StepContext) -> Optional[str]:
    """A `ROLE[first PRED]` of the rule's config that picks no edge of this step."""
    for label, role, first in rule.selections:
        if label in (None, step.label) and first_position(
                first, context.roles.get(role, []), context) is None:
            return (f"no edge `{role}[{first}]` for rule {rule.name} "
                    f"({rule.location})")
    return None


def _region_predicate_failed(node: Node, compiled, matcher: Matcher,
                             state: State) -> Optional[str]:
    """A node inside a region whose rule's predicates reject it (a GRU after an
    annotated linear): the region's predicates, not the node's op, decided."""
    for rule in compiled.rules:
        for steps in rule.expansions:
            step = steps[0]
            if step.region is None or not step.predicate_exprs:
                continue
            parts = matcher.region_of(step.region, node)
            if parts is None or not matcher.in_rule_scope(rule, parts[0]):
                continue
            members, inputs, outputs = parts
            context = StepContext(members[0], region_roles(inputs, outputs), state)
            failed = _first_failure(rule, step, context, compiled)
            if failed is not None:
                return failed
    return None


def explain(graph_module: GraphModule, ruleset, *, qat: bool = False) -> Explanation:
    """Per node: the annotating rule with its span, or why it stays in float.

    The graph is first processed as ``prepare_pt2e`` (or, with ``qat``,
    ``prepare_qat_pt2e``) would before annotating; the caller's graph is untouched.
    """
    with stage("explaining"):
        return _explain(graph_module, ruleset, qat)


def _explain(graph_module: GraphModule, ruleset, qat: bool) -> Explanation:
    quantizer = ruleset if isinstance(ruleset, RulesetQuantizer) else ruleset.quantizer()
    work = copy.deepcopy(graph_module)
    if not qat:
        fold_batch_norms(work)
    work = quantizer.transform_for_annotation(work)
    # Every pass the quantizer runs (Python scopes, then global), as annotate does: only
    # the global ruleset used to be planned, so set_module_name/type/operator_type
    # scopes were missing, and a quantizer without a global ruleset crashed.
    passes = quantizer.annotation_passes()
    if not passes:
        raise ValueError("explain() needs a ruleset: this quantizer has none")
    existing = annotations_on(work)
    annotations: dict = {}
    for current in passes:
        earlier = dict(annotations)    # before the last pass: the global ruleset's
        annotations.update(plan(work, current, annotations, existing).annotations)
    # float reasons come from this ruleset
    compiled = quantizer.global_ruleset or passes[-1]
    matcher = Matcher(work, compiled)
    state = State(compiled, existing)
    state.planned.update(annotations)
    turns = Turns(compiled, existing, earlier,
                  {n: a for n, a in annotations.items() if n not in earlier})
    out = Explanation(compiled.name, warnings=requantized(annotations))
    for node in work.graph.nodes:
        if node.op != "call_function":
            continue
        note = annotations.get(node)
        if note is not None:
            specs = _specs(note)
            out.nodes.append(NodeExplanation(node.name, str(node.target), note.rule.name,
                                             note.rule.location, bool(specs),
                                             None if specs else "left in float by rule",
                                             specs))
        else:
            reason = _float_reason(node, compiled, matcher, state)
            found = () if reason == "non-float output" else why_not(
                node, compiled, matcher, turns, quantizer.sources)
            out.nodes.append(NodeExplanation(node.name, str(node.target), None, None,
                                             False, reason, why_not=found))
    return out


def _specs(note) -> tuple[tuple[str, Optional[str], str], ...]:
    """(config key, source node or None for the output, spec name) per edge given a
    spec, inputs in argument order."""
    out = []
    for source, placed in note.inputs.items():
        if placed is not None:
            out.append((placed.key, getattr(source, "name", str(source)),
                        _spec_name(placed.spec)))
    if note.output is not None:
        out.append(("output", None, _spec_name(note.output.spec)))
    return tuple(out)


def _spec_name(spec) -> str:
    """`spec NAME`'s name; `same_as(EDGE)` for a sharing spec; else the value's kind."""
    name = getattr(spec, "name", None)
    if name:
        return name
    if spec.shares:
        return f"same_as({', '.join(map(str, spec.refs))})"
    return type(spec).__name__
