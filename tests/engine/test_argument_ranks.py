"""`registry.ARGUMENT_MIN_RANKS`: tensor arguments whose least rank their op fixes, so
that validation (QR604) does not read them for a per-channel axis under it. The table
is checked against torch itself, in eager and fake-tensor runs; validation's use of it
by what it reports when a tensor's value cannot be read."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import qrules
from qrules.adapter.torchao import ANNOTATION_KEY
from qrules.compile.targets import resolve_target
from qrules.semantics.registry import ARGUMENT_MIN_RANKS
from tests.models import ConvThenLinear, export

_CASES = [(name, position, rank) for name, ranks in sorted(ARGUMENT_MIN_RANKS.items())
          for position, rank in ranks.items()]


def _arguments(name: str, position: int, rank: int) -> list[torch.Tensor]:
    """Arguments of ``name`` that fit each other, but for a tensor of ``rank``
    dimensions at ``position``."""
    if ".linear." in name:
        tensors = [torch.ones(2, 3), torch.ones(4, 3)]   # no bias: a 1-D weight takes none
        shape = (4, 3)[2 - rank:] if rank <= 2 else (1,) * (rank - 2) + (4, 3)
    else:
        dims = int(name.split(".")[1].rstrip("d")[-1])   # aten.conv2d.default -> 2
        channels = (2, 3) if "transpose" in name else (3, 2)   # weight: (out, in) or (in, out)
        tensors = [torch.ones((1, 2) + (4,) * dims), torch.ones(channels + (1,) * dims),
                   torch.ones(3)]
        shape = (channels + (1,) * max(0, rank - 2))[:rank]
    tensors[position] = torch.ones(shape)
    return tensors


def _refuses(name: str, tensors: list, fake: bool) -> bool:
    op = resolve_target(name)
    try:
        if fake:
            with FakeTensorMode() as mode:
                op(*[mode.from_tensor(t) for t in tensors])
        else:
            op(*tensors)
    except (RuntimeError, NotImplementedError, ValueError, TypeError, IndexError):
        return True
    return False


@pytest.mark.parametrize("fake", [False, True], ids=["eager", "fake"])
@pytest.mark.parametrize("name, position, rank", _CASES)
def test_an_op_of_the_table_takes_its_least_rank_and_refuses_one_less(name, position,
                                                                      rank, fake):
    assert not _refuses(name, _arguments(name, position, rank), fake)
    assert _refuses(name, _arguments(name, position, rank - 1), fake)


RULES = """ruleset ranks version "1.0"
spec act = affine(int8, -128..127)
spec w = symmetric(int8, -127..127, per_channel(axis=0))
spec conv_w = symmetric(int8, -127..127, per_channel(axis=CONV))
spec linear_w = symmetric(int8, -127..127, per_channel(axis=LINEAR))
rule conv: conv2d : { input: INPUT, weight: conv_w, output: act }
rule linear: linear : { input: act, weight: linear_w, output: act }
"""


def _unrecorded(input_spec: str, conv_axis: int, linear_axis: int):
    """The model annotated with RULES after the export's record of the conv's weight and
    input values is deleted: a tensor validation reads has no dimensions then. (A
    linear's weight keeps its value: the planner reads it to tell it is float.)"""
    gm = export(ConvThenLinear().eval(), (torch.randn(1, 2, 4, 4),))
    calls = {n.target: n for n in gm.graph.nodes if n.op == "call_function"}
    conv, linear = calls[torch.ops.aten.conv2d.default], calls[torch.ops.aten.linear.default]
    for node in conv.args[:2]:
        del node.meta["val"]
        node.meta.pop("tensor_meta", None)
    rules = RULES.replace("CONV", str(conv_axis)).replace("LINEAR", str(linear_axis))
    rules = rules.replace("INPUT", input_spec)
    quantizer = qrules.load_text(rules, "ranks.qrule").quantizer()
    return gm, quantizer, conv, linear


def test_a_conv_weight_is_not_read_for_an_axis_under_its_rank():
    gm, quantizer, conv, _ = _unrecorded("act", 2, 0)
    quantizer.annotate(gm)   # axis 2 < 4: no QR604, though the weight has no value
    assert conv.meta[ANNOTATION_KEY].input_qspec_map[conv.args[1]].ch_axis == 2


@pytest.mark.parametrize("input_spec, node", [("act", "linear weight"),
                                              ("w", "conv input")])
def test_an_axis_at_the_least_rank_or_an_argument_outside_the_table_is_read(input_spec,
                                                                            node):
    # The linear's weight (2-D) with axis 2: its least rank is 1, so it is read. The
    # conv's input is in no row of the table: read, and it has no value.
    gm, quantizer, conv, linear = _unrecorded(input_spec, 0,
                                              2 if node == "linear weight" else 0)
    read = linear.args[1] if node == "linear weight" else conv.args[0]
    with pytest.raises(qrules.ValidationError) as raised:
        quantizer.annotate(gm)
    assert [(d.code, f"`{read.name}`" in d.message) for d in raised.value.diagnostics] == [
        ("QR604", True)]
