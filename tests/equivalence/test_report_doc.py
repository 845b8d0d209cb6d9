"""docs/equivalence.md is regenerated whenever the suite's expectations change: its
per-case gap counts are ``EXPECTED``'s and its gap list is ``KNOWN_LANGUAGE_GAPS``'s.
(Regenerate with ``PYTHONPATH=. python scripts/equivalence_report.py``.)"""

from __future__ import annotations

import re
from pathlib import Path

from .cases import CASES, EXPECTED, KNOWN_LANGUAGE_GAPS, case_id

DOC = (Path(__file__).resolve().parents[2] / "docs" / "equivalence.md").read_text("utf-8")


def _documented_cases() -> dict[str, dict[str, int]]:
    out, ruleset = {}, None
    for line in DOC.splitlines():
        heading = re.match(r"## `(\w+)`$", line)
        if heading:
            ruleset = heading.group(1)
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if ruleset is None or len(cells) != 7 or cells[0] in ("model", "---"):
            continue
        model, flags, mode, _, _, gaps, _ = cells
        spec = ruleset if flags == "defaults" else f"{ruleset}[{flags.replace(', ', ',')}]"
        key = f"{model}|{spec}" + ("|strict" if "strict export" in mode else "")
        out[key] = {g: int(n) for g, n in (p.split(": ") for p in gaps.split(", ")
                                            if ": " in p)}
    return out


def test_every_case_is_documented_with_its_gap_counts():
    documented = _documented_cases()
    assert set(documented) == {case_id(c) for c in CASES}
    for case in CASES:
        key = case_id(case)
        assert documented[key] == EXPECTED.get(key, {}), key


def test_every_gap_is_documented():
    headings = set(re.findall(r"^### `(\w+)`$", DOC, re.M))
    assert headings == set(KNOWN_LANGUAGE_GAPS)
    for gap in KNOWN_LANGUAGE_GAPS.values():
        assert gap.proposed in DOC
