"""Graph-validation codes (QR6xx) the annotation fixtures cannot reach: a sharing cycle
planned by hand, conflicting quantizers in a composition, and a composition left as it
was when a later ruleset fails. (QR601, QR602 and QR604 are cases of
tests/engine/fixtures/validation.qrule.)"""

from __future__ import annotations

import copy

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
    codes = {d.code for d in validate(Plan({relu: note}, []))}
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
