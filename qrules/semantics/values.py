"""What spec and config expressions evaluate to: plain data, no torch.

The compiler (``qrules.compile``) turns these into torchao ``QuantizationSpec``
objects; everything before it works on these values only.

Each spec kind is one class here, carrying what the rest of the engine asks of it:
the edges it references (``refs``: shared with, or derived from), whether it shares
another edge's observer rather than having its own (``shares``), the channel axis it
quantizes along (``per_channel_axis``), its value for caching (``value_key``) and how
it becomes a torchao spec (``to_torchao``). Its constructor, which checks the
arguments written in a rule file, is declared next to the others in
``qrules.semantics.specs``. Adding a spec kind touches these two modules only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any, Callable, Optional, Protocol, Union

from qrules.span import Span
from qrules.syntax.ast import role_key_text

Number = Union[int, float]


@dataclass(frozen=True)
class ObserverRef:
    """A registered observer or fake-quantizer name with its keyword arguments."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    span: Optional[Span] = None

    def key(self) -> tuple:
        """Equality ignoring source spans, nested observers included."""
        return (self.name, tuple((k, v.key() if isinstance(v, ObserverRef) else v)
                                 for k, v in self.kwargs))


@dataclass(frozen=True)
class EdgeRef:
    """An edge of a match: ``input``, ``input[1]``, ``weight``, ``add.input[1]``, ``output``."""

    role: str
    step: Optional[str] = None
    index: Optional[Union[int, str]] = None
    span: Optional[Span] = None
    #: ``producer(input)``: the producer's output tensor rather than the edge into
    #: the match (torchao's ``SharedQuantizationSpec(node)`` vs ``((node, user))``).
    producer: bool = False

    def __str__(self) -> str:
        text = role_key_text(self.step, self.role, self.index)
        return f"producer({text})" if self.producer else text


class TorchaoFactory(Protocol):
    """What ``to_torchao`` builds with; the adapter passes one in, so this module
    never imports torch. The four spec classes are torchao's."""

    QuantizationSpec: Callable
    FixedQParamsQuantizationSpec: Callable
    DerivedQuantizationSpec: Callable
    SharedQuantizationSpec: Callable

    def torch_dtype(self, name: str) -> Any: ...
    def qscheme(self, name: str) -> Any: ...
    def observer_ctor(self, ref: ObserverRef, spec: Any = None) -> Callable: ...
    def derive_fn(self, name: str, kwargs: dict) -> Callable: ...


class SpecValue:
    """What every spec kind answers; the defaults fit a spec with its own observer."""

    #: Whether the spec shares another edge's observer (``same_as``) instead of
    #: having its own: sharing is followed through it, and it can form a circle.
    shares = False
    #: Whether it may only appear in a config: it names an edge of a match.
    in_config_only = False
    is_dynamic = False
    #: Whether it stands for the spec already on the edge next to a connected region
    #: (``neighbour()``): planning copies that spec instead of building one.
    copies_neighbour = False
    # Class attributes, not properties: the plan and validation read both of every
    # spec they place, and a kind that has them overrides them.
    #: The edges of the match the spec refers to.
    refs: tuple[EdgeRef, ...] = ()
    #: The axis it quantizes per channel along, if it is per channel.
    per_channel_axis: Optional[int] = None

    def with_name(self, name: str) -> "SpecValue":
        """The value of ``spec NAME = ...``: named after the first definition."""
        if getattr(self, "name", "") is None:
            return replace(self, name=name)  # type: ignore[type-var]
        return self

    def value_key(self) -> tuple:
        """Equality ignoring the spec's name and source span."""
        items = {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                 if f.name not in ("name", "span")}
        if isinstance(items.get("observer"), ObserverRef):
            items["observer"] = items["observer"].key()
        return (type(self).__name__, tuple(sorted(items.items())))

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        """The torchao spec; ``refs`` are the graph edges ``self.refs`` resolved to."""
        raise NotImplementedError


class RangedSpec(SpecValue):
    """A spec with qparams of its own: a dtype, bounds and a qscheme (every kind but
    sharing). Subclasses declare the fields ``dtype``, ``quant_min``, ``quant_max``,
    ``qscheme`` and, if they can be per channel, ``ch_axis``."""

    @cached_property   # validate asks it of every placed spec: worked out once
    def per_channel_axis(self) -> Optional[int]:
        if not (self.qscheme or "").startswith("per_channel"):  # type: ignore[attr-defined]
            return None
        return getattr(self, "ch_axis", None)

    def torchao_range(self, factory: TorchaoFactory) -> dict:
        """The keyword arguments every torchao spec with its own qparams takes."""
        return dict(dtype=factory.torch_dtype(self.dtype),  # type: ignore[attr-defined]
                    quant_min=self.quant_min, quant_max=self.quant_max,  # type: ignore
                    qscheme=None if self.qscheme is None  # type: ignore[attr-defined]
                    else factory.qscheme(self.qscheme))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class QuantSpec(RangedSpec):
    """Observed (or dynamic, or fake-quantized) affine/symmetric quantization."""

    dtype: str
    quant_min: Optional[Number]       # None with `range=none`: the observer's default
    quant_max: Optional[Number]
    qscheme: str                      # torch qscheme name, e.g. "per_tensor_affine"
    observer: ObserverRef
    ch_axis: Optional[int] = None
    is_dynamic: bool = False
    name: Optional[str] = None        # the spec's name, when it came from `spec NAME`
    span: Optional[Span] = None
    #: `per_block(axis=A, block=[...])`: the block shape, given to observers that want it.
    block_size: Optional[tuple[int, ...]] = None

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        return factory.QuantizationSpec(
            **self.torchao_range(factory), ch_axis=self.ch_axis, is_dynamic=self.is_dynamic,
            observer_or_fake_quant_ctr=factory.observer_ctor(self.observer, self))


@dataclass(frozen=True)
class FixedSpec(RangedSpec):
    dtype: str
    quant_min: Number
    quant_max: Number
    scale: float
    zero_point: int
    qscheme: str = "per_tensor_affine"
    name: Optional[str] = None
    span: Optional[Span] = None
    is_dynamic: bool = False

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        return factory.FixedQParamsQuantizationSpec(
            **self.torchao_range(factory), scale=self.scale, zero_point=self.zero_point,
            is_dynamic=self.is_dynamic)


@dataclass(frozen=True)
class MatchExpr:
    """A derive function argument read from each match (``arg(6)``, ``input[1].value``):
    the expression, evaluated when the spec is placed on a match."""

    expr: Any   # a qrules.syntax.ast expression


@dataclass(frozen=True)
class DerivedSpec(RangedSpec):
    dtype: str
    quant_min: Number
    quant_max: Number
    sources: tuple[EdgeRef, ...]
    derive_fn: str
    qscheme: Optional[str] = "per_tensor_symmetric"   # None: `qscheme=none`
    ch_axis: Optional[int] = None
    name: Optional[str] = None
    span: Optional[Span] = None
    #: `fn=NAME(key=EXPR, ...)`: the derive function's keyword arguments; a value read
    #: from the match is a MatchExpr until the spec is placed.
    fn_args: tuple[tuple[str, Any], ...] = ()

    @property
    def refs(self) -> tuple[EdgeRef, ...]:
        return self.sources

    @property
    def reads_match(self) -> bool:
        return any(isinstance(value, MatchExpr) for _, value in self.fn_args)

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        return factory.DerivedQuantizationSpec(
            **self.torchao_range(factory), derived_from=list(refs),
            derive_qparams_fn=factory.derive_fn(self.derive_fn, dict(self.fn_args)),
            ch_axis=self.ch_axis)


@dataclass(frozen=True)
class SharedSpec(SpecValue):
    """``same_as(edge)``: share the observer of another edge of the same match."""

    edge: EdgeRef
    span: Optional[Span] = None

    shares = True
    in_config_only = True

    @cached_property   # read wherever the spec is placed: one tuple per spec
    def refs(self) -> tuple[EdgeRef, ...]:
        return (self.edge,)

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        return factory.SharedQuantizationSpec(refs[0])


@dataclass(frozen=True)
class NeighbourSpec(SpecValue):
    """``neighbour()``: the spec on the edge next to a connected region (the output of
    a producer, or a user's input), copied as it is; ``neighbour(at_io=SPEC)``: SPEC
    when no neighbour has one but the region touches a taken graph input or output."""

    span: Optional[Span] = None
    at_io: Optional[SpecValue] = None

    in_config_only = True
    copies_neighbour = True

    def to_torchao(self, factory: TorchaoFactory, refs: tuple = ()) -> Any:
        raise TypeError("neighbour() is replaced by the neighbour's spec when planned")


#: The value of any spec kind.
Spec = SpecValue
