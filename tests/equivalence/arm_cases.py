"""The cases of the built-in ``arm`` ruleset against executorch's TOSAQuantizer
(``executorch:arm[...]``), shared by tests/equivalence/test_arm_anchor.py and
scripts/equivalence_report.py (its ``arm`` group): which models run with which
parameters, the gap counts each case expects, and how one case is run and judged.

Both sides quantize the same export, made with ``.module(check_guards=False)``: torch
2.14's ``_guards_fn`` node is rejected by Arm's preprocessing.
"""

from __future__ import annotations

import gc
import warnings
from collections import Counter

import qrules
from qrules.engine.diff import diff
from qrules.engine.diff.run import SideFailed

from tests import models
from tests.models.arm import ARM_HELPERS, arm_helper
from .gaps import ARM_GAPS, classify

#: The zoo's CNNs. vit_b_16 alone took over 2 min of CPU (anchor and a stand-in ruleset)
#: under prepare: its attention, layer_norm and gelu are left to the transformer block.
ZOO = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0")
#: Issue 10's interface: the widths executorch has a config helper for, per channel or
#: per tensor, static or dynamic.
WIDTHS = ({}, {"act_bits": 16}, {"weight_bits": 4})
CONFIGS = [{**widths, **mode} for widths in WIDTHS
           for mode in ({}, {"per_channel": False}, {"dynamic": True},
                        {"per_channel": False, "dynamic": True})]
#: The helpers whose annotators depend on the config, and the configs each runs; the
#: other helpers run the default. Every combination runs on the transformer block
#: (~3.5 s of CPU a case); each width, per tensor and dynamic once on the convs (108
#: branches, ~13 s a case) and the linears (~5 s); unary_ops has no weights: the widths
#: (asin, acos and atanh take fixed input qparams by activation width) and dynamic.
ONE_EACH = [*WIDTHS, {"per_channel": False}, {"dynamic": True}]
HELPER_CONFIGS = {"conv_fusions": ONE_EACH, "linear_fusions": ONE_EACH,
                  "transformer_block": CONFIGS, "unary_ops": [*WIDTHS, {"dynamic": True}]}
#: QAT, each width (conv_fusions: the default only).
QAT_SMALL = {"conv_fusions": [{}], "linear_fusions": WIDTHS, "transformer_block": WIDTHS}

#: (model, config) -> {gap: count}; the cases not listed expect no mismatch at all.
EXPECTED_GAPS: dict = {}


def spec(params: dict) -> str:
    """``executorch:arm[per_channel=false,act_bits=16]`` for those parameters."""
    flags = ",".join(f"{key}={str(value).lower()}" for key, value in params.items())
    return f"executorch:arm[{flags}]" if flags else "executorch:arm"


def _cases():
    for model in ZOO:
        yield ("zoo", model, {})
    for model in ARM_HELPERS:
        for config in HELPER_CONFIGS.get(model, [{}]):
            yield ("helper", model, config)
    for model, widths_list in QAT_SMALL.items():
        for widths in widths_list:
            yield ("helper", model, {**widths, "qat": True})


CASES = list(_cases())


def exported(kind: str, model: str, qat: bool):
    module, inputs = (models.zoo if kind == "zoo" else arm_helper)(model)
    module.train(qat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return models.export(module, inputs, check_guards=False), inputs


#: executorch's own dynamic configs never reach a converted model: convert asks a
#: PlaceholderObserver for qparams, the reference flow refuses int16 dynamic
#: quantization, and prepare refuses fixed qparams (asin, acos, atanh) dynamically.
#: For those the annotations are compared and the anchor's failure is pinned, so the
#: case fails once executorch fixes it.
ANCHOR_FAILS = ("calculate_qparams should not be called for PlaceholderObserver",
                "only uint8 and int8 are supported in reference flow for dynamic",
                "FixedQParamsObserver doesn't support dynamic quantization")


def check_case(anchor_spec: str, ruleset, kind: str, model: str, qat: bool,
               gaps: dict, expected: dict, anchor_fails: bool = False):
    """One comparison, judged: every mismatch explained by a gap, exactly the expected
    counts, the numerics compared, and equal exactly when no gap found changes them.
    ``anchor_fails``: the anchor's own config cannot prepare or convert (ANCHOR_FAILS)."""
    graph, inputs = exported(kind, model, qat)
    try:
        report = diff(anchor_spec, ruleset, graph, inputs, qat=qat, model_label=model)
    except SideFailed as failure:
        assert anchor_fails and str(failure).startswith(anchor_spec) and any(
            message in str(failure) for message in ANCHOR_FAILS), str(failure)
        return
    finally:
        gc.collect()
    found, unexplained = classify(report, model, gaps)
    assert not unexplained, report.format(limit=20)
    assert found == Counter(expected), report.format(limit=20)
    if anchor_fails:
        assert any(message in str(report.numerics.error) for message in ANCHOR_FAILS), \
            report.numerics.error
        return
    assert report.numerics.error is None, report.numerics.error
    numeric_gap = any(gaps[gap].numeric for gap in found)
    assert report.numerics.ok != numeric_gap, report.format(limit=20)


def case_id(case) -> str:
    kind, model, config = case
    return f"{model}|{spec(config)}"


def run_case(case):
    """(report, (gap counts, unexplained mismatches)) of one case; the anchor's own
    failure (ANCHOR_FAILS) raises SideFailed."""
    kind, model, config = case
    qat = config.get("qat", False)
    graph, inputs = exported(kind, model, qat)
    try:
        report = diff(spec(config), qrules.load("arm", **config), graph, inputs, qat=qat,
                      model_label=model)
    finally:
        gc.collect()
    return report, classify(report, model, ARM_GAPS)
