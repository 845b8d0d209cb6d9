"""The built-in rulesets against torchao's hand-written quantizers, node by node.

Each case runs ``qrules.diff(anchor, ruleset, model)``: both quantizers go through
torchao's real ``prepare_pt2e`` / ``prepare_qat_pt2e`` on copies of one exported graph,
their annotations are recorded inside prepare and compared field by field, and (where
the case says so) both are calibrated on the same seeded inputs and converted, and
must give the same op counts and bit-identical outputs.

A mismatch the .qrule language cannot close yet belongs to one of
``KNOWN_LANGUAGE_GAPS``; ``EXPECTED`` says, per case, exactly how many mismatches each
gap accounts for. Any other mismatch fails the case (with the full report), and so
does a gap count that changed: when the language closes a gap, the table shrinks.
"""

from __future__ import annotations

import pytest

import qrules
from qrules.equivalence import diff

from .conftest import exported
from .gaps import EMPTY_MARK, Gap, classify

_XNN = "torchao/testing/pt2e/_xnnpack_quantizer_utils.py"


def _weight_mark(m, model):
    return (m.field == "annotation" and m.op == "get_attr" and m.b is None
            and m.a == EMPTY_MARK)


def _unmarked_interior(m, model):
    return (m.field == "annotation" and m.target == "aten.batch_norm.default"
            and m.a is None and m.b == EMPTY_MARK)


def _skipped_for_taken(models, targets):
    def matches(m, model):
        return (model in models and m.field == "annotation" and m.a is None
                and m.b is not None and m.target in targets)
    return matches


KNOWN_LANGUAGE_GAPS: dict[str, Gap] = {
    "weight_bias_marked": Gap(
        anchor=f"{_XNN}:117-122 (_mark_nodes_as_annotated), 215-224, 270-291, 320-339, "
               "379-399, 595-617, 668-669",
        what="the conv/linear annotators put the weight and bias producers (get_attr "
             "nodes) in the partition and mark them `_annotated` with an empty "
             "annotation (so does gru_io_only with the GRU's weights after a strict "
             "export, where they belong to its source partition); a match only ever "
             "marks its own call nodes",
        proposed="a partition clause naming extra nodes: `rule conv: conv_plain : static_i8 "
                 "takes(weight, bias)` (the producers of those edges join the match: "
                 "they must be untaken and become marked)",
        matches=_weight_mark),
    "partition_includes_weights": Gap(
        anchor=f"{_XNN}:277, 328, 386, 598 (_is_annotated(partition) with the weight)",
        what="a conv/linear whose weight node is already marked (a second use of the "
             "same module) is skipped; a match never looks at its weight's producer",
        proposed="the same `takes(weight, bias)` clause (taken producers reject the match)",
        numeric=True, matches=_skipped_for_taken({"tied_weights"}, {"aten.conv2d.default"})),
    "interior_step_unmarked": Gap(
        anchor=f"{_XNN}:595-617 (_do_annotate_conv_bn)",
        what="conv -> bn -> relu marks conv, weight, bias and the output node only: the "
             "batch norm between them gets no annotation; every node of a match is marked",
        proposed="`takes(conv, relu, weight, bias)` listing the marked steps (steps not "
                 "listed are matched but not marked)",
        matches=_unmarked_interior),
}

# ----------------------------------------------------------------------- cases
# (kind, model, anchor spec, qat, strict export, compare numerics)

ZOO = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "vit_b_16",
       "convnext_tiny")
SMALL_PTQ = ("conv_bn_relu", "conv_bn", "conv1d_bn_relu", "conv_bn_relu_nobias",
             "conv_transpose_bn_relu", "conv_transpose_bn", "conv_bn_relu_linear",
             "conv_linear_permute", "groupwise_conv", "linear", "linear_relu",
             "embedding_linear", "add_mul_cat", "add_int_tensor", "propagation",
             "adaptive_pools", "conv_variants", "tied_weights", "large_scalar", "div_scalar",
             "gru_input", "gru_after_linear")
SMALL_QAT = ("conv_bn_relu", "conv_bn", "conv1d_bn_relu", "conv_bn_relu_nobias",
             "conv_transpose_bn_relu", "conv_transpose_bn", "conv_bn_relu_linear",
             "linear_relu", "add_mul_cat")
XNN_PTQ = ("xnnpack", "xnnpack[per_channel]", "xnnpack[dynamic]",
           "xnnpack[per_channel,dynamic]")
def _cases():
    for model in ZOO:
        yield ("zoo", model, "embedding", False, False, False)
        for spec in XNN_PTQ:
            yield ("zoo", model, spec, False, False, True)
    for model in ("embedding", "embedding_linear"):
        yield ("small", model, "embedding", False, False, True)
    for model in SMALL_PTQ:
        for spec in XNN_PTQ:
            yield ("small", model, spec, False, False, True)
    for model in SMALL_QAT:
        for spec in ("xnnpack[qat]", "xnnpack[per_channel,qat]"):
            yield ("small", model, spec, True, False, True)
    yield ("small", "linear_relu", "xnnpack[dynamic,qat]", True, False, True)
    for model in ("add_mul_cat", "adaptive_pools", "gru_input"):
        for spec in ("xnnpack", "xnnpack[per_channel]"):
            yield ("small", model, spec, False, True, True)


CASES = list(_cases())


def case_id(case) -> str:
    kind, model, spec, qat, strict, numerics = case
    return f"{model}|{spec}" + ("|strict" if strict else "")


def ruleset_for(spec: str, strict: bool):
    """The built-in ruleset with the anchor's flags as parameters."""
    name, _, flags = spec.partition("[")
    params = {flag: True for flag in flags.rstrip("]").split(",") if flag}
    if strict:
        params["strict_export"] = True
    return qrules.load(name, **params)


def run_case(case):
    kind, model, spec, qat, strict, numerics = case
    graph, inputs = exported(kind, model, qat=qat, strict=strict)
    report = diff(f"torchao:{spec}", ruleset_for(spec, strict), graph, inputs, qat=qat,
                  numerics=numerics, model_label=model,
                  calibration=[inputs] if kind == "zoo" else None)
    return report, classify(report, model, KNOWN_LANGUAGE_GAPS)


# Per case: mismatches each gap accounts for. Every other mismatch is a failure.
EXPECTED: dict[str, dict[str, int]] = {
    'resnet18|xnnpack': {'weight_bias_marked': 42},
    'resnet18|xnnpack[per_channel]': {'weight_bias_marked': 42},
    'resnet18|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'resnet18|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'mobilenet_v2|xnnpack': {'weight_bias_marked': 106},
    'mobilenet_v2|xnnpack[per_channel]': {'weight_bias_marked': 106},
    'mobilenet_v2|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'mobilenet_v2|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'mobilenet_v3_large|xnnpack': {'weight_bias_marked': 128},
    'mobilenet_v3_large|xnnpack[per_channel]': {'weight_bias_marked': 128},
    'mobilenet_v3_large|xnnpack[dynamic]': {'weight_bias_marked': 4},
    'mobilenet_v3_large|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 4},
    'efficientnet_b0|xnnpack': {'weight_bias_marked': 164},
    'efficientnet_b0|xnnpack[per_channel]': {'weight_bias_marked': 164},
    'efficientnet_b0|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'efficientnet_b0|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'vit_b_16|xnnpack': {'weight_bias_marked': 100},
    'vit_b_16|xnnpack[per_channel]': {'weight_bias_marked': 100},
    'vit_b_16|xnnpack[dynamic]': {'weight_bias_marked': 98},
    'vit_b_16|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 98},
    'convnext_tiny|xnnpack': {'weight_bias_marked': 118},
    'convnext_tiny|xnnpack[per_channel]': {'weight_bias_marked': 118},
    'convnext_tiny|xnnpack[dynamic]': {'weight_bias_marked': 74},
    'convnext_tiny|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 74},
    'conv_bn_relu|xnnpack': {'weight_bias_marked': 2},
    'conv_bn_relu|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'conv_bn|xnnpack': {'weight_bias_marked': 2},
    'conv_bn|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'conv1d_bn_relu|xnnpack': {'weight_bias_marked': 2},
    'conv1d_bn_relu|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'conv_bn_relu_nobias|xnnpack': {'weight_bias_marked': 2},
    'conv_bn_relu_nobias|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'conv_transpose_bn_relu|xnnpack': {'weight_bias_marked': 2},
    'conv_transpose_bn_relu|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'conv_bn_relu_linear|xnnpack': {'weight_bias_marked': 3},
    'conv_bn_relu_linear|xnnpack[per_channel]': {'weight_bias_marked': 3},
    'conv_bn_relu_linear|xnnpack[dynamic]': {'weight_bias_marked': 1},
    'conv_bn_relu_linear|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 1},
    'conv_linear_permute|xnnpack': {'weight_bias_marked': 4},
    'conv_linear_permute|xnnpack[per_channel]': {'weight_bias_marked': 4},
    'conv_linear_permute|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'conv_linear_permute|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'groupwise_conv|xnnpack': {'weight_bias_marked': 2},
    'groupwise_conv|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'linear|xnnpack': {'weight_bias_marked': 2},
    'linear|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'linear|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'linear|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'linear_relu|xnnpack': {'weight_bias_marked': 3},
    'linear_relu|xnnpack[per_channel]': {'weight_bias_marked': 3},
    'linear_relu|xnnpack[dynamic]': {'weight_bias_marked': 3},
    'linear_relu|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 3},
    'embedding_linear|xnnpack': {'weight_bias_marked': 2},
    'embedding_linear|xnnpack[per_channel]': {'weight_bias_marked': 2},
    'embedding_linear|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'embedding_linear|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'add_mul_cat|xnnpack': {'weight_bias_marked': 4},
    'add_mul_cat|xnnpack[per_channel]': {'weight_bias_marked': 4},
    'propagation|xnnpack': {'weight_bias_marked': 6},
    'propagation|xnnpack[per_channel]': {'weight_bias_marked': 6},
    'propagation|xnnpack[dynamic]': {'weight_bias_marked': 2},
    'propagation|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 2},
    'adaptive_pools|xnnpack': {'weight_bias_marked': 4},
    'adaptive_pools|xnnpack[per_channel]': {'weight_bias_marked': 4},
    'conv_variants|xnnpack': {'weight_bias_marked': 11},
    'conv_variants|xnnpack[per_channel]': {'weight_bias_marked': 11},
    'tied_weights|xnnpack': {'weight_bias_marked': 2, 'partition_includes_weights': 1},
    'tied_weights|xnnpack[per_channel]': {
        'weight_bias_marked': 2,
        'partition_includes_weights': 1,
    },
    'gru_after_linear|xnnpack': {'weight_bias_marked': 4},
    'gru_after_linear|xnnpack[per_channel]': {'weight_bias_marked': 4},
    'gru_after_linear|xnnpack[dynamic]': {'weight_bias_marked': 4},
    'gru_after_linear|xnnpack[per_channel,dynamic]': {'weight_bias_marked': 4},
    'conv_bn_relu|xnnpack[qat]': {'weight_bias_marked': 2, 'interior_step_unmarked': 1},
    'conv_bn_relu|xnnpack[per_channel,qat]': {
        'weight_bias_marked': 2,
        'interior_step_unmarked': 1,
    },
    'conv_bn|xnnpack[qat]': {'weight_bias_marked': 2},
    'conv_bn|xnnpack[per_channel,qat]': {'weight_bias_marked': 2},
    'conv1d_bn_relu|xnnpack[qat]': {'weight_bias_marked': 2, 'interior_step_unmarked': 1},
    'conv1d_bn_relu|xnnpack[per_channel,qat]': {
        'weight_bias_marked': 2,
        'interior_step_unmarked': 1,
    },
    'conv_bn_relu_nobias|xnnpack[qat]': {'weight_bias_marked': 1, 'interior_step_unmarked': 1},
    'conv_bn_relu_nobias|xnnpack[per_channel,qat]': {
        'weight_bias_marked': 1,
        'interior_step_unmarked': 1,
    },
    'conv_transpose_bn_relu|xnnpack[qat]': {
        'weight_bias_marked': 2,
        'interior_step_unmarked': 1,
    },
    'conv_transpose_bn_relu|xnnpack[per_channel,qat]': {
        'weight_bias_marked': 2,
        'interior_step_unmarked': 1,
    },
    'conv_transpose_bn|xnnpack[qat]': {'weight_bias_marked': 2},
    'conv_transpose_bn|xnnpack[per_channel,qat]': {'weight_bias_marked': 2},
    'conv_bn_relu_linear|xnnpack[qat]': {'weight_bias_marked': 3, 'interior_step_unmarked': 1},
    'conv_bn_relu_linear|xnnpack[per_channel,qat]': {
        'weight_bias_marked': 3,
        'interior_step_unmarked': 1,
    },
    'linear_relu|xnnpack[qat]': {'weight_bias_marked': 3},
    'linear_relu|xnnpack[per_channel,qat]': {'weight_bias_marked': 3},
    'add_mul_cat|xnnpack[qat]': {'weight_bias_marked': 4},
    'add_mul_cat|xnnpack[per_channel,qat]': {'weight_bias_marked': 4},
    'linear_relu|xnnpack[dynamic,qat]': {'weight_bias_marked': 3},
    'add_mul_cat|xnnpack|strict': {'weight_bias_marked': 4},
    'add_mul_cat|xnnpack[per_channel]|strict': {'weight_bias_marked': 4},
    'adaptive_pools|xnnpack|strict': {'weight_bias_marked': 4},
    'adaptive_pools|xnnpack[per_channel]|strict': {'weight_bias_marked': 4},
    'gru_input|xnnpack|strict': {'weight_bias_marked': 4},
    'gru_input|xnnpack[per_channel]|strict': {'weight_bias_marked': 4},
}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_equivalence(case):
    report, (counts, unexplained) = run_case(case)
    if unexplained:
        shown = type(report)(report.a_label, report.b_label, report.model_label,
                             report.nodes_compared, unexplained, report.numerics)
        pytest.fail("mismatches no known gap explains:\n" + shown.format(limit=40))
    expected = EXPECTED.get(case_id(case), {})
    assert dict(counts) == expected, (
        f"gap counts changed for {case_id(case)}: expected {expected}, got {dict(counts)} "
        "(a gap closed, or a ruleset changed: update EXPECTED)\n" + report.format(limit=20))
    numeric_gap = any(KNOWN_LANGUAGE_GAPS[g].numeric for g in counts)
    assert report.numerics.ok != numeric_gap or not report.numerics.ran, report.format(limit=20)
