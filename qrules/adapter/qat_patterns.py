"""The pattern graphs of torchao's QAT conv-bn fuse and fold, built by hand.

torchao makes each of them with ``torch.export`` of a small Python function in
``torchao.quantization.pt2e.qat_utils`` (``_get_conv_bn_pattern``,
``_get_qat_conv_bn_pattern[_no_conv_bias]``, ``_get_quantized_qat_conv_bn_pattern``,
``_get_folded_quantized_qat_conv_bn_pattern``): ~0.2 s an export, 12 for a prepare and
96 for a convert. The graphs are a few aten ops each, so they are written out here node
by node, as that export makes them: the same nodes in the same order, node names
(which the subgraph rewriter gives the nodes it copies into the user's graph), targets,
arguments, and the metadata later passes read: ``val`` (fake tensors of torchao's
example shapes, which prepare's observer insertion and convert's Q/DQ dtype read),
``tensor_meta``, ``eager_input_vals`` of the Q/DQ ops, and the trace's
``nn_module_stack`` / ``source_fn_stack`` / ``torch_fn`` / ``original_aten`` /
``seq_nr`` (what a later re-export carries on to partitioners; ``seq_nr`` as a fresh
process's export gives it). Left out: the export's ``stack_trace`` and ``from_node``
(where torch.export ran, which it did not).
tests/engine/test_qat_patterns.py compares every graph with torchao's export.

Each graph is built on first use and kept for the process (``functools.cache``, keyed
by the builder's arguments); callers only read it (the subgraph rewriter copies
from it).
"""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.ao.quantization.fx._decomposed import quantized_decomposed_lib  # noqa: F401
from torch.fx.passes.shape_prop import _extract_tensor_metadata

aten = torch.ops.aten
quantized = torch.ops.quantized_decomposed

# conv kind (what torchao's patterns call) -> (its aten target, spatial rank, transposed)
CONV_KINDS: dict = {
    F.conv1d: (aten.conv1d.default, 1, False),
    F.conv2d: (aten.conv2d.default, 2, False),
    F.conv_transpose1d: (aten.conv_transpose1d.default, 1, True),
    F.conv_transpose2d: (aten.conv_transpose2d.input, 2, True),
}

# pattern-graph constants torchao's functions use: bn eps and momentum, the dummy
# Q/DQ arguments of ``_append_qdq`` (matched with ignore_literals, then overwritten)
_BN_EPS, _BN_MOMENTUM = 1e-05, 0.1
_QDQ_RANGE = (-127, 127, torch.int8)
_WRAPPER_STACK = {"L__self__": ("", "torchao.quantization.pt2e.export_utils.WrapperModule")}


def _sources() -> dict:
    """aten target -> (the Python callable the pattern function calls, its
    ``source_fn_stack`` base name, its ``torch_fn`` base name and kind)."""
    table = {
        aten.add.Tensor: (operator.add, "add", "add", "method_descriptor.add"),
        aten.sqrt.default: (torch.sqrt, "sqrt", "sqrt", "builtin_function_or_method.sqrt"),
        aten.div.Tensor: (operator.truediv, "truediv", "div", "method_descriptor.div"),
        aten.mul.Tensor: (operator.mul, "mul", "mul", "method_descriptor.mul"),
        aten.reshape.default: ("reshape", "reshape", "reshape", "method_descriptor.reshape"),
        aten.zeros_like.default: (torch.zeros_like, "zeros_like", "zeros_like",
                                  "builtin_function_or_method.zeros_like"),
        aten.batch_norm.default: (F.batch_norm, "batch_norm", "batch_norm",
                                  "function.batch_norm"),
    }
    for conv_fn, (target, _, _) in CONV_KINDS.items():
        name = conv_fn.__name__
        table[target] = (conv_fn, name, name, f"builtin_function_or_method.{name}")
    for packet in (quantized.quantize_per_channel, quantized.dequantize_per_channel,
                   quantized.quantize_per_tensor, quantized.dequantize_per_tensor):
        name = packet._qualified_op_name.split("::")[1]
        table[packet.default] = (packet, name, name, f"OpOverloadPacket.{name}")
    return table


_SOURCES = _sources()


class _Builder:
    """One pattern graph. Each node's value is computed on the meta device (shapes and
    dtypes only), then wrapped as a fake tensor of the graph's fake mode, which is what
    an export stores; running the ops in the fake mode itself costs ~10x more."""

    def __init__(self, device: str):
        self.graph = torch.fx.Graph()
        self.mode = FakeTensorMode()
        self.device = torch.device(device)
        self.meta_values: dict[torch.fx.Node, torch.Tensor] = {}

    def _store(self, node: torch.fx.Node, value: torch.Tensor) -> None:
        self.meta_values[node] = value
        node.meta["val"] = FakeTensor(self.mode, value, self.device)
        node.meta["tensor_meta"] = _extract_tensor_metadata(node.meta["val"])

    def input(self, name: str, shape: tuple, dtype=torch.float32) -> torch.fx.Node:
        node = self.graph.placeholder(name)
        self._store(node, torch.empty(shape, dtype=dtype, device="meta"))
        return node

    def call(self, target, *args, **kwargs) -> torch.fx.Node:
        python_fn, source_name, torch_fn_name, torch_fn_kind = _SOURCES[target]
        node = self.graph.create_node("call_function", target, args, kwargs,
                                      name=torch_fn_name)
        suffix = node.name[len(torch_fn_name):]  # "" or "_k": the k-th call of this op
        count = int(suffix[1:] or 0) + 1
        node.meta.update({"nn_module_stack": dict(_WRAPPER_STACK),
                          "source_fn_stack": [(source_name + suffix, python_fn)],
                          "original_aten": target, "seq_nr": -1,
                          "torch_fn": (f"{torch_fn_name}_{count}", torch_fn_kind)})
        if target.namespace == "quantized_decomposed":
            node.meta["eager_input_vals"] = (tuple(
                a.meta["val"] if isinstance(a, torch.fx.Node) else None for a in args), {})
        self._store(node, target(*[self.meta_values.get(a, a) if isinstance(a, torch.fx.Node)
                                   else a for a in args], **kwargs))
        return node

    def finish(self, result: torch.fx.Node) -> torch.fx.GraphModule:
        self.graph.output((result,))
        return torch.fx.GraphModule(torch.nn.Module(), self.graph)


def _shapes(conv_fn) -> tuple:
    """torchao's example shapes: input, weight (1 channel, 3 wide / 1 wide)."""
    rank = CONV_KINDS[conv_fn][1]
    return (1, 1) + (3,) * rank, (1, 1) + (1,) * rank


def _channel_shape(conv_fn, axis: int) -> list:
    shape = [1] * (CONV_KINDS[conv_fn][1] + 2)
    shape[axis] = -1
    return shape


def _batch_norm(b: _Builder, x, bn: list, training: bool):
    return b.call(aten.batch_norm.default, x, *bn, training, _BN_MOMENTUM, _BN_EPS, False)


def _conv(b: _Builder, conv_fn, x, weight, bias):
    target = CONV_KINDS[conv_fn][0]
    return b.call(target, x, weight) if bias is None else b.call(target, x, weight, bias)


def _scale_factor(b: _Builder, bn: list):
    """bn weight / sqrt(running var + eps): torchao's ``scale_factor``."""
    std = b.call(aten.sqrt.default, b.call(aten.add.Tensor, bn[3], _BN_EPS))
    return b.call(aten.div.Tensor, bn[0], std)


def _fuse_inputs(b: _Builder, conv_fn) -> list:
    x_shape, w_shape = _shapes(conv_fn)
    return [b.input("args_0", x_shape), b.input("args_1", w_shape)] + [
        b.input(f"args_{i}", (1,)) for i in range(2, 7)]


@functools.cache
def conv_bn(conv_fn, device: str = "cpu") -> torch.fx.GraphModule:
    """``_get_conv_bn_pattern(conv_fn)`` exported: what the fuse matches."""
    b = _Builder(device)
    x, weight, bias, *bn = _fuse_inputs(b, conv_fn)
    return b.finish(_batch_norm(b, _conv(b, conv_fn, x, weight, bias), bn, True))


@functools.cache
def qat_conv_bn(conv_fn, with_bias: bool, device: str = "cpu") -> torch.fx.GraphModule:
    """``_get_qat_conv_bn_pattern(conv_fn)`` exported (``with_bias=False``: its
    ``_no_conv_bias`` variant): what the fuse puts in the match's place."""
    b = _Builder(device)
    x, weight, bias, *bn = _fuse_inputs(b, conv_fn)
    factor = _scale_factor(b, bn)
    out_axis = 1 if CONV_KINDS[conv_fn][2] else 0
    scaled = b.call(aten.mul.Tensor, weight,
                    b.call(aten.reshape.default, factor, _channel_shape(conv_fn, out_axis)))
    zero_bias = b.call(aten.zeros_like.default, bias, dtype=torch.float32,
                       pin_memory=False) if with_bias else None
    y = _conv(b, conv_fn, x, scaled, zero_bias)
    y = b.call(aten.div.Tensor, y,
               b.call(aten.reshape.default, factor, _channel_shape(conv_fn, 1)))
    if with_bias:
        y = b.call(aten.add.Tensor, y,
                   b.call(aten.reshape.default, bias, _channel_shape(conv_fn, 1)))
    return b.finish(_batch_norm(b, y, bn, True))


def _fold_inputs(b: _Builder, conv_fn, per_channel: bool, has_bias: bool,
                 bias_quantized: bool) -> tuple[list, dict]:
    """The positional inputs, then the keyword ones
    ``_get_quantized_conv_bn_example_inputs_kwargs`` gives, in its order."""
    x_shape, w_shape = _shapes(conv_fn)
    args = [b.input("args_0", x_shape), b.input("args_1", w_shape)] + [
        b.input(f"args_{i}", (1,)) for i in range(2, 6)]
    names = []
    if per_channel:
        names += ["weight"] + (["bias"] if has_bias and bias_quantized else [])
    kwargs = {}
    for role in names:
        kwargs[f"{role}_scale"] = b.input(f"{role}_scale", (1,))
        kwargs[f"{role}_zero_point"] = b.input(f"{role}_zero_point", (1,), torch.int32)
    if has_bias:
        kwargs["conv_bias"] = b.input("conv_bias", (1,))
    return args, kwargs


def _qdq(b: _Builder, x, per_channel: bool, role: str, kwargs: dict):
    """torchao's ``_append_qdq``: a Q/DQ pair with dummy parameters."""
    if per_channel:
        params = (kwargs[f"{role}_scale"], kwargs[f"{role}_zero_point"], 0, *_QDQ_RANGE)
        q = b.call(quantized.quantize_per_channel.default, x, *params)
        return b.call(quantized.dequantize_per_channel.default, q, *params)
    params = (1.0, 0, *_QDQ_RANGE)
    q = b.call(quantized.quantize_per_tensor.default, x, *params)
    return b.call(quantized.dequantize_per_tensor.default, q, *params)


@functools.cache
def quantized_qat_conv_bn(conv_fn, per_channel: bool, has_bias: bool, bias_quantized: bool,
                          training: bool, device: str = "cpu") -> torch.fx.GraphModule:
    """``_get_quantized_qat_conv_bn_pattern(...)`` exported: what the fold matches."""
    b = _Builder(device)
    (x, weight, *bn), kwargs = _fold_inputs(b, conv_fn, per_channel, has_bias, bias_quantized)
    factor = _scale_factor(b, bn)
    # torchao scales along axis 0 here for every conv kind, transposed ones included
    scaled = b.call(aten.mul.Tensor, weight,
                    b.call(aten.reshape.default, factor, _channel_shape(conv_fn, 0)))
    scaled = _qdq(b, scaled, per_channel, "weight", kwargs)
    zero_bias = None
    if has_bias:
        zero_bias = b.call(aten.zeros_like.default, kwargs["conv_bias"], dtype=torch.float32,
                           pin_memory=False)
        if bias_quantized:
            zero_bias = _qdq(b, zero_bias, per_channel, "bias", kwargs)
    y = _conv(b, conv_fn, x, scaled, zero_bias)
    y = b.call(aten.div.Tensor, y,
               b.call(aten.reshape.default, factor, _channel_shape(conv_fn, 1)))
    if has_bias:
        y = b.call(aten.add.Tensor, y, b.call(aten.reshape.default, kwargs["conv_bias"],
                                              _channel_shape(conv_fn, 1)))
    return b.finish(_batch_norm(b, y, bn, training))


@functools.cache
def folded_qat_conv_bn(conv_fn, per_channel: bool, has_bias: bool, bias_quantized: bool,
                       training: bool, device: str = "cpu") -> torch.fx.GraphModule:
    """``_get_folded_quantized_qat_conv_bn_pattern(...)`` exported: what the fold
    puts in the match's place."""
    b = _Builder(device)
    (x, weight, *bn), kwargs = _fold_inputs(b, conv_fn, per_channel, has_bias, bias_quantized)
    weight = _qdq(b, weight, per_channel, "weight", kwargs)
    bias = kwargs.get("conv_bias")
    if bias is not None and bias_quantized:
        bias = _qdq(b, bias, per_channel, "bias", kwargs)
    return b.finish(_batch_norm(b, _conv(b, conv_fn, x, weight, bias), bn, training))
