"""Describe annotations as plain, comparable values, and print those values.

Each annotation becomes a description (``describe_annotation``): per input edge and
for the output, the spec kind (quant / fixed / shared / derived / none), dtype, quant
range, qscheme, channel axis, dynamic flag, the observer or fake-quantizer class with
its keyword arguments (``with_args`` partials unwrapped, nested observers too), shared
edges and ``derived_from`` edges by node name (plus the derive function's name); and
``_annotated``, ``allow_implicit_sharing`` and any extra attribute of an annotation
subclass (X86's ``_is_output_of_quantized_pattern``). Nodes are keyed by name: both
sides of a diff start from copies of one graph.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Optional

import torch
from torch.fx import GraphModule, Node

from qrules.adapter import torchao as adapter
from qrules.adapter.write import PROVENANCE_KEY
from qrules.adapter.torchao import ANNOTATION_KEY
from qrules.semantics import registry

_STANDARD_FIELDS = {"input_qspec_map", "output_qspec", "_annotated", "allow_implicit_sharing"}


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
    if isinstance(value, torch.fx.Graph):
        # A vendor observer given the graph it observes (QNN's ConcatObserver): each
        # side has its own copy of one graph, so the copy's identity is no difference.
        return "<graph>"
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


_PROBES: Optional[list] = None


def _probe_observers() -> list:
    """Two observer pairs with fixed statistics (per-tensor activations with per-channel
    and with per-tensor weights), on which derive functions are compared."""
    global _PROBES
    if _PROBES is None:
        # torchao's classes through the observer registry (the adapter imports torchao).
        MinMaxObserver = adapter.resolve_entry(registry.OBSERVERS["minmax"])  # noqa: N806
        PerChannelMinMaxObserver = adapter.resolve_entry(  # noqa: N806
            registry.OBSERVERS["per_channel_minmax"])
        act = MinMaxObserver(dtype=torch.int8, qscheme=torch.per_tensor_affine)
        act(torch.tensor([-1.5, 0.25, 3.0]))
        per_channel = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.int8, quant_min=-127,
                                               quant_max=127,
                                               qscheme=torch.per_channel_symmetric)
        per_channel(torch.tensor([[0.5, -0.25], [2.0, 1.0], [-0.125, 0.0625]]))
        per_tensor = MinMaxObserver(dtype=torch.int8, quant_min=-127, quant_max=127,
                                    qscheme=torch.per_tensor_symmetric)
        per_tensor(torch.tensor([0.5, -0.75]))
        _PROBES = [[act, per_channel], [act, per_tensor]]
    return _PROBES


def _describe_derive_fn(fn: Any) -> Any:
    """A derive function by what it computes on fixed observers (its scales and zero
    points, with their dtypes), so two functions computing the same qparams compare
    equal whatever they are named (executorch's Arm bias function is a closure that no
    registry can name); by name when it cannot run on those observers."""
    try:
        out = []
        for observers in _probe_observers():
            scale, zero_point = fn(observers)
            out.append((tuple(scale.reshape(-1).tolist()), str(scale.dtype),
                        tuple(zero_point.reshape(-1).tolist()), str(zero_point.dtype)))
        return ("computes", tuple(out))
    except Exception:  # noqa: BLE001 (a vendor function with its own expectations)
        return _callable_name(fn)


def describe_spec(spec: Any) -> Optional[tuple]:
    """A torchao spec as a hashable, comparable tuple of (field, value) pairs."""
    if spec is None:
        return None
    if isinstance(spec, adapter.SharedQuantizationSpec):
        return (("kind", "shared"), ("with", _edge_name(spec.edge_or_node)))
    if isinstance(spec, adapter.DerivedQuantizationSpec):
        return (("kind", "derived"),
                ("from", tuple(_edge_name(e) for e in spec.derived_from)),
                ("fn", _describe_derive_fn(spec.derive_qparams_fn)),
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


def target_name(node: Node) -> str:
    if node.op in ("call_function", "call_method"):
        return str(getattr(node.target, "__name__", node.target)) if not isinstance(
            node.target, torch._ops.OpOverload) else str(node.target)
    return str(node.target)


def record_annotations(model: GraphModule) -> dict[str, NodeRecord]:
    """Every node of the graph, in order, with its annotation described."""
    out = {}
    for node in model.graph.nodes:
        out[node.name] = NodeRecord(
            node.name, node.op, target_name(node),
            _structure((node.args, node.kwargs)),
            describe_annotation(node.meta.get(ANNOTATION_KEY)),
            dict(node.meta[PROVENANCE_KEY]) if PROVENANCE_KEY in node.meta else None)
    return out


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
        fn = d["fn"]
        fn_text = (f"computing {fn[1]}" if isinstance(fn, tuple)
                   else fn.rsplit(".", 1)[-1])
        return (f"derived {dtype} {rng} {qscheme} ch_axis={d['ch_axis']} from ({sources}) "
                f"fn {fn_text}")
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
