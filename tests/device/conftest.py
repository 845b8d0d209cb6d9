"""Device-harness fixtures: each (model, quantizer side, config) is quantized, lowered,
loaded and run once per session; tests read the cached ``DeviceReport``.

Lowering is most of a device check's cost (5-40 s per zoo model on the 2-core CI
machine, against a few seconds to quantize), and it is a pure function of the
converted model (``test_anchor_against_itself_is_exact``). So programs are cached by
a fingerprint of the converted model: its generated code (which holds every literal
qparam) and the bytes of every tensor the graph reads. Where the ruleset's converted
model is identical to the anchor's, the two sides share one lowered program; where
anything differs, each side is lowered on its own and compared as usual.

A zoo model's two converted models are not made here: they are those of the
equivalence suite's diff of the same (model, config) (tests/equivalence/caches.py,
``shared_diff``), which runs once for both checks: one export, one prepare, calibration
and convert per side, where each check used to do its own."""

import hashlib
import operator
import os
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import pytest  # noqa: E402

# Under the names pytest gives the equivalence suite's modules (tests/ has no
# __init__.py, so they are `equivalence.*`): the same module objects, so one session
# cache (an export, a shared diff) serves both suites.
from equivalence import caches, executorch_cases  # noqa: E402
from equivalence.conftest import exported  # noqa: E402

from tests.models import device as models  # noqa: E402

_REPORTS: dict = {}
_PROGRAMS: dict = {}   # fingerprint of a converted model -> its DeviceReport
_ZOO_PAIRS: dict = {}   # (zoo model, flags) -> (anchor's, ruleset's converted model)


@pytest.fixture(scope="package", autouse=True)
def _torchao_caches():
    with caches.patterns_traced_once(), caches.histogram_search_once():
        yield


def quantizer_for(side: str, per_channel: bool, dynamic: bool):
    """``side`` "anchor": executorch's XNNPACKQuantizer with the matching
    get_symmetric_quantization_config; "ruleset": the built-in xnnpack ruleset."""
    if side == "anchor":
        from qrules.engine.device import anchor_quantizer

        return anchor_quantizer("xnnpack", per_channel=per_channel, dynamic=dynamic)
    import qrules

    return qrules.load("xnnpack", per_channel=per_channel, dynamic=dynamic)


def fingerprint(converted) -> str:
    """Equal for two converted models that lower to the same program: same code, same
    tensors (names, dtypes, shapes, bytes) behind every ``get_attr``."""
    import torch

    digest = hashlib.sha256(converted.code.encode())
    for node in converted.graph.nodes:
        if node.op != "get_attr":
            continue
        value = operator.attrgetter(node.target)(converted)
        digest.update(f"{node.target}:{type(value).__name__}".encode())
        if isinstance(value, torch.Tensor):
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(value.detach().contiguous().reshape(-1).view(torch.uint8)
                          .numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def _zoo_converted(side: str, name: str, per_channel: bool, dynamic: bool):
    """(converted model, inputs) of one side on a zoo model: the two converted models
    of the equivalence suite's diff of the same (model, config), which runs here once
    and whose report tests/equivalence/test_executorch_anchor.py then reads (one
    export, prepare, calibration and convert per side for both checks)."""
    flags = ",".join(flag for flag, on in (("per_channel", per_channel),
                                           ("dynamic", dynamic)) if on)
    key = (name, flags)
    if key not in _ZOO_PAIRS:
        case = executorch_cases.zoo_case(name, flags)
        caches.shared_diff(key, lambda: executorch_cases.diff_case(case),
                           keep_converted=True)
        _ZOO_PAIRS[key] = caches.take_converted(key)
    pair = _ZOO_PAIRS[key]
    if side == "ruleset":
        del _ZOO_PAIRS[key]   # the anchor's side is asked first (_check)
    return pair[0 if side == "anchor" else 1], exported("zoo", name)[1]


def device_report(side: str, kind: str, name: str, per_channel: bool, dynamic: bool):
    """The cached ``DeviceReport`` of one side on one model and config."""
    key = (side, kind, name, per_channel, dynamic)
    if key not in _REPORTS:
        from qrules import quantize
        from qrules.engine.device import run_on_device

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "zoo":
                module = None   # not needed: run_on_device gets the converted model
                converted, inputs = _zoo_converted(side, name, per_channel, dynamic)
            else:
                module, inputs = models.helper(name)
                converted = quantize(module, inputs, quantizer_for(side, per_channel,
                                                                   dynamic), progress=False)
            program = fingerprint(converted)
            if program not in _PROGRAMS:
                _PROGRAMS[program] = run_on_device(module, inputs, None, converted=converted)
        _REPORTS[key] = _PROGRAMS[program]
    return _REPORTS[key]


def one_program(kind: str, name: str, per_channel: bool, dynamic: bool) -> bool:
    """Did both sides give the same converted model (so one lowered program)?"""
    return (device_report("anchor", kind, name, per_channel, dynamic)
            is device_report("ruleset", kind, name, per_channel, dynamic))
