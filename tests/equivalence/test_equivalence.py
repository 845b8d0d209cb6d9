"""The built-in rulesets against torchao's hand-written quantizers, node by node.

Each case runs ``qrules.diff(anchor, ruleset, model)``: both quantizers go through
torchao's real ``prepare_pt2e`` / ``prepare_qat_pt2e`` on copies of one exported graph,
their annotations are recorded inside prepare and compared field by field, and (where
the case says so) both are calibrated on the same seeded inputs and converted, and
must give the same op counts and bit-identical outputs.

A mismatch the .qrule language cannot close yet belongs to one of
``KNOWN_LANGUAGE_GAPS``; ``EXPECTED`` says, per case, exactly how many mismatches each
gap accounts for. Any other mismatch fails the case (with the full report), and so
does a gap count that changed: when the language closes a gap, the table shrinks.
"""

from __future__ import annotations

import pytest

from .cases import CASES, EXPECTED, KNOWN_LANGUAGE_GAPS, case_id, run_case


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_equivalence(case):
    report, (counts, unexplained) = run_case(case)
    if unexplained:
        shown = type(report)(report.a_label, report.b_label, report.model_label,
                             report.nodes_compared, unexplained, report.numerics)
        pytest.fail("mismatches no known gap explains:\n" + shown.format(limit=40))
    expected = EXPECTED.get(case_id(case), {})
    assert dict(counts) == expected, (
        f"gap counts changed for {case_id(case)}: expected {expected}, got {dict(counts)} "
        "(a gap closed, or a ruleset changed: update EXPECTED)\n" + report.format(limit=20))
    numeric_gap = any(KNOWN_LANGUAGE_GAPS[g].numeric for g in counts)
    assert report.numerics.ok != numeric_gap or not report.numerics.ran, report.format(limit=20)
