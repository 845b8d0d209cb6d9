"""Compare two quantizers on one model: annotations node by node, then numerics.

``diff(a, b, model, example_inputs)`` runs torchao's real ``prepare_pt2e`` (or
``prepare_qat_pt2e``) once per side, each on a deep copy of the same exported graph,
and records the annotations *as they stand inside prepare*: a recording quantizer
wraps each side, delegates ``transform_for_annotation`` / ``annotate`` / ``validate``
(and the observer callback) to it, and snapshots ``node.meta["quantization_annotation"]``
right after ``annotate``. So each side is judged on the graph prepare gave it, after
batch-norm folding and after its own transforms.

Each annotation becomes a plain, comparable description (``describe_annotation``):
per input edge and for the output, the spec kind (quant / fixed / shared / derived /
none), dtype, quant range, qscheme, channel axis, dynamic flag, the observer or
fake-quantizer class with its keyword arguments (``with_args`` partials unwrapped,
nested observers too), shared edges and ``derived_from`` edges by node name (plus the
derive function's name); and ``_annotated``, ``allow_implicit_sharing`` and any extra
attribute of an annotation subclass (X86's ``_is_output_of_quantized_pattern``).
Nodes are keyed by name: both sides start from copies of one graph.

Then, unless ``numerics=False``, both prepared models are calibrated on the same
seeded inputs, converted, and compared: the count of every op in the converted
graphs, and ``torch.equal`` on every output.

``a`` and ``b`` may be loaded rulesets (``qrules.load(...)``), qrules quantizers, or
any torchao ``Quantizer``. ``anchor(...)`` builds torchao's hand-written quantizers
from a short spec (``torchao:xnnpack[per_channel,dynamic]``) through a fixed table.
"""

from __future__ import annotations

import copy
import functools
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch.fx import GraphModule, Node

from qrules.adapter import torchao as adapter
from qrules.adapter.quantizer import PROVENANCE_KEY
from qrules.passes.match import ANNOTATION_KEY
from qrules.diagnostics import QruleError

__all__ = ["diff", "EquivalenceReport", "Mismatch", "Numerics", "AnnotationRecord", "anchor",
           "parse_anchor",
           "describe_annotation", "describe_spec", "record_annotations", "ANCHORS"]

_STANDARD_FIELDS = {"input_qspec_map", "output_qspec", "_annotated", "allow_implicit_sharing"}


# ------------------------------------------------------------------ descriptions


def _callable_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else name


def _unwrap_ctor(ctor: Any) -> tuple[Any, dict]:
    """``X.with_args(a=1).with_args(b=2)`` -> (X, {a: 1, b: 2}): peel torchao's
    ``PartialWrapper`` (``.p`` a functools.partial) and plain partials, outermost
    keywords winning. ``with_callable_args`` entries are kept as ``<callable …>``."""
    keywords: dict = {}
    callables: dict = {}
    current = ctor
    for _ in range(50):
        partial = getattr(current, "p", None)
        if isinstance(partial, functools.partial):
            callables = {**getattr(current, "callable_args", {}), **callables}
            current = partial
            continue
        if isinstance(current, functools.partial):
            keywords = {**current.keywords, **keywords}
            current = current.func
            continue
        break
    for key, value in callables.items():
        keywords.setdefault(key, f"<callable {_callable_name(value)}>")
    return current, keywords


def _describe_value(value: Any) -> Any:
    """A keyword argument value, comparable and printable."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, (torch.qscheme,)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_describe_value(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _describe_value(v)) for k, v in value.items()))
    if isinstance(value, type) or hasattr(value, "p") or isinstance(value, functools.partial):
        return describe_ctor(value)
    return repr(value)


def describe_ctor(ctor: Any) -> tuple:
    """An observer or fake-quantizer constructor: (class, ((kwarg, value), ...))."""
    cls, keywords = _unwrap_ctor(ctor)
    return (_callable_name(cls),
            tuple(sorted((k, _describe_value(v)) for k, v in keywords.items())))


def _edge_name(edge: Any) -> Any:
    if isinstance(edge, tuple) and len(edge) == 2:
        return ("edge", _node_name(edge[0]), _node_name(edge[1]))
    return ("node", _node_name(edge))


def _node_name(value: Any) -> str:
    return value.name if isinstance(value, Node) else f"<constant {value!r}>"


def describe_spec(spec: Any) -> Optional[tuple]:
    """A torchao spec as a hashable, comparable tuple of (field, value) pairs."""
    if spec is None:
        return None
    if isinstance(spec, adapter.SharedQuantizationSpec):
        return (("kind", "shared"), ("with", _edge_name(spec.edge_or_node)))
    if isinstance(spec, adapter.DerivedQuantizationSpec):
        return (("kind", "derived"),
                ("from", tuple(_edge_name(e) for e in spec.derived_from)),
                ("fn", _callable_name(spec.derive_qparams_fn)),
                ("dtype", str(spec.dtype)), ("quant_min", spec.quant_min),
                ("quant_max", spec.quant_max), ("qscheme", str(spec.qscheme)),
                ("ch_axis", spec.ch_axis))
    if isinstance(spec, adapter.FixedQParamsQuantizationSpec):
        return (("kind", "fixed"), ("dtype", str(spec.dtype)), ("scale", spec.scale),
                ("zero_point", spec.zero_point), ("quant_min", spec.quant_min),
                ("quant_max", spec.quant_max), ("qscheme", str(spec.qscheme)),
                ("is_dynamic", getattr(spec, "is_dynamic", False)))
    if isinstance(spec, adapter.QuantizationSpec):
        return (("kind", "quant"), ("dtype", str(spec.dtype)),
                ("quant_min", spec.quant_min), ("quant_max", spec.quant_max),
                ("qscheme", str(spec.qscheme)), ("ch_axis", spec.ch_axis),
                ("is_dynamic", spec.is_dynamic),
                ("observer", describe_ctor(spec.observer_or_fake_quant_ctr)))
    return (("kind", type(spec).__name__), ("repr", repr(spec)))


@dataclass(frozen=True)
class AnnotationRecord:
    """One node's annotation, described: inputs by source node name."""

    inputs: tuple[tuple[str, Optional[tuple]], ...]
    output: Optional[tuple]
    annotated: bool
    allow_implicit_sharing: bool
    extra: tuple[tuple[str, Any], ...] = ()

    def input_map(self) -> dict:
        return dict(self.inputs)


def describe_annotation(annotation: Any) -> Optional[AnnotationRecord]:
    if annotation is None:
        return None
    inputs = tuple((_node_name(source), describe_spec(spec))
                   for source, spec in (annotation.input_qspec_map or {}).items())
    extra = ()
    try:
        names = [f.name for f in fields(annotation)]
    except TypeError:
        names = []
    extra = tuple((name, _describe_value(getattr(annotation, name)))
                  for name in names if name not in _STANDARD_FIELDS)
    return AnnotationRecord(inputs, describe_spec(annotation.output_qspec),
                            bool(getattr(annotation, "_annotated", False)),
                            bool(getattr(annotation, "allow_implicit_sharing", True)), extra)


@dataclass(frozen=True)
class NodeRecord:
    name: str
    op: str
    target: str
    args: str                       # structure: the node's arguments by node name
    annotation: Optional[AnnotationRecord]
    provenance: Optional[dict]      # qrules: rule, ruleset, location


def _structure(value: Any) -> str:
    if isinstance(value, Node):
        return f"%{value.name}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_structure(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_structure(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _target_name(node: Node) -> str:
    if node.op in ("call_function", "call_method"):
        return str(getattr(node.target, "__name__", node.target)) if not isinstance(
            node.target, torch._ops.OpOverload) else str(node.target)
    return str(node.target)


def record_annotations(model: GraphModule) -> dict[str, NodeRecord]:
    """Every node of the graph, in order, with its annotation described."""
    out = {}
    for node in model.graph.nodes:
        out[node.name] = NodeRecord(
            node.name, node.op, _target_name(node),
            _structure((node.args, node.kwargs)),
            describe_annotation(node.meta.get(ANNOTATION_KEY)),
            dict(node.meta[PROVENANCE_KEY]) if PROVENANCE_KEY in node.meta else None)
    return out


class _Recorder(adapter.Quantizer):
    """Delegates everything to ``inner``; snapshots the annotations after annotate."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.records: Optional[dict[str, NodeRecord]] = None

    def transform_for_annotation(self, model):
        return self.inner.transform_for_annotation(model)

    def annotate(self, model):
        result = self.inner.annotate(model)
        self.records = record_annotations(result if result is not None else model)
        return result if result is not None else model

    def validate(self, model):
        return self.inner.validate(model)

    def prepare_obs_or_fq_callback(self, model, edge_or_node_to_obs_or_fq):
        return self.inner.prepare_obs_or_fq_callback(model, edge_or_node_to_obs_or_fq)


# ------------------------------------------------------------------ formatting


def _fmt_number(value: Any) -> str:
    if isinstance(value, float):
        for exponent in range(-30, 31):
            if value == 2.0 ** exponent and exponent < -3:
                return f"2**{exponent}"
        return repr(value)
    return repr(value)


def _fmt_ctor(ctor: tuple) -> str:
    name, kwargs = ctor
    short = name.rsplit(".", 1)[-1]
    parts = []
    for key, value in kwargs:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) \
                and isinstance(value[1], tuple) and "." in value[0]:
            parts.append(f"{key}={_fmt_ctor(value)}")
        else:
            parts.append(f"{key}={_fmt_number(value)}")
    return f"{short}({', '.join(parts)})" if parts else short


def _fmt_edge(edge: tuple) -> str:
    if edge[0] == "edge":
        return f"edge {edge[1]} -> {edge[2]}"
    return f"output of {edge[1]}"


def format_spec(spec: Optional[tuple]) -> str:
    if spec is None:
        return "none"
    d = dict(spec)
    kind = d["kind"]
    if kind == "shared":
        return f"shared with {_fmt_edge(d['with'])}"
    dtype = str(d.get("dtype", "")).replace("torch.", "")
    qscheme = str(d.get("qscheme", "")).replace("torch.", "")
    rng = f"[{d.get('quant_min')}, {d.get('quant_max')}]"
    if kind == "derived":
        sources = ", ".join(_fmt_edge(e) for e in d["from"])
        return (f"derived {dtype} {rng} {qscheme} ch_axis={d['ch_axis']} from ({sources}) "
                f"fn={d['fn'].rsplit('.', 1)[-1]}")
    if kind == "fixed":
        return (f"fixed {dtype} {rng} {qscheme} scale={_fmt_number(d['scale'])} "
                f"zero_point={d['zero_point']}")
    if kind == "quant":
        dynamic = " dynamic" if d["is_dynamic"] else ""
        return (f"{dtype} {rng} {qscheme} ch_axis={d['ch_axis']}{dynamic} "
                f"{_fmt_ctor(d['observer'])}")
    return str(spec)


def format_annotation(record: Optional[AnnotationRecord]) -> str:
    if record is None:
        return "no annotation"
    parts = [f"{source}: {format_spec(spec)}" for source, spec in record.inputs]
    text = "inputs {" + "; ".join(parts) + "}"
    text += f", output {format_spec(record.output)}"
    text += f", _annotated={record.annotated}"
    if not record.allow_implicit_sharing:
        text += ", allow_implicit_sharing=False"
    for key, value in record.extra:
        text += f", {key}={value!r}"
    return text


# ------------------------------------------------------------------ comparing


@dataclass(frozen=True)
class Mismatch:
    """One difference: a node, which part of its annotation, and the two sides."""

    node: str
    op: str                  # the node's fx op: call_function, get_attr, placeholder
    target: str
    field: str               # "annotation", "input <src>", "output", "_annotated", ...
    a: Any                   # the described value on side a (None: absent)
    b: Any
    a_text: str
    b_text: str
    a_rule: Optional[str]    # "rule NAME (file:line:col)" when a qrules rule made it
    b_rule: Optional[str]


@dataclass(frozen=True)
class Numerics:
    ran: bool
    op_counts_a: dict = field(default_factory=dict)
    op_counts_b: dict = field(default_factory=dict)
    outputs_equal: bool = True
    max_abs_diff: float = 0.0
    error: Optional[str] = None

    @property
    def op_count_diff(self) -> dict:
        keys = set(self.op_counts_a) | set(self.op_counts_b)
        return {k: (self.op_counts_a.get(k, 0), self.op_counts_b.get(k, 0)) for k in sorted(keys)
                if self.op_counts_a.get(k, 0) != self.op_counts_b.get(k, 0)}

    @property
    def ok(self) -> bool:
        return (not self.ran) or (self.error is None and self.outputs_equal
                                  and not self.op_count_diff)


@dataclass
class EquivalenceReport:
    """What ``qrules.diff`` found. ``equal`` when no annotation differs and (if run)
    the converted models have the same op counts and bit-identical outputs."""

    a_label: str
    b_label: str
    model_label: str
    nodes_compared: int
    mismatches: list[Mismatch]
    numerics: Numerics
    a_records: dict = field(default_factory=dict, repr=False)
    b_records: dict = field(default_factory=dict, repr=False)

    @property
    def equal(self) -> bool:
        return not self.mismatches and self.numerics.ok

    def __bool__(self) -> bool:  # a report is "truthy" when the two sides are equal
        return self.equal

    def format(self, limit: Optional[int] = None) -> str:
        lines = [f"diff on {self.model_label}: A = {self.a_label}, B = {self.b_label}",
                 f"{self.nodes_compared} nodes compared, {len(self.mismatches)} "
                 f"mismatch{'es' if len(self.mismatches) != 1 else ''}"]
        shown = self.mismatches if limit is None else self.mismatches[:limit]
        for m in shown:
            lines.append(f"node {m.node} ({m.target}): {m.field}")
            lines.append(f"  A: {m.a_text}")
            if m.a_rule:
                lines.append(f"     by {m.a_rule}")
            lines.append(f"  B: {m.b_text}")
            if m.b_rule:
                lines.append(f"     by {m.b_rule}")
        if limit is not None and len(self.mismatches) > limit:
            lines.append(f"... and {len(self.mismatches) - limit} more")
        n = self.numerics
        if n.ran:
            if n.error:
                lines.append(f"numerics: not compared: {n.error}")
            else:
                counts = n.op_count_diff
                if counts:
                    lines.append("numerics: op counts differ (A, B): " + ", ".join(
                        f"{k}: {a}, {b}" for k, (a, b) in counts.items()))
                else:
                    lines.append(f"numerics: same op counts ({sum(n.op_counts_a.values())} "
                                 "call nodes)")
                lines.append("numerics: outputs bit-identical" if n.outputs_equal else
                             f"numerics: outputs differ (max abs diff {n.max_abs_diff:.6g})")
        lines.append("EQUAL" if self.equal else "DIFFERENT")
        return "\n".join(lines)


def _rule_text(provenance: Optional[dict]) -> Optional[str]:
    if not provenance:
        return None
    return f"rule {provenance['rule']} of {provenance['ruleset']} ({provenance['location']})"


def compare_records(a: dict[str, NodeRecord], b: dict[str, NodeRecord]) -> list[Mismatch]:
    """Node by node, in a's graph order (then b's extra nodes)."""
    out: list[Mismatch] = []
    names = list(a) + [n for n in b if n not in a]
    for name in names:
        ra, rb = a.get(name), b.get(name)
        if ra is None or rb is None:
            present = ra or rb
            out.append(Mismatch(
                name, present.op, present.target, "node", None if ra is None else ra.target,
                None if rb is None else rb.target,
                "node absent" if ra is None else f"{ra.op} {ra.target}{ra.args}",
                "node absent" if rb is None else f"{rb.op} {rb.target}{rb.args}",
                None, None))
            continue
        if (ra.op, ra.target, ra.args) != (rb.op, rb.target, rb.args):
            out.append(Mismatch(name, ra.op, ra.target, "graph", (ra.op, ra.target, ra.args),
                                (rb.op, rb.target, rb.args), f"{ra.op} {ra.target}{ra.args}",
                                f"{rb.op} {rb.target}{rb.args}", None, None))
        out.extend(_compare_annotations(ra, rb))
    return out


def _compare_annotations(ra: NodeRecord, rb: NodeRecord) -> list[Mismatch]:
    xa, xb = ra.annotation, rb.annotation
    rule_a, rule_b = _rule_text(ra.provenance), _rule_text(rb.provenance)
    if xa == xb:
        return []
    if xa is None or xb is None:
        return [Mismatch(ra.name, ra.op, ra.target, "annotation", xa, xb, format_annotation(xa),
                         format_annotation(xb), rule_a, rule_b)]
    out = []
    ma, mb = xa.input_map(), xb.input_map()
    for source in list(ma) + [s for s in mb if s not in ma]:
        sa = ma.get(source, "absent")
        sb = mb.get(source, "absent")
        if sa != sb:
            out.append(Mismatch(ra.name, ra.op, ra.target, f"input {source}", sa, sb,
                                "no entry" if sa == "absent" else format_spec(sa),
                                "no entry" if sb == "absent" else format_spec(sb),
                                rule_a, rule_b))
    if [s for s, _ in xa.inputs if s in mb] != [s for s, _ in xb.inputs if s in ma]:
        out.append(Mismatch(ra.name, ra.op, ra.target, "input order", tuple(ma), tuple(mb),
                            ", ".join(ma), ", ".join(mb), rule_a, rule_b))
    if xa.output != xb.output:
        out.append(Mismatch(ra.name, ra.op, ra.target, "output", xa.output, xb.output,
                            format_spec(xa.output), format_spec(xb.output), rule_a, rule_b))
    if xa.annotated != xb.annotated:
        out.append(Mismatch(ra.name, ra.op, ra.target, "_annotated", xa.annotated, xb.annotated,
                            str(xa.annotated), str(xb.annotated), rule_a, rule_b))
    if xa.allow_implicit_sharing != xb.allow_implicit_sharing:
        out.append(Mismatch(ra.name, ra.op, ra.target, "allow_implicit_sharing",
                            xa.allow_implicit_sharing, xb.allow_implicit_sharing,
                            str(xa.allow_implicit_sharing), str(xb.allow_implicit_sharing),
                            rule_a, rule_b))
    if xa.extra != xb.extra:
        out.append(Mismatch(ra.name, ra.op, ra.target, "extra fields", xa.extra, xb.extra,
                            repr(dict(xa.extra)), repr(dict(xb.extra)), rule_a, rule_b))
    return out


# ------------------------------------------------------------------ anchors


def _xnnpack(per_channel=False, dynamic=False, qat=False):
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat,
                                               is_dynamic=dynamic)
    return XNNPACKQuantizer().set_global(config)


def _executorch_xnnpack(per_channel=False, dynamic=False, qat=False):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat,
                                               is_dynamic=dynamic)
    return XNNPACKQuantizer().set_global(config)


def _x86_inductor(qat=False, dynamic=False, reduce_range=False):
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config,
    )

    config = get_default_x86_inductor_quantization_config(
        is_qat=qat, is_dynamic=dynamic, reduce_range=reduce_range)
    return X86InductorQuantizer().set_global(config)


def _embedding():
    from torchao.quantization.pt2e.quantizer.embedding_quantizer import EmbeddingQuantizer

    return EmbeddingQuantizer()


#: Hand-written quantizers by name: (factory, the flags it takes). The only way a spec
#: string reaches library code; nothing is imported by a user-given name. torchao's are
#: named bare (``torchao:xnnpack`` is "xnnpack", torchao being the first library the
#: table held); those of other libraries carry the library: ``executorch:xnnpack``.
ANCHORS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "xnnpack": (_xnnpack, ("per_channel", "dynamic", "qat")),
    "x86_inductor": (_x86_inductor, ("qat", "dynamic", "reduce_range")),
    "embedding": (_embedding, ()),
    "executorch:xnnpack": (_executorch_xnnpack, ("per_channel", "dynamic", "qat")),
}

#: The libraries an anchor spec may name: ``LIBRARY:NAME[flag,...]``.
ANCHOR_LIBRARIES = ("torchao", "executorch")

_ANCHOR_RE = re.compile(r"^(torchao|executorch):([A-Za-z0-9_]+)(?:\[([A-Za-z0-9_,\s]*)\])?$")


def is_anchor_spec(spec: str) -> bool:
    """Whether a diff side written as text names a hand-written quantizer
    (``torchao:...``, ``executorch:...``) rather than a ruleset."""
    return spec.strip().startswith(tuple(f"{library}:" for library in ANCHOR_LIBRARIES))


def parse_anchor(spec: str) -> tuple[str, dict[str, bool]]:
    """``torchao:xnnpack[per_channel,qat]`` -> ("xnnpack", {"per_channel": True, ...});
    ``executorch:xnnpack[dynamic]`` -> ("executorch:xnnpack", {"dynamic": True}): the
    key of ``ANCHORS`` and the flags. Raises ValueError naming the known anchors and
    flags."""
    match = _ANCHOR_RE.match(spec.strip())
    if not match:
        raise ValueError(f"not an anchor spec: {spec!r} (expected LIBRARY:NAME or "
                         "LIBRARY:NAME[flag,flag], LIBRARY one of "
                         f"{', '.join(ANCHOR_LIBRARIES)})")
    library, bare, flags_text = match.group(1), match.group(2), match.group(3) or ""
    name = bare if library == "torchao" else f"{library}:{bare}"
    if name not in ANCHORS:
        known = sorted(key.partition(":")[2] for key in ANCHORS
                       if key.startswith(f"{library}:")) if library != "torchao" else \
            sorted(key for key in ANCHORS if ":" not in key)
        raise ValueError(f"unknown {library} quantizer {bare!r}; known: {', '.join(known)}")
    allowed = ANCHORS[name][1]
    flags = {}
    for flag in (f.strip() for f in flags_text.split(",")):
        if not flag:
            continue
        if flag not in allowed:
            raise ValueError(f"{library}:{bare} takes no flag {flag!r}; flags: "
                             f"{', '.join(allowed) or 'none'}")
        flags[flag] = True
    return name, flags


def anchor(spec: str):
    """A hand-written quantizer from an anchor spec (see ``parse_anchor``)."""
    name, flags = parse_anchor(spec)
    with adapter.quiet_torchao():
        return ANCHORS[name][0](**flags)


# ------------------------------------------------------------------ running


def _label(side: Any) -> str:
    bound = getattr(side, "bound", None)
    if bound is not None:  # a LoadedRuleset
        params = ", ".join(f"{k}={v}" for k, v in sorted(side.params.items()))
        return f"ruleset {side.name}" + (f" ({params})" if params else "")
    if isinstance(side, adapter.Quantizer):
        # Module-qualified: torchao's testing copy and executorch's XNNPACKQuantizer
        # share a class name.
        return f"{type(side).__module__}.{type(side).__qualname__}"
    return repr(side)


def _as_quantizer(side: Any):
    from qrules.composing import as_quantizer

    if isinstance(side, str):  # an anchor spec, a built-in ruleset name or a .qrule path
        if is_anchor_spec(side):
            return anchor(side)
        from qrules.api import load

        return load(side).quantizer()
    return as_quantizer(side)


def _exported(model: Any, example_inputs: tuple, qat: bool,
              strict: bool = False) -> GraphModule:
    if isinstance(model, GraphModule) and adapter.model_is_exported(model):
        return model
    module = copy.deepcopy(model)
    module.train(qat)
    return adapter.export_module(module, tuple(example_inputs), strict=strict)


def copy_graph(graph: GraphModule) -> GraphModule:
    """A deep copy that also keeps every node's users in the original order.

    ``copy.deepcopy`` re-registers users in graph order, which is not the order
    torch.export left them in (its ``_guards_fn`` node is created last but placed
    first). Annotators that pick "the first user" (XNNPACK's ``gru_io_only``) would
    then annotate a different node on the copy than on the graph prepare is given."""
    work = copy.deepcopy(graph)
    copies = {node.name: node for node in work.graph.nodes}
    for node in graph.graph.nodes:
        twin = copies[node.name]
        order = [copies[user.name] for user in node.users]
        if list(twin.users) != order:
            saved = dict(twin.users)
            twin.users.clear()
            twin.users.update((user, saved[user]) for user in order)
    return work


class SideFailed(RuntimeError):
    """One side's quantizer raised inside prepare: a bug or limit of that quantizer
    (torchao's X86InductorQuantizer on a non-strict export of a model that calls one
    module twice), not a difference between the two sides."""


def _prepare(graph: GraphModule, quantizer, qat: bool, label: str = "quantizer"):
    recorder = _Recorder(quantizer)
    work = copy_graph(graph)
    try:
        with adapter.quiet_torchao():
            prepared = (adapter.prepare_qat_pt2e if qat else adapter.prepare_pt2e)(
                work, recorder)
    except QruleError:
        raise
    except Exception as err:  # noqa: BLE001 (any failure of a third-party quantizer)
        hint = ""
        if "more than one output node" in str(err):
            hint = (" (torchao's source partitions group every call of one module after "
                    "a non-strict export; export strictly: --strict, or "
                    "qrules.diff(..., strict=True))")
        raise SideFailed(f"{label} failed in prepare: {type(err).__name__}: {err}{hint}") \
            from err
    return prepared, recorder.records or {}


def calibration_batches(example_inputs: Sequence, count: int = 4, seed: int = 0) -> list:
    """Seeded inputs shaped like the examples: normal noise for float tensors; integer
    tensors (indices) are shuffled copies of the example, so they stay in range."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        batch = []
        for x in example_inputs:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                batch.append(torch.randn(x.shape, generator=generator, dtype=x.dtype))
            elif isinstance(x, torch.Tensor) and x.numel() > 0:
                order = torch.randperm(x.numel(), generator=generator)
                batch.append(x.reshape(-1)[order].reshape(x.shape).clone())
            else:
                batch.append(x)
        batches.append(tuple(batch))
    return batches


def _op_counts(gm: GraphModule) -> dict:
    return dict(Counter(_target_name(n) for n in gm.graph.nodes if n.op == "call_function"))


def _leaves(value: Any) -> list:
    return [v for v in torch.utils._pytree.tree_leaves(value) if isinstance(v, torch.Tensor)]


def _numerics(prepared_a, prepared_b, example_inputs, batches, seed: int) -> Numerics:
    try:
        with torch.no_grad():
            for prepared in (prepared_a, prepared_b):
                torch.manual_seed(seed)
                for batch in batches:
                    prepared(*batch)
        with adapter.quiet_torchao():
            converted_a = adapter.convert_pt2e(prepared_a)
            converted_b = adapter.convert_pt2e(prepared_b)
        outputs = []
        with torch.no_grad():
            for converted in (converted_a, converted_b):
                torch.manual_seed(seed)
                outputs.append(_leaves(converted(*example_inputs)))
    except Exception as err:  # a side that cannot calibrate or convert is a finding
        return Numerics(True, error=f"{type(err).__name__}: {err}")
    equal, worst = len(outputs[0]) == len(outputs[1]), 0.0
    for x, y in zip(*outputs):
        if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x, y):
            equal = False
            if x.shape == y.shape and x.is_floating_point() and y.is_floating_point():
                worst = max(worst, float((x.double() - y.double()).abs().max()))
            else:
                worst = float("inf")
    return Numerics(True, _op_counts(converted_a), _op_counts(converted_b), equal, worst)


def diff(a: Any, b: Any, model: Any, example_inputs: Optional[Iterable] = None, *,
         qat: bool = False, numerics: bool = True, calibration: Optional[Iterable] = None,
         seed: int = 0, model_label: Optional[str] = None,
         strict: bool = False) -> EquivalenceReport:
    """Compare quantizers ``a`` and ``b`` on ``model``.

    ``a``/``b``: loaded rulesets, qrules or torchao quantizers, anchor specs
    (``"torchao:xnnpack[per_channel]"``), or a ruleset name or path (loaded with its
    default parameters). ``model``: an ``nn.Module`` (exported here, in
    train mode with ``qat=True``) or an exported GraphModule; ``example_inputs`` are
    needed to export and for numerics; ``strict=True`` exports with
    ``torch.export.export(..., strict=True)`` (torchao's X86InductorQuantizer needs it
    for models that call one module twice). ``calibration``: input batches (default: four
    seeded batches shaped like the examples). Neither ``model`` nor the quantizers'
    state is changed.
    """
    inputs = tuple(example_inputs) if example_inputs is not None else None
    if inputs is None and not (isinstance(model, GraphModule) and not numerics):
        raise ValueError("diff needs example_inputs (to export the model and to compare "
                         "numerics)")
    graph = _exported(model, inputs or (), qat, strict)
    quantizer_a, quantizer_b = _as_quantizer(a), _as_quantizer(b)
    prepared_a, records_a = _prepare(graph, quantizer_a, qat,
                                     a if isinstance(a, str) else _label(a))
    prepared_b, records_b = _prepare(graph, quantizer_b, qat,
                                     b if isinstance(b, str) else _label(b))
    mismatches = compare_records(records_a, records_b)
    if numerics:
        batches = ([tuple(x) if isinstance(x, (list, tuple)) else (x,) for x in calibration]
                   if calibration is not None else calibration_batches(inputs, seed=seed))
        result = _numerics(prepared_a, prepared_b, inputs, batches, seed)
    else:
        result = Numerics(False)
    del prepared_a, prepared_b
    adapter.forget_prepared_models()  # torchao would keep both copies alive for good
    label = model_label or (type(model).__name__ if not isinstance(model, GraphModule)
                            else "exported graph")
    return EquivalenceReport(a if isinstance(a, str) else _label(a),
                             b if isinstance(b, str) else _label(b), label,
                             len(set(records_a) | set(records_b)), mismatches, result,
                             records_a, records_b)
