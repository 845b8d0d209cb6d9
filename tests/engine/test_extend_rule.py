"""`extend rule NAME: | PATTERN`: the added alternative matches on a graph with the
rule's config and provenance, under `when` only where the condition holds, and
composes with `override rule` (an extension applies to the definition before it)."""

import copy

import pytest
import torch

import qrules
from qrules.adapter.quantizer import annotation_of
from tests.models import export

NPU_V2 = """ruleset npu_v2 version "1.0"
include xnnpack
extend rule binary: | sub[is_node(input[0]), is_node(input[1])]
extend rule binary_relu: | sub[is_node(input[0]), is_node(input[1])] -> relu
when per_channel {
  extend rule linear_relu: | linear -> hardtanh as relu
}
"""


class SubClamp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x, y):
        z = torch.relu(x - y) - y
        return torch.nn.functional.hardtanh(self.linear(z))


@pytest.fixture(scope="module")
def graph():
    torch.manual_seed(0)
    return export(SubClamp().eval(), (torch.randn(2, 4), torch.randn(2, 4)))


def _rules(gm, ruleset):
    return {n.node: n.rule for n in qrules.explain(gm, ruleset).nodes}


@pytest.mark.parametrize("per_channel, linear_rules", [
    (False, {"linear": "linear", "hardtanh": "propagate"}),
    (True, {"linear": "linear_relu", "hardtanh": "linear_relu"}),
])
def test_added_alternatives_match_with_the_rules_config(graph, per_channel, linear_rules):
    ruleset = qrules.load_text(NPU_V2, "npu_v2.qrule", per_channel=per_channel)
    assert _rules(graph, ruleset) == {"sub": "binary_relu", "relu": "binary_relu",
                                      "sub_1": "binary", **linear_rules}
    # Without the extensions, xnnpack has no rule for sub.
    plain = _rules(graph, qrules.load("xnnpack", per_channel=per_channel))
    assert plain["sub"] is None and plain["sub_1"] is None


def test_the_added_step_is_owned_through_the_rules_takes(graph):
    gm = copy.deepcopy(graph)
    quantizer = qrules.load_text(NPU_V2, "npu_v2.qrule", per_channel=True).quantizer()
    quantizer.annotate(gm)
    by_name = {n.name: n for n in gm.graph.nodes}
    hardtanh = by_name["hardtanh"]
    assert annotation_of(hardtanh)["rule"] == "linear_relu"
    assert hardtanh.meta["quantization_annotation"]._annotated


def test_extension_and_override_compose(graph, tmp_path):
    (tmp_path / "base.qrule").write_text("""ruleset base version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule binary: add : { input: act, output: act }
""")
    (tmp_path / "top.qrule").write_text("""ruleset top version "1.0"
param late: bool = false
include "base.qrule"
extend rule binary: | sub
when late {
  override rule binary: mul : { input: act, output: act }
}
""")
    top = str(tmp_path / "top.qrule")
    assert _rules(graph, qrules.load(top))["sub"] == "binary"
    # the later override replaces the whole rule, the extension with it
    assert _rules(graph, qrules.load(top, late=True))["sub"] is None
