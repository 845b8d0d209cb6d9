"""The built-in ``cortex_m`` ruleset against executorch's ``CortexMQuantizer()``
(``executorch:cortex_m``): annotations node by node inside prepare (after each side's
own ``transform_for_annotation``), then calibrate, convert, identical op counts and
bit-identical outputs, on the Cortex-M helpers of tests/models/arm.py (channels-last
images), the transformer block and the zoo's CNNs. The anchor has no
parameters; QAT runs on the small modules. Mismatches the language cannot close yet are
classified by ``CORTEX_M_GAPS`` (tests/equivalence/gaps.py); each case expects its
exact counts.
"""

from __future__ import annotations

import pytest

import qrules

from tests.models.arm import CORTEX_M_HELPERS
from .gaps import CORTEX_M_GAPS
from .test_arm_anchor import ZOO, check_case

QAT_SMALL = ("cortex_m_chains", "transformer_block")

#: (model, qat) -> {gap: count}; the cases not listed expect no mismatch at all.
EXPECTED_GAPS: dict = {
    ("resnet18", False): {"graph_io": 2, "shared_qspec_clusters": 2, "derived_bias": 1},
    ("mobilenet_v2", False): {"graph_io": 2, "shared_qspec_clusters": 3, "derived_bias": 1},
    ("mobilenet_v3_large", False): {"graph_io": 2, "shared_qspec_clusters": 57,
                                    "derived_bias": 2},
    ("efficientnet_b0", False): {"graph_io": 2, "shared_qspec_clusters": 2,
                                 "derived_bias": 1},
    ("transformer_block", False): {"graph_io": 2, "shared_qspec_clusters": 19,
                                   "derived_bias": 4},
    ("cortex_m_chains", False): {"graph_io": 3, "shared_qspec_clusters": 37,
                                 "derived_bias": 9},
    ("cortex_m_binary", False): {"graph_io": 5, "shared_qspec_clusters": 20},
    ("cortex_m_ops", False): {"graph_io": 8, "shared_qspec_clusters": 17},
    ("pooling", False): {"graph_io": 2},
    ("cortex_m_chains", True): {"graph_io": 3, "shared_qspec_clusters": 37,
                                "derived_bias": 9},
    ("transformer_block", True): {"graph_io": 2, "shared_qspec_clusters": 19,
                                  "derived_bias": 4},
}

CASES = ([("zoo", model, False) for model in ZOO]
         + [("helper", model, False) for model in CORTEX_M_HELPERS]
         + [("helper", model, True) for model in QAT_SMALL])


@pytest.mark.parametrize("case", CASES,
                         ids=lambda case: f"{case[1]}|{'qat' if case[2] else 'ptq'}")
def test_cortex_m_anchor(case):
    kind, model, qat = case
    check_case("executorch:cortex_m", qrules.load("cortex_m"), kind, model, qat,
               CORTEX_M_GAPS, EXPECTED_GAPS.get((model, qat), {}))
