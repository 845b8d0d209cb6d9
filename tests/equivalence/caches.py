"""Three caches of pure torchao / executorch computations that both sides of every
comparison repeat (used by the suite's fixtures and by scripts/equivalence_report.py).

1. torchao's pattern traces (``_get_aten_graph_module_for_pattern``): XNNPACK's QAT
   conv-bn annotators (torchao's copy and executorch's), ``prepare_qat_pt2e`` and
   ``convert_pt2e`` re-trace the same small pattern functions with torch.export on
   every call (~25 s per QAT prepare here).
   The seed suite's cache key (``tests/seed/conftest.py``) is reused: each pattern is
   traced once and handed out as deep copies.
2. ``HistogramObserver._non_linear_param_search``: the L2 range search each histogram
   observer runs at convert time (~55 ms of Python per observer; efficientnet_b0 has
   ~190). Its result depends only on the histogram, its min/max, ``bins`` and
   ``dst_nbins``; both sides of a comparison (and every parameter combination with
   the same activations) observe identical histograms, so it is computed once per
   distinct histogram. A histogram that differs is searched as usual, so a real
   numeric difference still shows.
3. executorch's QNN annotation pipeline (``QnnPassManager.
   transform_for_annotation_pipeline``, ~35 passes that recompile the graph: ~3 s per
   call on vit_b_16): QnnQuantizer and the ``qnn_passes`` transform of the qnn ruleset
   both run it, on the same graph, for each of the 7-16 QNN cases of a model. It reads
   nothing of the quantizer (no dtype, no config: a new pass manager each call), so
   it runs once per input graph, keyed by ``graph_fingerprint``, and is handed out as
   copies (``test_qnn_harness.py`` checks a cached result against an uncached run).

All are undone on exit. qrules itself never traces patterns.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import importlib

import torch
from torch._subclasses.fake_tensor import FakeTensor

from tests.seed import conftest as seed_conftest


@contextlib.contextmanager
def patterns_traced_once():
    modules = [importlib.import_module(name) for name in seed_conftest._PATTERN_MODULES]
    modules.append(importlib.import_module("torchao.testing.pt2e._xnnpack_quantizer_utils"))
    # executorch's XNNPACK annotators bind torchao's tracer in their own module.
    modules.append(importlib.import_module(
        "executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils"))
    original = getattr(modules[0], seed_conftest._NAME)
    cache = {}

    def traced_once(pattern, example_inputs, is_cuda=False, **kwargs):
        try:
            key = seed_conftest._key((pattern, example_inputs, is_cuda, kwargs))
        except seed_conftest._Unkeyable:
            return original(pattern, example_inputs, is_cuda, **kwargs)
        if key not in cache:
            cache[key] = original(pattern, example_inputs, is_cuda, **kwargs)
        return copy.deepcopy(cache[key])

    patched = [m for m in modules if getattr(m, seed_conftest._NAME, None) is original]
    for module in patched:
        setattr(module, seed_conftest._NAME, traced_once)
    try:
        yield
    finally:
        for module in patched:
            setattr(module, seed_conftest._NAME, original)


@contextlib.contextmanager
def histogram_search_once():
    from torchao.quantization.pt2e.observer import HistogramObserver

    original = HistogramObserver._non_linear_param_search
    cache = {}

    def searched_once(self):
        histogram = self.histogram.detach().cpu()
        key = (type(self), histogram.dtype, histogram.numpy().tobytes(),
               float(self.min_val), float(self.max_val), int(self.bins), int(self.dst_nbins))
        if key not in cache:
            cache[key] = tuple(t.clone() for t in original(self))
        return tuple(t.clone() for t in cache[key])

    HistogramObserver._non_linear_param_search = searched_once
    try:
        yield
    finally:
        HistogramObserver._non_linear_param_search = original


def _describe(value):
    """A hashable description of a node argument or meta value: tensors (fake or real) by
    dtype, shape, stride, device and grad flag (real ones also by content), nodes by
    name, containers item by item, anything else by its repr."""
    if isinstance(value, torch.fx.Node):
        return ("node", value.name)
    if isinstance(value, torch.Tensor):
        described = ("tensor", str(value.dtype), tuple(map(str, value.shape)),
                     tuple(map(str, value.stride())) if value.layout == torch.strided
                     else str(value.layout), value.device.type, value.requires_grad)
        if isinstance(value, FakeTensor) or value.device.type == "meta":
            return described
        return described + (_tensor_digest(value),)
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(k), _describe(v)) for k, v in value.items()))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_describe(item) for item in value))
    return ("repr", type(value).__qualname__, repr(value))


def _tensor_digest(tensor) -> str:
    data = tensor.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()


#: A module's attributes graph_fingerprint reads on their own (submodules, state).
_MODULE_CONTAINERS = frozenset({"_modules", "_parameters", "_buffers"})


def graph_fingerprint(model) -> str:
    """Equal only for two GraphModules a graph pass cannot tell apart: per (sub)module its
    type, training flag and attributes (a GraphModule: its generated code); per node its
    op, name, target, arguments, users in order, type and every meta value
    (``_describe``); the module's meta and pytree specs; every state tensor (parameters,
    buffers, constants behind a ``get_attr``) by name, dtype, shape, stride, grad flag
    and bytes."""
    digest = hashlib.sha256()

    def feed(*parts):
        digest.update(repr(parts).encode())

    first_name: dict = {}
    for name, module in model.named_modules(remove_duplicate=False):
        # Which names are one module (an observer shared by two edges) matters too.
        feed("module", name, first_name.setdefault(id(module), name),
             type(module).__qualname__, module.training)
        if not isinstance(module, torch.fx.GraphModule):
            feed(_describe({key: value for key, value in vars(module).items()
                            if key not in _MODULE_CONTAINERS}))
            continue
        feed(module.code, _describe(module.meta),
             repr(getattr(module.graph._codegen, "pytree_info", None)))
        for node in module.graph.nodes:
            feed(node.op, node.name, str(node.target), _describe(node.args),
                 _describe(node.kwargs), [user.name for user in node.users],
                 repr(node.type), _describe(node.meta))
            if node.op == "get_attr":
                value = module
                for part in str(node.target).split("."):
                    value = getattr(value, part)
                if not isinstance(value, torch.nn.Module):
                    feed("attr", node.target, _describe(value))
    state = {**dict(model.named_parameters(remove_duplicate=False)),
             **dict(model.named_buffers(remove_duplicate=False))}
    for name in sorted(state):
        feed("state", name, _describe(state[name]))
    return digest.hexdigest()


#: How many transformed graphs the QNN cache keeps: a model's cases run one after
#: another, so the latest few suffice, and a zoo model's graph weighs up to ~350 MB.
QNN_GRAPHS_KEPT = 4


@contextlib.contextmanager
def qnn_annotation_passes_once():
    from executorch.backends.qualcomm._passes.qnn_pass_manager import QnnPassManager

    from qrules.engine.diff.run import copy_graph

    original = QnnPassManager.transform_for_annotation_pipeline
    cache: collections.OrderedDict = collections.OrderedDict()

    def transformed_once(self, graph_module):
        # The pass list is part of the key: a backend's pass manager may add passes.
        key = (type(self), tuple(self.get_annotation_passes()),
               graph_fingerprint(graph_module))
        if key in cache:
            # The pipeline may rewrite its input in place or return a new module; every
            # caller (torchao's prepare, qrules' transform) goes on with the return value.
            cache.move_to_end(key)
            return copy_graph(cache[key])
        result = original(self, graph_module)
        # copy_graph, not deepcopy: users keep their order ("first user" annotators).
        cache[key] = copy_graph(result)
        while len(cache) > QNN_GRAPHS_KEPT:
            cache.popitem(last=False)
        return result

    transformed_once.__wrapped__ = original   # the uncached pipeline, for the cache's test
    QnnPassManager.transform_for_annotation_pipeline = transformed_once
    try:
        yield
    finally:
        QnnPassManager.transform_for_annotation_pipeline = original


#: (model, flags) -> [EquivalenceReport, (anchor's, ruleset's converted model) or None]:
#: a zoo model's PTQ diff against executorch's XNNPACKQuantizer, run once per session for
#: both checks of that (model, config): the device check (tests/device, which runs
#: first) lowers the two converted models the diff made, and the equivalence test
#: reads its report. Each check takes its part; the entry goes once both have.
_SHARED_DIFFS: dict = {}


def shared_diff(key, run, keep_converted: bool):
    """``run()``'s report (a diff) for ``key``, run once per session; with
    ``keep_converted`` the two converted models it made are kept for ``take_converted``.
    The diff converts with torchao's ``convert_pt2e`` (``qrules.quantize`` with qrules'
    passes makes the same graphs: tests/engine/test_shared_passes.py)."""
    if key not in _SHARED_DIFFS:
        from qrules.adapter import torchao as adapter

        converted = []
        original = adapter.convert_pt2e

        def recording(model, *args, **kwargs):
            result = original(model, *args, **kwargs)
            converted.append(result)
            return result

        adapter.convert_pt2e = recording if keep_converted else original
        try:
            report = run()
        finally:
            adapter.convert_pt2e = original
        _SHARED_DIFFS[key] = [report, tuple(converted) if len(converted) == 2 else None]
    return _SHARED_DIFFS[key][0]


def take_converted(key):
    """The converted models ``shared_diff(key, ..., keep_converted=True)`` kept (None if
    it kept none); they are not kept any longer."""
    entry = _SHARED_DIFFS.get(key)
    pair, entry[1] = entry[1], None
    return pair


def take_report(key, run):
    """The report of ``key``'s diff, run now unless the device check ran it; the
    session keeps it no longer."""
    report = shared_diff(key, run, keep_converted=False)
    _SHARED_DIFFS.pop(key, None)
    return report
