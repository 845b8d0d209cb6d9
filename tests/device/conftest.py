"""Device-harness fixtures: each (model, quantizer side, config) is quantized, lowered,
loaded and run once per session; tests read the cached ``DeviceReport``."""

import os
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import pytest  # noqa: E402

from tests import models as zoo_models  # noqa: E402
from tests.equivalence import caches  # noqa: E402

from tests.models import device as models  # noqa: E402

_REPORTS: dict = {}


@pytest.fixture(scope="package", autouse=True)
def _histogram_search_once():
    with caches.histogram_search_once():
        yield


def quantizer_for(side: str, per_channel: bool, dynamic: bool):
    """``side`` "anchor": executorch's XNNPACKQuantizer with the matching
    get_symmetric_quantization_config; "ruleset": the built-in xnnpack ruleset."""
    if side == "anchor":
        from qrules.engine.device import anchor_quantizer

        return anchor_quantizer("xnnpack", per_channel=per_channel, dynamic=dynamic)
    import qrules

    return qrules.load("xnnpack", per_channel=per_channel, dynamic=dynamic)


def model_and_inputs(kind: str, name: str):
    return (zoo_models.zoo if kind == "zoo" else models.helper)(name)


def device_report(side: str, kind: str, name: str, per_channel: bool, dynamic: bool):
    """The cached ``DeviceReport`` of one side on one model and config."""
    key = (side, kind, name, per_channel, dynamic)
    if key not in _REPORTS:
        from qrules.engine.device import run_on_device

        module, inputs = model_and_inputs(kind, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _REPORTS[key] = run_on_device(module, inputs,
                                          quantizer_for(side, per_channel, dynamic))
    return _REPORTS[key]
