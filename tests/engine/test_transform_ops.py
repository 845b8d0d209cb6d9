"""`transform scalars_to_attrs(ops=[...])`: op-list keywords of transforms, resolved
like a pattern's ops; and the xnnpack ruleset's `keep_integer_arithmetic` switch."""

import warnings

import pytest
import torch

import qrules
from qrules.semantics import registry
from tests.models import export

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

HEAD = 'ruleset t version "1.0"\nrule relu: relu : none\n'


class Arithmetic(torch.nn.Module):
    def forward(self, x):
        y = (x + 1.0) * 2.0 / 3.0 - 0.5
        return y.add_(4.0)


class Shifted(torch.nn.Module):
    """The minimal reproduction in docs/equivalence.md ("Anchor bugs")."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)

    def forward(self, idx):
        return self.emb(idx + 1)


def _export(module, *inputs):
    return export(module.eval(), inputs)


def _converted(gm) -> set[str]:
    """Targets (as strings) whose scalar operand became a get_attr constant."""
    return {str(n.target) for n in gm.graph.nodes if n.op == "call_function"
            and any(getattr(a, "op", None) == "get_attr" for a in n.args)}


def _transformed(text: str, gm, **params):
    quantizer = qrules.load_text(HEAD + text, "t.qrule", **params).quantizer()
    return quantizer.transform_for_annotation(gm)


def test_without_ops_add_mul_sub_div_are_converted():
    gm = _transformed("transform scalars_to_attrs\n", _export(Arithmetic(), torch.randn(3)))
    assert _converted(gm) == {"aten.add.Tensor", "aten.mul.Tensor", "aten.div.Tensor",
                              "aten.sub.Tensor"}


def test_ops_limits_the_conversion_to_their_overloads():
    x = torch.randn(3)
    gm = _export(Arithmetic(), x)
    expected = gm(x)
    gm = _transformed("transform scalars_to_attrs(ops=[add, mul])\n", gm)
    # The prelude's add and mul cover the in-place overloads too.
    assert _converted(gm) == {"aten.add.Tensor", "aten.mul.Tensor", "aten.add_.Tensor"}
    torch.testing.assert_close(gm(x), expected)


def test_ops_are_resolved_with_the_rulesets_own_vocabulary():
    text = ("op add_out_of_place: aten.add.Tensor\n"
            "op arithmetic = add_out_of_place | div\n"
            "transform scalars_to_attrs(ops=[arithmetic])\n")
    gm = _transformed(text, _export(Arithmetic(), torch.randn(3)))
    assert _converted(gm) == {"aten.add.Tensor", "aten.div.Tensor"}  # not add_
    gm = _transformed("override op add: aten.add_.Tensor { input: 0, input: 1 }\n"
                      "transform scalars_to_attrs(ops=[add])\n",
                      _export(Arithmetic(), torch.randn(3)))
    assert _converted(gm) == {"aten.add_.Tensor"}


@pytest.mark.parametrize("text, code", [
    ("transform scalars_to_attrs(ops=[add, mull])\n", "QR201"),
    ("transform scalars_to_attrs(ops=[any])\n", "QR201"),
    ("transform scalars_to_attrs(ops=add)\n", "QR310"),
    ("transform scalars_to_attrs(ops=[\"add\"])\n", "QR310"),
])
def test_bad_op_lists_are_lint_errors(text, code):
    with pytest.raises(qrules.QruleError) as info:
        qrules.load_text(HEAD + text, "t.qrule")
    assert [d.code for d in info.value.diagnostics] == [code]


def test_registered_transforms_get_overloads(registered):
    seen = []

    def record(gm, targets=frozenset()):
        seen.append(targets)
        return gm

    registry.register_transform("record", record, {"targets"}, op_kwargs={"targets"})
    registered.append((registry.TRANSFORMS, "record"))
    _transformed("transform record(targets=[relu, conv])\n", _export(Arithmetic(),
                                                                      torch.randn(3)))
    ops = torch.ops.aten
    assert seen == [frozenset({ops.relu.default, ops.relu_.default, ops.conv1d.default,
                               ops.conv1d.padding, ops.conv2d.default, ops.conv2d.padding,
                               ops.conv3d.default, ops.conv3d.padding})]
    with pytest.raises(ValueError, match="among kwargs"):
        registry.register_transform("bad", record, {"a"}, op_kwargs={"b"})


def _calibrate(quantizer) -> str:
    idx = torch.tensor([1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_pt2e(_export(Shifted(), idx), quantizer)
    add = next(n for n in prepared.graph.nodes if n.target == torch.ops.aten.add.Tensor)
    try:
        prepared(idx)
    except RuntimeError as err:
        return f"{add.args[1]}: {'Float' in str(err) and 'indices' in str(err)}"
    return f"{add.args[1]}: ok"


def test_xnnpack_keeps_the_anchors_integer_scalar_bug_by_default():
    # torchao turns the `1` of `idx + 1` into a float32 constant, and the embedding
    # then fails on float indices; the ruleset does the same unless asked not to.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "XNNPACKQuantizer is deprecated"
        anchor = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    assert _calibrate(anchor) == "_tensor_constant_0: True"
    assert _calibrate(qrules.load("xnnpack").quantizer()) == "_tensor_constant_0: True"
    fixed = qrules.load("xnnpack", keep_integer_arithmetic=True).quantizer()
    assert _calibrate(fixed) == "1: ok"
