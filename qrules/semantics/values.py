"""What spec and config expressions evaluate to: plain data, no torch.

The compiler (``qrules.compile``) turns these into torchao ``QuantizationSpec``
objects; everything before it works on these values only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from qrules.span import Span

Number = Union[int, float]


@dataclass(frozen=True)
class ObserverRef:
    """A registered observer or fake-quantizer name with its keyword arguments."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    span: Optional[Span] = None

    def kwarg(self, key: str, default=None):
        return dict(self.kwargs).get(key, default)


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
        text = f"{self.step}.{self.role}" if self.step else self.role
        text = text if self.index is None else f"{text}[{self.index}]"
        return f"producer({text})" if self.producer else text

    def key(self) -> tuple:
        return (self.step, self.role, self.index)


@dataclass(frozen=True)
class QuantSpec:
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


@dataclass(frozen=True)
class FixedSpec:
    dtype: str
    quant_min: Number
    quant_max: Number
    scale: float
    zero_point: int
    qscheme: str = "per_tensor_affine"
    name: Optional[str] = None
    span: Optional[Span] = None


@dataclass(frozen=True)
class DerivedSpec:
    dtype: str
    quant_min: Number
    quant_max: Number
    sources: tuple[EdgeRef, ...]
    derive_fn: str
    qscheme: str = "per_tensor_symmetric"
    ch_axis: Optional[int] = None
    name: Optional[str] = None
    span: Optional[Span] = None


@dataclass(frozen=True)
class SharedSpec:
    """``same_as(edge)``: share the observer of another edge of the same match."""

    edge: EdgeRef
    span: Optional[Span] = None


Spec = Union[QuantSpec, FixedSpec, DerivedSpec, SharedSpec]
