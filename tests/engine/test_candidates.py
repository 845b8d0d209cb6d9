"""`Matcher.candidates`: a rule's heads in graph order, one op's nodes or several ops'
merged, with or without graph inputs and outputs among them; the table of node
positions is built only when a graph I/O node must be merged in."""

import pytest
import torch

from qrules.api import load_text
from qrules.passes.match import Matcher
from tests.models import ConvLinear, export

TEXT = '''ruleset candidates version "1.0"
spec act = affine(int8, -128..127)
rule one_op: relu : { input: act }
rule several: (hardtanh | relu | linear | conv2d) : { input: act }
rule none_here: conv_transpose2d : { input: act }
rule with_io: (graph_output | relu) : { input: act }
'''

# rule -> (its heads' targets or kinds, whether the position table is built)
CASES = {
    "one_op": ({torch.ops.aten.relu.default}, False),
    "several": ({torch.ops.aten.hardtanh.default, torch.ops.aten.relu.default,
                 torch.ops.aten.linear.default, torch.ops.aten.conv2d.default}, False),
    "none_here": (set(), False),
    "with_io": ({torch.ops.aten.relu.default, "output"}, True),
}


@pytest.fixture(scope="module")
def graph_and_rules():
    gm = export(ConvLinear().eval(), (torch.randn(1, 3, 8, 8),))
    compiled = load_text(TEXT, "candidates.qrule").quantizer().global_ruleset
    return gm, {rule.name: rule for rule in compiled.rules}, compiled


@pytest.mark.parametrize("name", sorted(CASES))
def test_candidates_are_the_heads_in_graph_order(graph_and_rules, name):
    gm, rules, compiled = graph_and_rules
    heads, builds_positions = CASES[name]
    matcher = Matcher(gm, compiled)
    expected = [node for node in gm.graph.nodes
                if node.target in heads or node.op in heads]
    assert list(matcher.candidates(rules[name])) == expected
    assert (matcher._order is not None) == builds_positions
    # asked again, the same list
    assert matcher.candidates(rules[name]) is matcher.candidates(rules[name])
