"""The equivalence harness itself: descriptions, recording inside prepare, reports."""

from __future__ import annotations

import pytest
import torch

import qrules
from qrules import diff
from qrules.engine.diff import describe_ctor, describe_spec, format_spec, parse_anchor
from torchao.quantization.pt2e import (
    FakeQuantize, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
)
from torchao.quantization.pt2e.quantizer import QuantizationSpec

from .conftest import exported

_OBS = "torchao.quantization.pt2e.observer"


def test_observer_constructors_are_unwrapped_with_nested_kwargs():
    ctor = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver.with_args(averaging_constant=1),
        eps=2 ** -12).with_args(eps=1.0)
    name, kwargs = describe_ctor(ctor)
    assert name.endswith(".FakeQuantize")
    assert dict(kwargs)["eps"] == 1.0   # the outer with_args wins
    assert dict(kwargs)["observer"] == (f"{_OBS}.MovingAverageMinMaxObserver",
                                        (("averaging_constant", 1),))
    assert describe_ctor(PerChannelMinMaxObserver) == (f"{_OBS}.PerChannelMinMaxObserver", ())


def test_spec_description_names_every_field():
    spec = QuantizationSpec(dtype=torch.uint8, qscheme=torch.per_channel_affine_float_qparams,
                            ch_axis=0,
                            observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(
                                eps=2 ** -12))
    described = dict(describe_spec(spec))
    assert described["kind"] == "quant" and described["quant_min"] is None
    assert described["qscheme"] == "torch.per_channel_affine_float_qparams"
    assert format_spec(describe_spec(spec)) == (
        "uint8 [None, None] per_channel_affine_float_qparams ch_axis=0 "
        "PerChannelMinMaxObserver(eps=2**-12)")


def test_identical_sides_are_equal():
    graph, inputs = exported("small", "add_mul_cat")
    report = diff(qrules.load("xnnpack"), qrules.load("xnnpack"), graph, inputs)
    assert report.equal and not report.mismatches
    assert report.numerics.ran and report.numerics.outputs_equal
    assert report.format().endswith("EQUAL")


def test_a_difference_names_the_node_both_annotations_and_the_rules():
    graph, inputs = exported("small", "linear_relu")
    report = diff(qrules.load("xnnpack"), qrules.load("xnnpack", per_channel=True),
                  graph, inputs, model_label="linear_relu")
    assert not report.equal
    fields = {(m.node, m.field) for m in report.mismatches}
    assert fields == {("linear", "input l1_weight"), ("linear_1", "input l2_weight")}
    text = report.format()
    assert "node linear (aten.linear.default): input l1_weight" in text
    assert "per_tensor_symmetric" in text and "per_channel_symmetric" in text
    assert "by rule linear_relu of xnnpack (rulesets/xnnpack.qrule:" in text
    assert report.numerics.op_count_diff  # per-channel quantize ops on one side only
    assert text.endswith("DIFFERENT")


def test_annotations_are_recorded_on_the_graph_prepare_annotates():
    """XNNPACKQuantizer's transform_for_annotation adds a constant for `c + 1.5`: the
    record holds it, so the annotation was taken inside prepare, after the transform."""
    graph, inputs = exported("small", "add_mul_cat")
    assert "_tensor_constant_0" not in {n.name for n in graph.graph.nodes}
    report = diff("torchao:xnnpack", qrules.load("xnnpack"), graph, inputs, numerics=False)
    assert "_tensor_constant_0" in report.a_records
    assert "_tensor_constant_0" not in {n.name for n in graph.graph.nodes}  # untouched


@pytest.mark.parametrize("spec, expected", [
    ("torchao:xnnpack", ("xnnpack", {})),
    ("torchao:xnnpack[per_channel, qat]", ("xnnpack", {"per_channel": True, "qat": True})),
    ("torchao:x86_inductor[dynamic]", ("x86_inductor", {"dynamic": True})),
    ("torchao:embedding", ("embedding", {})),
])
def test_anchor_specs(spec, expected):
    assert parse_anchor(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("torchao:nope", "unknown torchao quantizer 'nope'"),
    ("torchao:xnnpack[fast]", "takes no flag 'fast'"),
    ("torchao:embedding[qat]", "takes no flag 'qat'"),
    ("xnnpack", "not an anchor spec"),
    ("torchao:os.system", "not an anchor spec"),
])
def test_bad_anchor_specs(spec, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        parse_anchor(spec)


def test_sides_by_name():
    graph, inputs = exported("small", "linear")
    report = diff("xnnpack", "xnnpack", graph, inputs, numerics=False)
    assert report.equal and report.a_label == "xnnpack"


def test_x86_anchor_builds():
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
    )

    from qrules.engine.diff import anchor

    assert isinstance(anchor("torchao:x86_inductor[qat]"), X86InductorQuantizer)
