"""`unmarked` rules (annotations without `_annotated`) and `range=none` specs: what
torchao's EmbeddingQuantizer writes, said in a ruleset."""

import warnings

import pytest
import torch

import qrules
from qrules.adapter.torchao import ANNOTATION_KEY
from tests.models import export

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torchao.quantization.pt2e.quantizer.embedding_quantizer import EmbeddingQuantizer

TEXT = """ruleset emb version "1.0"
spec table = float_qparams(uint8, range=none, per_channel(axis=0),
                           observer=per_channel_minmax(eps=2**-12))
spec act = affine(int8, -128..127)
rule embedding unmarked: embedding : { weight: table }
rule any_float: any : { input: act, output: act }
"""


def _annotation(gm, name):
    return next(n for n in gm.graph.nodes if n.name == name).meta.get(ANNOTATION_KEY)


def test_unmarked_rule_writes_specs_without_the_flag(exported):
    gm, _ = exported("embedding_linear")
    qrules.load_text(TEXT, "emb.qrule").quantizer().annotate(gm)
    emb = _annotation(gm, "embedding")
    assert emb._annotated is False
    (spec,) = emb.input_qspec_map.values()
    assert (spec.quant_min, spec.quant_max) == (None, None)
    assert spec.qscheme == torch.per_channel_affine_float_qparams and spec.dtype == torch.uint8
    # The linear is annotated by the later rule, marked as usual.
    assert _annotation(gm, "linear")._annotated is True


def test_unmarked_annotation_equals_embedding_quantizers(exported):
    ours, _ = exported("embedding_linear")
    theirs, _ = exported("embedding_linear")
    qrules.load("embedding").quantizer().annotate(ours)
    EmbeddingQuantizer().annotate(theirs)
    a, b = _annotation(ours, "embedding"), _annotation(theirs, "embedding")
    assert a._annotated == b._annotated is False
    (spec_a,), (spec_b,) = a.input_qspec_map.values(), b.input_qspec_map.values()
    for field in ("dtype", "quant_min", "quant_max", "qscheme", "ch_axis", "is_dynamic"):
        assert getattr(spec_a, field) == getattr(spec_b, field), field


def test_unmarked_nodes_stay_taken_for_later_rules_and_quantizers(exported):
    # `any_float` comes later in the same ruleset: it must not re-annotate the
    # embedding. A second qrules quantizer must not either (it sees the spec).
    gm, _ = exported("embedding_linear")
    qrules.compose(qrules.load_text(TEXT, "emb.qrule"),
                   qrules.load_text(TEXT.replace("ruleset emb", "ruleset emb2")
                                    .replace("embedding unmarked", "embedding"),
                                    "emb2.qrule")).annotate(gm)
    node = next(n for n in gm.graph.nodes if n.name == "embedding")
    assert node.meta["qrules"]["rule"] == "embedding"
    assert node.meta["qrules"]["ruleset"] == "emb"
    assert node.meta[ANNOTATION_KEY]._annotated is False


def test_unmarked_nodes_stay_taken_across_python_scoped_passes(exported):
    # The scoped pass runs first; the passes after it (leave-in-float for the scope,
    # then the global ruleset, which would give the weight `act`) must leave the
    # unmarked embedding alone: it is in the scoped pass's plan.
    gm, _ = exported("embedding_linear")
    scoped = qrules.load_text(TEXT, "emb.qrule")
    marked = qrules.load_text(TEXT.replace("embedding unmarked", "embedding")
                              .replace("weight: table", "weight: act"), "marked.qrule")
    quantizer = marked.quantizer().set_operator_type(torch.ops.aten.embedding.default,
                                                     scoped)
    quantizer.annotate(gm)
    emb = _annotation(gm, "embedding")
    assert emb._annotated is False
    (spec,) = emb.input_qspec_map.values()
    assert spec.qscheme == torch.per_channel_affine_float_qparams


GUARDED = """ruleset guarded version "1.0"
spec act = affine(int8, -128..127)
rule linear UNMARKED: linear : { input: act, output: act }
rule gru_io_only: region(module_type "torch.nn.GRU")[
    not annotated(input[0]), not annotated(input[1])] : { input: act, output: act }
"""


@pytest.mark.parametrize("unmarked, gru_rule", [(True, "gru_io_only"), (False, None)])
def test_annotated_reads_the_mark_not_taken(unmarked, gru_rule, exported):
    # As torchao's _is_annotated: a producer an unmarked rule annotated is taken (no
    # rule matches it again) but not `annotated`, so the GRU's guard lets it through.
    gm, _ = exported("gru")
    text = GUARDED.replace(" UNMARKED", " unmarked" if unmarked else "")
    qrules.load_text(text, "guarded.qrule").quantizer().annotate(gm)
    nodes = {n.name: n for n in gm.graph.nodes}
    assert nodes["linear"].meta["qrules"]["rule"] == "linear"
    assert nodes["gru"].meta.get("qrules", {}).get("rule") == gru_rule


def test_annotated_ignores_another_quantizers_unmarked_spec(exported):
    # EmbeddingQuantizer's annotation (a spec, no `_annotated`) on the GRU's producer.
    class EmbeddingGRU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.gru = torch.nn.GRU(4, 4, batch_first=True)

        def forward(self, idx, h):
            return self.gru(self.emb(idx), h)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = export(EmbeddingGRU().eval(), (torch.tensor([[1, 2, 3]]), torch.randn(1, 1, 4)))
    quantizer = qrules.compose(EmbeddingQuantizer(),
                               qrules.load_text(GUARDED.replace(" UNMARKED", ""), "g.qrule"))
    quantizer.annotate(gm)
    gru = next(n for n in gm.graph.nodes if n.name == "gru")
    assert gru.meta["qrules"]["rule"] == "gru_io_only"
