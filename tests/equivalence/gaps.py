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
#: The ops executorch's fused-activation patterns end with.
_ACTIVATIONS = {f"aten.{name}.default" for name in (
    "relu", "relu_", "hardtanh", "hardtanh_", "hardsigmoid", "hardsigmoid_", "clamp",
    "clamp_")}


def _shared_qspec_target(target: str) -> bool:
    """An op executorch's SharedQspecQuantizer gathers into clusters (read at test
    time, so a new one is recognised)."""
    from executorch.backends.arm.quantizer.arm_quantizer_utils import SharedQspecQuantizer

    names = {str(op) if hasattr(op, "_schema") else op.__name__
             for op in SharedQspecQuantizer.SHARED_QSPEC_OPS_DEFAULT}
    return target in names


#: What executorch's CortexMQuantizer does that rulesets/cortex_m.qrule cannot say yet.
CORTEX_M_GAPS: dict[str, Gap] = {
    "graph_io": Gap(
        anchor=f"{_ET}cortex_m/quantizer/pattern_matcher.py:79-83, "
               f"{_ET}arm/quantizer/arm_quantizer_utils.py:362-393",
        what="the global PatternQuantizer accepts every placeholder and the output node "
             "as a match of their own: graph inputs get the activation spec on their "
             "output, the output node on each float input; an activation after max "
             "pooling of a graph input shares that input's observer",
        proposed="graph inputs and outputs as things rules match (`input_node`, "
                 "`output_node`; the Arm helper's set_io construct)",
        numeric=True,
        matches=lambda m, model: m.op in ("placeholder", "output") or (
            m.field == "output" and str(m.a_text).startswith("shared with output of")
            and str(m.b_text).startswith("shared with edge"))),
    "derived_bias": Gap(
        anchor=f"{_ET}arm/quantizer/arm_quantizer_utils.py:131-166",
        what="the int32 bias derives with Arm's own _derive_bias_qparams_fn, and the "
             "per-tensor one records qscheme=None",
        proposed="a registered derive function naming Arm's, and `qscheme=none` on "
                 "`derived(...)`",
        numeric=True,
        matches=lambda m, model: m.field.startswith("input ")
        and str(m.a_text).startswith("derived") and str(m.b_text).startswith("derived")),
    "shared_qspec_clusters": Gap(
        anchor=f"{_ET}arm/quantizer/arm_quantizer_utils.py:414-700, "
               f"{_ET}cortex_m/quantizer/quantizer.py:96-117",
        what="the SharedQspecQuantizer gathers connected shared-qspec ops (clone, "
             "relu, clamp, getitem, ...) into one cluster whose spec comes from any "
             "annotated neighbour, forward or backward, and moves the output observer "
             "of a conv (matched alone by the conv-only PatternQuantizer) past the "
             "activation after it",
        proposed="a shared-qspec cluster construct: `cluster OPS : same_as(neighbour)`",
        numeric=True,
        matches=lambda m, model: _shared_qspec_target(m.target)
        or m.target in _ACTIVATIONS
        or (m.field == "output" and str(m.a_text) == "none"
            and m.target in ("aten.conv2d.default", "aten.conv_transpose2d.input"))),
}
