"""Transforms before annotation, and registry entries added from Python."""

import pytest
import torch

import qrules
from qrules.passes.transforms import scalars_to_attrs
from qrules.semantics import registry

from .test_fixtures import annotations


def _scalar_args(gm):
    return {n.name: n.args for n in gm.graph.nodes
            if n.op == "call_function" and n.target == torch.ops.aten.add.Tensor}


def test_scalars_to_attrs_float_only_keeps_int_arithmetic(exported):
    gm, inputs = exported("indices")
    expected = gm(*inputs)
    scalars_to_attrs(gm, float_only=True)
    args = _scalar_args(gm)
    assert args["add"][1] == 0                      # arange(n) + 0 stays an int add
    torch.testing.assert_close(gm(*inputs), expected)


def test_scalars_to_attrs_without_the_guard_breaks_int_indices(exported):
    # torchao's XNNPACKQuantizer behaviour: the int scalar becomes a float constant, the
    # index turns float and the embedding fails at run time
    gm, inputs = exported("indices")
    scalars_to_attrs(gm, float_only=False)
    assert _scalar_args(gm)["add"][1].op == "get_attr"
    with pytest.raises(RuntimeError):
        gm(*inputs)


def test_scalars_to_attrs_on_a_float_add(exported):
    gm, inputs = exported("add_scalar")
    expected = gm(*inputs)
    scalars_to_attrs(gm)
    constant = _scalar_args(gm)["add"][1]
    assert constant.op == "get_attr" and constant.meta["val"].dtype == torch.float32
    torch.testing.assert_close(gm(*inputs), expected)


def test_ruleset_transform_keywords_reach_the_function(exported):
    text = """ruleset t version "1.0"
transform scalars_to_attrs(float_only=false)
spec act = affine(int8, -128..127, observer=histogram)
rule add: add : { input: act, output: act }
"""
    gm, _ = exported("indices")
    quantizer = qrules.load_text(text, "t.qrule").quantizer()
    gm = quantizer.transform_for_annotation(gm)
    assert _scalar_args(gm)["add"][1].op == "get_attr"


def test_register_transform(registered, exported):
    calls = []

    def tag_relus(gm, label="none"):
        calls.append(label)
        for node in gm.graph.nodes:
            if node.target == torch.ops.aten.relu.default:
                node.meta["tag"] = label
        return gm

    registry.register_transform("tag_relus", tag_relus, {"label"})
    registered.append((registry.TRANSFORMS, "tag_relus"))
    text = """ruleset t version "1.0"
transform tag_relus(label="seen")
spec act = affine(int8, -128..127, observer=histogram)
rule relu: relu : { input: act, output: act }
"""
    gm, _ = exported("conv_relu")
    quantizer = qrules.load_text(text, "t.qrule").quantizer()
    gm = quantizer.transform_for_annotation(gm)
    quantizer.annotate(gm)
    assert calls == ["seen"]
    relu = next(n for n in gm.graph.nodes if n.name == "relu")
    assert relu.meta["tag"] == "seen"
    assert annotations(gm)["relu"][0] == "relu"
    with pytest.raises(ValueError, match="already registered"):
        registry.register_transform("tag_relus", tag_relus)
    registry.register_transform("tag_relus", tag_relus, {"label"}, replace=True)


def test_unregistered_names_are_lint_errors():
    text = 'ruleset t version "1.0"\ntransform not_registered\nrule relu: relu : none\n'
    with pytest.raises(qrules.QruleError) as info:
        qrules.load_text(text, "t.qrule")
    assert "QR211" in {d.code for d in info.value.diagnostics}


def test_register_observer_and_derive_function(registered, exported):
    from torchao.quantization.pt2e.observer import MinMaxObserver

    class MyObserver(MinMaxObserver):
        pass

    def half_product(observers):
        from qrules.passes.derive import scale_product

        scale, zero_point = scale_product(observers)
        return scale / 2, zero_point

    registry.register_observer("my_observer", MyObserver, {"eps"})
    registered.append((registry.OBSERVERS, "my_observer"))
    registry.register_derive_function("half_product", half_product)
    registered.append((registry.DERIVE_FUNCTIONS, "half_product"))
    text = """ruleset t version "1.0"
spec act = affine(uint8, 0..255, observer=my_observer(eps=2**-12))
spec w = symmetric(int8, -127..127, observer=minmax)
spec bias = derived(int32, from=[input, weight], fn=half_product)
rule conv: conv2d : { input: act, weight: w, bias: bias, output: act }
"""
    gm, _ = exported("conv_relu")
    quantizer = qrules.load_text(text, "t.qrule").quantizer()
    quantizer.annotate(gm)
    conv = next(n for n in gm.graph.nodes if n.name == "conv2d")
    annotation = conv.meta["quantization_annotation"]
    x, bias = (next(n for n in annotation.input_qspec_map if n.name == name)
               for name in ("x", "conv_bias"))
    ctor = annotation.input_qspec_map[x].observer_or_fake_quant_ctr
    assert ctor.p.func is MyObserver and ctor.p.keywords == {"eps": 2 ** -12}
    assert annotation.input_qspec_map[bias].derive_qparams_fn is half_product
    with pytest.raises(ValueError):
        registry.register_observer("bad name", MyObserver)
