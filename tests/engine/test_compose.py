"""Composition: qrules rulesets with each other and with torchao's own quantizers,
in qrules.compose and in torchao's ComposableQuantizer; conflicts and first_wins."""

import warnings

import pytest
import torch

import qrules
from qrules.adapter.torchao import ComposableQuantizer

from .test_fixtures import annotations

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torchao.quantization.pt2e.quantizer.embedding_quantizer import EmbeddingQuantizer
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

MINE = """ruleset mine version "1.0"
spec w = symmetric(int8, -127..127)
rule my_embedding: embedding : { weight: w }
"""


def _xnnpack_dynamic():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_dynamic=True))


def _annotate(quantizer, exported):
    gm, _ = exported("embedding_linear")
    quantizer.annotate(quantizer.transform_for_annotation(gm) or gm)
    got = annotations(gm)
    # XNNPACKQuantizer also marks weight get_attr nodes annotated; compare call nodes
    return {name: (ins, out) for name, (_, ins, out) in got.items()
            if name in ("embedding", "linear")}, got


EXPECTED = {"embedding": ({"emb_weight": "uint8.pc0.fq"}, "none"),
            "linear": ({"embedding": "int8.dyn", "lin_weight": "int8.sym", "lin_bias": "none"},
                       "none")}


def test_compose_two_rulesets(exported):
    composed = qrules.compose(qrules.load("embedding"), qrules.load("xnnpack", dynamic=True))
    calls, got = _annotate(composed, exported)
    assert calls == EXPECTED
    assert got["embedding"][0] == "embedding" and got["linear"][0] == "dynamic_linear"


@pytest.mark.parametrize("make", [
    lambda: ComposableQuantizer([EmbeddingQuantizer(), _xnnpack_dynamic()]),
    lambda: ComposableQuantizer([qrules.load("embedding").quantizer(), _xnnpack_dynamic()]),
    lambda: ComposableQuantizer([EmbeddingQuantizer(),
                                 qrules.load("xnnpack", dynamic=True).quantizer()]),
    lambda: qrules.compose(EmbeddingQuantizer(), qrules.load("xnnpack", dynamic=True)),
    lambda: qrules.compose(qrules.load("embedding"), _xnnpack_dynamic()),
], ids=["torchao-only", "torchao(qrules, xnnpack)", "torchao(embedding, qrules)",
        "qrules(embedding, qrules)", "qrules(qrules, xnnpack)"])
def test_same_annotations_as_torchao(make, exported):
    calls, _ = _annotate(make(), exported)
    assert calls == EXPECTED


def test_composed_quantize_end_to_end(exported):
    gm, inputs = exported("embedding_linear")
    expected = gm(*inputs)
    composed = qrules.compose(qrules.load("embedding"), qrules.load("xnnpack", dynamic=True))
    quantized = qrules.quantize(gm, inputs, composed)
    targets = {str(n.target) for n in quantized.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_channel_float_qparams" in t or "dequantize_per_channel" in t
               for t in targets), targets
    assert any("choose_qparams" in t for t in targets), targets     # dynamic linear input
    torch.testing.assert_close(quantized(*inputs), expected, atol=0.1, rtol=0.1)


def test_conflict_names_both_sides(exported):
    gm, _ = exported("embedding_linear")
    composed = qrules.compose(qrules.load_text(MINE, "mine.qrule"), EmbeddingQuantizer())
    with pytest.raises(qrules.ComposeConflictError) as info:
        composed.annotate(gm)
    error = info.value
    assert isinstance(error, RuntimeError)
    assert [d.code for d in error.diagnostics] == ["QR605"]
    text = str(error)
    assert "my_embedding" in text and "mine.qrule:3:6" in text
    assert "EmbeddingQuantizer" in text and "`embedding`" in text
    assert "rule my_embedding: embedding" in text      # the rule's source line
    assert annotations(gm) == {}       # atomic: the ruleset's annotation is undone too


def test_first_wins_keeps_the_earlier_annotation(exported):
    gm, _ = exported("embedding_linear")
    composed = qrules.compose(qrules.load_text(MINE, "mine.qrule"), EmbeddingQuantizer(),
                              first_wins=True)
    composed.annotate(gm)
    got = annotations(gm)
    assert got["embedding"] == ("my_embedding", {"emb_weight": "int8.sym"}, "none")


def test_later_rulesets_never_take_annotated_nodes(exported):
    # qrules never overwrites: an earlier torchao annotation simply wins, no conflict
    calls, got = _annotate(qrules.compose(EmbeddingQuantizer(),
                                          qrules.load_text(MINE, "mine.qrule")), exported)
    assert calls["embedding"] == EXPECTED["embedding"]
    assert got["embedding"][0] is None    # no qrules provenance: torchao annotated it


def test_compose_rejects_other_objects():
    with pytest.raises(TypeError):
        qrules.compose(object())
    with pytest.raises(ValueError):
        qrules.compose()


def test_package_attributes_stay_functions():
    # importing the implementing modules must not shadow the API functions
    import qrules.engine.compose  # noqa: F401
    import qrules.engine.explain  # noqa: F401

    assert callable(qrules.compose) and callable(qrules.explain)
    assert qrules.compose.__module__ == "qrules.engine.compose"
