"""The harness ``rulesets/qnn.qrule`` is measured with (test_qnn_anchor.py): the QNN
models reaching every annotator the anchor registers (read from its registry at test
time), the ``executorch:qnn[...]`` anchor against itself on one small case (0
mismatching nodes, bit-identical outputs: the harness sees no difference where there is
none) and where it raises, the anchor needing no QNN SDK, and its spec flags.
"""

from __future__ import annotations

import gc
import os
import re
import warnings
from pathlib import Path

import pytest

from qrules.engine.diff import SideFailed, anchor, diff, parse_anchor
from tests import models
from tests.models import ZOO
from tests.models.qnn import QNN_MODELS, qnn_small

from .conftest import exported

#: Annotators no graph reaches through QnnQuantizer, and why: its own
#: ``transform_for_annotation`` rewrites their ops before ``annotate`` runs.
UNREACHABLE = {
    "Cdist.annotate": "aten.cdist is decomposed by DecomposeCDist "
                      "(executorch/backends/qualcomm/_passes/qnn_pass_manager.py:177)",
}
CDIST = "aten.cdist.default"

_EXPORTED: dict = {}


def qnn_exported(name: str, qat: bool = False):
    """(exported GraphModule, inputs) of a QNN model, once per session; diff copies it."""
    if (name, qat) not in _EXPORTED:
        module, inputs = qnn_small(name)
        module.train(qat)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _EXPORTED[name, qat] = models.export(module, inputs), inputs
    return _EXPORTED[name, qat]


#: The dtypes QnnQuantizer has a QAT config for (``test_qat_dtypes_are_the_anchors``).
QAT_DTYPES = ("8a8w", "16a8w", "16a4w", "16a4w_block", "fp16a8w")


def annotators(quantizer) -> dict[str, set[str]]:
    """The anchor's registered annotator functions, each with the op targets it handles."""
    table: dict[str, set[str]] = {}
    for target, rule in quantizer._rules_map.items():
        table.setdefault(rule.annotate_fn.__qualname__, set()).add(str(target))
    return table


def _targets_seen_by_annotate(quantizer, name: str) -> tuple[set[str], set[str]]:
    """(call targets of a model's exported graph, call targets after the anchor's
    ``transform_for_annotation``, which is what its ``annotate`` walks)."""
    graph, _ = qnn_exported(name)
    before = {str(n.target) for n in graph.graph.nodes if n.op == "call_function"}
    transformed = quantizer.transform_for_annotation(_copy(graph))
    after = {str(n.target) for n in transformed.graph.nodes if n.op == "call_function"}
    return before, after


def _copy(graph):
    from qrules.engine.diff.run import copy_graph

    return copy_graph(graph)


def test_every_annotator_is_reached():
    quantizer = anchor("executorch:qnn")
    table = annotators(quantizer)
    reached: dict[str, list[str]] = {}
    cdist_before_transform = False
    for name in QNN_MODELS:
        before, after = _targets_seen_by_annotate(quantizer, name)
        cdist_before_transform |= CDIST in before
        for annotator, targets in table.items():
            if targets & after:
                reached.setdefault(annotator, []).append(name)
    missed = sorted(set(table) - set(reached) - set(UNREACHABLE))
    assert not missed, f"no QNN model reaches {missed}: add a helper module to tests/models/qnn.py"
    assert not set(UNREACHABLE) & set(reached), "an UNREACHABLE annotator is reached now"
    assert cdist_before_transform, "the models must call cdist for UNREACHABLE to be checked"
    assert len(table) >= 60, sorted(table)   # the registry was read, not an empty stub


#: Where the anchor itself raises in prepare, with torchao's error: fp16a8w has no
#: activation spec (None). BatchNorm.annotate and LayerNorm.annotate read its dtype
#: (htp_rules.py:208, 888; convnext_tiny and vit_b_16 have layer norms); topk's getitem
#: shares topk's output (GetItem.annotate, htp_rules.py:659), which topk, left without
#: specs, never got; Embedding and the scatter annotators share their output with an
#: input edge whose spec is None (htp_rules.py:604, 1470-1477). Checked to still
#: raise, so a fixed anchor shows here.
ANCHOR_FAILS = {
    ("conv_family", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'dtype'",
    ("decoder_block", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'dtype'",
    ("reductions", "fp16a8w"): "KeyError: topk",
    ("indexing", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'to'",
    ("embedding_lookup", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'to'",
    ("convnext_tiny", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'dtype'",
    ("vit_b_16", "fp16a8w"): "AttributeError: 'NoneType' object has no attribute 'dtype'",
}

# The anchor against itself once (the harness sees no difference where there is
# none), and every case where it raises (it fails in prepare, before any numerics);
# test_qnn_anchor.py runs the ruleset against it on every model and dtype.
SELF_CASES = ([("embedding_lookup", "16a4w,per_channel", False)]
              + [(name, dtype, False) for name, dtype in ANCHOR_FAILS])


@pytest.mark.parametrize("name, flags, qat", SELF_CASES,
                         ids=[f"{n}|executorch:qnn[{f}]" for n, f, _ in SELF_CASES])
def test_anchor_against_itself(name, flags, qat):
    graph, inputs = exported("zoo", name, qat) if name in ZOO else qnn_exported(name, qat)
    spec = f"executorch:qnn[{flags}]"
    failure = ANCHOR_FAILS.get((name, flags.partition(",")[0]))
    if failure:
        with pytest.raises(SideFailed, match=re.escape(failure)):
            diff(spec, spec, graph, inputs, qat=qat, numerics=False)
        return
    try:
        report = diff(spec, spec, graph, inputs, qat=qat, model_label=name)
    finally:
        gc.collect()
    assert report.nodes_compared > 0
    assert not report.mismatches, report.format(limit=10)
    assert report.numerics.error is None, report.numerics.error
    assert report.numerics.outputs_equal and not report.numerics.op_count_diff, \
        report.format(limit=10)


def test_qat_dtypes_are_the_anchors():
    from executorch.backends.qualcomm.quantizer.quantizer import QUANT_CONFIG_DICT

    with_qat = {dtype.name.removeprefix("use_") for dtype, qat in QUANT_CONFIG_DICT if qat}
    assert set(QAT_DTYPES) == with_qat
    with pytest.raises(RuntimeError, match="is not support"):
        anchor("executorch:qnn[16a16w,qat]")


def test_anchor_needs_no_qnn_sdk(monkeypatch):
    """With no SDK configured, building the anchor must neither download one (executorch
    does, on Linux x86, when QNN_SDK_ROOT is unset) nor leave QNN_SDK_ROOT behind."""
    from executorch.backends.qualcomm.utils import qnn_sdk_setup

    installs = []   # recorded, not raised: executorch swallows errors of the setup
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    monkeypatch.setattr(qnn_sdk_setup, "_sdk_ready", False)
    monkeypatch.setattr(qnn_sdk_setup, "_install_qnn_sdk", lambda: installs.append(1))
    quantizer = anchor("executorch:qnn[16a4w,per_channel]")
    assert not installs, "the QNN anchor tried to install the QNN SDK"
    assert type(quantizer).__name__ == "QnnQuantizer"
    assert "QNN_SDK_ROOT" not in os.environ


def test_anchor_keeps_mkldnn_on(monkeypatch):
    """``QnnQuantizer()`` turns MKLDNN off for the whole process on an AMD host, which
    slows every later float convolution of any model several times; the anchor keeps
    the caller's setting (the host is made to look AMD so this checks it anywhere)."""
    import torch
    from executorch.backends.qualcomm.utils import qnn_sdk_setup

    monkeypatch.setattr(qnn_sdk_setup, "_host_is_amd", lambda: True)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", True)
    anchor("executorch:qnn[16a4w_block]")
    assert torch.backends.mkldnn.enabled


def test_block_flag_sets_every_linear_block():
    graph, _ = qnn_exported("embedding_lookup")
    quantizer = anchor("executorch:qnn[16a4w_block]")
    quantizer.annotate(_copy(graph))
    assert quantizer.block_size_map == {"linear": (1, 16), "linear_weight": (1, 16)}


@pytest.mark.parametrize("spec, expected", [
    ("executorch:qnn", ("executorch:qnn", {})),
    ("executorch:qnn[16a4w_block, per_channel, qat]",
     ("executorch:qnn", {"16a4w_block": True, "per_channel": True, "qat": True})),
])
def test_qnn_anchor_spec(spec, expected):
    assert parse_anchor(spec) == expected


def test_qnn_anchor_takes_one_dtype():
    with pytest.raises(ValueError, match=re.escape("one dtype flag, not 8a8w, 16a4w")):
        anchor("executorch:qnn[16a4w,8a8w]")


def test_survey_example_is_the_ordered_choice():
    """docs/backends.md's QNN example: checks clean, and on ``x -> view -> permute`` the
    view (its producer unquantized) gets a fresh spec and the permute shares the view's,
    as QNN's annotate_in_out_obs_sharing_op / annotate_single_in_share_out do."""
    import torch

    import qrules
    from qrules.adapter.torchao import ANNOTATION_KEY

    doc = (Path(__file__).resolve().parents[2] / "docs" / "backends.md").read_text()
    section = doc[doc.index("## Qualcomm QNN: what the language needs"):]
    example = re.search(r"```qrule\n(ruleset qnn_share_demo .*?)```", section, re.S).group(1)
    assert qrules.check(example) == []

    class ViewPermute(torch.nn.Module):
        def forward(self, x):
            return x.view(2, 8).permute(1, 0)

    graph = models.export(ViewPermute(), (torch.randn(16),))
    qrules.load_text(example).quantizer().annotate(graph)
    nodes = {n.name: n for n in graph.graph.nodes}
    view_spec = next(iter(nodes["view"].meta[ANNOTATION_KEY].input_qspec_map.values()))
    permute_spec = next(iter(nodes["permute"].meta[ANNOTATION_KEY].input_qspec_map.values()))
    assert type(view_spec).__name__ == "QuantizationSpec"
    assert type(permute_spec).__name__ == "SharedQuantizationSpec"
    assert permute_spec.edge_or_node is nodes["view"]


def test_annotation_pipeline_cache_gives_what_an_uncached_run_gives():
    """caches.qnn_annotation_passes_once (on for this package): QnnQuantizer's
    transform_for_annotation, once run and once served from the cache, gives the graph
    an uncached run of the pipeline gives (code, nodes and their meta, users' order,
    every state tensor's bytes), as a copy the next caller cannot disturb; a graph
    differing in one weight is transformed anew, not served the first one's result."""
    import torch
    from executorch.backends.qualcomm._passes.qnn_pass_manager import (
        QnnPassManager,
        get_qnn_pass_manager_cls,
    )

    from . import caches

    cached_pipeline = QnnPassManager.transform_for_annotation_pipeline
    assert hasattr(cached_pipeline, "__wrapped__"), "the QNN pipeline cache is not on"
    quantizer = anchor("executorch:qnn[16a8w]")
    graph, _ = qnn_exported("decoder_block")
    uncached = cached_pipeline.__wrapped__(get_qnn_pass_manager_cls()(), _copy(graph))
    assert uncached.code != graph.code   # the pipeline rewrites this model

    def same(got, expected):
        assert got.code == expected.code
        assert [(n.name, n.op, str(n.target), [u.name for u in n.users])
                for n in got.graph.nodes] == [
            (n.name, n.op, str(n.target), [u.name for u in n.users])
            for n in expected.graph.nodes]
        got_state, expected_state = got.state_dict(), expected.state_dict()
        assert list(got_state) == list(expected_state)
        for name, tensor in expected_state.items():
            assert got_state[name].dtype == tensor.dtype
            assert torch.equal(got_state[name], tensor), name
        assert caches.graph_fingerprint(got) == caches.graph_fingerprint(expected)

    first = quantizer.transform_for_annotation(_copy(graph))
    served = quantizer.transform_for_annotation(_copy(graph))
    same(first, uncached)
    same(served, uncached)
    with torch.no_grad():
        next(served.parameters()).add_(1.0)
    same(quantizer.transform_for_annotation(_copy(graph)), uncached)

    changed = _copy(graph)
    with torch.no_grad():
        next(changed.parameters()).add_(1.0)
    assert caches.graph_fingerprint(changed) != caches.graph_fingerprint(graph)
    same(quantizer.transform_for_annotation(_copy(changed)),
         cached_pipeline.__wrapped__(get_qnn_pass_manager_cls()(), _copy(changed)))
