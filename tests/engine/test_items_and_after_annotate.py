"""Two annotation-side constructs QNN needs, run on exported graphs: `output[*]` (the
getitem items of a tuple result, taken by the match) and `transform NAME after annotate`
(a rewrite that reads the annotations just written). The examples are docs/language.md's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import qrules
from qrules.adapter.quantizer import annotation_of
from qrules.adapter.torchao import ANNOTATION_KEY
from qrules.semantics import registry
from tests import models

DOC = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text()


def _example(ruleset: str) -> str:
    return re.search(rf"```qrule\n(ruleset {ruleset} .*?)```", DOC, re.S).group(1)


class SplitTopk(torch.nn.Module):
    def forward(self, x):
        first, second = x.split(4, dim=-1)
        values, indices = second.topk(2, dim=-1)
        peak, _ = x.max(-1)
        return first, values, indices, peak


def _annotated(text: str, module, inputs):
    graph = models.export(module, inputs)
    qrules.load_text(text).quantizer().annotate(graph)
    return graph, {n.name: n for n in graph.graph.nodes}


def test_items_of_split_and_topk():
    graph, nodes = _annotated(_example("items_demo"), SplitTopk(), (torch.randn(2, 8),))
    split, topk = nodes["split"], nodes["topk"]
    x = split.args[0]
    assert split.meta[ANNOTATION_KEY].output_qspec is None   # the tuple gets no spec
    items = [u for u in split.users]
    assert len(items) == 2
    for item in items:
        spec = item.meta[ANNOTATION_KEY].output_qspec
        assert type(spec).__name__ == "SharedQuantizationSpec"
        assert spec.edge_or_node == (x, split)
        assert annotation_of(item)["rule"] == "split"
    values, indices = sorted(topk.users, key=lambda n: n.args[1])
    assert values.meta[ANNOTATION_KEY].output_qspec.edge_or_node is topk
    assert annotation_of(values)["rule"] == "topk"
    assert ANNOTATION_KEY not in indices.meta   # an int64 item is never quantized
    # max.dim has no `output[*]` rule: its float item is the `item` rule's.
    peak = next(u for u in nodes["max_1"].users if u.args[1] == 0)
    assert type(peak.meta[ANNOTATION_KEY].output_qspec).__name__ == "QuantizationSpec"
    assert annotation_of(peak)["rule"] == "item"


def test_output_item_by_index():
    text = _example("items_demo").replace("output[*]: same_as(input)",
                                          "output[1]: same_as(input)")
    _, nodes = _annotated(text, SplitTopk(), (torch.randn(2, 8),))
    first, second = sorted(nodes["split"].users, key=lambda n: n.args[1])
    assert annotation_of(first)["rule"] == "item"     # item 0: left to `item`
    assert annotation_of(second)["rule"] == "split"


class Masked(torch.nn.Module):
    def forward(self, x):
        mask = torch.ones(4, 4, dtype=torch.bool).triu(1)
        return x.masked_fill(mask, float("-inf"))


def test_after_annotate_clamps_infinity_to_the_quantized_range():
    graph, nodes = _annotated(_example("after_annotate_demo"), Masked(),
                              (torch.randn(4, 4),))
    fill = next(n for n in graph.graph.nodes if "masked_fill" in str(n.target))
    assert fill.meta[ANNOTATION_KEY].output_qspec is not None
    assert -255 in fill.args   # uint8 0..255: -inf became -(255 - 0)


def test_after_annotate_transform_sees_annotations_and_runs_once():
    seen = []

    def record(model):
        seen.append(sum(ANNOTATION_KEY in n.meta for n in model.graph.nodes))
        return model

    registry.register_transform("record_annotated", record, after_annotate=True,
                                replace=True)
    try:
        text = ('ruleset t version "1.0"\ntransform record_annotated after annotate\n'
                'spec act = affine(uint8, 0..255)\nrule relu: relu : { input: act, output: act }\n')
        quantizer = qrules.load_text(text).quantizer()
        graph = models.export(torch.nn.ReLU(), (torch.randn(2, 2),))
        graph = quantizer.transform_for_annotation(graph)
        assert seen == []                 # not a before-annotation transform
        quantizer.annotate(graph)
        assert seen == [1]                # after annotate, with the relu annotated
        with pytest.raises(qrules.QruleError, match="QR233"):
            qrules.load_text(text.replace(" after annotate", ""))
    finally:
        registry.TRANSFORMS.pop("record_annotated", None)


class SplitCat(torch.nn.Module):
    def forward(self, x):
        first, second = x.split(4, dim=-1)
        return torch.cat([second, -first, first], -1)


def test_each_input_shares_its_own_producer():
    """`input[each shared]`: the cat inputs whose producer's output is shared (the
    split's items) share that output, each its own; the neg gets the plain `input`."""
    graph, nodes = _annotated(_example("each_demo"), SplitCat(), (torch.randn(2, 8),))
    cat = nodes["cat"]
    inputs = cat.meta[ANNOTATION_KEY].input_qspec_map
    second, negated, first = cat.args[0]
    assert inputs[second].edge_or_node is second       # each shares its own producer
    assert inputs[first].edge_or_node is first
    assert type(inputs[negated]).__name__ == "QuantizationSpec"
