"""`amend` rules: match nodes earlier rules took, fill only edges without a spec."""

from __future__ import annotations

import pytest
import torch

from qrules.api import load_text
from qrules.checking import check_ruleset_text
from tests.models import export

TEXT = '''ruleset amend_demo version "1.0"
spec act = affine(int8, -128..127)
spec act2 = affine(uint8, 0..255)
# int8 in: the pool's input gets a spec, its output is left to the next op.
rule pool: max_pool2d : { input: act }
rule conv: conv2d : { input: act, output: act }
phase output {
  # X86's output pass: an op whose input is quantized gets an int8 output too.
  rule int8_out amend: max_pool2d : { input: act2, output: same_as(input) }
  # Fills nothing on conv: both its edges have specs already.
  rule conv_again amend: conv2d : { input: act2, output: act2 }
}
'''


class ConvPool(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)

    def forward(self, x):
        return torch.nn.functional.max_pool2d(self.conv(x), 2)


def test_amend_rules_parse_and_check_clean():
    assert check_ruleset_text(TEXT, "amend.qrule").diagnostics == ()


def test_amend_fills_only_empty_edges():
    gm = export(ConvPool().eval(), (torch.randn(1, 3, 8, 8),))
    quantizer = load_text(TEXT, "amend.qrule").quantizer()
    quantizer.annotate(gm)
    nodes = {n.name: n for n in gm.graph.nodes}
    pool, conv = nodes["max_pool2d"], nodes["conv2d"]
    pool_ann = pool.meta["quantization_annotation"]
    (pool_input_spec,) = pool_ann.input_qspec_map.values()
    assert pool_input_spec.dtype == torch.int8          # kept from `pool`, not act2
    assert type(pool_ann.output_qspec).__name__ == "SharedQuantizationSpec"  # filled
    assert pool.meta["qrules"]["rule"] == "pool"
    assert pool.meta["qrules"]["amended_by"] == ["int8_out"]
    conv_ann = conv.meta["quantization_annotation"]
    assert conv_ann.output_qspec.dtype == torch.int8 and "amended_by" not in conv.meta["qrules"]


MARKS = '''ruleset marks version "1.0"
spec act = affine(int8, -128..127)
# Owns the relu before it and its weight: both only marked.
rule conv: conv2d : { input: act } takes(conv2d, input, weight)
phase fill {
  rule relu_in amend: relu : { input: act }
}
'''


class ReluConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)

    def forward(self, x):
        return self.conv(torch.relu(x))


def test_amend_fills_a_node_a_match_only_marked():
    from qrules.passes.placing import NO_INPUTS

    assert check_ruleset_text(MARKS, "marks.qrule").diagnostics == ()
    gm = export(ReluConv().eval(), (torch.randn(1, 3, 8, 8),))
    quantizer = load_text(MARKS, "marks.qrule").quantizer()
    quantizer.annotate(gm)
    nodes = {n.name: n for n in gm.graph.nodes}
    relu, conv = nodes["relu"], nodes["conv2d"]
    # the relu was marked by `conv`, then its input edge filled by `relu_in`
    assert list(relu.meta["quantization_annotation"].input_qspec_map) == [relu.args[0]]
    assert relu.meta["qrules"]["amended_by"] == ["relu_in"]
    notes = quantizer.last_plan.annotations
    assert notes[relu].inputs is not NO_INPUTS
    assert notes[relu].node is relu and notes[relu].rule.name == "conv"
    # the weight stays a mark: the rule's one record, with no node of its own and the
    # one shared empty input map, neither of which can change
    weight = notes[conv.args[1]]
    assert weight.node is None and weight.rule.name == "conv"
    assert weight.inputs is NO_INPUTS and dict(weight.inputs) == {}
    assert conv.args[1].meta["quantization_annotation"].input_qspec_map == {}
    with pytest.raises(TypeError):
        weight.inputs[relu] = None
    with pytest.raises(TypeError):
        weight.output_key = "output"
