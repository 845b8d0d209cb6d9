"""docs/equivalence.md is regenerated whenever the suite's expectations change: its
per-case gap counts are ``EXPECTED``'s (torchao) and the executorch cases' own, its gap
list is ``KNOWN_LANGUAGE_GAPS`` and ``EXECUTORCH_GAPS``, and its device table lists every
device check of tests/device. (Regenerate with
``PYTHONPATH=. python scripts/equivalence_report.py``.)"""

from __future__ import annotations

import re
from pathlib import Path

from tests.device.test_xnnpack_ruleset import CONFIGS, HELPER_CASES
from tests.models import ZOO

from . import arm_cases, executorch_cases, test_cortex_m_anchor, test_qnn_anchor
from .cases import CASES, EXPECTED, KNOWN_LANGUAGE_GAPS, case_id
from .gaps import ARM_GAPS, CORTEX_M_GAPS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "equivalence.md").read_text("utf-8")


def _rows(heading_matches):
    """Table rows (cells) under each ``## `` heading, by what ``heading_matches`` makes
    of the heading (None: a section without case rows)."""
    section = None
    for line in DOC.splitlines():
        if line.startswith("## "):
            section = heading_matches(line)
            continue
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("|") else []
        if section is not None and cells and cells[0] not in ("model", "---"):
            yield section, cells


def _ruleset_heading(line):
    heading = re.match(r"## `(\w+)`(?: \(flavor=(\w+)\))?$", line)
    return heading.groups() if heading else None


def _documented_cases() -> tuple[dict, dict, dict, dict, dict]:
    """(torchao, executorch xnnpack, arm, cortex_m, qnn) case id -> gap counts."""
    torchao, executorch, arm, cortex_m, qnn = {}, {}, {}, {}, {}
    for (ruleset, flavour), cells in _rows(_ruleset_heading):
        if len(cells) != 7:
            continue
        model, flags, mode, _, _, gaps, _ = cells
        counts = {g: int(n) for g, n in (p.split(": ") for p in gaps.split(", ")
                                         if ": " in p)}
        flags = "" if flags == "defaults" else flags.replace(", ", ",")
        if ruleset == "arm":
            flags = ",".join(f for f in (flags, "qat=true" if mode == "QAT" else "") if f)
            arm[f"{model}|executorch:arm" + (f"[{flags}]" if flags else "")] = counts
            continue
        if ruleset == "cortex_m":
            cortex_m[f"{model}|{'qat' if mode == 'QAT' else 'ptq'}"] = counts
            continue
        if ruleset == "qnn":
            flags = ",".join(f for f in (flags, "qat" if mode == "QAT" else "") if f)
            qnn[f"{model}|executorch:qnn[{flags}]"] = counts
            continue
        if flavour == "executorch":
            executorch[f"{model}|executorch:xnnpack[{flags}]"] = counts
            continue
        spec = f"{ruleset}[{flags}]" if flags else ruleset
        torchao[f"{model}|{spec}" + ("|strict" if "strict export" in mode else "")] = counts
    return torchao, executorch, arm, cortex_m, qnn


def test_every_case_is_documented_with_its_gap_counts():
    torchao, executorch, arm, cortex_m, qnn = _documented_cases()
    assert set(torchao) == {case_id(c) for c in CASES}
    for case in CASES:
        key = case_id(case)
        assert torchao[key] == EXPECTED.get(key, {}), key
    assert set(executorch) == {executorch_cases.case_id(c) for c in executorch_cases.CASES}
    for case in executorch_cases.CASES:
        assert executorch[executorch_cases.case_id(case)] == case[4], case
    assert set(arm) == {arm_cases.case_id(c) for c in arm_cases.CASES}
    for case in arm_cases.CASES:
        model, config = case[1], case[2]
        assert arm[arm_cases.case_id(case)] == arm_cases.EXPECTED_GAPS.get(
            (model, arm_cases.spec(config)), {}), case
    # CORTEX_M_GAPS is empty: every Cortex-M case is documented with no gap.
    assert cortex_m == {test_cortex_m_anchor.case_id(c): {}
                        for c in test_cortex_m_anchor.CASES}
    assert qnn == {test_qnn_anchor.case_id(c): dict(c[-1]) for c in test_qnn_anchor.CASES}


def test_every_gap_is_documented():
    gaps = {**KNOWN_LANGUAGE_GAPS, **executorch_cases.EXECUTORCH_GAPS, **ARM_GAPS,
            **CORTEX_M_GAPS, **test_qnn_anchor.QNN_GAPS}
    headings = set(re.findall(r"^### `(\w+)`$", DOC, re.M))
    assert headings == set(gaps)
    for gap in gaps.values():
        assert gap.proposed in DOC


def test_every_device_check_is_documented_and_passes():
    rows = [cells for _, cells in _rows(lambda line: "Device runtime" in line or None)]
    documented = {(cells[0], cells[1] == "True", cells[2] == "True") for cells in rows}
    expected = {(name, pc, dyn) for name in ZOO for pc, dyn in CONFIGS}
    assert documented == expected | set(HELPER_CASES)
    assert all(cells[3] == "loads and runs" and cells[6] in ("one program", "bit-identical")
               for cells in rows), "a device check failed when the page was generated"
