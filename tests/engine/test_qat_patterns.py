"""The hand-built QAT pattern graphs (qrules/adapter/qat_patterns.py) are the graphs
torchao's ``torch.export`` of its pattern functions makes, for every key the fuse and
the fold use: the same nodes in the same order (op, name, target, arguments) and the
same metadata values, aside from what says where and when the export ran:
``stack_trace``, ``from_node`` and ``seq_nr`` (-1 in a fresh process, as built here;
an autograd sequence number once earlier work in the process has advanced it). The
export happens only here, in the test.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from qrules.adapter import qat_patterns
from torchao.quantization.pt2e import qat_utils as qat
from torchao.quantization.pt2e.utils import _get_aten_graph_module_for_pattern

KINDS = list(qat_patterns.CONV_KINDS)
FOLD_FLAGS = [flags for flags in itertools.product((True, False), repeat=4)
              if flags[1] or not flags[2]]  # (per_channel, has_bias, bias_quantized, training)


_WHERE_EXPORTED = ("stack_trace", "from_node", "seq_nr")


def _examples(conv_fn, with_conv_bias: bool) -> tuple:
    x_shape, w_shape = qat_patterns._shapes(conv_fn)
    return tuple(torch.randn(shape) for shape in
                 [x_shape, w_shape] + [(1,)] * (5 if with_conv_bias else 4))


def _value(value):
    """A metadata value as comparable data (fake tensors by shape, dtype, device)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", type(value).__name__, tuple(value.shape), value.dtype,
                value.device, value.stride())
    if isinstance(value, (tuple, list)):
        return type(value).__name__, [_value(item) for item in value]
    if isinstance(value, torch._ops.OpOverload):  # export's copy is not always the same object
        return str(value)
    if isinstance(value, dict):
        return {key: _value(item) for key, item in value.items()}
    return value


def _rows(gm: torch.fx.GraphModule) -> list:
    return [(node.op, node.name, str(node.target), str(node.args), str(node.kwargs),
             {key: _value(value) for key, value in sorted(node.meta.items())
              if key not in _WHERE_EXPORTED})
            for node in gm.graph.nodes]


def _assert_same(exported: torch.fx.GraphModule, built: torch.fx.GraphModule) -> None:
    want, have = _rows(exported), _rows(built)
    for index, (a, b) in enumerate(zip(want, have)):
        assert a == b, f"node {index}: {a} != {b}"
    assert len(want) == len(have)
    assert dict(exported.named_parameters()) == dict(built.named_parameters()) == {}
    assert dict(exported.named_buffers()) == dict(built.named_buffers()) == {}


@pytest.mark.parametrize("conv_fn", KINDS, ids=[k.__name__ for k in KINDS])
def test_fuse_patterns(conv_fn):
    examples = _examples(conv_fn, True)
    _assert_same(_get_aten_graph_module_for_pattern(qat._get_conv_bn_pattern(conv_fn),
                                                    examples),
                 qat_patterns.conv_bn(conv_fn))
    for with_bias, build in ((True, qat._get_qat_conv_bn_pattern),
                             (False, qat._get_qat_conv_bn_pattern_no_conv_bias)):
        _assert_same(_get_aten_graph_module_for_pattern(build(conv_fn), examples),
                     qat_patterns.qat_conv_bn(conv_fn, with_bias))


@pytest.mark.parametrize("conv_fn", KINDS, ids=[k.__name__ for k in KINDS])
def test_fold_patterns(conv_fn):
    examples = _examples(conv_fn, False)
    for flags in FOLD_FLAGS:
        kwargs = qat._get_quantized_conv_bn_example_inputs_kwargs(*flags[:3], False)
        exported = _get_aten_graph_module_for_pattern(
            qat._get_quantized_qat_conv_bn_pattern(*flags[:3], conv_fn, flags[3]),
            examples, **kwargs)
        _assert_same(exported, qat_patterns.quantized_qat_conv_bn(conv_fn, *flags))
        exported = _get_aten_graph_module_for_pattern(
            qat._get_folded_quantized_qat_conv_bn_pattern(*flags[:3], conv_fn, flags[3]),
            examples, **kwargs)
        _assert_same(exported, qat_patterns.folded_qat_conv_bn(conv_fn, *flags))
