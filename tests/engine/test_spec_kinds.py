"""Spec kinds are declared once (``qrules.semantics.specs.SPEC_KINDS``) and carry their
behaviour (``qrules.semantics.values``): a kind added there alone is checked by lint,
placed on a match, validated and built into a torchao spec, with no other module
knowing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from qrules.api import load_text
from qrules.semantics import specs
from qrules.semantics.values import SpecValue
from qrules.span import Span

HEADER = 'ruleset kinds version "1.0"\n'


def test_every_kind_builds_its_own_value():
    for kind in specs.SPEC_KINDS.values():
        assert issubclass(kind.value, SpecValue), kind.name
        assert kind.value.to_torchao is not SpecValue.to_torchao, kind.name


@dataclass(frozen=True)
class _HalfScale(SpecValue):
    """A test kind: fixed qparams, scale 1/2**bits of the range."""

    dtype: str
    quant_min: int
    quant_max: int
    name: Optional[str] = None
    span: Optional[Span] = None

    def to_torchao(self, factory, refs=()):
        return factory.FixedQParamsQuantizationSpec(
            dtype=factory.torch_dtype(self.dtype), scale=1.0 / (self.quant_max + 1),
            zero_point=0, quant_min=self.quant_min, quant_max=self.quant_max,
            qscheme=factory.qscheme("per_tensor_affine"))


def _half_scale(ev, call):
    args = specs.SpecArguments(ev, call, set(), set())
    low, high = args.bounds()
    if args.dtype is None or not isinstance(low, int):
        return None
    return _HalfScale(args.dtype.name, low, high, span=call.span)


class _Sigmoid(torch.nn.Module):
    def forward(self, x):
        return torch.sigmoid(x)


def test_a_kind_declared_in_one_table_runs_end_to_end(monkeypatch):
    monkeypatch.setitem(specs.SPEC_KINDS, "half_scale",
                        specs.SpecKind("half_scale", _half_scale, _HalfScale, "DTYPE",
                                       "fixed qparams, scale 1/2"))
    text = HEADER + ("spec out = half_scale(uint8, 0..255)\n"
                     "rule sigmoid: sigmoid : { input: affine(uint8, 0..255), output: out }\n")
    gm = torch.export.export(_Sigmoid().eval(), (torch.randn(2, 3),)).module()
    load_text(text, "kinds.qrule").quantizer().annotate(gm)
    node = next(n for n in gm.graph.nodes if n.op == "call_function")
    spec = node.meta["quantization_annotation"].output_qspec
    assert (type(spec).__name__, spec.scale, spec.zero_point) == (
        "FixedQParamsQuantizationSpec", 1 / 256, 0)


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x)


def test_a_derived_spec_without_a_qscheme():
    # `qscheme=none`: the torchao spec records none (executorch's per-tensor bias);
    # without it, per_tensor_symmetric.
    from tests.models import export

    for keyword, qscheme in ((", qscheme=none", None), ("", torch.per_tensor_symmetric)):
        text = (HEADER + "spec bias = derived(int32, from=[input, weight]" + keyword + ")\n"
                "rule linear: linear : { input: affine(int8), weight: symmetric(int8), "
                "bias: bias, output: affine(int8) }\n")
        graph = export(_Linear().eval(), (torch.randn(2, 4),))
        load_text(text, "t.qrule").quantizer().annotate(graph)
        (linear,) = [n for n in graph.graph.nodes if n.op == "call_function"]
        bias = linear.meta["quantization_annotation"].input_qspec_map[linear.args[2]]
        assert bias.qscheme is qscheme and bias.dtype == torch.int32
