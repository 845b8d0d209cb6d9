"""The spec constructs executorch's Qualcomm quantizer needs, each checked against the
torchao spec executorch 1.5.1's ``qconfig.py`` builds: field by field, observer or
fake-quantizer class and keyword arguments included (``describe_spec``, what
``qrules diff`` compares). The spec text here (qnn_dtype_specs.qrule) is what
rulesets/qnn.qrule says for each QuantDtype."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from qrules.adapter.torchao import SpecBuilder
from qrules.api import load_text
from qrules.engine.diff.describe import describe_spec
from qrules.semantics.evaluate import Evaluator
from qrules.span import Span
from qrules.syntax import ast
from executorch.backends.qualcomm.quantizer import qconfig


HEADER = 'ruleset qnn_specs version "1.0"\n'
_SPAN = Span(line=1, col=1, end_line=1, end_col=1)


def built(text: str, name: str, **params):
    """The torchao spec that ``spec NAME`` of ``text`` builds with ``params`` bound."""
    loaded = load_text(HEADER + text, "qnn_specs.qrule", **params)
    evaluator = Evaluator(loaded.checked.symbols, loaded.bound.params)
    [value] = evaluator.spec(ast.Name(id=name, span=_SPAN))
    assert not evaluator.diagnostics, evaluator.diagnostics
    return SpecBuilder().build(value)


def same(ours, theirs) -> None:
    assert describe_spec(ours) == describe_spec(theirs)
    if theirs is None:
        return
    for field in ("dtype", "quant_min", "quant_max", "qscheme", "ch_axis", "is_dynamic"):
        assert getattr(ours, field) == getattr(theirs, field), field


# ------------------------------------------------------------- stored-as dtypes

STORED_AS = """
spec act16 = affine(uint16 as int32, observer=moving_average_minmax(eps=0.0001/65535))
spec w4 = symmetric(int4 as int8, -7..7, ch_axis=0, observer=minmax(eps=0.0001/65535))
spec w2 = symmetric(int2 as int8, observer=minmax(eps=0.0001/65535))
spec act8_w4 = affine(uint8, observer=moving_average_minmax(eps=0.0001/255))
spec w4_8 = symmetric(int4 as int8, -7..7, ch_axis=0, observer=minmax(eps=0.0001/255))
rule linear: linear : { input: act16, weight: w4, output: act16 }
rule conv: conv2d : { input: act16, weight: w2, output: act16 }
rule linear8: linear : { input: act8_w4, weight: w4_8, output: act8_w4 }
"""


@pytest.mark.parametrize("name, anchor", [
    ("act16", lambda: qconfig.get_16a4w_qnn_ptq_config().input_activation),
    ("act16", lambda: qconfig.get_16a16w_qnn_ptq_config().output_activation),
    ("act16", lambda: qconfig.get_16a2w_qnn_ptq_config().input_activation),
    ("w4", lambda: qconfig.get_16a4w_qnn_ptq_config().weight),
    ("w2", lambda: qconfig.get_16a2w_qnn_ptq_config().weight),
    ("act8_w4", lambda: qconfig.get_8a4w_qnn_ptq_config().input_activation),
    ("w4_8", lambda: qconfig.get_8a4w_qnn_ptq_config().weight),
])
def test_stored_as_dtypes_build_qnn_specs(name, anchor):
    ours = built(STORED_AS, name)
    same(ours, anchor())


# ------------------------------------------- vendor observers, per-block weights

def _graph(module: torch.nn.Module, *args) -> torch.fx.GraphModule:
    return torch.export.export(module.eval(), args).module()


def _node(gm: torch.fx.GraphModule, target) -> torch.fx.Node:
    return next(n for n in gm.graph.nodes if n.target == target)


def built_for(text: str, name: str, node: torch.fx.Node, **params):
    """As ``built``, for the node whose annotation holds the spec."""
    loaded = load_text(HEADER + text, "qnn_specs.qrule", **params)
    evaluator = Evaluator(loaded.checked.symbols, loaded.bound.params)
    [value] = evaluator.spec(ast.Name(id=name, span=_SPAN))
    return SpecBuilder().build(value, (), node)


def _annotation(annotator, node, config):
    annotator.annotate(node, config)
    return node.meta["quantization_annotation"]


class _Cat(torch.nn.Module):
    def forward(self, x, y):
        return torch.cat([x.relu(), y.relu()], dim=1)


VENDOR = """
param block_size: int = 16
spec cat8 = affine(uint8, observer=qnn_concat)
spec cat16 = affine(uint16 as int32, observer=qnn_concat)
spec w8_pc = symmetric(int8, -127..127, per_channel,
                      observer=qnn_per_channel_param(eps=0.0001/65535))
spec w4_pc_t = symmetric(int4 as int8, -7..7, per_channel(axis=1),
                         observer=qnn_per_channel_param(eps=0.0001/65535))
spec w4_block = symmetric(int4 as int8, -7..7, per_block(axis=0, block=[1, block_size]),
                          observer=qnn_per_block_param(eps=0.0001/65535))
spec w4_block_qat = symmetric(int4 as int8, -7..7, per_block(axis=0, block=[1, block_size]),
                              observer=qnn_per_block_param_fake_quant)
rule cat: cat : { input: cat8, output: cat8 }
rule cat16: cat : { input: cat16, output: cat16 }
rule linear: linear : { weight: w8_pc }
rule linear4: linear : { weight: w4_block }
rule linear4q: linear : { weight: w4_block_qat }
rule conv_t: conv_transpose2d : { weight: w4_pc_t }
"""


@pytest.mark.parametrize("name, config", [
    ("cat8", qconfig.get_8a8w_qnn_ptq_config),
    ("cat16", qconfig.get_16a16w_qnn_ptq_config),
])
def test_concat_observer_gets_the_graph_and_the_cat_node(name, config):
    from executorch.backends.qualcomm.quantizer.annotators.htp_rules import Cat

    gm = _graph(_Cat(), torch.randn(1, 2), torch.randn(1, 3))
    cat = _node(gm, torch.ops.aten.cat.default)
    ours = built_for(VENDOR, name, cat)
    theirs = _annotation(Cat, cat, config()).output_qspec
    same(ours, theirs)
    keywords = ours.observer_or_fake_quant_ctr.p.keywords
    assert keywords["graph"] is gm.graph and keywords["node_name"] == cat.name
    # One constructor per cat: each observer finds its own node.
    assert built_for(VENDOR, name, cat) is not ours


@pytest.mark.parametrize("name, anchor", [
    ("w8_pc", lambda: qconfig.get_ptq_per_channel_quant_config().weight),
    ("w4_pc_t", lambda: qconfig.get_ptq_per_channel_quant_config(
        act_dtype=torch.uint16, weight_dtype=torch.int4, ch_axis=1).weight),
])
def test_per_channel_param_observer(name, anchor):
    same(built(VENDOR, name), anchor())


@pytest.mark.parametrize("name, config, block_size", [
    ("w4_block", qconfig.get_ptq_per_block_quant_config, 16),
    ("w4_block", qconfig.get_ptq_per_block_quant_config, 64),
    ("w4_block_qat", qconfig.get_qat_per_block_quant_config, 32),
])
def test_per_block_weights_as_the_linear_annotator_writes_them(name, config, block_size):
    from executorch.backends.qualcomm.quantizer.annotators.htp_rules import Linear

    gm = _graph(torch.nn.Linear(64, 8), torch.randn(2, 64))
    linear = _node(gm, torch.ops.aten.linear.default)
    anchor = config(act_dtype=torch.uint16, weight_dtype=torch.int4, ch_axis=0)
    anchor.block_size = (1, block_size)
    theirs = _annotation(Linear, linear, anchor).input_qspec_map[linear.args[1]]
    ours = built(VENDOR, name, block_size=block_size)
    same(ours, theirs)
    assert ours.observer_or_fake_quant_ctr.p.keywords["block_size"] == (1, block_size)


def test_annotating_builds_a_concat_observer_per_cat_node():
    class TwoCats(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x, x * 2]) + torch.cat([x * 3, x])

    gm = _graph(TwoCats(), torch.randn(2, 3))
    text = HEADER + "rule cat: cat : { output: affine(uint8, observer=qnn_concat) }\n"
    load_text(text).quantizer().annotate(gm)
    cats = [n for n in gm.graph.nodes if n.target == torch.ops.aten.cat.default]
    names = [n.meta["quantization_annotation"].output_qspec.observer_or_fake_quant_ctr
             .p.keywords["node_name"] for n in cats]
    assert names == [n.name for n in cats] and len(set(names)) == 2


# ------------------------------------------------ derive functions with arguments

def _both_annotate(module, args, text, annotator, config, target, **params):
    """(ours, theirs): the annotation of the ``target`` node that ``text``'s rules and
    executorch's annotator write, on two exports of one module."""
    ours_gm, theirs_gm = _graph(module, *args), _graph(module, *args)
    load_text(HEADER + text, **params).quantizer().annotate(ours_gm)
    theirs = _annotation(annotator, _node(theirs_gm, target), config)
    return _node(ours_gm, target).meta["quantization_annotation"], theirs


def _same_annotation(ours, theirs) -> None:
    def described(annotation):
        return ({source.name: describe_spec(spec)
                 for source, spec in annotation.input_qspec_map.items()},
                describe_spec(annotation.output_qspec))
    assert described(ours) == described(theirs)


DERIVED = """
spec act = affine(uint8, 0..255, observer=moving_average_minmax(eps=0.0001/65535))
spec w_t = symmetric(int8, -127..127, per_channel(axis=1),
                     observer=qnn_per_channel_param(eps=0.0001/65535))
spec bias = derived(int32, per_channel, from=[input, weight], fn=qnn_bias(groups=arg(6)))
rule conv_t: conv_transpose2d : { input: act, weight: w_t, bias: bias, output: act }
spec act8 = affine(uint8, 0..255, observer=moving_average_minmax(eps=0.0001/255))
rule div: div[input[1].is_scalar]
  : { input[0]: act8,
      output: derived(uint8, 0..255, affine, ch_axis=0, from=[input[0]],
                      fn=scale_div(divisor=input[1].value)) }
"""


@pytest.mark.parametrize("groups", [1, 2])
def test_grouped_transposed_conv_bias_repeats_per_group(groups):
    from executorch.backends.qualcomm.quantizer.annotators.htp_rules import TransposeConv2d

    conv = torch.nn.ConvTranspose2d(4, 6, 3, groups=groups)
    ours, theirs = _both_annotate(
        conv, (torch.randn(1, 4, 5, 5),), DERIVED, TransposeConv2d,
        qconfig.get_ptq_per_channel_quant_config(ch_axis=1),
        torch.ops.aten.conv_transpose2d.input)
    _same_annotation(ours, theirs)
    bias = next(s for s in ours.input_qspec_map.values() if s.dtype == torch.int32)
    assert bias.derive_qparams_fn.keywords == {"groups": groups}


def test_division_by_a_constant_derives_the_output_scale():
    """htp_rules.Div's constant-divisor branch (scale = input scale / divisor) is
    unreachable in executorch 1.5.1: it first takes the binary path whenever any
    argument is a node, and `x / 4.0` has `x`. So the anchor writes the activation spec
    (a ruleset reproducing it says so); the derived form is checked on its own."""
    from executorch.backends.qualcomm.quantizer.annotators.htp_rules import Div

    class Quarter(torch.nn.Module):
        def forward(self, x):
            return x / 4.0

    ours, theirs = _both_annotate(Quarter(), (torch.randn(2, 3),), DERIVED, Div,
                                  qconfig.get_8a8w_qnn_ptq_config(),
                                  torch.ops.aten.div.Tensor)
    assert type(theirs.output_qspec).__name__ == "QuantizationSpec"
    derived = ours.output_qspec
    assert derived.derive_qparams_fn.keywords == {"divisor": 4.0}
    assert (derived.qscheme, derived.ch_axis) == (torch.per_tensor_affine, 0)
    observer = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
    observer(torch.randn(16) * 3)
    scale, zero_point = observer.calculate_qparams()
    got_scale, got_zero_point = derived.derive_qparams_fn([observer])
    assert torch.equal(got_scale, scale / 4.0) and torch.equal(got_zero_point, zero_point)


def test_qnn_bias_of_per_block_weights_computes_what_executorch_does():
    from executorch.backends.qualcomm.quantizer.observers.per_block_param_observer import (
        PerBlockParamFakeQuantize, PerBlockParamObserver,
    )

    from qrules.adapter.qualcomm import qnn_bias

    node = _node(_graph(torch.nn.Linear(32, 4), torch.randn(2, 32)),
                 torch.ops.aten.linear.default)
    theirs_fn = qconfig._derived_bias_quant_spec(node).derive_qparams_fn
    act = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
    act(torch.randn(16) * 3)
    weight = torch.randn(4, 32)
    for wrapper in (PerBlockParamObserver, PerBlockParamFakeQuantize):
        observer = wrapper(dtype=torch.int8, block_size=(1, 8), quant_min=-7, quant_max=7)
        observer(weight)
        for ours, theirs in zip(qnn_bias([act, observer]), theirs_fn([act, observer])):
            assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


# --------------------------------------------- fixed qparams inside an ordinary spec

FIXED = """
param act16: bool = false
spec act = affine(uint8, 0..255, observer=moving_average_minmax(eps=0.0001/255))
spec sig = affine(uint8, 0..255, observer=fixed_qparams(scale=1/256, zero_point=0))
when act16 {
  override spec act = affine(uint16 as int32, observer=moving_average_minmax(eps=0.0001/65535))
  override spec sig = affine(uint16 as int32, observer=fixed_qparams(scale=1/65536, zero_point=0))
}
spec tanh16 = affine(uint16 as int32, observer=fixed_qparams(scale=1/32768, zero_point=32768))
rule sigmoid: sigmoid : { input: act, output: sig }
rule hardsigmoid: hardsigmoid : { input: act, output: sig }
rule tanh: tanh : { input: act, output: tanh16 if act16 else act }
"""


@pytest.mark.parametrize("act16, config", [
    (False, qconfig.get_8a8w_qnn_ptq_config), (True, qconfig.get_16a16w_qnn_ptq_config),
    (False, qconfig.get_8a8w_qnn_qat_config), (True, qconfig.get_16a4w_qnn_qat_config),
])
@pytest.mark.parametrize("op, annotator", [
    (torch.sigmoid, "Sigmoid"), (torch.nn.functional.hardsigmoid, "HardSigmoid"),
    (torch.tanh, "Tanh"),
])
def test_sigmoid_and_tanh_outputs_as_executorch_fixes_them(act16, config, op, annotator):
    from executorch.backends.qualcomm.quantizer.annotators import htp_rules

    class Op(torch.nn.Module):
        def forward(self, x):
            return op(x)

    anchor = config()
    if "qat" in config.__name__:  # our act spec is the PTQ one; compare the outputs only
        anchor.input_activation = qconfig.get_16a4w_qnn_ptq_config().input_activation if \
            act16 else qconfig.get_8a8w_qnn_ptq_config().input_activation
        if op is torch.tanh:
            return  # tanh's non-16-bit output is the config's own (QAT) spec
    gm = _graph(Op(), torch.randn(2, 3))
    target = next(n.target for n in gm.graph.nodes if n.op == "call_function")
    ours, theirs = _both_annotate(Op(), (torch.randn(2, 3),), FIXED,
                                  getattr(htp_rules, annotator), anchor, target, act16=act16)
    assert describe_spec(ours.output_qspec) == describe_spec(theirs.output_qspec)


# --------------------------------------------- every QuantDtype's specs, by parameter

DTYPE_SPECS = (Path(__file__).parent / "qnn_dtype_specs.qrule").read_text()


def _dtype_cases():
    from executorch.backends.qualcomm.quantizer.quantizer import QUANT_CONFIG_DICT

    return sorted((dtype.name.removeprefix("use_"), qat) for dtype, qat in QUANT_CONFIG_DICT)


def _dtype_spec(name: str, **params):
    loaded = load_text(DTYPE_SPECS, "qnn_dtype_specs.qrule", **params)
    evaluator = Evaluator(loaded.checked.symbols, loaded.bound.params)
    [value] = evaluator.spec(ast.Name(id=name, span=_SPAN))
    return None if value is None else SpecBuilder().build(value)


@pytest.mark.parametrize("dtype, qat", _dtype_cases())
def test_each_quant_dtype_spec_is_executorchs(dtype, qat):
    from executorch.backends.qualcomm.quantizer.quantizer import ModuleQConfig, QuantDtype

    config = ModuleQConfig(QuantDtype[f"use_{dtype}"], is_qat=qat)
    params = dict(dtype=dtype, qat=qat, block_size=32)
    default, per_channel = config.quant_config, config.per_channel_quant_config_list
    expected = {
        "act": default.input_activation, "w": default.weight, "bias": default.bias,
        "act_pc": per_channel[0].input_activation, "w_pc": per_channel[0].weight,
        "w_pc_t": per_channel[1].weight,
    }
    assert default.output_activation is default.input_activation
    if dtype == "16a4w_block":
        blocks = config.per_block_quant_config_list
        for axis, name in ((0, "w_block"), (1, "w_block_t")):
            # what Linear / annotate_conv do with a node in the block size map
            blocks[axis].weight.observer_or_fake_quant_ctr.p.keywords.update(
                block_size=(1, 32))
            expected[name] = blocks[axis].weight
        expected["act_block"] = blocks[0].input_activation
    for name, theirs in expected.items():
        same(_dtype_spec(name, **params), theirs)

    # The per-channel bias: derived from the input and weight edges of the node.
    for module, args, name, target in (
            (torch.nn.Linear(8, 4), (torch.randn(2, 8),), "bias_pc",
             torch.ops.aten.linear.default),
            (torch.nn.ConvTranspose2d(4, 6, 3, groups=2), (torch.randn(1, 4, 5, 5),),
             "bias_pc_t", torch.ops.aten.conv_transpose2d.input)):
        node = _node(_graph(module, *args), target)
        edges = ((node.args[0], node), (node.args[1], node))
        loaded = load_text(DTYPE_SPECS, "qnn_dtype_specs.qrule", **params)
        evaluator = Evaluator(loaded.checked.symbols, loaded.bound.params)
        [value] = evaluator.spec(ast.Name(id=name, span=_SPAN))
        theirs = per_channel[0].bias
        if theirs is None:  # fp16a8w: no per-channel bias spec
            assert value is None
            continue
        if value.reads_match:  # what planning does on a match at this node
            value = dataclasses.replace(value, fn_args=(("groups", node.args[6]),))
        assert describe_spec(SpecBuilder().build(value, edges)) == describe_spec(theirs(node))


def test_a_derive_argument_the_match_lacks_is_qr602():
    from qrules.adapter.quantizer import ValidationError

    class Mul(torch.nn.Module):
        def forward(self, x):
            return x * 3.0

    text = HEADER + (
        "spec act = affine(uint8, observer=minmax)\n"
        "rule mul: mul : { input[0]: act, output: derived(uint8, from=[input[0]],\n"
        "                  fn=scale_div(divisor=weight.value)) }\n")
    gm = _graph(Mul(), torch.randn(2, 3))
    with pytest.raises(ValidationError, match="QR602.*divisor"):
        load_text(text).quantizer().annotate(gm)
    assert all("quantization_annotation" not in n.meta for n in gm.graph.nodes)


# ------------------------------ end to end: QnnQuantizer's annotations and outputs

END_TO_END = DTYPE_SPECS.split("# Each spec in use once")[0] + """
spec tanh16 = affine(uint16 as int32, observer=fixed_qparams(scale=1/32768, zero_point=32768))
rule linear: linear : { input: act_block, weight: w_block, bias: bias_pc, output: act_block }
rule conv_t: conv_transpose2d : { input: act_pc, weight: w_pc_t, bias: bias_pc_t, output: act_pc }
rule tanh: tanh : { input: act, output: tanh16 }
rule cat: cat : { input: act, output: affine(uint16 as int32, observer=qnn_concat) }
"""


class _Blocks(torch.nn.Module):
    """A block-quantized linear, a grouped transposed conv into tanh, and a cat."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(32, 8)
        self.conv_t = torch.nn.ConvTranspose2d(4, 6, 3, groups=2)

    def forward(self, x, image):
        y = self.linear(x)
        return torch.cat([y, y.tanh()], dim=1), self.conv_t(image).tanh()


@pytest.mark.parametrize("dtype, flags, qat", [
    ("16a4w_block", "16a4w_block", False),
    ("16a8w", "16a8w,per_channel", False),
    ("16a8w", "16a8w,per_channel,qat", True),
])
def test_the_specs_reproduce_qnn_quantizer(dtype, flags, qat):
    """0 mismatching nodes and bit-identical converted outputs against executorch's
    QnnQuantizer (the linear is per-block only with 16a4w_block: the anchor's block map
    names every linear)."""
    import qrules

    text = END_TO_END
    if dtype != "16a4w_block":  # per channel: the linear takes the per-channel specs
        text = text.replace("act_block, weight: w_block", "act_pc, weight: w_pc")
        text = text.replace("bias: bias_pc, output: act_block", "bias: bias_pc, output: act_pc")
    else:  # not per channel: the transposed conv takes the default config's
        text = text.replace("{ input: act_pc, weight: w_pc_t, bias: bias_pc_t, output: act_pc }",
                            "{ input: act, weight: w, bias: bias, output: act }")
    inputs = (torch.randn(2, 32), torch.randn(1, 4, 5, 5))
    report = qrules.diff(f"executorch:qnn[{flags}]",
                         load_text(text, dtype=dtype, qat=qat),
                         _Blocks(), inputs, qat=qat)
    assert report.mismatches == []
    assert report.numerics.outputs_equal and report.numerics.max_abs_diff == 0.0
