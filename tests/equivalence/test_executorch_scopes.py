"""Scoping from Python against executorch's XNNPACKQuantizer: ``set_module_name``,
``set_module_type``, ``set_operator_type`` and ``set_filter_function`` on a
``RulesetQuantizer`` of the built-in xnnpack ruleset against the same calls on
executorch's quantizer, node by node inside prepare and bit-identical converted outputs
(``qrules.engine.diff`` with both quantizer objects).

``SCOPED`` holds the cases where both agree exactly, ``ANCHOR_BUGS`` among them: the
ruleset reproduces executorch's scoping bugs by default (it says ``scoping filters``)
and ``exact_scopes=True`` does the correct thing instead, which differs from executorch
on exactly the nodes listed there: docs/equivalence.md ("Anchor bugs kept by default")
explains each one and shows its minimal reproduction. ``BY_DESIGN`` holds what qrules
does differently on purpose. A case there that starts to agree fails, so the page is
updated when executorch changes.
"""

from __future__ import annotations

import copy
import gc

import pytest
import torch

import qrules
from qrules.engine.diff import diff
from qrules.adapter.quantizer import annotation_of
from qrules.engine.device import anchor_quantizer

from tests.models.executorch import Gate, Proj
from .conftest import exported

LINEAR = torch.ops.aten.linear.default


def _configs(exact=False, **params):
    """(executorch's QuantizationConfig, the xnnpack ruleset) for one set of flags;
    ``exact``: the ruleset with ``exact_scopes=True``."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(
        is_per_channel=params.get("per_channel", False),
        is_dynamic=params.get("dynamic", False))
    if exact:
        params["exact_scopes"] = True
    return config, qrules.load("xnnpack", **params)


def _not_proj_b(node) -> bool:
    return node.name != "linear_1"   # proj_b's linear in two_module_types


# name -> (model, global flags, [(method, selector, flags or None)], filter function)
SCOPED = {
    "module_type": ("two_module_types", {"per_channel": True},
                    [("set_module_type", Proj, {})], None),
    "module_type_dynamic": ("two_module_types", {"per_channel": True},
                            [("set_module_type", Proj, {"dynamic": True})], None),
    "module_name": ("two_module_types", {}, [("set_module_name", "proj_b",
                                              {"per_channel": True})], None),
    "module_name_before_type": ("two_module_types", {"per_channel": True},
                                [("set_module_type", Proj, {"dynamic": True}),
                                 ("set_module_name", "proj_a", {})], None),
    "operator_type": ("two_module_types", {"dynamic": True},
                      [("set_operator_type", LINEAR, {"per_channel": True})], None),
    "operator_type_add": ("two_module_types", {"per_channel": True},
                          [("set_operator_type", torch.ops.aten.add.Tensor, {})], None),
    "operator_type_after_module": ("two_module_types", {"per_channel": True},
                                   [("set_operator_type", LINEAR, {}),
                                    ("set_module_name", "proj_a", {"dynamic": True})], None),
    "filter_function": ("two_module_types", {"per_channel": True}, [], _not_proj_b),
    "filter_function_and_scope": ("two_module_types", {}, [
        ("set_module_type", Proj, {"per_channel": True})], _not_proj_b),
}


def _both(global_flags, scopes, filter_fn, exact=False):
    """The two quantizers, scoped the same way."""
    anchor = anchor_quantizer("xnnpack", **global_flags)
    ours = _configs(exact, **global_flags)[1].quantizer()
    for method, selector, flags in scopes:
        config, ruleset = _configs(exact, **flags) if flags is not None else (None, None)
        getattr(anchor, method)(selector, config)
        getattr(ours, method)(selector, ruleset)
    if filter_fn is not None:
        anchor.set_filter_function(filter_fn)
        ours.set_filter_function(filter_fn)
    return anchor, ours


def _diff(model, global_flags, scopes, filter_fn=None, exact=False):
    graph, inputs = exported("executorch", model)
    anchor, ours = _both(global_flags, scopes, filter_fn, exact)
    try:
        return diff(anchor, ours, graph, inputs, model_label=model)
    finally:
        gc.collect()


def _dynamic_linear(node) -> bool:
    return node.target != LINEAR


def _not_cat(node) -> bool:
    return node.target != torch.ops.aten.cat.default


# executorch's scoping bugs, reproduced by default (docs/equivalence.md, "Anchor bugs
# kept by default"): name -> (model, global flags, scopes, filter function, the nodes
# where exact_scopes=True does the correct thing instead).
ANCHOR_BUGS = {
    # Module filters read nn_module_stack, which a weight's get_attr node lacks: a
    # conv's partition (conv, weight, bias) never passes, so no pass annotates it.
    "module_filter_drops_weights": ("scoped_conv", {}, [
        ("set_module_name", "block", {"per_channel": True})], None,
        {"conv2d", "block_0_weight", "block_0_bias"}),
    # _annotate_cat ignores every filter: the scoped pass annotates every cat of the
    # graph with the scope's config, and a filter function cannot exclude a cat.
    "cat_ignores_filters": ("cat_pair", {"per_channel": True}, [], _not_cat, {"cat"}),
    # The patterns list overloads (linear.default): the packet set_operator_type is
    # typed to take selects no pattern, so the global config annotates the linears.
    "operator_type_packet": ("two_module_types", {}, [
        ("set_operator_type", torch.ops.aten.linear, {"per_channel": True})], None,
        {"linear", "linear_1", "linear_2"}),
}

SCOPED.update({name: case[:4] for name, case in ANCHOR_BUGS.items()})
SCOPED.update({
    # executorch propagates once, after every pass and whatever the configs: the
    # flatten after a static linear shares its qparams although the global config is
    # dynamic (the ruleset's propagation runs in dynamic passes too).
    "propagation_after_all_passes": ("linear_flatten", {"dynamic": True}, [
        ("set_operator_type", LINEAR, {})], None),
    # A dynamic scope feeding a view outside it: the linear's output has no spec, so
    # the static global pass leaves the flatten in float (`has_output_spec`, where
    # `quantized` used to make the ruleset share with it and raise QR602).
    "dynamic_scope_feeding_a_view": ("linear_flatten", {}, [
        ("set_module_name", "first", {"dynamic": True})], None),
})


@pytest.mark.parametrize("case", SCOPED)
def test_scoping_is_exact(case):
    model, global_flags, scopes, filter_fn = SCOPED[case]
    report = _diff(model, global_flags, scopes, filter_fn)
    assert report.equal, report.format(limit=20)
    assert report.numerics.outputs_equal and not report.numerics.op_count_diff, \
        report.format(limit=20)


@pytest.mark.parametrize("case", ANCHOR_BUGS)
def test_exact_scopes_correct_exactly_the_anchor_bugs(case):
    """``exact_scopes=True`` differs from executorch on exactly these nodes."""
    model, global_flags, scopes, filter_fn, nodes = ANCHOR_BUGS[case]
    report = _diff(model, global_flags, scopes, filter_fn, exact=True)
    assert {m.node for m in report.mismatches} == nodes, report.format(limit=20)


def test_exact_scopes_quantize_what_the_scope_asks():
    """What the correct behaviour is, node by node, on the three bugs' models."""
    def graph_of(model):
        return copy.deepcopy(exported("executorch", model)[0])

    graph = graph_of("scoped_conv")
    ruleset = _configs(True, per_channel=True)[1]
    quantizer = qrules.RulesetQuantizer().set_module_name("block", ruleset)
    annotated = quantizer.annotate(graph)
    conv = next(n for n in annotated.graph.nodes if n.name == "conv2d")
    assert annotation_of(conv)["rule"] == "conv"
    graph = graph_of("cat_pair")
    quantizer = _configs(True, per_channel=True)[1].set_filter_function(_not_cat)
    cat = next(n for n in quantizer.annotate(graph).graph.nodes if n.name == "cat")
    assert annotation_of(cat) is None
    graph = graph_of("two_module_types")
    quantizer = _configs(True)[1].set_operator_type(torch.ops.aten.linear,
                                                    _configs(True, dynamic=True)[1])
    linears = [n for n in quantizer.annotate(graph).graph.nodes if n.target == LINEAR]
    assert [annotation_of(n)["rule"] for n in linears] == ["dynamic_linear"] * 3


# Differences qrules makes on purpose (docs/semantics.md, "Scoping from Python").
BY_DESIGN = {
    # None leaves a scope in float with an empty annotation marked `_annotated`, which
    # keeps a quantizer composed after it out too; executorch writes nothing. The
    # converted models are the same.
    "none_marks_the_scope": ("two_module_types", {"per_channel": True},
                             [("set_module_type", Gate, None)], None,
                             {"add", "relu", "mul"}),
}


@pytest.mark.parametrize("case", BY_DESIGN)
def test_known_difference_is_exactly_this(case):
    """executorch differs exactly on these nodes; the ruleset does what was asked."""
    model, global_flags, scopes, filter_fn, nodes = BY_DESIGN[case]
    report = _diff(model, global_flags, scopes, filter_fn)
    assert {m.node for m in report.mismatches} == nodes, report.format(limit=20)
    assert report.numerics.outputs_equal, report.format(limit=20)


def test_filter_function_is_python_only():
    ruleset = qrules.load("xnnpack")
    quantizer = ruleset.set_filter_function(_dynamic_linear)
    assert quantizer.set_filter_function(None) is quantizer
    assert all(all(s.kind != "node_filter" for r in c.rules for s in r.scopes)
               for c in quantizer.annotation_passes())


def _doc_examples(page: str) -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / page).read_text("utf-8")
    marker = "<!-- runs in tests/equivalence/test_executorch_scopes.py -->"
    return re.findall(re.escape(marker) + r"\n```python\n(.*?)\n```", text, re.S)


@pytest.mark.parametrize("page", ["api.md", "equivalence.md"])
def test_the_doc_example_runs(page):
    """docs/api.md's set_filter_function example and docs/equivalence.md's reproduction
    of executorch's scoping bugs (with and without exact_scopes), against executorch's
    quantizer."""
    examples = _doc_examples(page)
    assert len(examples) == 1
    exec(compile(examples[0], f"docs/{page}", "exec"), {"__name__": "doc_example"})
