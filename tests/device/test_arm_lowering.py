"""The built-in ``arm`` ruleset through executorch's Arm TOSA lowering (``arm`` in
DEVICE_BACKENDS: TOSAPartitioner with TOSA-1.0+INT, the TOSA flatbuffer written with
tosa-tools; no Vela, no vendor SDK): on each model, the ruleset's quantized program and
``executorch:arm``'s must lower alike, delegating the same nodes, and compile to
byte-identical TOSA payloads. executorch's runtime here carries no TOSA delegate, so
neither program is run (``DeviceReport.runs`` is False).

Both sides quantize the same export, made with ``.module(check_guards=False)``."""

import warnings

import pytest

import qrules
from qrules.engine.device import anchor_quantizer, device_mismatches, run_on_device

from tests import models
from tests.models.arm import arm_helper

#: Quantizing and lowering one side takes 15-17 s of CPU on each (2-core machine).
CASES = [("helper", "transformer_block"), ("zoo", "resnet18")]

_REPORTS: dict = {}


def _report(side: str, kind: str, name: str):
    key = (side, kind, name)
    if key not in _REPORTS:
        module, inputs = (models.zoo if kind == "zoo" else arm_helper)(name)
        quantizer = anchor_quantizer("arm") if side == "anchor" else qrules.load("arm")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = models.export(module, inputs, check_guards=False)
            _REPORTS[key] = run_on_device(graph, inputs, quantizer, backend="arm")
    return _REPORTS[key]


@pytest.mark.parametrize("kind, name", CASES, ids=[name for _, name in CASES])
def test_arm_ruleset_lowers_like_the_anchor(kind, name):
    anchor = _report("anchor", kind, name)
    ours = _report("ruleset", kind, name)
    print(f"\n{name}\n  ruleset: {ours.format()}\n  anchor:  {anchor.format()}")
    assert anchor.pte is not None, f"the anchor's own program does not lower: {anchor.error}"
    assert anchor.delegates and anchor.payloads, "nothing was delegated to TOSA"
    assert not anchor.runs and not anchor.loads and anchor.error is None
    problems = device_mismatches(ours, anchor)
    assert not problems, "\n".join(problems)
