"""Python-side scoping: set_global / set_module_name / set_module_type /
set_operator_type, with ``None`` leaving a scope in float (XNNPACKQuantizer style)."""

import textwrap

import pytest
import torch

import qrules

from .test_fixtures import annotations

SPECS = """
spec act = affine(int8, -128..127, observer=histogram)
spec act16 = affine(int16, -32768..32767, observer=histogram)
"""


def _rules(name: str, body: str):
    return qrules.load_text(f'ruleset {name} version "1.0"\n{SPECS}{textwrap.dedent(body)}',
                            f"{name}.qrule")


INT8 = _rules("int8", "rule linear_relu: linear -> relu? : { input: act, output: act }\n")
INT16 = _rules("int16", "rule linear16: linear : { input: act16, output: act16 }\n")
CONV_ONLY = _rules("conv_only", "rule conv: conv2d : { input: act, output: act }\n")


def _annotate(quantizer, exported):
    gm, _ = exported("nested")
    quantizer.annotate(quantizer.transform_for_annotation(gm))
    return {node: (rule, out) for node, (rule, _, out) in annotations(gm).items()}


def test_global_only(exported):
    got = _annotate(INT8.quantizer(), exported)
    assert got == {"linear": ("linear_relu", "none"), "relu": ("linear_relu", "int8"),
                   "linear_1": ("linear_relu", "none"), "relu_1": ("linear_relu", "int8"),
                   "linear_2": ("linear_relu", "int8"), "linear_3": ("linear_relu", "int8")}


def test_module_type_none_leaves_every_linear_module_float(exported):
    got = _annotate(INT8.set_module_type(torch.nn.Linear, None), exported)
    # every nn.Linear is taken and left in float; F.linear is not an nn.Linear module
    floats = {n for n, (rule, _) in got.items() if rule == "leave_in_float"}
    assert floats == {"linear", "linear_1", "linear_3"}
    assert got["linear_2"] == ("linear_relu", "int8")
    assert all(out == "none" for n, (_, out) in got.items() if n in floats)


def test_module_type_as_string_matches_the_class(exported):
    by_class = _annotate(INT8.set_module_type(torch.nn.Linear, INT16), exported)
    by_name = _annotate(INT8.set_module_type("torch.nn.Linear", INT16), exported)
    assert by_class == by_name
    assert by_class["linear"] == by_class["linear_3"] == ("linear16", "int16")


def test_module_name_exact_and_glob(exported):
    exact = _annotate(INT8.set_module_name("encoder.layers.0.proj", INT16), exported)
    assert exact["linear"] == ("linear16", "int16")
    assert exact["linear_1"] == ("linear_relu", "none")
    glob = _annotate(INT8.set_module_name("encoder.layers.*", INT16), exported)
    assert glob["linear"] == glob["linear_1"] == ("linear16", "int16")


def test_module_name_none_beats_module_type(exported):
    quantizer = INT8.set_module_type(torch.nn.Linear, INT16).set_module_name("classifier", None)
    got = _annotate(quantizer, exported)
    assert got["linear_3"] == ("leave_in_float", "none")       # module name first
    assert got["linear"] == ("linear16", "int16")              # then module type
    assert got["linear_2"] == ("linear_relu", "int8")          # then global


def test_global_stays_out_of_a_scope_even_where_the_scope_matched_nothing(exported):
    # XNNPACK's filters: a module with its own config never gets the global one. The
    # conv-only ruleset matches nothing in encoder.layers.0, which stays float.
    got = _annotate(INT8.set_module_name("encoder.layers.0", CONV_ONLY), exported)
    assert got["linear"][0] == got["relu"][0] == "leave_in_float"
    assert got["linear_1"] == ("linear_relu", "none")


def test_operator_type(exported):
    quantizer = INT8.set_operator_type(torch.ops.aten.linear.default, INT16)
    got = _annotate(quantizer, exported)
    assert {got[n] for n in ("linear", "linear_1", "linear_2", "linear_3")} == {
        ("linear16", "int16")}
    assert "relu" not in got     # global stays out of linear nodes, and relu alone has no rule


def test_set_global_none_and_scoped_only(exported):
    got = _annotate(qrules.RulesetQuantizer().set_module_name("classifier", INT8), exported)
    assert got == {"linear_3": ("linear_relu", "int8")}


def test_scoping_rejects_non_rulesets():
    with pytest.raises(TypeError):
        qrules.RulesetQuantizer().set_global(object())


def test_validation_error_of_a_scoped_ruleset_shows_its_source(exported):
    bad = qrules.load_text("""ruleset bad version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule pool: relu : { input: same_as(producer(input)), output: act }
""", "bad.qrule")
    quantizer = INT8.set_module_name("encoder.layers.0", bad)
    gm, _ = exported("nested")
    with pytest.raises(qrules.ValidationError) as info:
        quantizer.annotate(gm)
    text = str(info.value)
    assert "bad.qrule:3:6: QR602" in text and "rule pool: relu" in text
    assert annotations(gm) == {}
