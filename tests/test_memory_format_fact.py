"""The `memory_format` fact on real exported graphs: the layout of a role's tensor, as
torch's is_contiguous(memory_format=...) decides it."""

from __future__ import annotations

import torch

from qrules.api import load_text
from qrules.compile.predicates import RoleValue
from qrules.semantics.facts import FACTS


class Layouts(torch.nn.Module):
    """Three convs reading the same input as NCHW, as NHWC and transposed."""

    def __init__(self):
        super().__init__()
        self.plain = torch.nn.Conv2d(3, 4, 1)
        self.nhwc = torch.nn.Conv2d(3, 4, 1)
        self.transposed = torch.nn.Conv2d(3, 4, 1)
        self.volume = torch.nn.Conv3d(3, 4, 1)

    def forward(self, x):
        return (self.plain(x), self.nhwc(x.contiguous(memory_format=torch.channels_last)),
                self.transposed(x.transpose(2, 3)),
                self.volume(x.unsqueeze(2).contiguous(memory_format=torch.channels_last_3d)))


def _exported():
    return torch.export.export(Layouts().eval(), (torch.randn(2, 3, 5, 6),)).module()


def _torch_layout(tensor) -> str:
    if tensor.is_contiguous():
        return "contiguous"
    if tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    if tensor.dim() == 5 and tensor.is_contiguous(memory_format=torch.channels_last_3d):
        return "channels_last_3d"
    return "other"


def test_a_predicate_on_memory_format_picks_the_channels_last_conv():
    text = ('ruleset t version "1.0"\nspec act = affine(int8)\n'
            'rule nhwc: conv2d[input.memory_format == "channels_last"] : { input: act }\n'
            'rule ndhwc: conv3d[input.memory_format == "channels_last_3d"] : { input: act }\n'
            'rule strided: conv2d[input.memory_format == "other"] : { input: act }\n')
    gm = _exported()
    quantizer = load_text(text, "t.qrule").quantizer()
    quantizer.annotate(gm)
    rules = {n.name: (n.meta.get("qrules") or {}).get("rule")
             for n in gm.graph.nodes if n.op == "call_function" and "conv" in n.name}
    assert rules == {"conv2d": None, "conv2d_1": "nhwc", "conv2d_2": "strided",
                     "conv3d": "ndhwc"}


def test_memory_format_agrees_with_torch_on_every_node():
    seen = set()
    for node in _exported().graph.nodes:
        tensor = node.meta.get("val")
        if isinstance(tensor, torch.Tensor):
            found = FACTS["memory_format"].implementation(RoleValue(node, None))
            assert found == _torch_layout(tensor), node.name
            seen.add(found)
    assert seen == {"contiguous", "channels_last", "channels_last_3d", "other"}
    assert FACTS["memory_format"].implementation(RoleValue(6, None)) == "other"
