"""The built-in ``xnnpack`` ruleset (flavor=executorch, the default) against executorch's
own XNNPACKQuantizer, node by node inside prepare, then bit-identical converted outputs;
the cases, the matrix and its budget are in ``executorch_cases.py``."""

from __future__ import annotations

import re
from collections import Counter

import pytest

import qrules
from qrules.engine.diff import anchor, diff, parse_anchor

from qrules.adapter.quantizer import annotation_of
from qrules.engine.diff.run import copy_graph

from .conftest import exported
from .executorch_cases import CASES, QAT_ZOO, ZOO, case_id, run_case


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_executorch_anchor(case):
    expected_gaps = case[4]
    report, (gaps, unexplained) = run_case(case)
    assert not unexplained, report.format(limit=20)
    assert gaps == Counter(expected_gaps), report.format(limit=20)
    assert report.numerics.error is None, report.numerics.error
    assert report.numerics.outputs_equal and not report.numerics.op_count_diff, \
        report.format(limit=20)


#: Zoo models whose dynamic QAT graph torchao's convert cannot lower, whichever
#: quantizer annotated it: its PortNodeMetaForQDQ pass finds no choose_qparams node for a
#: dynamically quantized conv ("No chose qparams node found for conv2d_N").
DYNAMIC_QAT_CONVERT_FAILS = {"mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"}


@pytest.mark.parametrize("model", [m for m in ZOO if m not in QAT_ZOO])
def test_dynamic_qat_on_the_zoo(model):
    """The dynamic QAT config on the zoo models the matrix runs in ``per_channel,qat``
    only: annotations equal node by node, then bit-identical outputs, or, where
    torchao's convert fails whatever quantizer annotated the graph, the same failure on
    either side (each side converts first once: the diff stops at the first failure)."""
    graph, inputs = exported("zoo", model, qat=True)
    spec = "executorch:xnnpack[per_channel,dynamic,qat]"
    ruleset = qrules.load("xnnpack", per_channel=True, dynamic=True, qat=True)
    report = diff(spec, ruleset, graph, inputs, qat=True, calibration=[inputs],
                  engine="qrules", model_label=model)
    assert not report.mismatches, report.format(limit=20)
    if model not in DYNAMIC_QAT_CONVERT_FAILS:
        assert report.numerics.error is None, report.numerics.error
        assert report.numerics.outputs_equal and not report.numerics.op_count_diff
        return
    assert "PortNodeMetaForQDQ" in str(report.numerics.error), report.numerics.error
    swapped = diff(ruleset, spec, graph, inputs, qat=True, calibration=[inputs],
                   engine="qrules", model_label=model)
    assert not swapped.mismatches
    assert "PortNodeMetaForQDQ" in str(swapped.numerics.error), swapped.numerics.error


@pytest.mark.parametrize("model", [m for m in ZOO if m not in QAT_ZOO])
def test_qat_weight_granularity_changes_no_rule(model):
    """Why the matrix runs these zoo models in the per-channel QAT configs only (see
    executorch_cases.py): on each, per_channel=False annotates every node with the
    same rule as per_channel=True, so only the weight spec differs, which resnet18 and
    the helper modules compare in all four QAT configs."""
    graph, _ = exported("zoo", model, qat=True)

    def rules(**flags):
        quantizer = qrules.load("xnnpack", qat=True, **flags).quantizer()
        annotated = quantizer.transform_for_annotation(copy_graph(graph))
        quantizer.annotate(annotated)
        return {n.name: (annotation_of(n) or {}).get("rule") for n in annotated.graph.nodes}

    for dynamic in (False, True):
        per_channel = rules(per_channel=True, dynamic=dynamic)
        assert any(per_channel.values())
        assert rules(dynamic=dynamic) == per_channel


def test_diff_with_qrules_passes_is_torchaos_diff():
    """The zoo QAT cases diff with qrules' passes (engine="qrules"): on a QAT conv-bn
    model both engines give the same annotations and bit-identical converted outputs."""
    graph, inputs = exported("small", "conv_bn_relu", qat=True)
    reports = [diff("executorch:xnnpack[per_channel,qat]",
                    qrules.load("xnnpack", per_channel=True, qat=True), graph, inputs,
                    qat=True, engine=engine) for engine in ("torchao", "qrules")]
    assert all(r.equal and r.numerics.outputs_equal for r in reports)
    assert reports[0].b_records == reports[1].b_records
    assert reports[0].numerics.op_counts_b == reports[1].numerics.op_counts_b
    with pytest.raises(ValueError, match="engine must be one of qrules, torchao"):
        diff("executorch:xnnpack", qrules.load("xnnpack"), graph, inputs, engine="fast")


def test_report_names_the_anchor_class():
    graph, inputs = exported("small", "linear")
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
    ("executorch:nope", "unknown executorch quantizer 'nope'; known: arm, cortex_m, qnn, xnnpack"),
    ("executorch:xnnpack[fast]", "executorch:xnnpack takes no flag 'fast'"),
])
def test_bad_executorch_anchor_specs(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_anchor(spec)


def test_executorch_anchor_spec():
    assert parse_anchor("executorch:xnnpack[per_channel, qat]") == (
        "executorch:xnnpack", {"per_channel": True, "qat": True})
