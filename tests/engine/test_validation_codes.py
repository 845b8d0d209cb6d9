"""Graph-validation codes (QR6xx) the annotation fixtures cannot reach: a sharing cycle
planned by hand, conflicting quantizers in a composition, and a composition left as it
was when a later ruleset fails. (QR601, QR602 and QR604 are cases of
tests/engine/fixtures/validation.qrule.)"""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest
import torch

import qrules
from qrules.api import load_text
from tests.models import LinearPlusConstant, TwoLinear, export

HEADER = 'ruleset v version "1.0"\nspec act = affine(int8, -128..127)\n'


def _graph(model, *shape):
    return export(model.eval(), (torch.randn(*shape),))


def _meta_snapshot(gm):
    return [(n.name, sorted(n.meta), repr(n.meta.get("quantization_annotation")))
            for n in gm.graph.nodes], gm.code


def test_qr603_sharing_cycle():
    # Within one match lint rejects a cycle (QR308), and producer(...) only points
    # upstream, so a cycle can only come from edges planned by hand; validate() must
    # still refuse it rather than let torchao loop.
    from qrules.passes.plan import NodeAnnotation, Placed, Plan
    from qrules.passes.validate import validate
    from qrules.semantics.values import EdgeRef, SharedSpec

    gm = _graph(TwoLinear(), 2, 4)
    ruleset = load_text(HEADER + "rule relu: relu : { input: act, output: act }\n", "v.qrule")
    rule = ruleset.compiled().rules[0]
    relu = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.relu.default)
    source = relu.args[0]
    shared = SharedSpec(EdgeRef("output"))
    note = NodeAnnotation(relu, rule)
    note.inputs[source] = Placed(shared, "input", (relu,))          # input shares output
    note.output = Placed(shared, "output", ((source, relu),))       # output shares input
    codes = {d.code for d in validate(Plan({relu: note}))}
    assert codes == {"QR603"}


def test_qr605_conflicting_quantizers():
    gm = _graph(TwoLinear(), 2, 4)
    first = load_text(HEADER + "rule linear: linear : { input: act, output: act }\n", "a.qrule")

    class Overwriter(qrules.RulesetQuantizer):
        """A quantizer that (like some hand-written ones) overwrites what it finds."""

        def annotate(self, model):
            from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

            for node in model.graph.nodes:
                if node.op == "call_function" and node.target == torch.ops.aten.linear.default:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(_annotated=True)
            return model

    composed = qrules.compose(first, Overwriter())
    with pytest.raises(qrules.ComposeConflictError) as info:
        composed.annotate(copy.deepcopy(gm))
    assert isinstance(info.value, RuntimeError)
    assert {d.code for d in info.value.diagnostics} == {"QR605"}
    assert "rule `linear` of ruleset `v`" in str(info.value)
    keep = qrules.compose(first, Overwriter(), first_wins=True).annotate(copy.deepcopy(gm))
    linear = next(n for n in keep.graph.nodes if n.target == torch.ops.aten.linear.default)
    assert linear.meta["quantization_annotation"].output_qspec is not None


def test_composition_is_atomic_when_a_later_ruleset_fails():
    gm = _graph(LinearPlusConstant(), 2, 4)
    good = load_text(HEADER + "rule linear: linear : { input: act, output: act }\n",
                     "good.qrule")
    bad = load_text(HEADER + "rule add: add : { input: act, output: act }\n", "bad.qrule")
    before = _meta_snapshot(gm)
    with pytest.raises(qrules.ValidationError) as info:
        qrules.compose(good, bad).annotate(gm)
    assert "bad.qrule:3:6" in str(info.value)
    # `good` had annotated the linear before `bad` failed; that is undone as well.
    assert _meta_snapshot(gm) == before


class SigmoidMul(torch.nn.Module):
    """`sigmoid(x) * x` after a linear: the sigmoid's output feeds the mul."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        x = self.linear(x)
        return torch.sigmoid(x) * x


SIGMOID_MUL = HEADER + """spec act_minmax = affine(int8, -128..127, observer=minmax)
rule linear: linear : { input: act, output: act }
rule sigmoid: sigmoid : { output: fixed(scale=1/256, zero_point=-128, int8) }
rule mul: mul : { MUL_INPUT, output: act }
"""


def _sigmoid_mul(mul_input: str):
    gm = _graph(SigmoidMul(), 2, 4)
    ruleset = load_text(SIGMOID_MUL.replace("MUL_INPUT", mul_input), "npu.qrule")
    return gm, ruleset


def test_qr615_an_input_spec_that_requantizes_its_producers_output():
    gm, ruleset = _sigmoid_mul("input: act")
    with pytest.warns(qrules.AnnotationWarning) as caught:
        qrules.prepare(copy.deepcopy(gm), None, ruleset)
    [warning] = [w.message for w in caught if isinstance(w.message, qrules.AnnotationWarning)]
    # the sigmoid's fixed output is quantized again by the mul; the linear's output is
    # not (same qparams, so torchao merges the two observers)
    [found] = warning.diagnostics
    assert found.code == "QR615" and found.severity.value == "warning"
    assert (found.span.line, found.span.col) == (6, 6)                     # rule mul
    assert [(n.span.line, n.span.col) for n in found.notes] == [(5, 6)]    # rule sigmoid
    assert "node `mul`" in found.message and "from `sigmoid`" in found.message
    assert " 6 | rule mul: mul :" in str(warning)   # printed as lint prints it
    explanation = qrules.explain(gm, ruleset)
    assert [d.message for d in explanation.warnings] == [found.message]
    assert "npu.qrule:6:6: QR615 warning: node `mul`" in explanation.format()
    [as_json] = explanation.as_dict()["warnings"]
    assert as_json["code"] == "QR615" and as_json["location"] == "npu.qrule:6:6"
    assert as_json["message"] == found.message
    assert as_json["notes"] == [{"message": found.notes[0].message, "location": "npu.qrule:5:6"}]
    # Pickled, the warning keeps everything; rebuilt from its args alone (as
    # pytest-xdist copies warnings between processes), its text.
    copied = pickle.loads(pickle.dumps(warning))
    assert str(copied) == str(warning) and copied.diagnostics == warning.diagnostics
    rebuilt = qrules.AnnotationWarning(*warning.args)
    assert str(rebuilt) == str(warning) and rebuilt.diagnostics == ()


@pytest.mark.parametrize("mul_input", [
    # shares whatever the producer's output has (the fixed qparams), the other input
    # gets the linear's own spec
    "input[0]: same_as(producer(input[0])), input[1]: act",
    "input: act_minmax",  # only the observer differs: torchao merges them
])
def test_qr615_not_for_specs_torchao_merges(mul_input):
    gm, ruleset = _sigmoid_mul(mul_input)
    if mul_input == "input: act_minmax":  # the sigmoid's fixed output differs: drop it
        ruleset = load_text(SIGMOID_MUL.replace("MUL_INPUT", mul_input).replace(
            "rule sigmoid: sigmoid : { output: fixed(scale=1/256, zero_point=-128, int8) }",
            "rule sigmoid: sigmoid : { output: act }"), "npu.qrule")
    with warnings.catch_warnings():
        warnings.simplefilter("error", qrules.AnnotationWarning)
        qrules.prepare(copy.deepcopy(gm), None, ruleset)
    assert qrules.explain(gm, ruleset).warnings == []
