"""The prelude's op vocabulary against the torch it runs with: every aten target a
prelude op names is an overload this torch has, and a rule naming a prelude op matches
the node torch.export makes for it (docs/architecture.md, "add an op")."""

from __future__ import annotations

import pytest
import torch

import qrules
from qrules.compile.targets import GRAPH_IO_TARGETS, resolve_target
from tests.models import export

PRELUDE = qrules.load_text('ruleset vocabulary version "1.0"\n', "vocabulary.qrule")


def _targets():
    resolver = PRELUDE.bound.resolver
    return sorted({(name, target) for name in resolver.ops
                   for op in resolver.resolve(name) or () for target in op.targets})


@pytest.mark.parametrize("name,target", _targets(), ids=lambda v: str(v))
def test_every_prelude_target_is_a_torch_overload(name, target):
    # Graph I/O and operator.getitem are the named exceptions (compile/matchers.py).
    if target in GRAPH_IO_TARGETS:
        assert resolve_target(target) is GRAPH_IO_TARGETS[target]
        return
    assert isinstance(resolve_target(target), torch._ops.OpOverload), f"{name}: {target}"


class _Trig(torch.nn.Module):
    def forward(self, x):
        return torch.asin(x) + torch.acos(x) + torch.atanh(x)


@pytest.mark.parametrize("op", ["asin", "acos", "atanh"])
def test_a_rule_naming_a_prelude_op_matches_its_node(op):
    ruleset = qrules.load_text(
        f'ruleset trig version "1.0"\n'
        f'spec act = affine(int8, -128..127, observer=minmax)\n'
        f'rule {op}_rule: {op} : {{ input: act, output: act }}\n', "trig.qrule")
    model = export(_Trig(), (torch.rand(1, 8) * 0.5,))
    model = ruleset.quantizer().annotate(model)
    annotated = [n.name for n in model.graph.nodes if n.meta.get("qrules")]
    assert annotated == [op]
