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
    # why not: each member names the region's head and the predicate with what it read
    why = {n.node: [w.format() for w in n.why_not] for n in explanation.nodes}
    assert why["getitem_1"] == why["gru"] == [
        "gru_io at gru: predicate: a predicate is false on gru: `not annotated(input[0])` "
        "(why.qrule:5:3) [operand: True]"]


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


WHY_RULES = """ruleset why version "1.0"
param wide: bool = false
spec act = affine(int8, -128..127, observer=histogram)
rule add: add[is_float(input[0]), is_float(input[1])] : { input: act, output: act }
rule conv_relu: conv2d -> relu : { input: act, output: act }
rule wide_linear when wide: linear : { input: act, output: act }
scope module_type "torch.nn.Conv2d" {
  rule scoped_mul: mul : { input: act, output: act }
}
"""


@pytest.mark.parametrize("model, node, expected", [
    # predicate: which one, its span and source, the values it read
    ("add_scalar", "add", ["add at add: predicate: a predicate is false on add: "
                           "`is_float(input[1])` (why.qrule:4:35) [value: False]"]),
    # scope: the match is there, outside the rule's scope
    ("add_scalar", "mul", ["scoped_mul at mul: scope: its match mul is outside the rule's "
                           "scope: module_type 'torch.nn.Conv2d'"]),
    # link: the producer has another user
    ("conv_two_users", "relu", ["conv_relu at conv2d: link: conv2d's output has 2 users "
                                "(relu, add); `->` needs it to have one (`~>` allows more)"]),
    # link: the chain never reaches a head (relu is fed by a linear here)
    ("nested", "relu", ["conv_relu: link: relu is fed by linear (aten.linear.default); the "
                        "step before it needs conv2d"]),
    # when: the parameters turned the rule off
    ("nested", "linear_1", ["wide_linear: when: off with these parameters: `when wide` is "
                            "false (why.qrule:6:23)"]),
])
def test_why_not_at_the_failing_step(model, node, expected, exported):
    gm, _ = exported(model)
    explanation = qrules.explain(gm, qrules.load_text(WHY_RULES, "why.qrule"))
    by_node = {n.node: n for n in explanation.nodes}
    assert [entry.format() for entry in by_node[node].why_not] == expected


def test_why_not_names_the_rule_that_took_a_step(exported):
    # conv2d is taken by `taker` (the relu's only possible head): phase, which rule
    text = WHY_RULES + "rule taker priority 1: conv2d : { input: act, output: act }\n"
    gm, _ = exported("conv_relu")
    explanation = qrules.explain(gm, qrules.load_text(text, "why.qrule"))
    relu = next(n for n in explanation.nodes if n.node == "relu")
    assert [e.format() for e in relu.why_not] == [
        "conv_relu at conv2d: phase: conv2d is taken by rule taker (why.qrule:10:6)"]
    text_lines = explanation.format().splitlines()
    assert "      why not conv_relu at conv2d: phase: conv2d is taken by rule taker " \
           "(why.qrule:10:6)" in text_lines


#: `qrules explain --format json`, field by field as docs/cli.md documents it.
EXPLAIN_JSON_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["version", "ruleset", "coverage", "nodes", "warnings"],
    "properties": {
        "version": {"const": 1},
        "ruleset": {"type": "string"},
        "coverage": {"type": "object", "additionalProperties": False,
                     "required": ["call_nodes", "float_nodes", "covered_by_rule", "quantized"],
                     "properties": {"call_nodes": {"type": "integer"},
                                    "float_nodes": {"type": "integer"},
                                    "covered_by_rule": {"type": "number"},
                                    "quantized": {"type": "number"}}},
        "nodes": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["node", "target", "rule", "location", "quantized", "specs",
                         "float_reason", "why_not"],
            "properties": {
                "node": {"type": "string"}, "target": {"type": "string"},
                "rule": {"type": ["string", "null"]}, "location": {"type": ["string", "null"]},
                "quantized": {"type": "boolean"},
                "specs": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["edge", "source", "spec"],
                    "properties": {"edge": {"type": "string"},
                                   "source": {"type": ["string", "null"]},
                                   "spec": {"type": "string"}}}},
                "float_reason": {"type": ["string", "null"]},
                "why_not": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["rule", "location", "head", "kind", "detail", "span",
                                 "source", "values"],
                    "properties": {
                        "rule": {"type": "string"}, "location": {"type": "string"},
                        "head": {"type": ["string", "null"]},
                        "kind": {"enum": ["step", "link", "predicate", "phase", "scope",
                                          "region", "order", "when"]},
                        "detail": {"type": "string"}, "span": {"type": ["string", "null"]},
                        "source": {"type": ["string", "null"]},
                        "values": {"type": "string"}}}}}}},
        "warnings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["code", "message", "location", "notes"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "location": {"type": "string"},
                "notes": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["message", "location"],
                    "properties": {"message": {"type": "string"},
                                   "location": {"type": "string"}}}}}}},
    },
}


def test_cli_explain_json_and_filters(tmp_path, tiny_model_args, capsys):
    import json

    import jsonschema

    rules = tmp_path / "why.qrule"
    rules.write_text("""ruleset why version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule linear: linear : { input: act, output: act }
rule conv_relu: conv2d -> relu : { input: act, output: act }
""")
    base = ["explain", "--ruleset", str(rules), *tiny_model_args]
    assert main([*base, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, EXPLAIN_JSON_SCHEMA)
    assert report["coverage"] == {"call_nodes": 2, "float_nodes": 2, "covered_by_rule": 50.0,
                                  "quantized": 50.0}
    linear, relu = report["nodes"]
    assert linear["specs"] == [{"edge": "input", "source": "x", "spec": "act"},
                               {"edge": "output", "source": None, "spec": "act"}]
    assert relu["float_reason"].startswith("no pattern matches around it")
    assert relu["why_not"][0]["kind"] == "link"
    # the filters keep the header's coverage of the whole graph
    assert main([*base, "--float-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("50.0% quantized") and lines[1].split()[0] == "relu"
    assert len(lines) == 3 and lines[2].startswith("      why not conv_relu: link: ")
    assert main([*base, "--rule", "linear", "--format", "json"]) == 0
    assert [n["node"] for n in json.loads(capsys.readouterr().out)["nodes"]] == ["linear"]
    assert main([*base, "--node", "relu", "--format", "json"]) == 0
    assert [n["node"] for n in json.loads(capsys.readouterr().out)["nodes"]] == ["relu"]
    assert main([*base, "--node", "nope"]) == 2
    assert "no call node 'nope'" in capsys.readouterr().err


def test_why_not_for_resnets_post_add_relu(resnet18):
    # The case: a ruleset whose conv fusion ends in a relu. The relu after a
    # residual add used to say only "no pattern matches around it".
    _, _, gm = resnet18
    text = """ruleset npu version "1.0"
spec act = affine(uint8, 0..255, observer=histogram)
rule conv_bn_relu: conv2d -> batch_norm? -> (relu | relu6)? : { input: act, output: act }
"""
    explanation = qrules.explain(gm, qrules.load_text(text, "npu.qrule"))
    by_node = {n.node: n for n in explanation.nodes}
    add = next(n for n in gm.graph.nodes if n.op == "call_function" and "add" in str(n.target)
               and len(n.users) == 1 and "relu" in str(next(iter(n.users)).target))
    relu = next(iter(add.users))
    assert by_node[relu.name].reason == \
        "no pattern matches around it (rules with this op: conv_bn_relu)"
    assert [w.format() for w in by_node[relu.name].why_not] == [
        f"conv_bn_relu: link: {relu.name} is fed by {add.name} ({add.target}); the step "
        "before it needs batch_norm | conv2d"]
