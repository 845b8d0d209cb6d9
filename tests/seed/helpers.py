"""The seed's PT2EQuantizationTestCase helpers, for qrules quantizers.

``check_quantizer`` is the seed's ``_test_quantizer``: export with
``torch.export.export(m, args).module()``, prepare (PTQ or QAT), calibrate once on the
example inputs, convert (weights folded), run the result, and check node occurrences
and order by ``torch.fx`` node target, as ``checkGraphModuleNodes`` does.
"""

from __future__ import annotations

import copy
import textwrap
from collections import Counter
from typing import Optional

import torch

import qrules
import qrules.adapter.torchao  # noqa: F401  (importing torchao defines quantized_decomposed)

from tests.models import LinearModule, export

Q = torch.ops.quantized_decomposed
QUANT = Q.quantize_per_tensor.default
DEQUANT = Q.dequantize_per_tensor.default
QUANT_PC = Q.quantize_per_channel.default
DEQUANT_PC = Q.dequantize_per_channel.default
QUANT_T = Q.quantize_per_tensor.tensor
DEQUANT_T = Q.dequantize_per_tensor.tensor


def rules(text: str, filename: str = "backend.qrule", **params):
    """A .qrule source written inline in a test, loaded with its parameters bound.
    ``filename`` is what diagnostics and provenance (file:line:col) name."""
    return qrules.load_text(textwrap.dedent(text).lstrip("\n"), filename, **params)


def prepare(model: torch.fx.GraphModule, quantizer, is_qat: bool = False):
    """``prepare_pt2e`` / ``prepare_qat_pt2e`` through qrules' public API. ``model`` is
    already exported, so no example inputs are needed; ``quantizer`` is a loaded
    ruleset, ``qrules.compose(...)`` or any torchao Quantizer."""
    assert qrules.model_is_exported(model)
    return qrules.prepare(model, (), quantizer, qat=is_qat)


def convert(model: torch.fx.GraphModule, **kwargs):
    return qrules.convert(model, **kwargs)


def quantize(model: torch.nn.Module, quantizer, example_inputs, is_qat: bool = False):
    """The seed's ``_quantize``: export, prepare, calibrate once, convert."""
    torch._dynamo.reset()
    gm = prepare(export(model, example_inputs), quantizer, is_qat)
    gm(*example_inputs)
    return convert(gm)


def call_targets(gm: torch.fx.GraphModule) -> list:
    return [n.target for n in gm.graph.nodes if n.op == "call_function"]


def check_nodes(gm: torch.fx.GraphModule, occurrence: Optional[dict] = None,
                node_list: Optional[list] = None) -> None:
    """``checkGraphModuleNodes``: exact counts of call_function targets, and
    ``node_list`` appearing in this order (not necessarily adjacent)."""
    targets = call_targets(gm)
    counts = Counter(targets)
    for target, expected in (occurrence or {}).items():
        assert counts[target] == expected, (
            f"{target}: expected {expected} occurrence(s), found {counts[target]}\n{gm.graph}")
    position = 0
    for target in targets:
        if node_list and position < len(node_list) and target == node_list[position]:
            position += 1
    assert position == len(node_list or []), (
        f"node order: matched {node_list[:position]}, then missing {node_list[position]}\n"
        f"{gm.graph}")


def check_quantizer(model: torch.nn.Module, example_inputs, quantizer,
                    occurrence: dict, node_list: Optional[list] = None,
                    is_qat: bool = False) -> torch.fx.GraphModule:
    """The seed's ``_test_quantizer``: quantize a copy of ``model`` in eval mode, run
    it, check its nodes; returns the converted module."""
    m = quantize(copy.deepcopy(model.eval()), quantizer, example_inputs, is_qat)
    m(*example_inputs)
    check_nodes(m, occurrence, node_list)
    return m


def get_node(gm: torch.fx.GraphModule, target):
    """The seed's ``_get_node``: the first node calling ``target``."""
    for node in gm.graph.nodes:
        if node.target == target:
            return node
    raise ValueError(f"did not find a node calling {target}")


def pt2e_quantized_linear(is_per_channel: bool = False) -> torch.fx.GraphModule:
    """The seed's ``_get_pt2e_quantized_linear``: one Linear(2, 2), quantized with the
    built-in xnnpack ruleset (the seed's XNNPACKQuantizer + symmetric config)."""
    return quantize(LinearModule().eval(), qrules.load("xnnpack", per_channel=is_per_channel),
                    (torch.randn(2, 2),))
