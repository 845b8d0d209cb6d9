"""The built-in xnnpack ruleset on device: for each zoo model where XNNPACK lowering
applies and each helper module, in each config it runs in, the ruleset's program must
load in executorch's runtime, delegate as many nodes as executorch's XNNPACKQuantizer's
program, leave no q/dq outside a delegate where that one leaves none, and give
bit-identical runtime outputs. The difference from the converted PyTorch model is
printed (``-s``), not judged: XNNPACK's arithmetic is not PyTorch's.

Zoo models: resnet18 and mobilenet_v2 in every run; the other four (minutes of lowering
each on the 2-core CI machine) are added to the parameters with ``QRULES_DEVICE_ZOO=all``
(scripts and release checks), never skipped."""

import os

import pytest

from qrules.engine.device import device_mismatches

from tests.models import device as models
from .conftest import device_report

ZOO_ALWAYS = ["resnet18", "mobilenet_v2"]
ZOO_ON_REQUEST = ["mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16"]
ALL_ZOO = os.environ.get("QRULES_DEVICE_ZOO") == "all"

HELPER_CASES = [(name, per_channel, dynamic)
                for name, (_, _, configs) in models.HELPERS.items()
                for per_channel, dynamic in configs]


def _check(kind, name, per_channel, dynamic):
    anchor = device_report("anchor", kind, name, per_channel, dynamic)
    ours = device_report("ruleset", kind, name, per_channel, dynamic)
    print(f"\n{name} per_channel={per_channel} dynamic={dynamic}\n"
          f"  ruleset: {ours.format()}\n  anchor:  {anchor.format()}")
    assert anchor.loads, f"the anchor's own program fails: {anchor.error}"
    problems = device_mismatches(ours, anchor)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ZOO_ALWAYS + (ZOO_ON_REQUEST if ALL_ZOO else []))
def test_zoo_model_on_device(name):
    _check("zoo", name, True, False)


@pytest.mark.parametrize("name,per_channel,dynamic", HELPER_CASES)
def test_helper_module_on_device(name, per_channel, dynamic):
    _check("helper", name, per_channel, dynamic)
