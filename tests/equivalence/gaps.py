"""Classifying the mismatches the .qrule language cannot close yet.

``KNOWN_LANGUAGE_GAPS`` (defined in ``cases.py``) lists each gap: what the
anchor does (file:line in torchao), why a ruleset cannot say it, the syntax proposed,
and a predicate that recognises the mismatches it causes. Every case of the suite
expects an exact count of mismatches per gap and nothing else, so the suite fails
both when a gap closes (update the table) and when a new mismatch appears.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from qrules.engine.diff import AnnotationRecord, EquivalenceReport, Mismatch


@dataclass(frozen=True)
class Gap:
    anchor: str                 # where torchao does it
    what: str                   # what the anchor does that no ruleset can say
    proposed: str               # the syntax that would say it
    matches: Callable[[Mismatch, str], bool]   # (mismatch, model name) -> is this gap
    numeric: bool = False       # also changes the converted model


EMPTY_MARK = AnnotationRecord((), None, True, True, ())


def classify(report: EquivalenceReport, model: str, gaps: dict[str, Gap]):
    """(Counter of gap id -> mismatches, mismatches no gap explains)."""
    counts: Counter = Counter()
    unexplained = []
    for mismatch in report.mismatches:
        for gap_id, gap in gaps.items():
            if gap.matches(mismatch, model):
                counts[gap_id] += 1
                break
        else:
            unexplained.append(mismatch)
    return counts, unexplained



_ET = "executorch/backends/"

#: What executorch's TOSAQuantizer does that rulesets/arm.qrule does not say yet; each
#: gap names the anchor's source lines (docs/backends.md lists them with the rest).
#: Empty: the casts, index_select / grid_sampler and I/O cluster gaps are closed.
ARM_GAPS: dict[str, Gap] = {}
#: What executorch's CortexMQuantizer does that rulesets/cortex_m.qrule cannot say yet:
#: nothing (graph I/O, the bias qscheme and the shared-qspec clusters are said).
CORTEX_M_GAPS: dict[str, Gap] = {}
