"""The ``qnn`` ruleset against executorch's QnnQuantizer (``executorch:qnn[...]``, issue
11): annotations node by node inside prepare, then calibrate, convert, op counts and
bit-identical outputs, for every QuantDtype.

NOT COLLECTED YET. ``rulesets/qnn.qrule`` does not exist, so every case here fails
(``qrules.load("qnn")`` raises); ``tests/equivalence/conftest.py`` lists this module in
``collect_ignore`` so that ``pytest tests`` leaves it out, while naming it runs it:
``python -m pytest -q -p no:cacheprovider tests/equivalence/test_qnn_anchor.py``.
Remove it from ``collect_ignore`` once the ruleset is written; the lead decides.
The harness itself (the anchor against itself on every model and dtype, annotator
coverage) is checked by the collected ``test_qnn_harness.py``.

The ruleset's interface (issue 11): ``qrules.load("qnn", dtype="8a8w", qat=False,
per_channel=True)`` equals ``QnnQuantizer()`` with ``set_default_quant_config(
QuantDtype.use_<dtype>, is_qat=qat, is_conv_per_channel=per_channel,
is_linear_per_channel=per_channel)``; ``dtype="16a4w_block"`` takes ``block_size=16``,
the (1, 16) block the anchor gives every linear (``QNN_LINEAR_BLOCK_SIZE``).

Budget: the torchvision zoo runs 8a8w and 16a4w (per channel) on resnet18 and
mobilenet_v2; every dtype, with and without per_channel, runs on the QNN models
(``tests/models/qnn.py``); QAT runs every QAT dtype on the small modules only.
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

import pytest

import qrules
from qrules.engine.diff import diff
from qrules.engine.diff.anchors import QNN_DTYPES, QNN_LINEAR_BLOCK_SIZE
from tests.models.qnn import QNN_MODELS

from .conftest import exported
from .gaps import Gap, classify
from .test_qnn_harness import ANCHOR_FAILS, QAT_DTYPES, qnn_exported

HTP = "executorch/backends/qualcomm/quantizer/"


def _shows(*needles: str):
    """A gap predicate: either side's text of the mismatch shows one of ``needles``."""
    return lambda mismatch, model: any(needle in f"{mismatch.a_text} {mismatch.b_text}"
                                       for needle in needles)


def _on(*fields: str):
    return lambda mismatch, model: mismatch.field in fields


#: What QnnQuantizer does that the language cannot say yet, each with the anchor's
#: source lines and the general construct proposed (docs/backends.md, "Qualcomm QNN:
#: what the language needs", has the syntax and examples). Constructs the Arm work is
#: adding (derived bias, fixed qparams with arguments) are listed until they land.
QNN_GAPS: dict[str, Gap] = {
    "uint16_as_int32": Gap(
        f"{HTP}qconfig.py:406-447 (16a* act specs), 605-645",
        "uint16 activations stored as torch.int32 with range 0..65535 (torch has no "
        "uint16 quantized dtype)",
        "affine(uint16 as int32, 0..65535, observer=moving_average_minmax)",
        _shows("int32 [0, 65535]")),
    "per_block_weights": Gap(
        f"{HTP}quantizer.py:588-625 (_get_quant_config), 698-705, annotators/htp_rules.py:975-979",
        "per-block weights, the block size chosen per node name (set_block_size_map) "
        "and written into the observer's keywords",
        "spec w_block = symmetric(int4 as int8, -7..7, per_block(axis=0, "
        "block=(1, block_size)), observer=qnn_per_block)",
        _shows("PerBlockParamObserver")),
    "vendor_observer_graph_node": Gap(
        f"{HTP}annotators/htp_rules.py:253-266 (Cat), observers/concat_observer.py",
        "an observer constructed with the graph and the node's name (ConcatObserver "
        "widens every concatenated input's range)",
        "output: affine(uint8, 0..255, observer=qnn_concat(node))  # a registry "
        "observer taking the node",
        _shows("ConcatObserver")),
    "derived_bias_per_block": Gap(
        f"{HTP}qconfig.py:48-110 (_derived_bias_quant_spec)",
        "bias scale = input scale x weight scale, repeated per group for grouped "
        "transposed convs, max over blocks / num_steps for per-block weights",
        "bias: derived(qnn_bias(groups=weight.groups), from=[input, weight], int32)",
        _shows("_derive_bias_qparams_fn")),
    "derive_with_argument": Gap(
        f"{HTP}annotators/htp_rules.py:486-555 (Div by a constant)",
        "output scale = input scale / the constant divisor (a derive function "
        "taking an argument)",
        "output: derived(scale_div(divisor=args[1]), from=[input])",
        _shows("_derive_div_qparams_fn")),
    "fixed_qparams_from_spec": Gap(
        f"{HTP}annotators/htp_rules.py:735-805 (HardSigmoid), 1517-1586 (Sigmoid), "
        "1699-1755 (Tanh)",
        "fixed qparams computed from the activation spec's range (scale 1/(qmax-qmin+1)"
        "; tanh at 1/32768, zero point 32768 when 16-bit), a fake quantizer under QAT",
        "output: fixed(scale=1/(act.range+1), zero_point=0, like=act)",
        _shows("FixedQParams")),
    "getitem_users": Gap(
        f"{HTP}annotators/htp_rules.py:309-337 (Chunk), 646-666 (GetItem), "
        "1836-1866 (Ubind)",
        "ops with several outputs: their getitem users are annotated (outputs shared "
        "with the op's input edge; topk/sort's getitem shares with the op)",
        "rule split: split_ops : { input: act, each getitem.output: same_as(input) }",
        lambda mismatch, model: mismatch.target == "getitem"),
    "annotated_parameters": Gap(
        f"{HTP}annotators/htp_rules.py:191-225 (BatchNorm), 696-733 (GroupNorm), "
        "866-915 (LayerNorm); rules.py:30-34",
        "weight and bias nodes of a norm are marked annotated themselves",
        "rule norm: layer_norm : { ..., mark: [weight, bias] }",
        lambda mismatch, model: mismatch.op == "get_attr"),
    "qat_conv_bn_partition": Gap(
        f"{HTP}conv_bn.py:99-222 (annotate_conv_bn_partitions)",
        "under QAT, conv -> batch_norm claimed as one partition, a zero conv bias "
        "materialised into the graph when absent, output spec on the bn",
        "rule conv_bn: conv -> bn : static when qat, with transform materialize_bias",
        _on("annotation", "input bias", "input conv_bias")),
    "replace_inf": Gap(
        f"{HTP}quantizer.py:441-506 (_replace_inf)",
        "after annotating, constants and scalar args beyond float16's range are "
        "rewritten to +-(the consumer's quant range)",
        "after annotate transform clamp_infinite_constants  # a registry transform",
        lambda mismatch, model: False, numeric=True),
}

# (kind, model, dtype, per_channel, qat, {gap: count})
ZOO_MODELS = ("resnet18", "mobilenet_v2")


def _cases():
    for model in ZOO_MODELS:
        for dtype in ("8a8w", "16a4w"):
            yield ("zoo", model, dtype, True, False, {})
    for model in QNN_MODELS:
        for dtype in QNN_DTYPES:
            if (model, dtype) in ANCHOR_FAILS:   # the anchor raises: nothing to hold to
                continue
            for per_channel in (False, True):
                yield ("qnn", model, dtype, per_channel, False, {})
    for model in ("embedding_lookup", "elementwise"):
        for dtype in QAT_DTYPES:
            if (model, dtype) not in ANCHOR_FAILS:
                yield ("qnn", model, dtype, True, True, {})
    for model in ("conv_bn_relu", "conv_bn", "conv_transpose_bn"):
        for dtype in ("8a8w", "16a4w"):
            yield ("small", model, dtype, True, True, {})


CASES = list(_cases())


def _spec(dtype: str, per_channel: bool, qat: bool) -> str:
    flags = [dtype] + (["per_channel"] if per_channel else []) + (["qat"] if qat else [])
    return f"executorch:qnn[{','.join(flags)}]"


def _params(dtype: str, per_channel: bool, qat: bool) -> dict:
    params = {"dtype": dtype, "per_channel": per_channel, "qat": qat}
    if dtype == "16a4w_block":
        params["block_size"] = QNN_LINEAR_BLOCK_SIZE[1]
    return params


def test_qnn_ruleset_exists():
    path = Path(qrules.__file__).resolve().parent.parent / "rulesets" / "qnn.qrule"
    assert path.is_file(), f"{path} is not written yet (issue 11)"


@pytest.mark.parametrize("case", CASES, ids=[
    f"{c[1]}|{_spec(c[2], c[3], c[4])}" for c in CASES])
def test_qnn_anchor(case):
    kind, model, dtype, per_channel, qat, expected_gaps = case
    graph, inputs = (qnn_exported(model, qat) if kind == "qnn"
                     else exported(kind, model, qat))
    ruleset = qrules.load("qnn", **_params(dtype, per_channel, qat))
    try:
        report = diff(_spec(dtype, per_channel, qat), ruleset, graph, inputs, qat=qat,
                      model_label=model)
    finally:
        gc.collect()
    gaps, unexplained = classify(report, model, QNN_GAPS)
    assert not unexplained, report.format(limit=20)
    assert gaps == Counter(expected_gaps), report.format(limit=20)
    assert report.numerics.error is None, report.numerics.error
    numeric_gap = any(QNN_GAPS[gap].numeric for gap in expected_gaps)
    assert numeric_gap or (report.numerics.outputs_equal
                           and not report.numerics.op_count_diff), report.format(limit=20)
