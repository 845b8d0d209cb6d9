"""The matcher's shortcuts for the commonest predicates give the compiled predicate's
answer: ``StepPredicate.holds`` (producer questions asked of the annotation state
without a step context, literal ``source(...)`` questions answered from their
verdicts) and the per-predicate ``source(...)`` verdicts, at every node of resnet18
with half of its nodes planned by the xnnpack ruleset."""

import copy

import pytest

import qrules
from qrules.adapter.torchao import fold_batch_norms
from qrules.compile.context import StepContext
from qrules.compile.predicates import compile_predicates
from qrules.passes.bindings import bind_roles
from qrules.passes.plan import plan
from qrules.passes.state import State
from qrules.syntax.parser import parse

# Each line one step predicate; the first group takes the producer-question shortcut.
SHORTCUT = [
    "not annotated(weight), not annotated(bias)",
    "annotated(input)",
    "quantized(input), not shared(weight)",
    "has_output_spec(input), not quantized(output)",
    "annotated(output)",
    "not shared(input), annotated(weight)",
]
GENERAL = [
    'source("torch.nn.Conv2d", "torch.conv2d")',
    'source("torch.nn.ReLU"), not annotated(input)',
    'not source("torch.nn.Linear", "operator.add")',
    "annotated(input[0]) or quantized(weight)",
]


def _predicate(text: str):
    rule = parse(f'ruleset t version "1.0"\nrule r: any[{text}] : none\n',
                 "t.qrule").file.items[-1]
    return compile_predicates(rule.pattern.predicates, {})


@pytest.fixture(scope="module")
def half_planned(resnet18):
    """resnet18, batch norms folded as prepare folds them, with the xnnpack ruleset's
    plan for the first half of its nodes."""
    _, _, graph = resnet18
    graph = fold_batch_norms(copy.deepcopy(graph))
    compiled = qrules.load("xnnpack", flavor="torchao").compiled()
    planned = plan(graph, compiled).annotations
    nodes = list(graph.graph.nodes)
    state = State(compiled)
    state.planned.update({n: a for n, a in planned.items() if nodes.index(n) < len(nodes) // 2})
    conv = next(rule for rule in compiled.rules if rule.name == "torchao_conv")
    op = conv.expansions[0][0].ops[0]
    return graph, state, op


@pytest.mark.parametrize("text", SHORTCUT + GENERAL)
def test_shortcut_answers_as_the_compiled_predicate(text, half_planned):
    graph, state, op = half_planned
    predicate = _predicate(text)
    assert (predicate.checks is not None) == (text in SHORTCUT)
    # Literal `source(...)` questions alone answer from their verdicts (`sources`).
    assert (predicate.sources is not None) == (text == GENERAL[0])
    answers = []
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        # conv2d's bindings (input 0, weight 1, bias 2) on every node, so that roles are
        # present, missing (a one-argument op) or None (a conv without bias).
        roles = bind_roles(node, op)
        expected = predicate(StepContext(node, roles, state))
        assert predicate.holds(node, roles, state) == expected, node.name
        # Asked twice: the verdict cached by `source(...)` is the same answer.
        assert predicate.holds(node, roles, state) == expected, node.name
        answers.append(expected)
    assert set(answers) == {True, False}, "the predicate should hold at some nodes only"


def test_a_registered_fact_keeps_the_written_order(registered, half_planned):
    """A predicate whose declarations are all qrules' own may run its cheapest
    expression first (any failing one fails the step); one that reads a fact a user
    registered runs as written: the registered fact is asked even though a cheaper
    expression after it is false."""
    from qrules.semantics import registry

    graph, state, op = half_planned
    asked = []
    registry.register_fact("spy", "int", lambda role: asked.append(role.value) or 0)
    registered.append((registry.FACTS, "spy"))
    conv = next(n for n in graph.graph.nodes if n.op == "call_function"
                and "conv" in str(n.target))
    roles = bind_roles(conv, op)
    written = _predicate("input.spy == 0 and input.spy == 0, is_node(input[5])")
    assert written(StepContext(conv, roles, state)) is False
    assert len(asked) == 2, "the registered fact runs first, as written"
    # The same shape with qrules' own facts, both expressions false: the answer is
    # the same in whatever order it runs, and explain reports the first false
    # expression of the source, not the cheaper one.
    own = _predicate("input.rank == 5 and input.rank == 5, is_node(input[5])")
    context = StepContext(conv, roles, state)
    assert own(context) is False
    expr, values = own.first_failure(context)
    assert expr is own.exprs[0] and values == "value: False"


def test_the_matcher_binds_producer_questions_to_the_state_it_is_asked_with(
        half_planned):
    """`Matcher.holds` binds a predicate's producer questions once per state: asked
    with the half-planned state, then with an empty one, then the first again, each
    time the compiled predicate's answer for that state."""
    from qrules.passes.match import Matcher

    graph, half, op = half_planned
    empty = State()
    predicate = _predicate("not annotated(weight), not annotated(bias)")
    matcher = Matcher(graph, qrules.load("xnnpack", flavor="torchao").compiled())
    differ = 0
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        roles = bind_roles(node, op)
        for state in (half, empty, half):
            expected = predicate(StepContext(node, roles, state))
            assert matcher.holds(predicate, op, node, roles, state) == expected, node.name
        differ += predicate(StepContext(node, roles, half)) != predicate(
            StepContext(node, roles, empty))
    assert differ > 0, "the two states should answer differently somewhere"
