"""Rules planned from a template (qrules.passes.templates) get the annotations the
general planner gives them: node by node, in the same order, the same specs on the
same edges in the same order, the same references, errors and pattern-output marks.
Every built-in ruleset, on every small test model and on resnet18 / mobilenet_v2."""

import copy
import warnings

import pytest
import torch

import qrules
import qrules.passes.plan as plan_module
from qrules.passes.templates import template
from tests import models
from tests.models.arm import ARM_HELPERS, CORTEX_M_HELPERS, arm_helper
from tests.models.qnn import QNN_MODELS, qnn_small

# (ruleset, parameters): every built-in ruleset, with the parameters that change
# which rules are in force or what they place.
RULESETS = [
    ("xnnpack", {}),
    ("xnnpack", {"per_channel": True}),
    ("xnnpack", {"dynamic": True}),
    ("xnnpack", {"flavor": "torchao", "per_channel": True}),
    ("xnnpack", {"flavor": "torchao", "strict_export": True}),
    ("x86_inductor", {}),
    ("x86_inductor", {"dynamic": True}),
    ("arm", {}),
    ("cortex_m", {}),
    ("qnn", {}),
    ("embedding", {}),
]
_EXPORTED: dict = {}


class IntegerOperand(torch.nn.Module):
    """A float tensor times an integer one (x86's `mul` quantizes both `input`
    edges: the integer edge gets no spec) and a conv without bias."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)

    def forward(self, x, counts):
        return self.conv(x) * counts


def _integer_operand():
    if "integer_operand" not in _EXPORTED:
        inputs = (torch.randn(1, 3, 8, 8), torch.arange(144).reshape(1, 4, 6, 6))
        _EXPORTED["integer_operand"] = models.export(IntegerOperand().eval(), inputs)
    return copy.deepcopy(_EXPORTED["integer_operand"])


def _graphs(name: str, exported) -> list:
    """Fresh copies of the models each ruleset's own tests use: Arm's and Cortex-M's
    helpers exported without the guards node their preprocessing rejects, QNN's
    models, and the small models for the others."""
    if name in ("arm", "cortex_m", "qnn"):
        table = {"arm": ARM_HELPERS, "cortex_m": CORTEX_M_HELPERS, "qnn": QNN_MODELS}[name]
        graphs = []
        for model in table:
            if (name, model) not in _EXPORTED:
                module, inputs = qnn_small(model) if name == "qnn" else arm_helper(model)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _EXPORTED[name, model] = models.export(module, inputs,
                                                           check_guards=name == "qnn")
            graphs.append(copy.deepcopy(_EXPORTED[name, model]))
        return graphs
    return [exported(model)[0] for model in models.MODELS] + [_integer_operand()]


def _placed(placed, compiled_specs: set) -> tuple:
    if placed is None:
        return None
    refs = tuple(ref.name if hasattr(ref, "name") else
                 tuple(getattr(part, "name", repr(part)) for part in ref)
                 for ref in placed.refs)
    # The compiled spec object itself (equal specs of two rules are two objects, and
    # the adapter builds one torchao spec per object); a spec reading the match
    # (`arg(6)`) is placed as a copy made per match, which compares by value.
    spec = placed.spec
    return (id(spec) if id(spec) in compiled_specs else spec, placed.key, refs)


def _described(annotations: dict, compiled_specs: set) -> list:
    """Everything a plan says, in its order, with nodes by name."""
    return [(node.name, note.rule.name,
             [(getattr(source, "name", repr(source)), _placed(placed, compiled_specs))
              for source, placed in note.inputs.items()],
             _placed(note.output, compiled_specs), note.output_key, note.errors,
             note.amended_by, note.ends_quantized_pattern)
            for node, note in annotations.items()]


def _plans(quantizer, graph) -> list:
    taken: dict = {}
    out = []
    for compiled in quantizer.annotation_passes():
        specs = {id(spec) for rule in compiled.rules for _, spec in rule.config or ()}
        current = plan_module.plan(graph, compiled, taken).annotations
        out.append(_described(current, specs))
        taken.update(current)
    return out


def _compare(name: str, params: dict, graph, monkeypatch) -> int:
    """Plan ``graph`` with and without templates; the number of nodes annotated by a
    rule that has a template (so that a comparison of general against general fails)."""
    quantizer = qrules.load(name, **params).quantizer()
    graph = quantizer.transform_for_annotation(graph)
    with_templates = _plans(quantizer, graph)
    with monkeypatch.context() as patch:
        patch.setattr(plan_module, "template", lambda rule: None)
        general = _plans(quantizer, graph)
    assert with_templates == general
    templated = {rule.name for compiled in quantizer.annotation_passes()
                 for rule in compiled.rules if template(rule) is not None}
    return sum(entry[1] in templated for current in general for entry in current)


@pytest.mark.parametrize("name,params", RULESETS,
                         ids=[f"{n}{sorted(p.items())}" for n, p in RULESETS])
def test_templates_plan_as_the_general_planner(name, params, exported, monkeypatch):
    annotated = 0
    for graph in _graphs(name, exported):
        annotated += _compare(name, params, graph, monkeypatch)
    assert annotated > 0, "no node of any model was annotated by a templated rule"


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("name,params", [RULESETS[1], RULESETS[3], RULESETS[5]],
                         ids=["xnnpack", "xnnpack_torchao", "x86_inductor"])
def test_templates_plan_the_zoo_as_the_general_planner(model, name, params, request,
                                                        monkeypatch):
    _, _, graph = request.getfixturevalue(model)
    assert _compare(name, params, copy.deepcopy(graph), monkeypatch) > 20


def test_which_rules_have_templates():
    """A template only where the general planner's per-match work is not needed."""
    rules = {rule.name: rule for rule in
             qrules.load("xnnpack", flavor="torchao", per_channel=True).compiled().rules}
    # one op, specs naming no edge: matched in one loop over its heads
    assert template(rules["torchao_conv"]).chain
    # `same_as(producer(input))` on an alternation of ops: one step too
    assert template(rules["torchao_propagate"]).chain
    # `conv -> relu`, taking both and the conv's weight and bias: matched there too
    assert template(rules["conv_relu"]).chain
    x86 = {rule.name: rule for rule in qrules.load("x86_inductor").compiled().rules}
    # `conv2d_module ~> conv_activation` (an `any` op): the conv's users in turn
    assert template(x86["conv2d_unary"]).chain
    # with scopes set from Python: matched by the general matcher, placed from the
    # template
    quantizer = qrules.load("x86_inductor").quantizer()
    quantizer.set_module_type("torch.nn.Conv2d", qrules.load("x86_inductor"))
    scoped = {rule.name: rule for compiled in quantizer.annotation_passes()
              for rule in compiled.rules if rule.scopes}
    assert template(scoped["conv2d_unary"]) is not None
    assert not template(scoped["conv2d_unary"]).chain
    # `same_as(input)` on the output: the edge into the head, resolved there too
    assert template(rules["adaptive_avg_pool2d_shared"]).chain
    assert template(rules["adaptive_avg_pool2d_shared"]).entries[-1].refs == (
        ("input", 0, "input", True),)
    # an input's spec naming another edge into the match (`_owners_first` may reorder
    # the edges): general
    qnn = {rule.name: rule for rule in qrules.load("qnn").compiled().rules}
    assert template(qnn["stack"]) is None
    assert template(qnn["embedding"]) is not None   # `output: same_as(weight)`
    # a region
    assert template(rules["gru_io_only"]) is None


def test_specs_referring_to_one_output_share_one_reference(request):
    """The placed specs that refer to one node's output (the propagated input and
    output of a pool: `same_as(producer(input))`) hold one references tuple, and the
    adapter writes one torchao spec for them."""
    from qrules.adapter.torchao import fold_batch_norms

    _, _, graph = request.getfixturevalue("mobilenet_v2")
    quantizer = qrules.load("xnnpack", flavor="torchao", per_channel=True).quantizer()
    graph = quantizer.transform_for_annotation(fold_batch_norms(copy.deepcopy(graph)))
    annotations = plan_module.plan(graph, quantizer.annotation_passes()[0]).annotations
    refs_of: dict = {}
    for note in annotations.values():
        for placed in (*note.inputs.values(), note.output):
            if placed is not None and len(placed.refs) == 1 \
                    and not isinstance(placed.refs[0], tuple):
                refs_of.setdefault(placed.refs[0], []).append(placed.refs)
    assert sum(len(found) for found in refs_of.values()) > 20
    assert all(all(refs is found[0] for refs in found) for found in refs_of.values())
    quantizer.annotate(graph)
    pool = next(n for n in graph.graph.nodes
                if n.target == torch.ops.aten.adaptive_avg_pool2d.default)
    written = pool.meta["quantization_annotation"]
    (shared,) = written.input_qspec_map.values()
    assert written.output_qspec is shared
