"""The built-in ``arm`` ruleset against executorch's TOSAQuantizer
(``executorch:arm[...]``): annotations node by node inside prepare (after each side's
own ``transform_for_annotation``), then calibrate, convert, identical op counts and
bit-identical outputs.

Both sides quantize the same export, made with ``.module(check_guards=False)``: torch
2.14's ``_guards_fn`` node is rejected by Arm's preprocessing. Configs are issue 10's
interface, ``qrules.load("arm", per_channel, qat, dynamic, act_bits, weight_bits)`` ==
``executorch:arm[...]`` with the same parameters: every one runs on the helpers whose
annotators depend on it (convs, linears, the transformer block; the widths on the
fixed-qparams ops); the other helpers and the zoo's CNNs run the default; QAT runs on
the small modules only, for the budget. Mismatches the language cannot close yet are classified by
``ARM_GAPS`` (tests/equivalence/gaps.py); each case expects its exact counts.

Budget, measured as CPU time per case on the 2-core machine (anchor plus a stand-in
ruleset; the real ruleset's side adds its own): the zoo's CNNs 14-30 s each, the conv
helper 13 s (38 s in QAT), the others 1.5-11 s; about 5 min for this file. The cases
themselves are in arm_cases.py (scripts/equivalence_report.py runs them too).
"""

from __future__ import annotations

import re

import pytest

import qrules
from qrules.engine.diff import parse_anchor

from .arm_cases import CASES, EXPECTED_GAPS, check_case, spec
from .gaps import ARM_GAPS


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[1]}|{spec(case[2])}")
def test_arm_anchor(case):
    kind, model, config = case
    expected = EXPECTED_GAPS.get((model, spec(config)), {})
    check_case(spec(config), qrules.load("arm", **config), kind, model,
               config.get("qat", False), ARM_GAPS, expected,
               anchor_fails=config.get("dynamic", False))


def test_arm_anchor_spec():
    assert parse_anchor("executorch:arm[per_channel=false, act_bits=16]") == (
        "executorch:arm", {"per_channel": False, "act_bits": 16})
    assert parse_anchor("executorch:arm[qat,weight_bits=4]") == (
        "executorch:arm", {"qat": True, "weight_bits": 4})
    assert spec({"per_channel": False, "act_bits": 16}) == \
        "executorch:arm[per_channel=false,act_bits=16]"


def test_arm_anchor_is_the_tosa_quantizer_with_the_helpers_config():
    from executorch.backends.arm.quantizer import arm_quantizer as arm

    from qrules.engine.diff import anchor

    for params, helper, profile in (
            ({}, arm.get_symmetric_quantization_config, "TOSA-1.0+INT"),
            ({"act_bits": 16}, arm.get_symmetric_a16w8_quantization_config,
             "TOSA-1.0+INT+int16"),
            ({"weight_bits": 4, "qat": False}, arm.get_symmetric_a8w4_quantization_config,
             "TOSA-1.0+INT")):
        quantizer = anchor(spec(params))
        assert isinstance(quantizer, arm.TOSAQuantizer)
        assert str(quantizer.tosa_spec) == profile
        # per_channel defaults to True, as in executorch; qat and dynamic to False
        # (a8w4's own helper defaults is_qat to True: the anchor passes it explicitly)
        assert quantizer.global_config is helper(True, False, False)


@pytest.mark.parametrize("anchor_spec, message", [
    ("executorch:arm[fast]", "executorch:arm takes no flag 'fast'; flags: per_channel, "
                             "qat, dynamic, act_bits, weight_bits"),
    ("executorch:arm[act_bits]", "executorch:arm: act_bits takes a number: act_bits=8"),
    ("executorch:arm[per_channel=maybe]",
     "executorch:arm: per_channel is true or false, not 'maybe'"),
    ("executorch:cortex_m[per_channel]", "executorch:cortex_m takes no flag 'per_channel'; "
                                         "flags: none"),
])
def test_bad_arm_anchor_specs(anchor_spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_anchor(anchor_spec)


@pytest.mark.parametrize("anchor_spec, message", [
    ("executorch:arm[act_bits=12]", "no config for act_bits=12, weight_bits=8"),
    ("executorch:arm[act_bits=16,weight_bits=4]", "no config for act_bits=16, weight_bits=4"),
])
def test_arm_anchor_widths_without_a_config(anchor_spec, message):
    from qrules.engine.diff import anchor

    with pytest.raises(ValueError, match=re.escape(message)):
        anchor(anchor_spec)
