"""Scoping from Python against executorch's Arm ``TOSAQuantizer``: ``set_module_type``,
``set_module_name``, ``set_node_target``, ``set_node_name`` and ``set_io`` on a
``RulesetQuantizer`` of the built-in arm ruleset with ``precedence="last_set_first"``
against the same calls on executorch's quantizer (its default composable V2 path:
the scope set last wins, a scope holds only the nodes its finder yields, the global
config annotates whatever the scopes left, the shared-qspec clusters come last), node
by node inside prepare and bit-identical converted outputs (``qrules.engine.diff``
with both quantizer objects). Each case is one small module (tests/models/arm.py
``scoped``): a few seconds of CPU each.
"""

from __future__ import annotations

import gc
import warnings

import pytest
import torch
from torch import nn

import qrules
from qrules.adapter.executorch import arm_quantizer
from qrules.engine.diff import diff

from tests import models
from tests.models.arm import ScopedBlock, arm_helper

LINEAR = torch.ops.aten.linear.default


def _config(**flags):
    """(executorch's QuantizationConfig, the arm ruleset) for one set of flags."""
    from executorch.backends.arm.quantizer import arm_quantizer as arm

    helper = {(8, 8): arm.get_symmetric_quantization_config,
              (16, 8): arm.get_symmetric_a16w8_quantization_config,
              (8, 4): arm.get_symmetric_a8w4_quantization_config}[
        (flags.get("act_bits", 8), flags.get("weight_bits", 8))]
    return helper(flags.get("per_channel", True), False, False), qrules.load("arm", **flags)


# name -> [(method, selector, flags of the scope's config or None)], in call order
SCOPED = {
    "module_type": [("set_module_type", nn.Linear, {"act_bits": 16})],
    "module_type_of_a_block": [("set_module_type", ScopedBlock, {"act_bits": 16})],
    "module_name": [("set_module_name", "block", {"act_bits": 16})],
    "node_target": [("set_node_target", LINEAR, {"per_channel": False})],
    "node_name": [("set_node_name", "conv2d", {"weight_bits": 4})],
    "io": [("set_io", None, {"act_bits": 16})],
    # Two scopes over the same linears: the one set last wins there.
    "type_then_name": [("set_module_type", nn.Linear, {"per_channel": False}),
                       ("set_module_name", "block", {"act_bits": 16})],
    "name_then_type": [("set_module_name", "block", {"act_bits": 16}),
                       ("set_module_type", nn.Linear, {"per_channel": False})],
}

# What the ruleset does not reproduce yet, with the nodes where it differs: None
# leaves the scope in float, but executorch also marks the module's get_attr nodes
# (qrules matches only calls, graph inputs and outputs) and writes a None entry for
# each float input, where qrules writes no entry. Same converted model.
NOT_YET = {
    "module_name_none": ([("set_module_name", "block.fc2", None)],
                         {"_param_constant4", "_param_constant5", "linear_1"}),
}


def _both(scopes):
    anchor = arm_quantizer()
    ours = qrules.load("arm").quantizer(precedence="last_set_first")
    for method, selector, flags in scopes:
        config, ruleset = _config(**flags) if flags is not None else (None, None)
        args = () if method == "set_io" else (selector,)
        getattr(anchor, method)(*args, config)
        getattr(ours, method)(*args, ruleset)
    return anchor, ours


def _diff(scopes):
    module, inputs = arm_helper("scoped")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = models.export(module, inputs, check_guards=False)
    anchor, ours = _both(scopes)
    try:
        return diff(anchor, ours, graph, inputs, model_label="scoped")
    finally:
        gc.collect()


@pytest.mark.parametrize("case", SCOPED)
def test_arm_scoping_is_exact(case):
    report = _diff(SCOPED[case])
    assert report.equal, report.format(limit=20)
    assert report.numerics.outputs_equal and not report.numerics.op_count_diff, \
        report.format(limit=20)


@pytest.mark.parametrize("case", NOT_YET)
def test_arm_known_difference_is_exactly_this(case):
    scopes, nodes = NOT_YET[case]
    report = _diff(scopes)
    assert {m.node for m in report.mismatches} == nodes, report.format(limit=20)
    assert report.numerics.outputs_equal, report.format(limit=20)


def test_precedence_orders_the_scopes():
    """The same two scopes, ranked (module names before module types, whatever the
    order of the calls) and last set first."""
    _, ruleset = _config(per_channel=False)
    _, wide = _config(act_bits=16)

    def passes(precedence, calls):
        quantizer = qrules.load("arm").quantizer(precedence=precedence)
        for method, selector, chosen in calls:
            getattr(quantizer, method)(selector, chosen)
        return quantizer.annotation_passes()

    calls = [("set_module_name", "block", wide), ("set_module_type", nn.Linear, ruleset)]
    ranked = passes("ranked", calls)
    assert [p.rules[0].scopes[-1].kind for p in ranked[:2]] == ["module_name", "module_type"]
    (merged,) = passes("last_set_first", calls)
    phases = [rule.phase for rule in merged.rules]
    assert phases == sorted(phases)
    with pytest.raises(ValueError, match="precedence is one of ranked, last_set_first"):
        qrules.load("arm").quantizer(precedence="xnnpack")


def test_the_api_doc_example_runs():
    """docs/api.md's last_set_first example, against executorch's TOSAQuantizer."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    marker = "<!-- runs in tests/equivalence/test_arm_scopes.py -->"
    examples = re.findall(re.escape(marker) + r"\n```python\n(.*?)\n```", text, re.S)
    assert len(examples) == 1
    exec(compile(examples[0], "docs/api.md", "exec"), {"__name__": "api_example"})


def test_node_filter_is_a_node_finder():
    """``set_node_filter(fn, ruleset)`` == ``set_node_finder(config, finder)`` with a
    finder yielding the nodes ``fn`` accepts (the block's nodes, by name)."""
    from executorch.backends.arm.quantizer.arm_quantizer_utils import NodeFinder

    def in_block(node) -> bool:
        return node.name in ("linear", "relu_1", "linear_1", "sigmoid")

    class Finder(NodeFinder):
        def find_nodes(self, model):
            return (node for node in model.graph.nodes if in_block(node))

    config, ruleset = _config(act_bits=16)
    anchor = arm_quantizer().set_node_finder(config, Finder())
    ours = qrules.load("arm").quantizer(precedence="last_set_first")
    ours.set_node_filter(in_block, ruleset)
    module, inputs = arm_helper("scoped")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = models.export(module, inputs, check_guards=False)
    report = diff(anchor, ours, graph, inputs, model_label="scoped")
    gc.collect()
    assert report.equal, report.format(limit=20)
    assert report.numerics.outputs_equal, report.format(limit=20)
