"""qrules' prepare / convert: torchao's ``prepare_pt2e``, ``prepare_qat_pt2e`` and
``convert_pt2e`` as explicit tuples of passes, the slow ones replaced.

Each entry point makes the graph torchao's does (same ops in the same order, node
names, observer / fake-quant classes and arguments, parameters and buffers), so outputs
and QAT gradients are bit-identical; tests/engine/test_shared_passes.py checks it
against torchao's functions. What is qrules' own, and why:

- ``passes.observe.insert_observers`` for torchao's observer insertion (its naming is
  quadratic in the number of observers);
- ``qat_fusion.fuse_conv_bn_qat`` / ``fold_conv_bn_qat`` for ``_fuse_conv_bn_qat`` /
  ``_fold_conv_bn_qat`` (which export their pattern graphs on every call; qrules'
  are built by hand, once per process);
- ``passes.histogram.search_bins``, through ``_fast_histogram_search``, for
  HistogramObserver's range search at convert (a tensor index per step);
- ``_resumed_naming`` for the names of the scale / zero-point buffers the Q/DQ
  conversion adds (torchao scans ``_scale_0``, ``_scale_1``, … from 0 for each:
  quadratic, 11 s of a 10k-node convert);
- ``_DequantizeSkippingFolder``, through ``_dequantize_not_evaluated``, for torchao's
  constant folder, which dequantizes every quantized weight only to drop the value
  (about half of a resnet18 convert).

The rest is torchao's own code, called as is: batch-norm folding for PTQ, the
quantizer's transform/annotate/validate, the edge-to-observer map, Q/DQ conversion, the
duplicate-DQ and metadata passes, constant folding. Graphs with ``scan`` or
``while_loop`` subgraphs go to torchao's functions whole (they recurse into them).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from qrules.adapter import torchao as _torchao_api  # noqa: F401  (quiets torchao's import)
from qrules.adapter.qat_fusion import fold_conv_bn_qat, fuse_conv_bn_qat
from qrules.passes.histogram import search_bins
from qrules.passes.observe import insert_observers

from torch.ao.quantization import QConfigMapping  # noqa: E402
from torch.ao.quantization.fx.custom_config import PrepareCustomConfig  # noqa: E402
from torch.ao.quantization.fx.prepare import _save_state  # noqa: E402
from torch.fx.passes.infra.pass_manager import PassManager  # noqa: E402
from torchao.quantization.pt2e import prepare as _prepare  # noqa: E402
from torchao.quantization.pt2e import quantize_pt2e as _torchao  # noqa: E402
from torchao.quantization.pt2e import constant_fold as _constant_folding  # noqa: E402
from torchao.quantization.pt2e import utils as _pt2e_utils  # noqa: E402
from torchao.quantization.pt2e.convert import _convert_to_reference_decomposed_fx  # noqa: E402
from torchao.quantization.pt2e.observer import (  # noqa: E402
    HistogramObserver, _is_activation_post_process,
)
from torchao.quantization.pt2e.quantizer import DuplicateDQPass, PortNodeMetaForQDQ  # noqa: E402
from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY  # noqa: E402
from torchao.quantization.pt2e.utils import (  # noqa: E402
    _disallow_eval_train, _fuse_conv_bn_, _fuse_linear_bn_, _get_node_name_to_scope,
)

ENGINES = ("qrules", "torchao")

_NESTED_GRAPH_OPS = (torch.ops.higher_order.scan, torch.ops.higher_order.while_loop)


def _has_nested_graphs(model: torch.fx.GraphModule) -> bool:
    return any(n.op == "call_function" and n.target in _NESTED_GRAPH_OPS
               for n in model.graph.nodes)


# --- prepare ----------------------------------------------------------------------

def _fold_batch_norms(model, quantizer, qat):
    _fuse_conv_bn_(model)
    _fuse_linear_bn_(model)
    return model


def _annotate(model, quantizer, qat):
    model = quantizer.transform_for_annotation(model)
    quantizer.annotate(model)
    quantizer.validate(model)
    return model


def _fuse_conv_bn(model, quantizer, qat):
    return fuse_conv_bn_qat(model)


def _has_tensor_output(node) -> bool:
    from torch._subclasses import FakeTensor

    return isinstance(node.meta.get("val"), FakeTensor)


def _unique_device(model):
    devices = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
    if len(devices) > 1:
        raise AssertionError(f"prepare only works with cpu or single-device CUDA modules, "
                             f"but got devices {devices}")
    return next(iter(devices)) if devices else None


def _observe(model, quantizer, qat):
    """torchao's ``prepare`` with qrules' insertion: the same edge/group/observer maps
    (torchao's), the same callback, then one linear insertion pass."""
    edge_specs = _prepare._get_edge_or_node_to_qspec(model)
    groups = _prepare._get_edge_or_node_to_group_id(edge_specs)
    obs_map = _prepare._get_obs_or_fq_map(groups, edge_specs, qat)
    if quantizer.prepare_obs_or_fq_callback:
        quantizer.prepare_obs_or_fq_callback(model, obs_map)
    buffers = {name for name, _ in model.named_buffers(remove_duplicate=False)}
    insert_observers(
        model, obs_map, annotation_key=Q_ANNOTATION_KEY, is_observer=_is_activation_post_process,
        skip_input=lambda node, arg: _prepare._is_mutable_buffer_arg(node, arg, buffers),
        has_tensor_output=_has_tensor_output, device=_unique_device(model))
    return torch.fx.GraphModule(model, model.graph)


PTQ_PREPARE: tuple[Callable, ...] = (_fold_batch_norms, _annotate, _observe)
QAT_PREPARE: tuple[Callable, ...] = (_annotate, _fuse_conv_bn, _observe)


def prepare(model: torch.fx.GraphModule, quantizer, *, qat: bool = False):
    """Pre: an exported GraphModule and a torchao Quantizer. Post: the graph
    ``prepare_pt2e`` (``prepare_qat_pt2e`` with ``qat=True``) returns."""
    if _has_nested_graphs(model):
        return (_torchao.prepare_qat_pt2e if qat else _torchao.prepare_pt2e)(model, quantizer)
    graph_meta = model.meta
    scopes = _get_node_name_to_scope(model)
    for run in QAT_PREPARE if qat else PTQ_PREPARE:
        model = run(model, quantizer, qat)
    _save_state(model, {}, scopes, PrepareCustomConfig(), {}, QConfigMapping(), qat, set())
    model.meta.update(graph_meta)
    return _disallow_eval_train(model)


# --- convert ----------------------------------------------------------------------

def _histogram_range(observer: HistogramObserver):
    """``HistogramObserver._non_linear_param_search`` via ``search_bins``: the same
    range, without a tensor index per step."""
    assert observer.histogram.size()[0] == observer.bins, "bins mismatch"
    bin_width = (observer.max_val - observer.min_val) / observer.bins
    total = torch.sum(observer.histogram).item()
    cumulative = torch.cumsum(observer.histogram, dim=0).tolist()
    start, end = search_bins(cumulative, total, observer._compute_quantization_error)
    return observer.min_val + bin_width * start, observer.min_val + bin_width * (end + 1)


@contextlib.contextmanager
def _fast_histogram_search(model):
    """For the length of the Q/DQ conversion, torchao's own HistogramObservers (not
    subclasses that change the search) search with ``_histogram_range``. Set on the
    instances, so the classes in the graph stay torchao's."""
    patched = [m for m in model.modules() if isinstance(m, HistogramObserver)
               and type(m)._non_linear_param_search is HistogramObserver._non_linear_param_search]
    for observer in patched:
        observer._non_linear_param_search = lambda observer=observer: _histogram_range(observer)
    try:
        yield
    finally:
        for observer in patched:
            observer.__dict__.pop("_non_linear_param_search", None)


@contextlib.contextmanager
def _resumed_naming():
    """For the length of the Q/DQ conversion, torchao's ``get_new_attr_name_with_prefix``
    (the smallest free ``prefix + str(i)``, by ``hasattr`` from 0) resumes each
    (module, prefix) scan at the name it last gave. Every smaller index was taken then
    and nothing in the conversion deletes such attributes, so the names are the same;
    a name given but not set is given again, as torchao's would."""
    original = _pt2e_utils.get_new_attr_name_with_prefix
    resume_at: dict[tuple, tuple] = {}  # (id, prefix) -> (module, index): the module
    # is held so that its id is not reused by another within the conversion

    def resumed(prefix: str):
        prefix = prefix.replace(".", "_")

        def new_name(module) -> str:
            index = resume_at.get((id(module), prefix), (module, 0))[1]
            while hasattr(module, prefix + str(index)):
                index += 1
            resume_at[id(module), prefix] = (module, index)
            return prefix + str(index)

        return new_name

    _pt2e_utils.get_new_attr_name_with_prefix = resumed
    try:
        yield
    finally:
        _pt2e_utils.get_new_attr_name_with_prefix = original


def _reference_qdq(model, fold_quantize):
    with _fast_histogram_search(model), _resumed_naming():
        return _convert_to_reference_decomposed_fx(model)


def _fold_conv_bn(model, fold_quantize):
    return fold_conv_bn_qat(model)


def _duplicate_dq(model, fold_quantize):
    return PassManager([DuplicateDQPass()])(model).graph_module


def _port_qdq_meta(model, fold_quantize):
    return PassManager([PortNodeMetaForQDQ()])(model).graph_module


_DEQUANTIZE_OPS = (torch.ops.quantized_decomposed.dequantize_per_channel.default,
                   torch.ops.quantized_decomposed.dequantize_per_tensor.default,
                   torch.ops.quantized_decomposed.dequantize_per_tensor.tensor)


class _DequantizeSkippingFolder(_constant_folding.ConstantFolder):
    """torchao's constant folder, without evaluating a DQ op on a constant: its
    ``run_node`` computes the value, then, as DQ ops are impure to it, answers
    "unknown" and drops it. Here the answer comes first: the same "unknown" wherever
    torchao's would give it (an impure node whose value is a tensor off the meta
    device; DQ ops keep their input's device)."""

    def _deduce_value(self, node):
        if node.target in _DEQUANTIZE_OPS and self.is_impure(node):
            value = self.env.get(node.args[0])
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                return self.unknown_value
        return super()._deduce_value(node)


@contextlib.contextmanager
def _dequantize_not_evaluated():
    """For the length of a ``constant_fold`` call, torchao's function builds
    ``_DequantizeSkippingFolder`` (it looks its folder class up in its module)."""
    original = _constant_folding.ConstantFolder
    _constant_folding.ConstantFolder = _DequantizeSkippingFolder
    try:
        yield
    finally:
        _constant_folding.ConstantFolder = original


def _fold_quantized_weights(model, fold_quantize):
    if fold_quantize:
        with _dequantize_not_evaluated():
            _constant_folding.constant_fold(model, _torchao._quant_node_constraint)
    return model


CONVERT: tuple[Callable, ...] = (_reference_qdq, _fold_conv_bn, _duplicate_dq, _port_qdq_meta,
                                 _fold_quantized_weights)


def convert(model: torch.fx.GraphModule, *, fold_quantize: bool = True):
    """Pre: a prepared, calibrated (or trained) GraphModule. Post: the graph
    ``convert_pt2e(model, fold_quantize=...)`` returns."""
    if _has_nested_graphs(model):
        return _torchao.convert_pt2e(model, fold_quantize=fold_quantize)
    graph_meta = model.meta
    for run in CONVERT:
        model = run(model, fold_quantize)
    model.meta.update(graph_meta)
    return _disallow_eval_train(model)
