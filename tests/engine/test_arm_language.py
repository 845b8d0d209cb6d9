"""What executorch's Arm quantizer needed from the engine besides the fixture cases
(tests/engine/fixtures/arm_constructs.qrule): transforms that read the ruleset's plan,
derive functions compared by what they compute, and the arm ruleset held to its anchor
on one small model (tests/equivalence/ holds it to every model and config)."""

import pytest
import torch

import qrules
from qrules.engine.diff.describe import describe_spec
from qrules.adapter.torchao import DerivedQuantizationSpec
from qrules.passes.derive import scale_product
from qrules.semantics import registry


def test_a_transform_reading_the_plan_gets_the_nodes_the_ruleset_quantizes(exported):
    seen = {}

    def record(gm, quantized, tag):
        seen[tag] = sorted(n.name for n in quantized)
        return gm

    registry.register_transform("record_plan", record, {"tag"}, reads_plan=True)
    try:
        ruleset = qrules.load_text(
            'ruleset plan_reader version "1.0"\n'
            'transform record_plan(tag="first")\n'
            'spec act = affine(int8, -128..127, observer=minmax)\n'
            'rule conv: conv2d : { input: act, output: act }\n'
            'rule pool: max_pool2d : none\n', "plan_reader.qrule")
        gm, _ = exported("conv_pool")
        ruleset.quantizer().transform_for_annotation(gm)
    finally:
        registry.TRANSFORMS.pop("record_plan")
    # The pool is taken by a `none` rule: planned, not quantized, so not listed.
    assert seen == {"first": ["conv2d"]}


def _arm_bias_fn(observers):
    # Arm's closure in QuantizationConfig.get_bias_qspec, written out: no reshape, a
    # float32 cast of the product.
    act_scale, _ = observers[0].calculate_qparams()
    weight_scale, _ = observers[1].calculate_qparams()
    return (act_scale * weight_scale).to(torch.float32), torch.full_like(
        weight_scale, fill_value=0, dtype=torch.int32)


def _derived(fn):
    return DerivedQuantizationSpec(derived_from=[], derive_qparams_fn=fn, dtype=torch.int32,
                                   quant_min=-2**31 + 1, quant_max=2**31 - 1,
                                   qscheme=torch.per_channel_symmetric, ch_axis=0)


def test_derive_functions_computing_the_same_qparams_describe_equal():
    assert describe_spec(_derived(_arm_bias_fn)) == describe_spec(_derived(scale_product))

    def halved(observers):
        scale, zero_point = scale_product(observers)
        return scale / 2, zero_point

    assert describe_spec(_derived(halved)) != describe_spec(_derived(scale_product))


class _ConvLinearAdd(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        z = (self.conv2(y) + y).mean((2, 3))
        return self.linear(z.view(1, 8).permute(1, 0).permute(1, 0))


@pytest.mark.parametrize("params", [{}, {"act_bits": 16}], ids=["a8w8", "a16w8"])
def test_the_arm_ruleset_equals_tosa_quantizer_on_conv_linear_add(params):
    from executorch.backends.arm.quantizer.arm_quantizer import (
        TOSAQuantizer, get_symmetric_a16w8_quantization_config,
        get_symmetric_quantization_config,
    )
    from executorch.backends.arm.tosa.specification import TosaSpecification

    sixteen = params.get("act_bits") == 16
    anchor = TOSAQuantizer(TosaSpecification.create_from_string(
        "TOSA-1.0+INT+int16" if sixteen else "TOSA-1.0+INT")).set_global(
        get_symmetric_a16w8_quantization_config() if sixteen
        else get_symmetric_quantization_config())
    args = (torch.randn(1, 3, 8, 8),)
    # Arm's preprocessing rejects torch 2.14's _guards_fn node (docs/backends.md).
    graph = torch.export.export(_ConvLinearAdd().eval(), args).module(check_guards=False)
    report = qrules.diff(anchor, qrules.load("arm", **params), graph, args)
    assert report.equal, report.format(limit=10)
