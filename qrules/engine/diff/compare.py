"""Compare two sides' described annotations node by node; the report types.

Nodes are compared in side a's graph order (then b's extra nodes): the graph structure
first, then each part of the annotation, each difference a ``Mismatch`` naming the rule
that made either side's annotation. ``EquivalenceReport`` holds the mismatches and the
numerics, and formats them: mismatches grouped by kind and rule pair, most significant
kind first (``KINDS``), then each one, in that order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from qrules.engine.diff.describe import NodeRecord, format_annotation, format_spec

#: Kinds of mismatch, most significant first: what changes the converted model's
#: numbers (structure, what is quantized, dtype, qscheme, ...) before what only changes
#: observers or bookkeeping (`_annotated` on a node whose specs agree, as torchao's
#: quantizers mark weight and bias nodes and a ruleset says with `takes(...)`).
KINDS = ("graph", "quantized vs float", "spec kind", "dtype", "qscheme", "channel axis",
         "range", "dynamic", "fixed qparams", "sharing", "observer", "input order",
         "marking", "empty input entry", "implicit sharing", "extra fields")
#: Which kind a difference in one field of a described spec is.
_SPEC_FIELD_KINDS = {"kind": "spec kind", "repr": "spec kind", "dtype": "dtype",
                     "qscheme": "qscheme", "ch_axis": "channel axis", "quant_min": "range",
                     "quant_max": "range", "is_dynamic": "dynamic", "scale": "fixed qparams",
                     "zero_point": "fixed qparams", "with": "sharing", "from": "sharing",
                     "fn": "sharing", "observer": "observer"}


def _spec_kind(a: Any, b: Any) -> str:
    """The most significant difference between two described specs ("absent": no entry
    for the edge, None: an entry without a spec; neither quantizes it)."""
    if a in (None, "absent") or b in (None, "absent"):
        return "empty input entry" if a in (None, "absent") and b in (None, "absent") \
            else "quantized vs float"
    da, db = dict(a), dict(b)
    kinds = {_SPEC_FIELD_KINDS.get(k, "spec kind") for k in set(da) | set(db)
             if da.get(k) != db.get(k)}
    return min(kinds, key=KINDS.index, default="spec kind")


def _has_spec(record) -> bool:
    return record is not None and (record.output is not None
                                   or any(s is not None for _, s in record.inputs))


@dataclass(frozen=True)
class Mismatch:
    """One difference: a node, which part of its annotation, and the two sides."""

    node: str
    op: str                  # the node's fx op: call_function, get_attr, placeholder
    target: str
    field: str               # "annotation", "input <src>", "output", "_annotated", ...
    a: Any                   # the described value on side a (None: absent)
    b: Any
    a_text: str
    b_text: str
    a_rule: Optional[str]    # "rule NAME (file:line:col)" when a qrules rule made it
    b_rule: Optional[str]

    @property
    def kind(self) -> str:
        """Which of ``KINDS`` this difference is."""
        if self.field in ("node", "graph"):
            return "graph"
        if self.field == "annotation":  # one side has no annotation at all
            return "quantized vs float" if _has_spec(self.a) or _has_spec(self.b) \
                else "marking"
        if self.field.startswith("input ") and self.field != "input order" \
                or self.field == "output":
            return _spec_kind(self.a, self.b)
        return {"_annotated": "marking", "allow_implicit_sharing": "implicit sharing"}.get(
            self.field, self.field)


@dataclass(frozen=True)
class MismatchGroup:
    """Mismatches of one kind made by one pair of rules (None: not a qrules rule)."""

    kind: str
    a_rule: Optional[str]
    b_rule: Optional[str]
    count: int


@dataclass(frozen=True)
class Numerics:
    ran: bool
    op_counts_a: dict = field(default_factory=dict)
    op_counts_b: dict = field(default_factory=dict)
    outputs_equal: bool = True
    max_abs_diff: float = 0.0
    error: Optional[str] = None

    @property
    def op_count_diff(self) -> dict:
        keys = set(self.op_counts_a) | set(self.op_counts_b)
        return {k: (self.op_counts_a.get(k, 0), self.op_counts_b.get(k, 0)) for k in sorted(keys)
                if self.op_counts_a.get(k, 0) != self.op_counts_b.get(k, 0)}

    @property
    def ok(self) -> bool:
        return (not self.ran) or (self.error is None and self.outputs_equal
                                  and not self.op_count_diff)


@dataclass
class EquivalenceReport:
    """What ``qrules.diff`` found. ``equal`` when no annotation differs and (if run)
    the converted models have the same op counts and bit-identical outputs."""

    a_label: str
    b_label: str
    model_label: str
    nodes_compared: int
    mismatches: list[Mismatch]
    numerics: Numerics
    a_records: dict = field(default_factory=dict, repr=False)
    b_records: dict = field(default_factory=dict, repr=False)

    @property
    def equal(self) -> bool:
        return not self.mismatches and self.numerics.ok

    def __bool__(self) -> bool:  # a report is "truthy" when the two sides are equal
        return self.equal

    def groups(self) -> list[MismatchGroup]:
        """The mismatches counted by (kind, A's rule, B's rule): most significant kind
        first, then the largest group, then first seen."""
        counts = Counter((m.kind, m.a_rule, m.b_rule) for m in self.mismatches)
        order = sorted(counts, key=lambda key: (KINDS.index(key[0]) if key[0] in KINDS
                                                else len(KINDS), -counts[key]))
        return [MismatchGroup(kind, a, b, counts[kind, a, b]) for kind, a, b in order]

    def format(self, limit: Optional[int] = None) -> str:
        lines = [f"diff on {self.model_label}: A = {self.a_label}, B = {self.b_label}",
                 f"{self.nodes_compared} nodes compared, {len(self.mismatches)} "
                 f"mismatch{'es' if len(self.mismatches) != 1 else ''}"]
        groups = self.groups()
        if groups:
            lines.append("by kind and rule, most significant first:")
            width = max(len(str(g.count)) for g in groups)
            for g in groups:
                lines.append(f"  {g.count:>{width}} {g.kind}: A {g.a_rule or 'no rule'}; "
                             f"B {g.b_rule or 'no rule'}")
        rank = {(g.kind, g.a_rule, g.b_rule): i for i, g in enumerate(groups)}
        ordered = sorted(self.mismatches, key=lambda m: rank[m.kind, m.a_rule, m.b_rule])
        shown = ordered if limit is None else ordered[:limit]
        for m in shown:
            lines.append(f"node {m.node} ({m.target}): {m.field} [{m.kind}]")
            lines.append(f"  A: {m.a_text}")
            if m.a_rule:
                lines.append(f"     by {m.a_rule}")
            lines.append(f"  B: {m.b_text}")
            if m.b_rule:
                lines.append(f"     by {m.b_rule}")
        if limit is not None and len(self.mismatches) > limit:
            lines.append(f"... and {len(self.mismatches) - limit} more")
        n = self.numerics
        if n.ran:
            if n.error:
                lines.append(f"numerics: not compared: {n.error}")
            else:
                counts = n.op_count_diff
                if counts:
                    lines.append("numerics: op counts differ (A, B): " + ", ".join(
                        f"{k}: {a}, {b}" for k, (a, b) in counts.items()))
                else:
                    lines.append(f"numerics: same op counts ({sum(n.op_counts_a.values())} "
                                 "call nodes)")
                lines.append("numerics: outputs bit-identical" if n.outputs_equal else
                             f"numerics: outputs differ (max abs diff {n.max_abs_diff:.6g})")
        lines.append("EQUAL" if self.equal else "DIFFERENT")
        return "\n".join(lines)


def _rule_text(provenance: Optional[dict]) -> Optional[str]:
    if not provenance:
        return None
    return f"rule {provenance['rule']} of {provenance['ruleset']} ({provenance['location']})"


def compare_records(a: dict[str, NodeRecord], b: dict[str, NodeRecord]) -> list[Mismatch]:
    """Node by node, in a's graph order (then b's extra nodes)."""
    out: list[Mismatch] = []
    names = list(a) + [n for n in b if n not in a]
    for name in names:
        ra, rb = a.get(name), b.get(name)
        if ra is None or rb is None:
            present = ra or rb
            out.append(Mismatch(
                name, present.op, present.target, "node", None if ra is None else ra.target,
                None if rb is None else rb.target,
                "node absent" if ra is None else f"{ra.op} {ra.target}{ra.args}",
                "node absent" if rb is None else f"{rb.op} {rb.target}{rb.args}",
                None, None))
            continue
        if (ra.op, ra.target, ra.args) != (rb.op, rb.target, rb.args):
            out.append(Mismatch(name, ra.op, ra.target, "graph", (ra.op, ra.target, ra.args),
                                (rb.op, rb.target, rb.args), f"{ra.op} {ra.target}{ra.args}",
                                f"{rb.op} {rb.target}{rb.args}", None, None))
        out.extend(_compare_annotations(ra, rb))
    return out


def _compare_annotations(ra: NodeRecord, rb: NodeRecord) -> list[Mismatch]:
    xa, xb = ra.annotation, rb.annotation
    rule_a, rule_b = _rule_text(ra.provenance), _rule_text(rb.provenance)
    if xa == xb:
        return []
    if xa is None or xb is None:
        return [Mismatch(ra.name, ra.op, ra.target, "annotation", xa, xb, format_annotation(xa),
                         format_annotation(xb), rule_a, rule_b)]
    out = []
    ma, mb = xa.input_map(), xb.input_map()
    for source in list(ma) + [s for s in mb if s not in ma]:
        sa = ma.get(source, "absent")
        sb = mb.get(source, "absent")
        if sa != sb:
            out.append(Mismatch(ra.name, ra.op, ra.target, f"input {source}", sa, sb,
                                "no entry" if sa == "absent" else format_spec(sa),
                                "no entry" if sb == "absent" else format_spec(sb),
                                rule_a, rule_b))
    if [s for s, _ in xa.inputs if s in mb] != [s for s, _ in xb.inputs if s in ma]:
        out.append(Mismatch(ra.name, ra.op, ra.target, "input order", tuple(ma), tuple(mb),
                            ", ".join(ma), ", ".join(mb), rule_a, rule_b))
    if xa.output != xb.output:
        out.append(Mismatch(ra.name, ra.op, ra.target, "output", xa.output, xb.output,
                            format_spec(xa.output), format_spec(xb.output), rule_a, rule_b))
    if xa.annotated != xb.annotated:
        out.append(Mismatch(ra.name, ra.op, ra.target, "_annotated", xa.annotated, xb.annotated,
                            str(xa.annotated), str(xb.annotated), rule_a, rule_b))
    if xa.allow_implicit_sharing != xb.allow_implicit_sharing:
        out.append(Mismatch(ra.name, ra.op, ra.target, "allow_implicit_sharing",
                            xa.allow_implicit_sharing, xb.allow_implicit_sharing,
                            str(xa.allow_implicit_sharing), str(xb.allow_implicit_sharing),
                            rule_a, rule_b))
    if xa.extra != xb.extra:
        out.append(Mismatch(ra.name, ra.op, ra.target, "extra fields", xa.extra, xb.extra,
                            repr(dict(xa.extra)), repr(dict(xb.extra)), rule_a, rule_b))
    return out
