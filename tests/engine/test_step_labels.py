"""`as NAME` step labels: config keys reach the right step of `add -> add`."""

from __future__ import annotations

import torch

from qrules.api import load_text
from tests.models import export


class AddAdd(torch.nn.Module):
    def forward(self, x, y, z):
        return (x + y) + z


def test_labelled_step_gets_its_extra_input_spec():
    gm = export(AddAdd(), (torch.randn(2) for _ in range(3)))
    text = ('ruleset t version "1.0"\nspec act = affine(int8)\nspec other = affine(uint8)\n'
            "rule add_add: add -> add as second : "
            "{ input: act, second.extra: other, output: act }\n")
    load_text(text, "t.qrule").quantizer().annotate(gm)
    specs = {n.name: {k.name: v.dtype for k, v in
                      n.meta["quantization_annotation"].input_qspec_map.items()}
             for n in gm.graph.nodes if "quantization_annotation" in n.meta}
    assert specs == {"add": {"x": torch.int8, "y": torch.int8}, "add_1": {"z": torch.uint8}}
