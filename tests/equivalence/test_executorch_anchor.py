"""The built-in ``xnnpack`` ruleset (flavor=executorch, the default) against executorch's
own XNNPACKQuantizer (``executorch:xnnpack[...]``): annotations node by node inside
prepare, then bit-identical converted outputs.

The matrix: every zoo model in every PTQ config (per_channel x dynamic: four), and
every config, QAT included (per_channel x dynamic x qat: eight), on the helper modules
(``tests/models/executorch.py``) and the seed's small conv/bn modules. QAT runs on one
zoo model only, resnet18 (its four QAT configs), as docs/equivalence.md says: a QAT
prepare of the other zoo models adds minutes of CI and no annotator the helper modules
and resnet18 do not already reach.

Budget (measured on the 2-core CI machine, idle): executorch's static ``annotate``
re-traces its four QAT conv-bn patterns on every call (~2 s; the package's pattern
cache makes that one trace), and the rest of a zoo case is prepare, calibration and
convert, under 5 s each; zoo cases calibrate on one batch (their example input). The
device check of the same (model, config) (tests/device) costs more: lowering.
"""

from __future__ import annotations

import gc
import re
import importlib
from collections import Counter

import pytest

import qrules
from qrules.engine.diff import anchor, diff, parse_anchor
from tests.seed import conftest as seed_conftest

from tests.models.executorch import EXECUTORCH_SMALL
from .conftest import exported
from .gaps import Gap, classify

#: What executorch does that the language cannot say yet.
EXECUTORCH_GAPS: dict[str, Gap] = {
    "cat_source_through_cat": Gap(
        anchor="executorch/backends/xnnpack/quantizer/xnnpack_quantizer_utils.py:1006-1041",
        what="_get_cat_qparam_source walks back from each cat input through the ops "
             "propagate_annotation shares (transpose, view, ...) to an annotated output, "
             "before propagation and in graph order, so it reaches a cat annotated "
             "earlier; the ruleset reads `quantized(input[k])` after propagating what "
             "the other rules quantized, and the propagation of what cats quantized "
             "comes after the cats: a cat fed through such an op by another cat takes "
             "its qparams from a later input",
        proposed="a role function that sees through ops, "
                 "`quantized(input[k], through=keeps_qparams)`, evaluated as the rule "
                 "scans (and a way to pick the first such input: `input[first(...)]`)",
        matches=lambda mismatch, model: (model == "cat_after_cat"
                                         and mismatch.target == "aten.cat.default")),
}

# (kind, model, flags, qat, {gap: count})
ZOO = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "vit_b_16",
       "convnext_tiny")
CONFIGS = ("", "per_channel", "dynamic", "per_channel,dynamic")
QAT_CONFIGS = tuple(",".join(f for f in (flags, "qat") if f) for flags in CONFIGS)
STATIC_GAPS = {"cat_after_cat": {"cat_source_through_cat": 5}}


def _cases():
    # vit_b_16 prepends its class token (an expanded parameter, never quantized) to the
    # patch embeddings: the cat takes its qparams from input 1, written first.
    for model in ZOO:
        for flags in CONFIGS:
            yield ("zoo", model, flags, False, {})
    for flags in QAT_CONFIGS:
        yield ("zoo", "resnet18", flags, True, {})
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


def _case_id(case) -> str:
    kind, model, flags, qat, _ = case
    return f"{model}|executorch:xnnpack[{flags}]"


@pytest.fixture(scope="module", autouse=True)
def _executorch_patterns_traced_once():
    """executorch binds torchao's pattern tracer in its own module: point it at the
    cached tracer the package fixture installed in torchao's."""
    utils = importlib.import_module("executorch.backends.xnnpack.quantizer."
                                    "xnnpack_quantizer_utils")
    torchao_utils = importlib.import_module(seed_conftest._PATTERN_MODULES[0])
    original = getattr(utils, seed_conftest._NAME, None)
    if original is not None:
        setattr(utils, seed_conftest._NAME, getattr(torchao_utils, seed_conftest._NAME))
    yield
    if original is not None:
        setattr(utils, seed_conftest._NAME, original)


def _exported(kind: str, model: str, qat: bool):
    return exported(kind, model, qat=qat)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_executorch_anchor(case):
    kind, model, flags, qat, expected_gaps = case
    graph, inputs = _exported(kind, model, qat)
    params = {flag: True for flag in flags.split(",") if flag}
    try:
        report = diff(f"executorch:xnnpack[{flags}]", qrules.load("xnnpack", **params),
                      graph, inputs, qat=qat, model_label=model,
                      calibration=[inputs] if kind == "zoo" else None)
    finally:
        gc.collect()
    gaps, unexplained = classify(report, model, EXECUTORCH_GAPS)
    assert not unexplained, report.format(limit=20)
    assert gaps == Counter(expected_gaps), report.format(limit=20)
    assert report.numerics.error is None, report.numerics.error
    assert report.numerics.outputs_equal and not report.numerics.op_count_diff, \
        report.format(limit=20)


def test_report_names_the_anchor_class():
    graph, inputs = _exported("small", "linear", False)
    quantizer = anchor("executorch:xnnpack")
    report = diff(quantizer, qrules.load("xnnpack"), graph, inputs, numerics=False)
    assert report.a_label == ("executorch.backends.xnnpack.quantizer.xnnpack_quantizer."
                              "XNNPACKQuantizer")
    assert report.equal


def test_cli_diff_names_the_executorch_anchor(tmp_path, capsys):
    from qrules.cli import main

    path = tmp_path / "tiny.py"
    path.write_text("import torch\n\n\ndef make():\n    torch.manual_seed(0)\n"
                    "    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())\n")
    status = main(["diff", "executorch:xnnpack[per_channel]", "xnnpack", f"--model={path}:make",
                   "--input-shape", "2,4", "--param", "per_channel=true"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "A = executorch:xnnpack[per_channel], B = ruleset xnnpack (" in out
    assert "0 mismatches" in out and "outputs bit-identical" in out


@pytest.mark.parametrize("spec, message", [
    ("executorch:nope", "unknown executorch quantizer 'nope'; known: xnnpack"),
    ("executorch:xnnpack[fast]", "executorch:xnnpack takes no flag 'fast'"),
])
def test_bad_executorch_anchor_specs(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_anchor(spec)


def test_executorch_anchor_spec():
    assert parse_anchor("executorch:xnnpack[per_channel, qat]") == (
        "executorch:xnnpack", {"per_channel": True, "qat": True})
