"""The built-in xnnpack ruleset on device: for each zoo model where XNNPACK lowering
applies and each helper module, in each config it runs in, the ruleset's program must
load in executorch's runtime, delegate as many nodes as executorch's XNNPACKQuantizer's
program, leave no q/dq outside a delegate where that one leaves none, and give
bit-identical runtime outputs. The difference from the converted PyTorch model is
printed (``-s``), not judged: XNNPACK's arithmetic is not PyTorch's.

Every model of the equivalence zoo runs (lowering vit_b_16 and convnext_tiny on both
sides takes about a minute each on the 2-core CI machine; reports are cached per session)."""


import pytest

from qrules.engine.device import device_mismatches

from tests.models import device as models
from .conftest import device_report

ZOO = ["resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
       "vit_b_16"]

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


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_on_device(name):
    _check("zoo", name, True, False)


@pytest.mark.parametrize("name,per_channel,dynamic", HELPER_CASES)
def test_helper_module_on_device(name, per_channel, dynamic):
    _check("helper", name, per_channel, dynamic)
