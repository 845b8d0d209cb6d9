"""The executorch rows of the equivalence suite, read by ``test_executorch_anchor.py``
and ``scripts/equivalence_report.py``: the built-in ``xnnpack`` ruleset (flavor=executorch,
the default) against executorch's own XNNPACKQuantizer (``executorch:xnnpack[...]``).

The matrix: every zoo model in every PTQ config (per_channel x dynamic: four), and
every config, QAT included (per_channel x dynamic x qat: eight), on the helper modules
(``tests/models/executorch.py``) and the seed's small conv/bn modules. QAT on the zoo:
resnet18 in its four QAT configs, every other zoo model in ``per_channel,qat``
(``test_qat_weight_granularity_changes_no_rule`` shows per-tensor weights change no
rule on them, only the weight spec); ``test_dynamic_qat_on_the_zoo`` runs them in
``per_channel,dynamic,qat``: annotations exact everywhere, outputs bit-identical on
vit_b_16 and convnext_tiny; on mobilenet_v2, mobilenet_v3_large and efficientnet_b0
torchao's convert fails (PortNodeMetaForQDQ finds no choose_qparams node for a
dynamically quantized conv) whichever quantizer annotated the graph, and the test
pins that failure on both sides.

Zoo QAT cases prepare and convert both sides with qrules' own passes
(``diff(..., engine="qrules")``), which tests/engine/test_shared_passes.py proves make
torchao's graphs bit for bit: on mobilenet_v2 (per_channel, qat, patterns traced
already) they take the anchor's prepare + convert from 6.0 s of CPU to 2.7 s and the
ruleset's from 5.2 s to 2.5 s. Every other case runs torchao's own prepare_pt2e /
prepare_qat_pt2e / convert_pt2e.

Budget (measured on the 2-core machine, under load, CPU seconds, torchao's passes): a
zoo QAT case costs about 10-18 s (mobilenet_v2: 10.6 s; the session's first QAT case
also traces the patterns, ~20 s more), about half that with qrules' passes; a zoo PTQ
case a few seconds. Zoo cases calibrate on one batch (their
example input). A zoo PTQ case's diff is shared with the device check of the same
(model, config) (tests/device): it runs once for both (``caches.shared_diff``). On
resnet18 (its three device checks and four PTQ cases in one session) that took the CPU
time from 77 s to 59 s.
"""

from __future__ import annotations

import gc

import qrules
from qrules.engine.diff import diff

from tests.models import ZOO
from tests.models.executorch import EXECUTORCH_SMALL
from . import caches
from .conftest import exported
from .gaps import Gap, classify

#: What executorch does that the language cannot say yet: nothing at the moment (the
#: cat's choice of input, once a gap, is `input[first quantized else 0]` in a
#: `per node` phase).
EXECUTORCH_GAPS: dict[str, Gap] = {}

# (kind, model, flags, qat, {gap: count})
CONFIGS = ("", "per_channel", "dynamic", "per_channel,dynamic")
QAT_CONFIGS = tuple(",".join(f for f in (flags, "qat") if f) for flags in CONFIGS)
#: Zoo models in all four QAT configs; the others run static per-channel QAT
#: (test_qat_weight_granularity_changes_no_rule: per-tensor weights change no rule
#: there, only the weight spec, which these and the helper modules cover).
QAT_ZOO = ("resnet18",)
PER_CHANNEL_QAT = ("per_channel,qat",)
STATIC_GAPS: dict[str, dict[str, int]] = {}


def _cases():
    # vit_b_16 prepends its class token (an expanded parameter, never quantized) to the
    # patch embeddings: the cat takes its qparams from input 1, written first.
    for model in ZOO:
        for flags in CONFIGS:
            yield ("zoo", model, flags, False, {})
    for model in ZOO:
        for flags in QAT_CONFIGS if model in QAT_ZOO else PER_CHANNEL_QAT:
            yield ("zoo", model, flags, True, {})
    for model in EXECUTORCH_SMALL:
        for flags in CONFIGS:
            static = "dynamic" not in flags
            yield ("executorch", model, flags, False,
                   STATIC_GAPS.get(model, {}) if static else {})
    for model in ("add_mul_cat", "propagation", "tied_weights", "conv_variants"):
        yield ("small", model, "", False, {})
    for model in ("conv_transpose_bn_relu", "conv_bn_relu"):
        for flags in ("qat", "per_channel,qat"):
            yield ("small", model, flags, True, {})
    yield ("executorch", "share_ops", "qat", True, {})
    for model in ("linear_relu", "conv_bn_relu", "conv_transpose_bn_relu"):
        yield ("small", model, "dynamic,qat", True, {})
    yield ("executorch", "conv_forms", "dynamic,qat", True, {})
    yield ("executorch", "conv_forms", "per_channel,dynamic,qat", True, {})


CASES = list(_cases())


def case_id(case) -> str:
    kind, model, flags, qat, _ = case
    return f"{model}|executorch:xnnpack[{flags}]"


def diff_case(case):
    """The diff of one case (no caching)."""
    kind, model, flags, qat, _ = case
    graph, inputs = exported(kind, model, qat=qat)
    params = {flag: True for flag in flags.split(",") if flag}
    try:
        return diff(f"executorch:xnnpack[{flags}]", qrules.load("xnnpack", **params),
                    graph, inputs, qat=qat, model_label=model,
                    calibration=[inputs] if kind == "zoo" else None,
                    engine="qrules" if qat and kind == "zoo" else "torchao")
    finally:
        gc.collect()


def zoo_case(model: str, flags: str):
    """The PTQ case of a zoo model, as tests/device names its config."""
    return ("zoo", model, flags, False, {})


def run_case(case):
    """(report, (gap counts, unexplained mismatches)) of one case. A zoo PTQ case's
    diff is shared with the device check of the same model and config, which lowers
    the two converted models it made (``caches.shared_diff``)."""
    kind, model, flags, qat, _ = case
    if kind == "zoo" and not qat:
        report = caches.take_report((model, flags), lambda: diff_case(case))
    else:
        report = diff_case(case)
    return report, classify(report, model, EXECUTORCH_GAPS)
