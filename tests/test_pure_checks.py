"""Checks are pure: each returns its own findings, whatever ran before it. Run alone,
in the driver's order or backwards, every check finds the same diagnostics, and
together they find everything lint reports beyond reading and collecting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qrules.checking import check_ruleset_text
from qrules.semantics.analysis import Analysis
from qrules.semantics.checks import CHECKS
from qrules.semantics.loader import load
from qrules.semantics.symbols import collect

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diagnostics"
_SEPARATOR = re.compile(r"(?m)^# -----.*\n")


def _cases() -> list:
    cases = []
    for path in sorted(FIXTURES.glob("*.qrule")):
        for index, text in enumerate(_SEPARATOR.split(path.read_text())[1:]):
            if not re.search(r"(?m)^\s*include\b", text):
                cases.append(pytest.param(text, id=f"{path.stem}-{index}"))
    return cases


def _found(diagnostics) -> set:
    return {(d.code, d.span.file, d.span.start, d.message) for d in diagnostics}


@pytest.mark.parametrize("text", _cases())
def test_each_check_finds_the_same_alone_and_in_any_order(text):
    loaded = load(text=text, name="case.qrule")
    symbols = collect(loaded)
    alone = {check: _found(check(Analysis.of(symbols))) for check in CHECKS}
    collected = _found(loaded.diagnostics) | _found(symbols.diagnostics)
    reported = _found(check_ruleset_text(text, "case.qrule").diagnostics)
    assert reported <= collected.union(*alone.values())
    for order in (CHECKS, tuple(reversed(CHECKS))):
        shared = Analysis.of(symbols)
        for check in order:
            assert _found(check(shared)) == alone[check], check.__name__
