"""QAT conv(+transpose)-batch-norm fusion at prepare and its fold at convert.

torchao's ``_fuse_conv_bn_qat`` / ``_fold_conv_bn_qat`` rewrite [conv - bn] into the
QAT form (scaled weight, bn statistics kept) and, at convert, the quantized QAT form
back into a conv with the bn folded in. They find those subgraphs with pattern graphs
made by ``torch.export`` of small Python functions: 12 exports per prepare and 96 per
convert, for all four conv kinds whether the graph has them or not, every call
(~95% of a QAT convert). Here the same rewrites run with the same torchao building
blocks (filters, metadata copying, bn folding) in the same order, so the graph comes
out the same, but:

- the pattern graphs are ``qat_patterns``' hand-built copies of those exports (no
  ``torch.export`` at run time), each built on first use and kept for the process,
  keyed by what it depends on (conv kind, bias, per-channel, bias quantized, bn
  training, device);
- a conv kind the graph does not call is skipped: its patterns cannot match, and
  torchao's per-kind pass then only removes dead code and recompiles, done once here.

Unlike torchao's, these passes do not draw from the global RNG (torchao builds random
example inputs for every export).
"""

from __future__ import annotations

import contextlib
import itertools

import torch
from torch.export.unflatten import _assign_attr, _AttrKind
from torch.fx.subgraph_rewriter import replace_pattern_with_filters
from torch.nn.utils.fusion import fuse_conv_bn_weights

from qrules.adapter import qat_patterns as patterns
from qrules.adapter import torchao  # noqa: F401  (quiets torchao's import first)
from torchao.quantization.pt2e import qat_utils as qat  # noqa: E402
from torchao.quantization.pt2e import utils as pt2e_utils  # noqa: E402


def _present_kinds(m: torch.fx.GraphModule) -> list:
    targets = {n.target for n in m.graph.nodes if n.op == "call_function"}
    return [kind for kind, (target, *_) in patterns.CONV_KINDS.items() if target in targets]


def _prune(m) -> None:
    """What torchao's passes do to the graph even where no pattern matches: drop dead
    nodes, then (the subgraph rewriter, on every call) unused submodules."""
    m.graph.eliminate_dead_code()
    m.delete_all_unused_submodules()


@contextlib.contextmanager
def _one_recompile(m: torch.fx.GraphModule):
    """Regenerate ``m``'s code once, on the way out. The subgraph rewriter and torchao's
    helpers recompile after every step (~35 ms a time on resnet18, 48 times in a
    convert); nothing runs the module in between, and the code depends only on the
    final graph."""
    m.recompile = lambda: None  # an instance attribute shadows the method
    try:
        yield m
    finally:
        del m.recompile
        m.recompile()


def _devices() -> list[str]:
    """torchao's ``is_cuda`` options, as the device its pattern graphs are made on."""
    return ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]


def _fuse_kind(m, conv_fn, device: str) -> None:
    match = patterns.conv_bn(conv_fn, device)
    replaced = []
    for with_bias, keep in ((True, qat._has_conv_bias_filter),
                            (False, qat._no_conv_bias_filter)):
        replacement = patterns.qat_conv_bn(conv_fn, with_bias, device)
        replaced += replace_pattern_with_filters(m, match, replacement, match_filters=[keep],
                                                 ignore_literals=True)
    _carry_over_metadata(m, replaced)


def _carry_over_metadata(m, replaced: list) -> None:
    """The subgraph rewriter drops metadata: give each new node of [conv - bn -
    getitem] its original's meta (annotations, stack), conv literal args, and point the
    annotations that named old nodes at the new ones."""
    import copy

    renamed = {}
    for replacement in replaced:
        pairs = qat._get_conv_bn_pattern_nodes(replacement)
        conv_stack = pairs["conv"][0].meta.get("nn_module_stack", None)
        for role, (original, new) in pairs.items():
            new.meta = original.meta
            if role in ("conv_input", "conv_weight") and conv_stack \
                    and "nn_module_stack" not in new.meta:
                new.meta["nn_module_stack"] = copy.deepcopy(conv_stack)
            if qat._is_conv_or_conv_transpose_node(original):
                qat._copy_over_literal_conv_args(original, new)
                qat._update_conv_input_qspec_map_after_replacement(original, new)
            renamed[original] = new
    for node in m.graph.nodes:
        qat._update_special_qspecs_after_replacement(node, renamed)


def fuse_conv_bn_qat(m: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Pre: an annotated exported graph. Post: what torchao's ``_fuse_conv_bn_qat``
    returns for it: every [conv - bn] of a present conv kind in its QAT form, the
    annotations moved onto the new nodes."""
    if not any(qat._is_bn_node(n) for n in m.graph.nodes):
        return m
    with _one_recompile(m):
        _prune(m)
        for device in _devices():
            for conv_fn in _present_kinds(m):
                _fuse_kind(m, conv_fn, device)
    return m


# a quantized pattern's Q op, by its per-channel flag
_QUANTIZE = {True: torch.ops.quantized_decomposed.quantize_per_channel.default,
             False: torch.ops.quantized_decomposed.quantize_per_tensor.default}


def _can_match(m, per_channel: bool, has_bias: bool, bias_quantized: bool) -> bool:
    """Whether the graph has the edges a quantized QAT pattern needs: its weight Q op
    fed by the scaling ``mul`` and, with a bias, a ``zeros_like`` (with a quantized
    bias, feeding that Q op). Without them the pattern cannot match, so it is neither
    built nor tried (activations' per-tensor Q ops alone do not count)."""
    edges = {(n.target, n.args[0].target) for n in m.graph.nodes
             if n.op == "call_function" and n.args and isinstance(n.args[0], torch.fx.Node)}
    zeros_like = torch.ops.aten.zeros_like.default
    return (_QUANTIZE[per_channel], torch.ops.aten.mul.Tensor) in edges and (
        not has_bias or zeros_like in {n.target for n in m.graph.nodes}) and (
        not bias_quantized or (_QUANTIZE[per_channel], zeros_like) in edges)


def _fold_kind(m, conv_fn, device: str) -> None:
    m.graph.eliminate_dead_code()
    qat._duplicate_dequantize_node(m)
    replaced = []
    for per_channel, has_bias, bias_quantized, training in itertools.product(
            (True, False), repeat=4):
        if not has_bias and bias_quantized:
            continue  # the same pattern as bias_quantized=False
        if not _can_match(m, per_channel, has_bias, bias_quantized):
            continue
        flags = (per_channel, has_bias, bias_quantized, training)
        match = patterns.quantized_qat_conv_bn(conv_fn, *flags, device)
        replacement = patterns.folded_qat_conv_bn(conv_fn, *flags, device)
        replaced += replace_pattern_with_filters(m, match, replacement, ignore_literals=True)
    qat._remove_extra_dequantize(m)
    _fold_replaced(m, replaced)
    m.graph.eliminate_dead_code()


def _parameter(m, node):
    return None if node is None else pt2e_utils._get_tensor_constant_from_node(node, m)


def _fold_bn_into_conv(m, conv, weight, bias, bn) -> None:
    """torchao's ``fold_bn_weights_into_conv_node`` for ``aten.batch_norm`` (what
    exports make today), without its second, identical ``fuse_conv_bn_weights`` and its
    dead-code pass per conv (the fold runs one at the end). Older batch-norm ops go to
    torchao's function."""
    if bn.target != torch.ops.aten.batch_norm.default:
        qat.fold_bn_weights_into_conv_node(conv, weight, bias, bn, m)
        return
    bn_args = pt2e_utils._get_all_arguments(bn.args, bn.kwargs, bn.target._schema.arguments)
    bn_weight, bn_bias, mean, var = (_parameter(m, node) for node in bn_args[1:5])
    fused_weight, fused_bias = fuse_conv_bn_weights(
        _parameter(m, weight), _parameter(m, bias), mean, var, bn_args[7], bn_weight, bn_bias,
        transpose=pt2e_utils._is_conv_transpose_node(conv))
    _assign_attr(fused_weight, m, str(weight.target), _AttrKind.PARAMETER)
    conv_args = list(conv.args) + [None] * (3 - len(conv.args))
    if bias is not None:
        _assign_attr(fused_bias, m, str(bias.target), _AttrKind.PARAMETER)
    else:
        name = str(weight.target) + "_bias"
        _assign_attr(fused_bias, m, name, _AttrKind.PARAMETER)
        with m.graph.inserting_before(conv):
            conv_args[2] = m.graph.get_attr(name)
        if "val" in conv.meta:
            conv_args[2].meta["val"] = conv.meta["val"].fake_mode.from_tensor(
                fused_bias, static_shapes=True)
    conv.args = tuple(conv_args)
    bn.replace_all_uses_with(conv)
    m.graph.erase_node(bn)


def _fold_replaced(m, replaced: list) -> None:
    """Per replaced subgraph: metadata and weight/bias Q/DQ args from the original,
    then bn folded into the conv's weight and bias."""
    for replacement in replaced:
        pairs = qat._get_conv_bn_pattern_nodes(replacement)
        for original, new in pairs.values():
            new.meta = original.meta
        qat._copy_over_q_dq_args(*pairs["conv_weight_q"])
        qat._copy_over_q_dq_args(*pairs["conv_weight_dq"])
        if "conv_bias_q" in pairs:
            qat._copy_over_q_dq_args(*pairs["conv_bias_q"])
            qat._copy_over_q_dq_args(*pairs["conv_bias_dq"])
        conv = pairs["conv"][1]
        bias = pairs["conv_bias"][1] if "conv_bias" in pairs else None
        _fold_bn_into_conv(m, conv, pairs["conv_weight"][1], bias, pairs["bn"][1])
        for original in qat._filter_nodes_map(replacement.nodes_map).values():
            if qat._is_conv_or_conv_transpose_node(original):
                qat._copy_over_literal_conv_args(original, conv)


def _is_bn_step_counter_update(node) -> bool:
    """``num_batches_tracked += 1`` of a BatchNorm2d: dead once bn is folded."""
    if node.target != torch.ops.aten.add_.Tensor or node.args[0].op != "get_attr" \
            or node.args[1] != 1:
        return False
    stack = node.meta["nn_module_stack"].values()
    return "torch.nn.modules.batchnorm.BatchNorm2d" in [entry[1] for entry in stack]


def fold_conv_bn_qat(m: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Pre: a graph after torchao's reference Q/DQ conversion. Post: what torchao's
    ``_fold_conv_bn_qat`` returns for it: each quantized QAT [conv - bn] of a present
    conv kind back to a conv with bn folded into its weight and bias."""
    if not any(qat._is_bn_node(n) for n in m.graph.nodes):
        return m
    with _one_recompile(m):
        _prune(m)
        kinds = _present_kinds(m)
        for device in _devices():
            for conv_fn in kinds:
                _fold_kind(m, conv_fn, device)
        for node in list(m.graph.nodes):
            if _is_bn_step_counter_update(node):
                m.graph.erase_node(node)
        m.graph.eliminate_dead_code()
    return m
