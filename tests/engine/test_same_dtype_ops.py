"""`registry.SAME_DTYPE_OVERLOADS`: the ops whose role tensors the planner does not test
for float one by one (docs/semantics.md, "Float only"). The claim behind the table is
checked against torch itself, in eager and fake-tensor runs; the planner's use of it
by what it writes when a role's value cannot be read."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import qrules
from qrules.adapter.torchao import ANNOTATION_KEY
from qrules.compile.targets import resolve_target
from qrules.passes.templates import template
from qrules.semantics.registry import SAME_DTYPE_OVERLOADS
from tests.models import ConvThenLinear, export

_CONVS = sorted(name for name in SAME_DTYPE_OVERLOADS if ".conv" in name)
_UNARY = sorted(SAME_DTYPE_OVERLOADS - set(_CONVS))
# Extra positional arguments the unary ops need (kernel or output sizes).
_SIZES = {"max_pool": [2], "avg_pool": [2], "adaptive_avg_pool": [1], "dropout": [0.5, False]}


def _run(op, tensors: list, extra: list, fake: bool):
    """``op``'s output dtype on these tensors, or None when the op refuses them."""
    try:
        if fake:
            with FakeTensorMode() as mode:
                return op(*[mode.from_tensor(t) for t in tensors], *extra).dtype
        return op(*tensors, *extra).dtype
    except (RuntimeError, NotImplementedError, ValueError, TypeError):
        return None


def _unary_input(name: str) -> torch.Tensor:
    dims = 3 if "1d" in name else 5 if "3d" in name else 4
    return torch.ones((1, 2) + (4,) * (dims - 2), dtype=torch.int64)


@pytest.mark.parametrize("fake", [False, True], ids=["eager", "fake"])
@pytest.mark.parametrize("name", _UNARY)
def test_a_unary_op_of_the_table_never_makes_floats_of_integers(name, fake):
    x = _unary_input(name)
    sizes = next((v for k, v in _SIZES.items() if k in name), [])
    extra = [size * (x.dim() - 2) if isinstance(size, list) else size for size in sizes]
    assert _run(resolve_target(name), [x], extra, fake) in (None, torch.int64)


@pytest.mark.parametrize("fake", [False, True], ids=["eager", "fake"])
@pytest.mark.parametrize("name", _CONVS)
@pytest.mark.parametrize("integer", [0, 1, 2], ids=["input", "weight", "bias"])
def test_a_conv_of_the_table_refuses_an_integer_tensor_beside_floats(name, integer, fake):
    dims = int(name.split(".")[1][-2])   # aten.conv2d.default -> 2
    shapes = [(1, 2) + (4,) * dims, (3, 2) + (1,) * dims, (3,)]
    tensors = [torch.ones(shape, dtype=torch.int64 if index == integer else torch.float32)
               for index, shape in enumerate(shapes)]
    assert _run(resolve_target(name), tensors, [], fake) is None


def test_promoting_and_mixing_ops_are_not_in_the_table():
    # Each of these gives a float output with an integer tensor among its inputs.
    assert _run(torch.ops.aten.sigmoid.default, [torch.ones(2, dtype=torch.int64)], [],
                False) == torch.float32
    linear = [torch.ones(1, 2), torch.ones(3, 2, dtype=torch.int64), torch.ones(3)]
    assert _run(torch.ops.aten.linear.default, linear, [], True) == torch.float32
    padding = [torch.ones(1, 2, 4, 4), torch.ones(3, 2, 1, 1), torch.ones(3, dtype=torch.int64)]
    assert _run(torch.ops.aten.conv2d.padding, padding, [], False) == torch.float32
    for name in ("aten.sigmoid.default", "aten.linear.default", "aten.add.Tensor",
                 "aten.mean.dim", "aten.conv_transpose2d.input", "aten.conv2d.padding"):
        assert name not in SAME_DTYPE_OVERLOADS


RULES = """ruleset same_dtype version "1.0"
spec act = affine(int8, -128..127)
spec w = symmetric(int8, -127..127)
rule conv: conv2d : { input: act, weight: WEIGHT, output: act }
rule linear: linear : { input: act, weight: WEIGHT, output: act }
"""


# `w` is placed from a template; a weight sharing the input's observer is placed by
# the general planner (`_owners_first` may reorder such edges): both take the rule.
@pytest.mark.parametrize("weight, planner", [("w", "template"),
                                             ("same_as(input)", "general")])
def test_the_weight_of_a_conv_is_taken_as_float_and_that_of_a_linear_is_read(weight,
                                                                             planner):
    gm = export(ConvThenLinear().eval(), (torch.randn(1, 2, 4, 4),))
    conv = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default)
    linear = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default)
    # Weights whose values the export did not record: the conv's output is float, so
    # its weight is; the linear's weight is read, and reads as no float tensor.
    for node in (conv, linear):
        del node.args[1].meta["val"]
        node.args[1].meta.pop("tensor_meta", None)
    quantizer = qrules.load_text(RULES.replace("WEIGHT", weight),
                                 "same_dtype.qrule").quantizer()
    assert all((template(rule) is not None) == (planner == "template")
               for rule in quantizer.global_ruleset.rules)
    quantizer.annotate(gm)
    assert conv.args[1] in conv.meta[ANNOTATION_KEY].input_qspec_map
    assert linear.args[1] not in linear.meta[ANNOTATION_KEY].input_qspec_map
    assert linear.args[0] in linear.meta[ANNOTATION_KEY].input_qspec_map
