"""Names a .qrule file may use that are not defined in .qrule files.

Dtypes, observers and fake-quantizers, derive functions, transforms, annotation kinds,
facts and predicate functions are looked up here by name, never imported by a name a
rule file supplies. Built-in observers, derive functions, transforms and annotation
kinds name their implementation as a fixed ``module:attribute`` string that only
qrules' own adapter resolves (they need torch); facts and predicate functions carry
theirs (semantics.facts, torch-free). Python code adds entries explicitly with
``register_*`` and passes the implementation object itself. This module never
imports torch, so linting stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

# Facts and predicate functions are declared next to their implementations.
from qrules.semantics.facts import (
    ARGUMENT_KINDS, FACTS, PREDICATE_FUNCTIONS, RESULT_TYPES, Fact, PredicateFunction,
)

# ----------------------------------------------------------------------- dtypes


@dataclass(frozen=True)
class DtypeInfo:
    name: str
    qmin: Union[int, float]
    qmax: Union[int, float]
    is_float: bool = False
    #: How a rule file wrote it, when that is not ``name``: ``int4 as int8`` is
    #: ``int8`` (the storage) with int4's range.
    label: str = ""

    def stored_as(self, storage: "DtypeInfo") -> "DtypeInfo":
        """This dtype's values held in ``storage``: the storage's name, this range."""
        return DtypeInfo(storage.name, self.qmin, self.qmax, self.is_float,
                         f"{self.name} as {storage.name}")


DTYPES: dict[str, DtypeInfo] = {d.name: d for d in (
    DtypeInfo("int8", -128, 127),
    DtypeInfo("uint8", 0, 255),
    DtypeInfo("int16", -32768, 32767),
    DtypeInfo("uint16", 0, 65535),
    DtypeInfo("int32", -(2 ** 31), 2 ** 31 - 1),
    DtypeInfo("int4", -8, 7),
    DtypeInfo("int2", -2, 1),
    DtypeInfo("float8_e4m3fn", -448, 448, is_float=True),
    DtypeInfo("float8_e5m2", -57344, 57344, is_float=True),
)}

# ------------------------------------------------------------- implementation refs


@dataclass(frozen=True)
class Entry:
    """A registered name: what it is, which keyword arguments it takes, and its target.

    ``target`` is either a ``"module:attribute"`` string (built-ins only) or the
    object itself (entries registered from Python).
    """

    name: str
    kind: str
    target: Any
    kwargs: frozenset[str] = frozenset()
    doc: str = ""
    #: Transforms: keywords whose value is a list of op names (`ops=[add, mul]`); the
    #: function receives the frozenset of those ops' aten overloads.
    op_kwargs: frozenset[str] = frozenset()
    #: The docs table's text for the keyword arguments, when their names are not enough.
    kwargs_doc: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


_OBS = "torchao.quantization.pt2e.observer"
_FQ = "torchao.quantization.pt2e.fake_quantize"
_QNN = "qrules.adapter.qualcomm"
_OBS_KW = frozenset({"eps", "reduce_range", "averaging_constant", "bins", "factory_kwargs",
                     "is_dynamic"})
# A fake-quantizer's own copy of its spec's fields, as executorch's Arm QAT weights
# write them; `dtype` and `qscheme` are names ("qint8", "per_channel_symmetric").
_FQ_KW = frozenset({"observer", "eps", "averaging_constant", "reduce_range", "bins",
                    "ch_axis", "quant_min", "quant_max", "dtype", "qscheme"})

OBSERVERS: dict[str, Entry] = {e.name: e for e in (
    Entry("minmax", "observer", f"{_OBS}:MinMaxObserver", _OBS_KW,
          "running min/max of every value seen"),
    Entry("moving_average_minmax", "observer", f"{_OBS}:MovingAverageMinMaxObserver",
          _OBS_KW, "exponential moving average of min/max"),
    Entry("per_channel_minmax", "observer", f"{_OBS}:PerChannelMinMaxObserver",
          _OBS_KW | {"ch_axis"},
          "min/max per channel (needs a per_channel spec)"),
    Entry("moving_average_per_channel_minmax", "observer",
          f"{_OBS}:MovingAveragePerChannelMinMaxObserver", _OBS_KW,
          "moving-average min/max per channel"),
    Entry("histogram", "observer", f"{_OBS}:HistogramObserver", _OBS_KW,
          "histogram with an L2-optimal range search"),
    Entry("placeholder", "observer", f"{_OBS}:PlaceholderObserver", _OBS_KW,
          "records nothing; for dynamic quantization, qparams computed at run time"),
    Entry("fixed_qparams", "observer", f"{_OBS}:FixedQParamsObserver",
          frozenset({"scale", "zero_point"}),
          "fixed scale/zero point as an observer of an ordinary spec, which passes it "
          "its dtype, qscheme and range (`fixed(...)` specs need no observer)",
          extra={"wants": ("dtype", "qscheme", "quant_min", "quant_max")}),
    Entry("fake_quant", "fake_quant", f"{_FQ}:FakeQuantize", _FQ_KW,
          "QAT fake-quantizer wrapping an observer"),
    Entry("fused_moving_avg_fake_quant", "fake_quant",
          f"{_FQ}:FusedMovingAvgObsFakeQuantize", _FQ_KW,
          "QAT fake-quantizer fused with a moving-average observer"),
    # executorch's Qualcomm (QNN) observers, imported from executorch when built.
    Entry("qnn_per_channel_param", "observer", f"{_QNN}:PerChannelParamObserver",
          _OBS_KW | {"ch_axis"},
          "per-channel min/max of a parameter, calibrated once (executorch QNN's "
          "`PerChannelParamObserver`; needs executorch)"),
    Entry("qnn_per_block_param", "observer", f"{_QNN}:PerBlockParamObserver",
          frozenset({"eps"}),
          "symmetric min/max per block of a weight (executorch QNN's "
          "`PerBlockParamObserver`; the block size comes from the spec's `per_block`; "
          "needs executorch)", extra={"wants": ("block_size",)}),
    Entry("qnn_per_block_param_fake_quant", "fake_quant",
          f"{_QNN}:PerBlockParamFakeQuantize", frozenset({"eps"}),
          "QAT fake-quantizer of per-block weights (executorch QNN's "
          "`PerBlockParamFakeQuantize`; gets the spec's fields and `per_block` size; "
          "needs executorch)",
          extra={"wants": ("dtype", "quant_min", "quant_max", "qscheme", "ch_axis",
                           "block_size")}),
    Entry("qnn_concat", "observer", f"{_QNN}:ConcatObserver", _OBS_KW,
          "min/max over every input of a cat, written back to the inputs' observers "
          "(executorch QNN's `ConcatObserver`; gets the graph and the annotated node's "
          "name; needs executorch)", extra={"wants": ("graph", "node_name")}),
)}

#: How a derived spec computes its qparams from the edges it is derived from.
DERIVE_FUNCTIONS: dict[str, Entry] = {e.name: e for e in (
    Entry("scale_product", "derive", "qrules.passes.derive:scale_product", frozenset(),
          "scale = product of the source scales, zero point 0 (conv/linear bias)"),
    Entry("scale_div", "derive", "qrules.passes.derive:scale_div", frozenset({"divisor"}),
          "scale = the source's scale / `divisor`, its zero point kept (the output of a "
          "division by a constant: `fn=scale_div(divisor=arg(1))`)"),
    Entry("qnn_bias", "derive", "qrules.adapter.qualcomm:qnn_bias", frozenset({"groups"}),
          "executorch QNN's bias: input scale × weight scale per channel, repeated "
          "`groups` times (grouped transposed convs), for per-block weights the maximum "
          "over each channel's blocks / the observer's `num_steps`; zero point 0"),
)}

#: Graph transforms run before annotation (Quantizer.transform_for_annotation).
TRANSFORMS: dict[str, Entry] = {e.name: e for e in (
    Entry("scalars_to_attrs", "transform", "qrules.passes.transforms:scalars_to_attrs",
          frozenset({"float_only", "ops"}),
          "turn Python scalar operands of those ops into graph constants; with "
          "`float_only`, only in ops whose result is floating point",
          op_kwargs=frozenset({"ops"}),
          kwargs_doc="`float_only` (bool, default true), `ops` (op names; default `add`, "
                     "`mul`, `sub`, `div` `.Tensor` overloads)"),
    Entry("cortex_m_passes", "transform",
          "qrules.adapter.executorch:cortex_m_transform_for_annotation", frozenset(),
          "executorch's CortexMPassManager.transform_for_annotation: scalars to "
          "constants, hardswish clamps, mean decomposed, matmul to bmm, shared "
          "constants deduplicated (needs executorch)"),
    Entry("qnn_passes", "transform",
          "qrules.adapter.executorch:qnn_transform_for_annotation", frozenset(),
          "executorch's QnnPassManager `transform_for_annotation_pipeline` for HTP "
          "(QnnQuantizer's `transform_for_annotation`); needs executorch"),
    Entry("qnn_conv_bn_bias", "transform", "qrules.adapter.executorch:qnn_conv_bn_bias",
          frozenset(),
          "executorch's QnnQuantizer under QAT: a zero bias for every conv whose only user "
          "is a batch norm and that has none (conv_bn.py `_materialize_conv_bias`), so the "
          "QAT fold quantizes the folded bias; needs executorch"),
    # QnnQuantizer.annotate ends by clamping infinite constants to each consumer's
    # quantized range, read from the annotations just written.
    Entry("qnn_replace_inf", "transform", "qrules.adapter.executorch:qnn_replace_inf",
          frozenset(),
          "executorch's `QnnQuantizer._replace_inf`: scalar arguments and stored constants "
          "beyond float16's range become +- their consumer's quantized range; runs "
          "`after annotate`; needs executorch", extra={"after_annotate": True}),
    # Arm's TOSAQuantizer decomposes, before annotating, only the ops it quantizes:
    # the transform reads the ruleset's own plan of the graph (`reads_plan`).
    Entry("arm_decompositions", "transform", "qrules.adapter.executorch:arm_decompositions",
          frozenset({"profile"}),
          "executorch's Arm pass manager `transform_for_annotation_pipeline` (TOSAQuantizer's "
          "`transform_for_annotation`) on the nodes the ruleset quantizes; needs executorch",
          kwargs_doc="`profile` (a TOSA specification string, default `\"TOSA-1.0+INT\"`)",
          extra={"reads_plan": True}),
)}

#: Annotation classes rules may write (`annotation NAME`); the default is torchao's
#: QuantizationAnnotation. ``extra["pattern_output_field"]`` names a boolean field set
#: on the last node of a match that quantized its inputs (X86's
#: `_is_output_of_quantized_pattern`, which X86InductorQuantizer and its lowering read).
ANNOTATION_KINDS: dict[str, Entry] = {e.name: e for e in (
    Entry("x86_inductor", "annotation",
          "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer:"
          "_X86InductorQuantizationAnnotation",
          doc="X86InductorQuantizer's annotation, with _is_output_of_quantized_pattern",
          extra={"pattern_output_field": "_is_output_of_quantized_pattern"}),
    # The Arm lowering reads more than the annotation: whether the quantizer took a node
    # and quantized it (meta["custom"]) and whether its own decompositions may touch it.
    Entry("arm", "annotation", "torchao.quantization.pt2e.quantizer:QuantizationAnnotation",
          doc="torchao's annotation, plus the node metadata executorch's Arm lowering "
              "reads (`custom[\"_arm_annotation_info\"]`, `_arm_disallow_tfa`), as "
              "TOSAQuantizer writes them; needs executorch",
          extra={"node_marker": "qrules.adapter.executorch:mark_arm_nodes"}),
)}

#: Names a config entry key or a same_as(...) may use for the edges of a match.
CONFIG_ROLES = frozenset({"input", "weight", "bias", "output"})

#: Scope selector kinds: where a scope or region takes its module from.
SCOPE_KINDS = frozenset({"module_type", "module_name", "operator", "node_name"})

PARAM_TYPES = frozenset({"bool", "int", "float", "str", "enum"})

#: Operator namespaces a backend library defines with ``torch.library`` when it is
#: imported, and the module that does it: an op of such a namespace (``qnn.qrule``'s
#: ``qnn_custom.hadamard_transform``) is resolved after importing that module once. A
#: fixed table: a rule file names ops, never the modules to import.
OP_LIBRARIES: dict[str, str] = {
    "qnn_custom": "executorch.backends.qualcomm.builders.custom_ops",
}


#: aten overloads none of whose tensors can be an integer one when the output is a
#: float tensor: a conv checks that its input, weight and bias share one dtype (in
#: eager and fake-tensor runs alike), and these unary ops give an integer output for an
#: integer input, or fail. The planners do not test the values bound to the roles of
#: such a head, which they found float already (docs/semantics.md, "Float only"). Not
#: here: ops that promote (`sigmoid`, `add`) or take a dtype (`mean`), and those that
#: accept an integer tensor beside floats: conv_transpose and the `padding` convs (an
#: integer bias), linear (under fake tensors). tests/engine/test_same_dtype_ops.py
#: holds torch to this.
SAME_DTYPE_OVERLOADS = frozenset(f"aten.{name}.default" for name in (
    "conv1d", "conv2d", "conv3d", "relu", "relu_", "hardtanh", "hardtanh_", "relu6",
    "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "gelu", "gelu_", "silu",
    "silu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "max_pool1d", "max_pool2d",
    "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "dropout", "clone"))

#: Tensor arguments whose rank their op bounds from below: overload -> {argument
#: position: the least rank torch accepts there}. A per-channel spec on such an
#: argument along an axis under that rank holds on any graph torch could run, so
#: validation (QR604) reads the rank of the other tensors only: a conv's weight has
#: its exact rank (d + 2), linear's at least one. tests/engine/test_argument_ranks.py
#: holds torch to this.
ARGUMENT_MIN_RANKS: dict[str, dict[int, int]] = {
    **{f"aten.conv{d}d.{overload}": {1: d + 2} for d in (1, 2, 3)
       for overload in ("default", "padding")},
    "aten.conv_transpose1d.default": {1: 3}, "aten.conv_transpose2d.input": {1: 4},
    "aten.conv_transpose3d.input": {1: 5}, "aten.linear.default": {1: 1},
}


# ------------------------------------------------------------- Python extension


def _register(table: dict, entry, replace: bool, implementation: Any):
    if entry.name in table and not replace:
        raise ValueError(f"{entry.kind} {entry.name!r} is already registered; "
                         "pass replace=True to replace it")
    if not entry.name.isidentifier():
        raise ValueError(f"{entry.name!r} is not a valid .qrule name")
    if not callable(implementation):
        raise ValueError(f"{entry.kind} {entry.name!r}: {implementation!r} is not callable")
    table[entry.name] = entry
    return entry


#: What an observer entry may ask the adapter to pass its constructor (``wants``), beyond
#: the keywords a rule writes: the spec's own fields (dtype and qscheme as torch objects;
#: ``block_size`` the tuple of ``per_block``), and the graph and name of the node whose
#: annotation holds the spec (executorch QNN's ConcatObserver finds its cat by name).
OBSERVER_WANTS = frozenset({"dtype", "qscheme", "quant_min", "quant_max", "ch_axis",
                            "block_size", "graph", "node_name"})


def register_observer(name: str, factory: Callable, kwargs: Optional[set[str]] = None,
                      *, fake_quant: bool = False, wants: tuple[str, ...] = (),
                      replace: bool = False) -> Entry:
    """Make ``name`` usable as ``observer=name(...)`` in .qrule files.

    ``factory`` is the torchao observer or fake-quantize class (anything with
    ``with_args``); ``kwargs`` lists the keyword arguments a rule may pass; ``wants``
    (among ``OBSERVER_WANTS``) what the adapter passes it when it builds the spec.
    """
    unknown = sorted(set(wants) - OBSERVER_WANTS)
    if unknown:
        raise ValueError(f"observer {name!r}: wants {unknown} are not among "
                         f"{sorted(OBSERVER_WANTS)}")
    kind = "fake_quant" if fake_quant else "observer"
    extra = {"wants": tuple(wants)} if wants else {}
    return _register(OBSERVERS, Entry(name, kind, factory, frozenset(kwargs or ()),
                                      extra=extra), replace, factory)


def register_transform(name: str, function: Callable, kwargs: Optional[set[str]] = None,
                       *, op_kwargs: Optional[set[str]] = None, reads_plan: bool = False,
                       after_annotate: bool = False, replace: bool = False) -> Entry:
    """Make ``transform name(...)`` usable; ``function(graph_module, **kwargs)``.

    ``op_kwargs`` (a subset of ``kwargs``) take a list of op names in the ruleset
    (``ops=[add, mul]``); the function gets the frozenset of their aten overloads.
    With ``reads_plan``, the function also gets ``quantized``: the set of nodes the
    ruleset would quantize on the graph as it stands (a backend that decomposes only
    what its quantizer quantizes, as Arm's does). With ``after_annotate``, it rewrites
    the annotated graph instead (``transform name after annotate``), reading the
    annotations ``annotate`` wrote.
    """
    op_kwargs = frozenset(op_kwargs or ())
    if not op_kwargs <= frozenset(kwargs or ()):
        raise ValueError(f"op_kwargs {sorted(op_kwargs)} must be among kwargs")
    extra = {"reads_plan": True} if reads_plan else {}
    if after_annotate:
        extra["after_annotate"] = True
    return _register(TRANSFORMS, Entry(name, "transform", function, frozenset(kwargs or ()),
                                       op_kwargs=op_kwargs, extra=extra), replace, function)


def register_annotation_kind(name: str, annotation_class: type,
                             pattern_output_field: Optional[str] = None, *,
                             node_marker: Optional[Callable] = None,
                             replace: bool = False) -> Entry:
    """Make ``annotation name`` usable: rules then write ``annotation_class`` (a
    QuantizationAnnotation subclass) objects; ``pattern_output_field``, if given, is
    set True on the last node of every match that quantized its inputs.
    ``node_marker(graph_module, quantized)``, if given, is called after each write with
    ``quantized``: every node the ruleset annotated -> whether its rule quantizes (a
    `none` rule does not), to write the metadata a backend's lowering reads."""
    extra = {"pattern_output_field": pattern_output_field} if pattern_output_field else {}
    if node_marker is not None:
        extra["node_marker"] = node_marker
    return _register(ANNOTATION_KINDS, Entry(name, "annotation", annotation_class,
                                             extra=extra), replace, annotation_class)


def register_derive_function(name: str, function: Callable, kwargs: Optional[set[str]] = None,
                             *, replace: bool = False) -> Entry:
    """Make ``derived(..., fn=name)`` usable; ``function(observers, **kwargs) -> (scale,
    zp)``; ``kwargs`` lists the keyword arguments a rule may pass (``fn=name(k=...)``)."""
    return _register(DERIVE_FUNCTIONS, Entry(name, "derive", function,
                                             frozenset(kwargs or ())), replace, function)


def register_fact(name: str, type: str, implementation: Callable, *, doc: str = "",
                  reads_annotations: bool = False, replace: bool = False) -> Fact:
    """Make ``ROLE.name`` usable in predicates; ``implementation(role) -> value``.

    ``role.node`` is the fx node of the argument (None for a Python constant),
    ``role.tensor`` its ``meta["val"]``, ``role.value`` the argument itself. Set
    ``reads_annotations`` when the value depends on annotations made so far (the
    result is then never cached across matches)."""
    if type not in RESULT_TYPES:
        raise ValueError(f"fact {name!r}: type {type!r} is not one of {sorted(RESULT_TYPES)}")
    fact = Fact(name, type, doc, implementation, reads_annotations)
    return _register(FACTS, fact, replace, implementation)


def register_predicate_function(name: str, arg_kinds: tuple[str, ...], result: str,
                                implementation: Callable, *, doc: str = "",
                                reads_annotations: bool = False, node_only: bool = False,
                                replace: bool = False) -> PredicateFunction:
    """Make ``name(ARGS)`` usable in predicates; ``implementation(ctx, *values)``.

    ``arg_kinds`` are among ``ARGUMENT_KINDS`` (the last may end in ``...``: one or more);
    ``ctx.node`` is the matched node (``node_only``: the function needs it, so regions
    may not call it)."""
    kinds = tuple(arg_kinds)
    bad = [k for k in kinds if k.removesuffix("...") not in ARGUMENT_KINDS
           or (k.endswith("...") and k is not kinds[-1])]
    if bad or result not in RESULT_TYPES:
        raise ValueError(f"predicate function {name!r}: argument kinds are among "
                         f"{sorted(ARGUMENT_KINDS)} (the last may end in '...'), the result "
                         f"among {sorted(RESULT_TYPES)}")
    function = PredicateFunction(name, kinds, result, doc, implementation,
                                 reads_annotations, node_only)
    return _register(PREDICATE_FUNCTIONS, function, replace, implementation)
