"""Spec constructors: ``affine(int8, -128..127, per_channel)`` and the rest.

``SPEC_KINDS`` declares every spec kind once: the constructor name a rule file
writes, the function that checks its arguments and builds the value, and the value
class (``qrules.semantics.values``), which carries the kind's behaviour everywhere
after. To add a spec kind: a value class there, a constructor and a row here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from qrules.semantics import registry
from qrules.semantics.expressions import NUMERIC, UNKNOWN
from qrules.semantics.references import ReferenceEvaluator
from qrules.semantics.spec_calls import derive_call, per_block, takes_block
from qrules.semantics.values import (
    DerivedSpec, EdgeRef, FixedSpec, NeighbourSpec, ObserverRef, QuantSpec, SharedSpec,
    SpecValue,
)
from qrules.syntax import ast


class SpecArguments:
    """Positional and keyword arguments of a spec constructor, with their checks."""

    def __init__(self, ev: ReferenceEvaluator, call: ast.Call, keywords: set[str],
                 flags: set[str]):
        self.ev, self.call, self.name = ev, call, call.func.id
        self.kwargs: dict[str, ast.Keyword] = {}
        for keyword in call.kwargs:
            if keyword.name not in keywords:
                allowed = ", ".join(sorted(keywords)) or "none"
                ev.report("QR218", f"`{self.name}` takes no keyword `{keyword.name}` "
                          f"(it takes: {allowed})", keyword.span)
            elif keyword.name in self.kwargs:
                ev.report("QR316", f"`{keyword.name}` is given twice", keyword.span)
            else:
                self.kwargs[keyword.name] = keyword
        self.dtype, self.range, self.flags = None, None, {}
        args = list(call.args)
        if not args:
            ev.report("QR317", f"`{self.name}` needs a dtype as its first argument, e.g. "
                      f"`{self.name}(int8, ...)`", call.span)
        else:
            self.dtype = self._dtype(args.pop(0))
        for arg in args:
            if isinstance(arg, ast.Range) and self.range is None:
                self.range = arg
            elif _flag_name(arg) in flags and _flag_name(arg) not in self.flags:
                self.flags[_flag_name(arg)] = arg
            else:
                expected = ", ".join(["a range `lo..hi`"] + [f"`{f}`" for f in sorted(flags)])
                ev.report("QR318", f"unexpected argument to `{self.name}`: expected "
                          f"{expected}", arg.span)

    def _dtype(self, expr) -> Optional[registry.DtypeInfo]:
        if isinstance(expr, ast.StoredAs):
            dtype, storage = self._dtype(expr.dtype), self._dtype(expr.storage)
            if dtype is None or storage is None:
                return None
            if dtype.is_float or storage.is_float or not (
                    storage.qmin <= dtype.qmin and dtype.qmax <= storage.qmax):
                self.ev.report("QR337", f"{storage.name} cannot hold {dtype.name}'s values "
                               f"({dtype.qmin}..{dtype.qmax}): the storage of `as` is a "
                               "wider integer dtype", expr.span)
                return None
            return dtype.stored_as(storage)
        if isinstance(expr, ast.Name) and expr.id in registry.DTYPES:
            return registry.DTYPES[expr.id]
        known = ", ".join(registry.DTYPES)
        what = f"unknown dtype `{expr.id}`" if isinstance(expr, ast.Name) else \
            "expected a dtype name"
        self.ev.report("QR309", f"{what} (known: {known})", expr.span)
        return None

    def bounds(self, symmetric: bool = False) -> tuple:
        """(quant_min, quant_max), checked against the dtype; (None, None) for
        ``range=none``, which leaves both to the observer (the dtype's range), as
        torchao's EmbeddingQuantizer spec does."""
        dtype = self.dtype
        open_range = self.kwargs.get("range")
        if open_range is not None:
            if not isinstance(open_range.value, ast.NoneLit):
                self.ev.report("QR319", "`range=` takes only `none` (no bounds); write "
                               "bounds as a positional range: `-128..127`",
                               open_range.value.span)
            elif self.range is not None:
                self.ev.report("QR319", "give either a range `lo..hi` or `range=none`, "
                               "not both", open_range.span)
            else:
                return None, None
        if self.range is None:
            if dtype is None:
                return UNKNOWN, UNKNOWN
            return dtype.qmin, dtype.qmax
        low = self.ev.value(self.range.low)
        high = self.ev.value(self.range.high)
        for side, expr in ((low, self.range.low), (high, self.range.high)):
            self.ev.expect(side, NUMERIC, expr, "a range bound must be a number")
        lo, hi = low.value, high.value
        if UNKNOWN in (lo, hi) or not all(isinstance(v, (int, float)) for v in (lo, hi)):
            return UNKNOWN, UNKNOWN
        if dtype is not None and not dtype.is_float and not (
                _integral(lo) and _integral(hi)):
            floats = " and ".join(repr(v) for v in (lo, hi) if not _integral(v))
            self.ev.report("QR301", f"{dtype.name} range bounds must be integers, not "
                           f"{floats} (`/` always gives a float: write `2**15 - 1`, not "
                           "`2**16/2 - 1`)", self.range.span)
        if lo > hi:
            self.ev.report("QR302", f"empty range: {lo} > {hi}", self.range.span)
        elif dtype is not None and (lo < dtype.qmin or hi > dtype.qmax):
            self.ev.report("QR303", f"{lo}..{hi} does not fit {dtype.label or dtype.name} "
                           f"({dtype.qmin}..{dtype.qmax})", self.range.span)
        elif symmetric and lo != -hi and lo != -hi - 1:
            self.ev.report("QR304", f"a symmetric spec normally has a range symmetric about 0 "
                           f"(such as {-hi}..{hi}); {lo}..{hi} is not", self.range.span)
        return lo, hi

    def axis(self) -> Optional[int]:
        flag = self.flags.get("per_channel")
        if flag is None:
            return None
        if isinstance(flag, ast.Name):
            return 0
        extra = [k for k in flag.kwargs if k.name != "axis"]
        if flag.args or extra:
            self.ev.report("QR318", "`per_channel` takes only `axis=N`", flag.span)
        axis_kw = next((k for k in flag.kwargs if k.name == "axis"), None)
        if axis_kw is None:
            return 0
        axis = self.ev.value(axis_kw.value)
        if axis.type == "int" and axis.value is UNKNOWN:
            return None  # an int parameter: checked when the ruleset is bound
        if axis.type != "int" or axis.value is UNKNOWN or axis.value < 0:
            self.ev.report("QR305", "the channel axis must be a non-negative integer",
                           axis_kw.value.span)
            return None
        return axis.value

    def observer(self, default: str) -> ObserverRef:
        keyword = self.kwargs.get("observer")
        if keyword is None:
            return ObserverRef(default, (), self.call.span)
        return self.ev.observer(keyword.value) or ObserverRef(default, (), keyword.span)

    def number(self, key: str):
        keyword = self.kwargs.get(key)
        if keyword is None:
            self.ev.report("QR317", f"`{self.name}` needs `{key}=`", self.call.span)
            return UNKNOWN, None
        typed = self.ev.value(keyword.value)
        self.ev.expect(typed, NUMERIC, keyword.value, f"`{key}` must be a number")
        if typed.type not in NUMERIC:  # reported above; a string here must not reach math
            return UNKNOWN, keyword.value
        return typed.value, keyword.value


def _flag_name(expr) -> Optional[str]:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id
    return None


def _quant(ev: ReferenceEvaluator, call: ast.Call, symmetric: bool):
    args = SpecArguments(ev, call, {"observer", "ch_axis", "range"},
                         {"per_channel", "dynamic", "per_block"})
    low, high = args.bounds(symmetric)
    axis = args.axis()
    block = per_block(ev, args.flags)
    if block is not None:
        axis = block[0]
    ch_axis = args.kwargs.get("ch_axis")
    if ch_axis is not None:
        # Recorded on a per-tensor spec too, as torchao's XNNPACK weight spec does
        # (`ch_axis=0` with per_tensor_symmetric); observers ignore it there.
        if "per_channel" in args.flags:
            ev.report("QR310", "give the axis once: `per_channel(axis=N)`", ch_axis.span)
        typed = ev.value(ch_axis.value)
        if typed.type != "int" or (typed.value is not UNKNOWN and typed.value < 0):
            ev.report("QR305", "the channel axis must be a non-negative integer",
                      ch_axis.value.span)
        elif typed.value is not UNKNOWN:
            axis = typed.value
    dynamic = "dynamic" in args.flags
    per_channel = "per_channel" in args.flags or "per_block" in args.flags
    if dynamic and per_channel:
        ev.report("QR320", "a dynamic spec is per-tensor; drop `per_channel`", call.span)
    default = ("placeholder" if dynamic else
               "per_channel_minmax" if per_channel else "minmax")
    granularity = "per_channel" if per_channel else "per_tensor"
    scheme = f"{granularity}_{'symmetric' if symmetric else 'affine'}"
    observer = args.observer(default)
    if "per_block" in args.flags and not takes_block(observer):
        ev.report("QR338", "a `per_block` spec needs an observer that takes the block size "
                  "(such as `observer=qnn_per_block_param`)", args.flags["per_block"].span)
    elif "per_block" not in args.flags and takes_block(observer):
        ev.report("QR338", f"observer `{observer.name}` takes a block size: give the spec "
                  "`per_block(axis=A, block=[...])`", observer.span or call.span)
    if args.dtype is None or low is UNKNOWN:
        return None
    return QuantSpec(args.dtype.name, low, high, scheme, observer, axis, dynamic,
                     span=call.span, block_size=None if block is None else block[1])


def _affine(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    return _quant(ev, call, symmetric=False)


def _symmetric(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    return _quant(ev, call, symmetric=True)


def _fixed(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    args = SpecArguments(ev, call, {"scale", "zero_point"}, {"symmetric", "dynamic"})
    low, high = args.bounds()
    scale, scale_expr = args.number("scale")
    zero_point, zp_expr = args.number("zero_point")
    scale_float = None if scale is UNKNOWN else _as_float(scale)
    if scale is not UNKNOWN and scale_expr is not None and (
            scale_float is None or not math.isfinite(scale_float) or scale_float <= 0):
        ev.report("QR306", f"a fixed scale must be a positive number, not {scale}",
                  scale_expr.span)
    if zero_point is not UNKNOWN and zp_expr is not None:
        if not _integral(zero_point):
            ev.report("QR306", "a zero point must be an integer", zp_expr.span)
        elif low is not UNKNOWN and not low <= zero_point <= high:
            ev.report("QR306", f"zero point {zero_point} is outside the range {low}..{high}",
                      zp_expr.span)
    if args.dtype is None or UNKNOWN in (low, scale, zero_point) or scale_float is None or \
            not (_integral(zero_point) or math.isfinite(zero_point)):
        return None  # reported above; inf, nan and huge numbers have no FixedSpec
    # `symmetric` / `dynamic` record what the activation spec the fixed one replaces
    # says (Arm's lookup-table inputs: int16 activations are symmetric).
    qscheme = "per_tensor_symmetric" if "symmetric" in args.flags else "per_tensor_affine"
    return FixedSpec(args.dtype.name, low, high, scale_float, int(zero_point), qscheme,
                     span=call.span, is_dynamic="dynamic" in args.flags)


def _integral(value) -> bool:
    """An integer, as integer arithmetic gives one: a float that happens to be whole
    (`2**16/2 - 1`, since `/` always gives a float) would be bound as a float."""
    return isinstance(value, int)


def _as_float(value) -> Optional[float]:
    try:
        return float(value)
    except OverflowError:  # an int past 1.8e308
        return None


def _float_qparams(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    args = SpecArguments(ev, call, {"observer", "range"}, {"per_channel"})
    low, high = args.bounds()
    axis = args.axis()
    if args.dtype is None or low is UNKNOWN:
        return None
    return QuantSpec(args.dtype.name, low, high, "per_channel_affine_float_qparams",
                     args.observer("per_channel_minmax"), 0 if axis is None else axis,
                     span=call.span)


def _derived(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    args = SpecArguments(ev, call, {"from", "fn", "ch_axis"}, {"per_channel", "affine"})
    low, high = args.bounds()
    axis = args.axis()
    ch_axis = args.kwargs.get("ch_axis")
    if ch_axis is not None:  # recorded on a per-tensor spec, as on `affine(...)`
        typed = ev.value(ch_axis.value)
        if "per_channel" in args.flags:
            ev.report("QR310", "give the axis once: `per_channel(axis=N)`", ch_axis.span)
        elif typed.type != "int" or (typed.value is not UNKNOWN and typed.value < 0):
            ev.report("QR305", "the channel axis must be a non-negative integer",
                      ch_axis.value.span)
        elif typed.value is not UNKNOWN:
            axis = typed.value
    sources: list[EdgeRef] = []
    source_kw = args.kwargs.get("from")
    if source_kw is None or not isinstance(source_kw.value, ast.ListLit) or not (
            source_kw.value.items):
        ev.report("QR313", "`derived` needs `from=[edge, ...]`, e.g. "
                  "`from=[input, weight]`", (source_kw or call).span)
    else:
        sources = [e for e in map(ev.edge, source_kw.value.items) if e is not None]
    fn_kw = args.kwargs.get("fn")
    fn, fn_args = "scale_product", ()
    if fn_kw is not None:
        fn, fn_args = derive_call(ev, fn_kw.value)
    if args.dtype is None or low is UNKNOWN or not sources:
        return None
    granularity = "per_channel" if "per_channel" in args.flags else "per_tensor"
    scheme = f"{granularity}_{'affine' if 'affine' in args.flags else 'symmetric'}"
    return DerivedSpec(args.dtype.name, low, high, tuple(sources), fn, scheme, axis,
                       span=call.span, fn_args=fn_args)


def _same_as(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    if len(call.args) != 1 or call.kwargs:
        ev.report("QR322", "`same_as` takes one edge: `same_as(input[0])`", call.span)
        return None
    edge = ev.edge(call.args[0])
    return None if edge is None else SharedSpec(edge, call.span)


def _neighbour(ev: ReferenceEvaluator, call: ast.Call) -> Optional[SpecValue]:
    if call.args or call.kwargs:
        ev.report("QR318", "`neighbour()` takes no arguments", call.span)
    return NeighbourSpec(call.span)


@dataclass(frozen=True)
class SpecKind:
    """A spec kind: ``name(...)`` in a rule file builds a ``value`` with ``construct``,
    which reports bad arguments and returns None when no value can be built.
    ``arguments`` and ``doc`` are its row in docs/language.md's constructor table
    (scripts/registry_tables.py writes it)."""

    name: str
    construct: Callable[[ReferenceEvaluator, ast.Call], Optional[SpecValue]]
    value: type
    arguments: str
    doc: str


_QUANT_ARGS = ("DTYPE, [lo..hi], [per_channel[(axis=N)]], [per_block([axis=N, ]block=[B, …])], "
               "[dynamic], [observer=OBS], [range=none]")

SPEC_KINDS: dict[str, SpecKind] = {kind.name: kind for kind in (
    SpecKind("affine", _affine, QuantSpec, _QUANT_ARGS,
             "affine (asymmetric) quantization: `per_tensor_affine` or `per_channel_affine`"),
    SpecKind("symmetric", _symmetric, QuantSpec, _QUANT_ARGS,
             "symmetric quantization: `per_tensor_symmetric` or `per_channel_symmetric`"),
    SpecKind("fixed", _fixed, FixedSpec,
             "DTYPE, [lo..hi], [symmetric], [dynamic], scale=S, zero_point=Z",
             "fixed qparams, no observer (torchao `FixedQParamsQuantizationSpec`); `scale` "
             "and `zero_point` are required; `per_tensor_affine` unless `symmetric`"),
    SpecKind("float_qparams", _float_qparams, QuantSpec,
             "DTYPE, [lo..hi], [per_channel[(axis=N)]], [observer=OBS], [range=none]",
             "per-channel affine with float qparams (`per_channel_affine_float_qparams`), "
             "for embedding tables; always per channel"),
    SpecKind("derived", _derived, DerivedSpec,
             "DTYPE, [lo..hi], [per_channel[(axis=N)]], [affine], [ch_axis=N], from=[EDGE, …], "
             "[fn=NAME[(key=EXPR, …)]]",
             "qparams computed from other edges' observers (torchao "
             "`DerivedQuantizationSpec`), such as bias = input scale × weight scale; "
             "`per_tensor_symmetric` or `per_channel_symmetric` (`_affine` with `affine`); "
             "`from` is required"),
    SpecKind("same_as", _same_as, SharedSpec, "EDGE",
             "share the observer of another edge of the same match (torchao "
             "`SharedQuantizationSpec`); only inside a [config](#configs) (QR321 in a `spec` "
             "definition)"),
    SpecKind("neighbour", _neighbour, NeighbourSpec, "no arguments",
             "the spec already on an edge next to a `region(connected ...)` match, copied "
             "(executorch Arm's shared-qspec clusters); the region does not match without "
             "one; only inside a config"),
)}


def construct(ev: ReferenceEvaluator, call: ast.Call, in_config: bool) -> Optional[SpecValue]:
    """The spec a constructor call builds, or None (reported)."""
    kind = SPEC_KINDS.get(call.func.id)
    if kind is None:
        known = ", ".join(sorted(SPEC_KINDS))
        ev.report("QR208", f"unknown spec constructor `{call.func.id}` (known: {known})",
                  call.func.span)
        return None
    if kind.value.in_config_only and not in_config:
        ev.report("QR321", f"`{kind.name}(...)` names an edge of a match, so it belongs in a "
                  "config, not in a spec definition", call.span)
        return None
    return kind.construct(ev, call)
