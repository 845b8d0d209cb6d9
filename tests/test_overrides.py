"""Conditional overrides, option order, conditional branches: regressions of fixed bugs."""

from __future__ import annotations

import pytest

from qrules.api import load_text
from qrules.checking import check_ruleset_text
from qrules.errors import QruleError

HEAD = 'ruleset t version "1.0"\nparam qat: bool = false\nparam dynamic: bool = false\n'


def _rule_config(ruleset, name):
    rule = next(r for r in ruleset.rules if r.name == name)
    return {k.role: v[0] for k, v in rule.config.entries}


def test_conditional_rule_override_keeps_original_when_false():
    text = HEAD + (
        "spec a = affine(int8)\nspec b = affine(uint8)\n"
        "rule add: add : { input: a }\n"
        "when qat { override rule add: add : { input: b } }\n")
    assert _rule_config(load_text(text, qat=False), "add")["input"].dtype == "int8"
    assert _rule_config(load_text(text, qat=True), "add")["input"].dtype == "uint8"


def test_conditional_op_override_follows_its_condition():
    text = HEAD + ("op act6 = hardtanh\nwhen qat { override op act6 = hardtanh | relu }\n"
                   "rule r: act6 : { input: affine(int8) }\n")
    messages = [d.message for d in check_ruleset_text(text, "t.qrule").diagnostics]
    assert not any("`qat`" in m for m in messages)  # its use in the op's `when` counts

    def targets(**params):
        bound = load_text(text, **params).bound
        return {t for op in bound.resolver.resolve("act6") for t in op.targets}

    assert "aten.relu.default" not in targets(qat=False)
    assert "aten.relu.default" in targets(qat=True)


def test_nested_conditionals_stay_consistent():
    text = HEAD + (
        "spec act = affine(int8, -128..127, dynamic) if dynamic else affine(int8, -128..127)\n"
        "rule linear: linear : { input: act, output: none if dynamic else act }\n")
    codes = [d.code for d in check_ruleset_text(text, "t.qrule").diagnostics]
    assert "QR312" not in codes  # output never gets the dynamic spec


def test_rule_options_once_and_in_order():
    bad = HEAD + "rule x when qat priority 1: relu : none\n"
    assert [d.code for d in check_ruleset_text(bad, "t.qrule").diagnostics] == ["QR100"]
    twice = HEAD + "rule x priority 1 priority 2: relu : none\n"
    assert [d.code for d in check_ruleset_text(twice, "t.qrule").diagnostics] == ["QR100"]
    with pytest.raises(QruleError):
        load_text(twice)


def test_scope_kind_checked_without_rules():
    text = HEAD + 'scope modul_type "x" { spec s = affine(int8) }\n'
    codes = [d.code for d in check_ruleset_text(text, "t.qrule").diagnostics]
    assert "QR217" in codes


def test_ch_axis_on_a_per_tensor_spec():
    text = HEAD + "spec w = symmetric(int8, -127..127, ch_axis=0)\nrule l: linear : { weight: w }\n"
    spec = _rule_config(load_text(text), "l")["weight"]
    assert (spec.qscheme, spec.ch_axis) == ("per_tensor_symmetric", 0)
    bad = HEAD + ("spec w = symmetric(int8, -127..127, per_channel, ch_axis=1)\n"
                  "rule l: linear : { weight: w }\n")
    assert "QR310" in [d.code for d in check_ruleset_text(bad, "t.qrule").diagnostics]
