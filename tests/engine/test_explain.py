"""qrules.explain and `qrules explain`: every call node reported, with its rule and
span or the reason it stays in float, and the coverage."""

import copy

import pytest

import qrules
from qrules.adapter.torchao import fold_batch_norms
from qrules.cli import main

REASONS = ("non-float output", "left in float by rule", "no rule for this op",
           "out of scope for rule(s)", "predicate of rule", "no edge `",
           "no pattern matches around it")


def _calls(gm):
    return [n.name for n in gm.graph.nodes if n.op == "call_function"]


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2"])
def test_explain_torchvision(model, request):
    _, _, gm = request.getfixturevalue(model)
    code = gm.code
    explanation = qrules.explain(gm, qrules.load("xnnpack", per_channel=True))
    assert gm.code == code                                   # the caller's graph untouched
    folded = fold_batch_norms(copy.deepcopy(gm))             # what prepare_pt2e annotates
    assert [n.node for n in explanation.nodes] == _calls(folded)
    for node in explanation.nodes:
        if node.rule is None:
            assert node.reason and node.reason.startswith(REASONS), node
        else:
            assert node.location.startswith("rulesets/xnnpack.qrule:")
    text = explanation.format()
    assert text.splitlines()[0] == (
        f"ruleset xnnpack: {len(explanation.nodes)} call nodes, "
        f"{explanation.coverage:.1f}% covered by a rule, "
        f"{explanation.quantized_coverage:.1f}% quantized")
    assert len(text.splitlines()) == len(explanation.nodes) + 1
    assert explanation.coverage > 95.0
    if model == "mobilenet_v2":
        # executorch's XNNPACKQuantizer shares qparams through dropout (the default
        # flavour); torchao's testing copy has no rule for it.
        dropout = [n for n in explanation.nodes if "dropout" in n.target]
        assert dropout and all(n.rule == "propagate" for n in dropout)
        torchao = qrules.explain(gm, qrules.load("xnnpack", per_channel=True, flavor="torchao"))
        dropout = [n for n in torchao.nodes if "dropout" in n.target]
        assert dropout and all(n.reason == "no rule for this op" for n in dropout)


RULES = """ruleset why version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule add: add[is_float(input[0]), is_float(input[1])] : { input: act, output: act }
rule mul: mul : none
scope module_type "torch.nn.Conv2d" {
  rule scoped_relu: relu : { input: act, output: act }
}
rule conv_relu: conv2d -> relu : { input: act, output: act }
rule embedding: embedding : { weight: act }
"""


@pytest.mark.parametrize("model, expected", [
    ("add_scalar", {"add": "predicate of rule add failed at why.qrule:3:35",
                    "mul": "left in float by rule",
                    "relu": "no pattern matches around it (rules with this op: conv_relu)"}),
    ("conv_two_users", {"conv2d": "no pattern matches around it (rules with this op: conv_relu)",
                        "relu": "no pattern matches around it (rules with this op: conv_relu)"}),
    ("indices", {"arange": "non-float output", "add": "non-float output",
                 "add_1": None, "embedding": None}),
    ("nested", {"linear": "no rule for this op",
                "relu": "no pattern matches around it (rules with this op: conv_relu)"}),
])
def test_float_reasons(model, expected, exported):
    gm, _ = exported(model)
    explanation = qrules.explain(gm, qrules.load_text(RULES, "why.qrule"))
    reasons = {n.node: n.reason for n in explanation.nodes}
    for node, reason in expected.items():
        assert reasons[node] == reason


def test_out_of_scope_reason(exported):
    text = """ruleset why version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
scope module_type "torch.nn.Conv2d" {
  rule scoped_linear: linear : { input: act, output: act }
}
"""
    gm, _ = exported("nested")
    explanation = qrules.explain(gm, qrules.load_text(text, "why.qrule"))
    assert {n.reason for n in explanation.nodes if "linear" in n.target} == {
        "out of scope for rule(s) scoped_linear"}
    assert explanation.coverage == 0.0


def test_no_selected_edge_reason(exported):
    # No input of the cat is quantized and the selection has no `else`: the rule does
    # not match there, and explain names the selection.
    text = """ruleset why version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule cat: cat : { input[first quantized]: act, output: same_as(input[first quantized]) }
"""
    gm, _ = exported("cat_after_conv")
    explanation = qrules.explain(gm, qrules.load_text(text, "why.qrule"))
    reasons = {n.node: n.reason for n in explanation.nodes}
    assert reasons["cat"] == ("no edge `input[first quantized]` for rule cat "
                              "(why.qrule:3:6)")


def test_region_predicate_reason(exported):
    # The GRU's input comes from a linear that `linear` annotated first, so the region's
    # guard fails: every member of the region says which predicate.
    text = """ruleset why version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule linear: linear : { input: act, output: act }
rule gru_io: region(module_type "torch.nn.GRU")[input[0].rank == 3,
  not annotated(input[0])] : { input: act, output: act }
"""
    gm, _ = exported("gru")
    explanation = qrules.explain(gm, qrules.load_text(text, "why.qrule"))
    reasons = {n.node: n.reason for n in explanation.nodes}
    failed = "predicate of rule gru_io failed at why.qrule:5:3"
    assert reasons == {"linear": None, "gru": failed, "getitem": failed,
                       "getitem_1": failed, "linear_1": None}


def test_quantized_and_left_float_nodes(exported):
    gm, _ = exported("conv_relu")
    explanation = qrules.explain(gm, qrules.load_text(RULES, "why.qrule"))
    by_node = {n.node: n for n in explanation.nodes}
    assert by_node["conv2d"].rule == by_node["relu"].rule == "conv_relu"
    assert by_node["conv2d"].location == "why.qrule:8:6" and by_node["conv2d"].quantized
    assert explanation.coverage == 100.0


def test_coverage_by_a_rule_and_quantized_differ_by_none_rules(exported):
    # add_scalar: add (its predicate fails), relu (quantized), mul (a `none` rule)
    text = RULES + "rule relu: relu : { input: act, output: act }\n"
    explanation = qrules.explain(exported("add_scalar")[0], qrules.load_text(text, "why.qrule"))
    assert {n.node: (n.rule, n.quantized) for n in explanation.nodes} == {
        "add": (None, False), "relu": ("relu", True), "mul": ("mul", False)}
    assert round(explanation.coverage, 1) == 66.7          # relu and mul have a rule
    assert round(explanation.quantized_coverage, 1) == 33.3  # only relu has a spec
    assert explanation.format().splitlines()[0] == (
        "ruleset why: 3 call nodes, 66.7% covered by a rule, 33.3% quantized")


def test_cli_explain(capsys):
    status = main(["explain", "--ruleset", "xnnpack", "--model", "torchvision:resnet18",
                   "--input-shape", "1,3,64,64", "--param", "per_channel=true"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0] == (
        "ruleset xnnpack: 49 call nodes, 100.0% covered by a rule, 100.0% quantized")
    assert "quantized by conv_relu (rulesets/xnnpack.qrule:" in out


@pytest.mark.parametrize("argv, message", [
    (["--ruleset", "xnnpack", "--model", "torchvision:no_such_model"], "no model"),
    (["--ruleset", "xnnpack", "--model", "resnet18"], "--model takes"),
    (["--ruleset", "xnnpack", "--model", "missing.py:make", "--input-shape", "1,3"],
     "no such file"),
    (["--ruleset", "xnnpack", "--model", "torchvision:resnet18", "--input-shape", "a,b"],
     "--input-shape"),
    (["--ruleset", "no_such_ruleset", "--model", "torchvision:resnet18"],
     "no built-in ruleset"),
    (["--ruleset", "xnnpack", "--model", "torchvision:resnet18", "--param", "nope=1"], ""),
])
def test_cli_explain_usage_errors(argv, message, capsys):
    status = main(["explain", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("qrules explain: error: ") and message in err
    assert "Traceback" not in err


def test_explain_a_scoped_quantizer(exported):
    int16 = qrules.load_text("""ruleset int16 version "1.0"
spec act16 = affine(int16, -32768..32767, observer=histogram)
rule linear16: linear : { input: act16, output: act16 }
""", "int16.qrule")
    quantizer = (qrules.load_text(RULES, "why.qrule")
                 .set_module_name("encoder.layers.0.proj", int16)
                 .set_module_name("classifier", None))
    gm, _ = exported("nested")
    by_node = {n.node: n for n in qrules.explain(gm, quantizer).nodes}
    assert by_node["linear"].rule == "linear16" and by_node["linear"].quantized
    assert by_node["linear_3"].rule == "leave_in_float" and not by_node["linear_3"].quantized
    assert by_node["linear_1"].reason == "no rule for this op"
    scoped_only = qrules.RulesetQuantizer().set_module_name("classifier", int16)
    by_node = {n.node: n for n in qrules.explain(gm, scoped_only).nodes}
    assert by_node["linear_3"].rule == "linear16"
