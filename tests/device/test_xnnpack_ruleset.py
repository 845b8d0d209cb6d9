"""The built-in xnnpack ruleset on device: for each zoo model where XNNPACK lowering
applies and each helper module, in each config it runs in, the ruleset's program must
load in executorch's runtime, delegate as many nodes as executorch's XNNPACKQuantizer's
program, leave no q/dq outside a delegate where that one leaves none, and give
bit-identical runtime outputs. The difference from the converted PyTorch model is
printed (``-s``), not judged: XNNPACK's arithmetic is not PyTorch's.

Every model of the equivalence zoo runs in every PTQ config where XNNPACK lowering
applies (per channel or per tensor static, per channel dynamic: see ``CONFIGS``);
QAT programs are not lowered (QAT configs are checked node by node and numerically in
tests/equivalence/test_executorch_anchor.py). Where the ruleset's converted model is
identical to the anchor's, both sides share one lowered program (see conftest.py):
the check is then that this program loads and runs, and the equivalence suite's
0 mismatches are why the two are identical. Measured CI cost: docs/equivalence.md."""


import pytest

from qrules.engine.device import device_mismatches

from tests.models import ZOO
from tests.models import device as models
from .conftest import device_report, one_program


HELPER_CASES = [(name, per_channel, dynamic)
                for name, (_, _, configs) in models.HELPERS.items()
                for per_channel, dynamic in configs]


def _check(kind, name, per_channel, dynamic):
    anchor = device_report("anchor", kind, name, per_channel, dynamic)
    ours = device_report("ruleset", kind, name, per_channel, dynamic)
    shared = " (one program: identical converted models)" if one_program(
        kind, name, per_channel, dynamic) else ""
    print(f"\n{name} per_channel={per_channel} dynamic={dynamic}{shared}\n"
          f"  ruleset: {ours.format()}\n  anchor:  {anchor.format()}")
    assert anchor.loads, f"the anchor's own program fails: {anchor.error}"
    problems = device_mismatches(ours, anchor)
    assert not problems, "\n".join(problems)


# (per_channel, dynamic). Not (False, True): dynamic quantization with per-tensor
# weights does not lower to XNNPACK even from executorch's own quantizer (to_executorch
# finds no out variant for the dynamic q/dq it leaves; test_harness.py pins it), so
# XNNPACK lowering does not apply; the config is held to the anchor node by node in
# tests/equivalence/executorch_cases.py.
CONFIGS = [(True, False), (False, False), (True, True)]


@pytest.mark.parametrize("per_channel,dynamic", CONFIGS)
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_on_device(name, per_channel, dynamic):
    _check("zoo", name, per_channel, dynamic)


@pytest.mark.parametrize("name,per_channel,dynamic", HELPER_CASES)
def test_helper_module_on_device(name, per_channel, dynamic):
    _check("helper", name, per_channel, dynamic)
