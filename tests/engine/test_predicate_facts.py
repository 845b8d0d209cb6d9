"""Predicate facts on real graphs: constants and their values, abs(), and
any_user_quantizable() seeing what later rules would quantize."""

from __future__ import annotations

import torch

from qrules.api import load_text
from tests.models import export


def _annotate(text, model, *shape):
    gm = export(model.eval(), (torch.randn(*shape),))
    quantizer = load_text(text, "t.qrule").quantizer()
    gm = quantizer.transform_for_annotation(gm)
    quantizer.annotate(gm)
    return {n.name: (n.meta.get("qrules") or {}).get("rule")
            for n in gm.graph.nodes if n.op == "call_function"}


class Scalars(torch.nn.Module):
    def forward(self, x):
        return (x + 6) * 2 + 1000


def test_large_scalar_guard_reads_constant_values():
    rules = _annotate('ruleset t version "1.0"\ntransform scalars_to_attrs\n'
                      "rule small_add: add[input[1].is_constant, abs(input[1].value) <= 100]"
                      " : { input: affine(int8), output: affine(int8) }\n", Scalars(), 4)
    assert rules == {"add": "small_add", "mul": None, "add_1": None}


class FlattenThenLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(12, 2)

    def forward(self, x):
        return self.linear(torch.relu(x).flatten(1)), torch.sigmoid(x.flatten(1))


def test_any_user_quantizable_looks_at_later_rules():
    text = ('ruleset t version "1.0"\nspec act = affine(int8)\n'
            "rule relu: relu : { input: act, output: act }\n"
            "rule flatten: flatten[quantized(input), any_user_quantizable()]"
            " : { input: same_as(producer(input)), output: same_as(input) }\n"
            "rule linear: linear : { input: act, output: act }\n")
    rules = _annotate(text, FlattenThenLinear(), 2, 3, 4)
    # flatten runs before the linear rule, yet sees that linear would be quantized;
    # the second flatten feeds only a sigmoid, which no rule quantizes.
    assert rules["flatten"] == "flatten" and rules["linear"] == "linear"
    assert rules["flatten_1"] is None


class Compare(torch.nn.Module):
    def forward(self, x):
        return x > 0, torch.clone(x)


def test_a_steps_output_is_its_own_value():
    # `output` in a step's predicates reads the node itself: the bool comparison is
    # not float, the clone is.
    text = ('ruleset t version "1.0"\nop moves: aten.gt.Scalar, aten.clone.default '
            "{ input: * }\n"
            "rule not_float any_dtype: moves[not is_float(output)] : { input: affine(int8) }\n"
            "rule float any_dtype: moves[is_float(output)] : { input: affine(int8) }\n")
    assert _annotate(text, Compare(), 4) == {"gt": "not_float", "clone": "float"}
