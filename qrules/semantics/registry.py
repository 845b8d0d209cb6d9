"""Names a .qrule file may use that are not defined in .qrule files.

Dtypes, observers and fake-quantizers, derive functions, transforms and predicate
functions are looked up here by name, never imported by a name a rule file supplies.
Built-in entries name their implementation as a fixed ``module:attribute`` string
that only qrules' own adapter resolves; Python code adds entries explicitly with
``register_*`` and passes the implementation object itself. This module never
imports torch, so linting stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

# ----------------------------------------------------------------------- dtypes


@dataclass(frozen=True)
class DtypeInfo:
    name: str
    qmin: Union[int, float]
    qmax: Union[int, float]
    is_float: bool = False


DTYPES: dict[str, DtypeInfo] = {d.name: d for d in (
    DtypeInfo("int8", -128, 127),
    DtypeInfo("uint8", 0, 255),
    DtypeInfo("int16", -32768, 32767),
    DtypeInfo("uint16", 0, 65535),
    DtypeInfo("int32", -(2 ** 31), 2 ** 31 - 1),
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
    extra: dict = field(default_factory=dict, compare=False, hash=False)


_OBS = "torchao.quantization.pt2e.observer"
_FQ = "torchao.quantization.pt2e.fake_quantize"
_OBS_KW = frozenset({"eps", "reduce_range", "averaging_constant", "bins", "factory_kwargs",
                     "is_dynamic"})
_FQ_KW = frozenset({"observer", "eps", "averaging_constant", "reduce_range", "bins"})

OBSERVERS: dict[str, Entry] = {e.name: e for e in (
    Entry("minmax", "observer", f"{_OBS}:MinMaxObserver", _OBS_KW,
          "running min/max of every value seen"),
    Entry("moving_average_minmax", "observer", f"{_OBS}:MovingAverageMinMaxObserver",
          _OBS_KW, "exponential moving average of min/max"),
    Entry("per_channel_minmax", "observer", f"{_OBS}:PerChannelMinMaxObserver", _OBS_KW,
          "min/max per channel (needs a per_channel spec)"),
    Entry("moving_average_per_channel_minmax", "observer",
          f"{_OBS}:MovingAveragePerChannelMinMaxObserver", _OBS_KW,
          "moving-average min/max per channel"),
    Entry("histogram", "observer", f"{_OBS}:HistogramObserver", _OBS_KW,
          "histogram with an L2-optimal range search"),
    Entry("placeholder", "observer", f"{_OBS}:PlaceholderObserver", _OBS_KW,
          "records nothing; for dynamic quantization, qparams computed at run time"),
    Entry("fixed_qparams", "observer", f"{_OBS}:FixedQParamsObserver", frozenset(),
          "fixed scale/zero point (used by fixed(...) specs)"),
    Entry("fake_quant", "fake_quant", f"{_FQ}:FakeQuantize", _FQ_KW,
          "QAT fake-quantizer wrapping an observer"),
    Entry("fused_moving_avg_fake_quant", "fake_quant",
          f"{_FQ}:FusedMovingAvgObsFakeQuantize", _FQ_KW,
          "QAT fake-quantizer fused with a moving-average observer"),
)}

#: How a derived spec computes its qparams from the edges it is derived from.
DERIVE_FUNCTIONS: dict[str, Entry] = {e.name: e for e in (
    Entry("scale_product", "derive", "qrules.passes.derive:scale_product", frozenset(),
          "scale = product of the source scales, zero point 0 (conv/linear bias)"),
)}

#: Graph transforms run before annotation (Quantizer.transform_for_annotation).
TRANSFORMS: dict[str, Entry] = {e.name: e for e in (
    Entry("scalars_to_attrs", "transform", "qrules.passes.transforms:scalars_to_attrs",
          frozenset({"float_only", "ops"}),
          "turn Python scalar operands of add/mul/sub/div (or of `ops`) into graph constants",
          op_kwargs=frozenset({"ops"})),
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
)}

# --------------------------------------------------------------------- predicates
# A predicate is an expression over the facts of one matched step. Facts are either
# attributes of a role (``weight.rank``) or functions (``is_float(input)``).

#: Attributes of a role value inside a predicate: name -> result type.
FACT_ATTRIBUTES: dict[str, str] = {
    "rank": "int", "dtype": "str", "shape": "list", "numel": "int", "is_float": "bool",
    "is_node": "bool", "is_scalar": "bool", "value": "any", "users": "int",
    "annotated": "bool", "quantized": "bool", "is_constant": "bool",
}

#: Predicate functions: name -> (argument kinds, result type).
PREDICATE_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "abs": (("any",), "number"),
    "is_constant": (("role",), "bool"),
    "is_float": (("role",), "bool"),
    "is_node": (("role",), "bool"),
    "rank": (("role",), "int"),
    "quantized": (("role",), "bool"),
    "annotated": (("role",), "bool"),
    "arg": (("int",), "any"),
    "num_users": ((), "int"),
    "any_user": (("op",), "bool"),
    "all_users": (("op",), "bool"),
    "any_user_quantizable": ((), "bool"),
    "module_type": ((), "str"),
    "module_name": ((), "str"),
    # The node was traced from one of these callables: a module class
    # (`torch.nn.Conv2d`), a function (`torch.conv2d`, `operator.add`) or a tensor
    # method (`add_`); torchao's source partitions, for strict and non-strict exports.
    "source": (("str...",), "bool"),
    # Reduce a list (`quantized(input[*])`, `input[*].dtype`).
    "all": (("list",), "bool"),
    "any": (("list",), "bool"),
}

#: Predicate functions that read the step's node itself rather than a role; a region
#: (many nodes) has no such node, so they are not available in its predicates.
NODE_PREDICATE_FUNCTIONS = frozenset({"arg", "num_users", "any_user", "all_users",
                                      "any_user_quantizable", "module_type", "module_name"})

#: Names a config entry key or a same_as(...) may use for the edges of a match.
CONFIG_ROLES = frozenset({"input", "weight", "bias", "output"})

#: Scope selector kinds: where a scope or region takes its module from.
SCOPE_KINDS = frozenset({"module_type", "module_name", "operator"})

PARAM_TYPES = frozenset({"bool", "int", "float", "str", "enum"})


# ------------------------------------------------------------- Python extension


def _register(table: dict[str, Entry], entry: Entry, replace: bool) -> Entry:
    if entry.name in table and not replace:
        raise ValueError(f"{entry.kind} {entry.name!r} is already registered; "
                         "pass replace=True to replace it")
    if not entry.name.isidentifier():
        raise ValueError(f"{entry.name!r} is not a valid .qrule name")
    table[entry.name] = entry
    return entry


def register_observer(name: str, factory: Callable, kwargs: Optional[set[str]] = None,
                      *, fake_quant: bool = False, replace: bool = False) -> Entry:
    """Make ``name`` usable as ``observer=name(...)`` in .qrule files.

    ``factory`` is the torchao observer or fake-quantize class (anything with
    ``with_args``); ``kwargs`` lists the keyword arguments a rule may pass.
    """
    kind = "fake_quant" if fake_quant else "observer"
    return _register(OBSERVERS, Entry(name, kind, factory, frozenset(kwargs or ())), replace)


def register_transform(name: str, function: Callable, kwargs: Optional[set[str]] = None,
                       *, op_kwargs: Optional[set[str]] = None,
                       replace: bool = False) -> Entry:
    """Make ``transform name(...)`` usable; ``function(graph_module, **kwargs)``.

    ``op_kwargs`` (a subset of ``kwargs``) take a list of op names in the ruleset
    (``ops=[add, mul]``); the function gets the frozenset of their aten overloads.
    """
    op_kwargs = frozenset(op_kwargs or ())
    if not op_kwargs <= frozenset(kwargs or ()):
        raise ValueError(f"op_kwargs {sorted(op_kwargs)} must be among kwargs")
    return _register(TRANSFORMS, Entry(name, "transform", function, frozenset(kwargs or ()),
                                       op_kwargs=op_kwargs), replace)


def register_annotation_kind(name: str, annotation_class: type,
                             pattern_output_field: Optional[str] = None, *,
                             replace: bool = False) -> Entry:
    """Make ``annotation name`` usable: rules then write ``annotation_class`` (a
    QuantizationAnnotation subclass) objects; ``pattern_output_field``, if given, is
    set True on the last node of every match that quantized its inputs."""
    extra = {"pattern_output_field": pattern_output_field} if pattern_output_field else {}
    return _register(ANNOTATION_KINDS, Entry(name, "annotation", annotation_class,
                                             extra=extra), replace)


def register_derive_function(name: str, function: Callable, *, replace: bool = False) -> Entry:
    """Make ``derived(..., fn=name)`` usable; ``function(observers) -> (scale, zp)``."""
    return _register(DERIVE_FUNCTIONS, Entry(name, "derive", function), replace)
