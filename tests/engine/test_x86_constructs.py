"""The constructs x86_inductor.qrule needed: `~>` links, `takes(...)`, `ROLE[*]` with
all()/any(), `source(...)`, named patterns and `annotation` kinds, on small exported
graphs. Their lint is in tests/fixtures/diagnostics (names.qrule, types.qrule)."""

from __future__ import annotations

import os

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from qrules.api import load_text  # noqa: E402
from qrules.checking import check_ruleset_text  # noqa: E402
from tests.models import export  # noqa: E402

HEAD = '''ruleset x version "1.0"
spec act = affine(uint8, 0..255, observer=histogram)
spec w = symmetric(int8, -128..127, per_channel(axis=0), observer=per_channel_minmax)
'''


def annotate(text: str, module: nn.Module, inputs, strict: bool = False) -> dict:
    assert check_ruleset_text(text, "x.qrule").diagnostics == ()
    gm = export(module.eval(), inputs, strict=strict)
    load_text(text, "x.qrule").quantizer().annotate(gm)
    return {n.name: n for n in gm.graph.nodes}


def ann(node):
    return node.meta.get("quantization_annotation")


class ConvTwoUsers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 3, 1), nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        return self.relu(y) + y


@pytest.mark.parametrize("link, fused", [("->", False), ("~>", True)])
def test_shared_link_lets_the_step_before_have_other_users(link, fused):
    text = HEAD + f"rule conv_relu: conv2d {link} relu : {{ input: act, weight: w }}\n"
    nodes = annotate(text, ConvTwoUsers(), (torch.randn(1, 3, 4, 4),))
    assert (ann(nodes["relu"]) is not None) is fused
    assert (ann(nodes["conv2d"]) is not None) is fused
    if fused:  # the relu ends the pattern: the conv's output edge stays unquantized
        assert ann(nodes["conv2d"]).output_qspec is None


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def test_takes_marks_producers_and_leaves_unlisted_steps_unannotated():
    text = HEAD + ("rule r: conv2d -> batch_norm -> relu : { input: act, weight: w, "
                   "output: act } takes(conv2d, weight, bias, relu)\n")
    # train mode keeps the batch norm in the graph
    gm = export(ConvBnRelu().train(), (torch.randn(2, 3, 4, 4),))
    load_text(text, "x.qrule").quantizer().annotate(gm)
    nodes = {n.name: n for n in gm.graph.nodes}
    for name in ("conv_weight", "conv_bias"):
        marked = ann(nodes[name])
        assert marked is not None and marked._annotated and not marked.input_qspec_map
    assert ann(nodes["batch_norm"]) is None
    assert ann(nodes["relu"]).output_qspec is not None


class TwoCats(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        return torch.cat([a, b], 1), torch.cat([a, torch.sigmoid(b)], 1)


def test_every_value_of_a_role_with_all():
    text = HEAD + '''rule conv: conv2d : { input: act, weight: w }
phase propagate {
  rule cat: cat[all(quantized(input[*]))]
    : { input[0]: act, input: same_as(input[0]), output: same_as(input[0]) }
}
'''
    nodes = annotate(text, TwoCats(), (torch.randn(1, 3, 4, 4),))
    assert ann(nodes["cat"]) is not None
    assert ann(nodes["cat_1"]) is None            # sigmoid's output is not quantized


class Sources(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 3, 1), nn.ReLU()

    def forward(self, x):
        y = self.relu(self.conv(x))
        return F.relu(F.conv2d(y, self.conv.weight)) + y


@pytest.mark.parametrize("strict", [False, True])
def test_source_reads_modules_and_functions(strict):
    text = HEAD + ('rule r: conv2d[source("torch.nn.Conv2d")] -> relu[source("torch.nn.ReLU")]'
                   " : { input: act, weight: w }\n")
    nodes = annotate(text, Sources(), (torch.randn(1, 3, 4, 4),), strict=strict)
    assert ann(nodes["relu"]) is not None          # the modules
    assert ann(nodes["relu_1"]) is None             # F.conv2d -> F.relu
    functional = HEAD + ('rule r: conv2d[source("torch.conv2d")] : { input: act, weight: w }\n')
    nodes = annotate(functional, Sources(), (torch.randn(1, 3, 4, 4),), strict=True)
    assert ann(nodes["conv2d_1"]) is not None and ann(nodes["conv2d"]) is None


def test_annotation_kind_writes_the_backend_class_and_its_flag():
    text = HEAD.replace('version "1.0"\n', 'version "1.0"\nannotation x86_inductor\n') + \
        "rule conv: conv2d -> batch_norm -> relu : { input: act, weight: w }\n"
    nodes = annotate(text, ConvBnRelu().eval(), (torch.randn(1, 3, 4, 4),))
    conv, relu = ann(nodes["conv2d"]), ann(nodes["relu"])
    assert type(conv).__name__ == "_X86InductorQuantizationAnnotation"
    assert relu._is_output_of_quantized_pattern and not conv._is_output_of_quantized_pattern


def test_named_patterns_are_substituted_where_rules_name_them():
    text = HEAD + '''pattern conv_module = conv2d[source("torch.nn.Conv2d")]
pattern relu_module = relu[source("torch.nn.ReLU")]
rule conv_relu: conv_module ~> relu_module : { input: act, weight: w }
'''
    nodes = annotate(text, ConvTwoUsers(), (torch.randn(1, 3, 4, 4),))
    assert ann(nodes["relu"]) is not None and ann(nodes["conv2d"]) is not None
