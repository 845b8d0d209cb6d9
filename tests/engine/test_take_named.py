"""`placing.take_named`, the templates' `takes(...)`, marks what `take_owned` marks with
the nodes `owned_in` names: the same notes, in the same order, for each kind of
takes_plan item, and when a step is left without a spec (which only `take_owned` drops)."""

import pytest
import torch

import qrules
from qrules.passes.bindings import bind_roles, owned_in
from qrules.passes.placing import NodeAnnotation, Placed, mark, take_named, take_owned
from qrules.passes.scopes import SourcePartitions
from tests.models import ConvBnReLU, export

# (takes_plan, whether the batch norm step gets a spec): steps by label, producers by
# role (all of them, or one; a Python number among them owns nothing), a step's source
# partition (the batch norm's holds the `add_` counting its batches).
PLANS = [
    ((("steps", (0,)), ("role", 0, "weight", None), ("role", 0, "bias", None)), True),
    ((("role", 0, "weight", 0), ("steps", (0, 2))), True),
    ((("partition", 1), ("role", 0, "scalars", "*")), True),
    ((("steps", (0, 2)), ("role", 0, "weight", None)), False),   # bn without a spec
]


@pytest.fixture(scope="module")
def chain():
    """conv -> batch_norm -> relu of an export (batch norm kept), with conv2d's roles
    and a role `scalars` (a number and the weight)."""
    gm = export(ConvBnReLU().train(), (torch.randn(2, 3, 8, 8),))
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    conv = next(n for n in calls if n.target == torch.ops.aten.conv2d.default)
    bn = next(iter(conv.users))
    relu = next(iter(bn.users))
    op = next(op for rule in qrules.load("xnnpack").quantizer().global_ruleset.rules
              for steps in rule.expansions for op in steps[0].ops
              if torch.ops.aten.conv2d.default in op.targets)
    roles = bind_roles(conv, op)
    roles["scalars"] = [1.5, conv.args[1]]
    return gm, [conv, bn, relu], [roles, {}, {}]


def _notes(nodes, rule, bn_placed: bool) -> dict:
    spec = Placed(None, "input")   # a placed record; what it holds is not read here
    notes = {}
    for node in nodes:
        notes[node] = NodeAnnotation(node, rule, {node.args[0]: spec})
    if not bn_placed:
        notes[nodes[1]].inputs = {}
    return notes


@pytest.mark.parametrize("takes, bn_placed", PLANS)
def test_take_named_marks_what_take_owned_marks(chain, takes, bn_placed):
    gm, nodes, roles = chain
    rule = qrules.load("xnnpack").quantizer().global_ruleset.rules[0]
    partitions = SourcePartitions(gm)
    named, owned = _notes(nodes, rule, bn_placed), _notes(nodes, rule, bn_placed)
    take_named(named, takes, nodes, roles, rule, partitions.of)
    take_owned(owned, owned_in(nodes, roles, (), False, takes, partitions.of), rule)
    assert [(node, note.inputs == {}, note.rule) for node, note in named.items()] == [
        (node, note.inputs == {}, note.rule) for node, note in owned.items()]
    assert (nodes[1] in named) == (bn_placed or any(
        item[0] == "steps" and 1 in item[1] for item in takes))


def test_the_nodes_a_rule_marks_share_its_one_mark(chain):
    gm, nodes, roles = chain
    rule = qrules.load("xnnpack").quantizer().global_ruleset.rules[0]
    takes = (("steps", (0,)), ("role", 0, "weight", None), ("role", 0, "bias", None))
    named = _notes(nodes[:1], rule, True)
    take_named(named, takes, nodes, roles, rule, SourcePartitions(gm).of)
    conv = nodes[0]
    marks = [named[conv.args[1]], named[conv.args[2]]]
    assert marks[0] is marks[1] is mark(rule) and mark(rule).node is None
    assert named[conv].node is conv   # a node with a spec has its own note
