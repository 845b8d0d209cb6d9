"""Two caches of pure torchao computations that both sides of every comparison repeat
(used by the suite's fixtures and by scripts/equivalence_report.py).

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

Both are undone on exit. qrules itself never traces patterns.
"""

from __future__ import annotations

import contextlib
import copy
import importlib

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
