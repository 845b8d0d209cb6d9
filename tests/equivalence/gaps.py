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
ARM_GAPS: dict[str, Gap] = {
    "casts": Gap(
        anchor=f"{_ET}arm/quantizer/quantizer_support.py (CastCheck), "
               f"{_ET}arm/quantizer/arm_quantizer_utils.py:362-393",
        what="integer <-> float casts (aten.to.dtype) are matched on their own: a cast "
             "to int32 gets a fixed int32 output spec, the others are marked annotated",
        proposed="a cast rule with `any_dtype` and a fixed int32 spec chosen by the "
                 "cast's dtype argument (`arg(1) == int32`)",
        numeric=True,   # the anchor's program has one more quantize/dequantize pair
        matches=lambda m, model: m.target == "aten.to.dtype"),
    "index_and_grid_sampler": Gap(
        anchor=f"{_ET}arm/quantizer/quantizer_support.py (index_select on a constant, "
               "grid_sampler)",
        what="index_select of a parameter constant quantizes the table and shares it "
             "through the reshape after it; grid_sampler takes fixed qparams on its "
             "image input and output",
        proposed="rules for `index_select` (a constant's edge as `input`) and "
                 "`grid_sampler` (fixed specs) in arm.qrule",
        numeric=True,
        matches=lambda m, model: m.target in ("aten.index_select.default",
                                              "aten.grid_sampler.default",
                                              "aten.reshape.default") and model == "layers"),
}
#: What executorch's CortexMQuantizer does that rulesets/cortex_m.qrule cannot say yet:
#: nothing (graph I/O, the bias qscheme and the shared-qspec clusters are said).
CORTEX_M_GAPS: dict[str, Gap] = {}
