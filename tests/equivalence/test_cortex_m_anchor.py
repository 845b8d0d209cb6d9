"""The built-in ``cortex_m`` ruleset against executorch's ``CortexMQuantizer()``
(``executorch:cortex_m``): annotations node by node inside prepare (after each side's
own ``transform_for_annotation``), then calibrate, convert, identical op counts and
bit-identical outputs, on the Cortex-M helpers of tests/models/arm.py (channels-last
images), the transformer block and the zoo's CNNs. The anchor has no
parameters; QAT runs on the small modules. Every case expects no mismatch at all:
``CORTEX_M_GAPS`` (tests/equivalence/gaps.py) is empty, and a mismatch it does not
explain fails the case.
"""

from __future__ import annotations

import gc

import pytest

import qrules
from qrules.engine.diff import diff

from tests.models.arm import CORTEX_M_HELPERS
from .gaps import CORTEX_M_GAPS, classify
from .arm_cases import ZOO, check_case, exported

QAT_SMALL = ("cortex_m_chains", "transformer_block")

CASES = ([("zoo", model, False) for model in ZOO]
         + [("helper", model, False) for model in CORTEX_M_HELPERS]
         + [("helper", model, True) for model in QAT_SMALL])


def case_id(case) -> str:
    kind, model, qat = case
    return f"{model}|{'qat' if qat else 'ptq'}"


def run_case(case):
    """(report, (gap counts, unexplained mismatches)) of one case, for
    scripts/equivalence_report.py."""
    kind, model, qat = case
    graph, inputs = exported(kind, model, qat)
    try:
        report = diff("executorch:cortex_m", qrules.load("cortex_m"), graph, inputs,
                      qat=qat, model_label=model)
    finally:
        gc.collect()
    return report, classify(report, model, CORTEX_M_GAPS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_cortex_m_anchor(case):
    kind, model, qat = case
    check_case("executorch:cortex_m", qrules.load("cortex_m"), kind, model, qat,
               CORTEX_M_GAPS, {})
