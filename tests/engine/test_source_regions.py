"""`region(source "S")`: a source partition as one step (docs/language.md, "Source
regions"). For a leaf module it selects what `module_type` selects, after strict and
non-strict exports alike; for a module whose nodes run in submodules it selects
nothing, since only each node's innermost record is read."""

import pytest
import torch

import qrules
from qrules.adapter.torchao import ANNOTATION_KEY
from qrules.checking import check_ruleset_text
from tests.models import export, small

RULES = """ruleset regions version "1.0"
spec act = affine(int8, -128..127)
rule io: region(KIND "SELECTOR")[not annotated(input[0])] : { input: act, output: act }
rule linear: linear : { input: act, output: act }
"""


def _annotate(gm, kind: str, selector: str) -> dict:
    text = RULES.replace("KIND", kind).replace("SELECTOR", selector)
    qrules.load_text(text, "regions.qrule").quantizer().annotate(gm)
    found = {}
    for node in gm.graph.nodes:
        annotation = node.meta.get(ANNOTATION_KEY)
        if annotation is not None:
            found[node.name] = (sorted(source.name for source in annotation.input_qspec_map),
                                annotation.output_qspec is not None)
    return found


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("model", ["gru_input", "gru_after_linear"])
def test_a_leaf_module_source_region_is_its_module_type_region(model, strict):
    module, inputs = small(model)
    by_type = _annotate(export(module, inputs, strict=strict), "module_type", "torch.nn.GRU")
    by_source = _annotate(export(module, inputs, strict=strict), "source", "torch.nn.GRU")
    gru = next(name for name in by_type if name.startswith("gru"))
    assert by_source == by_type
    assert by_type[gru][0]   # the region matched: the GRU's input edges have specs


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 2, 1)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class _TwoBlocks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = _Block(), _Block()

    def forward(self, x):
        return self.second(self.first(x))


BLOCK = f"{__name__}._Block"


def test_a_module_calling_submodules_is_no_source_region():
    inputs = (torch.randn(1, 2, 4, 4),)
    by_type = _annotate(export(_TwoBlocks().eval(), inputs), "module_type", BLOCK)
    by_source = _annotate(export(_TwoBlocks().eval(), inputs), "source", BLOCK)
    # The first block, conv and relu; the second's input is the first one's output,
    # annotated now, so its predicate keeps it out.
    assert sorted(by_type) == ["conv2d", "relu"]
    assert by_source == {}
    # Its leaf modules are sources: one region per ReLU instance.
    relus = _annotate(export(_TwoBlocks().eval(), inputs), "source", "torch.nn.ReLU")
    assert sorted(relus) == ["relu", "relu_1"]
    assert all(inputs and output for inputs, output in relus.values())


def test_lint_knows_the_region_kinds():
    text = RULES.replace("KIND", "source").replace("SELECTOR", "torch.nn.GRU")
    assert not check_ruleset_text(text, "ok.qrule").diagnostics
    found = check_ruleset_text(RULES.replace("KIND", "sources").replace("SELECTOR", "x"),
                               "bad.qrule").diagnostics
    assert [d.code for d in found] == ["QR217"]
    assert "`source`" in found[0].message
