"""Edge selections, `ROLE[first PRED else N]`: the predicate is a yes-or-no function
of one edge, and on a role with a fixed number of edges the fallback exists and there
is more than one edge to choose from."""

from __future__ import annotations

from typing import Optional

from qrules.diagnostics import Diagnostic, diagnostic, did_you_mean
from qrules.semantics import registry
from qrules.semantics.patterns import Expansion
from qrules.syntax import ast


def first_of_problems(first: ast.FirstOf, in_predicate: bool = False) -> list[Diagnostic]:
    """`ROLE[first PRED else N]` / `ROLE[each PRED]`: the word is `first` or `each` and
    PRED a predicate function of one edge answering true or false (`quantized`,
    `annotated`, `is_node`, ...); `each` has no `else` and names no single edge, so it
    is for config keys and the references in them, not predicates."""
    if first.word not in ("first", "each"):
        return [diagnostic("QR112", f"expected `first` or `each` before `{first.predicate}`, "
                           "as in `input[first quantized]`", first.span)]
    if first.each and first.fallback is not None:
        return [diagnostic("QR234", f"`each {first.predicate}` takes every edge it holds "
                           f"for, so there is no `else {first.fallback}`", first.span)]
    if first.each and in_predicate:
        return [diagnostic("QR235", f"`each {first.predicate}` names several edges, one at a "
                           "time, in a config; a predicate needs one edge (`first`) or all "
                           "of them (`ROLE[*]`)", first.span)]
    function = registry.PREDICATE_FUNCTIONS.get(first.predicate)
    span = first.predicate_span or first.span
    if function is None:
        one_edge = sorted(name for name, f in registry.PREDICATE_FUNCTIONS.items()
                          if f.arg_kinds == ("role",) and f.result == "bool")
        return [diagnostic("QR223", f"unknown predicate function `{first.predicate}` "
                           f"(of one edge: {', '.join(one_edge)})", span,
                           did_you_mean(first.predicate, one_edge))]
    if function.arg_kinds != ("role",) or function.result != "bool":
        return [diagnostic("QR327", f"`{first.predicate}` is not a true-or-false predicate "
                           "of one edge, so it cannot select one", span)]
    return []


def selection_problems(step: Optional[str], role: str, first: ast.FirstOf,
                        expansions: list[Expansion]) -> list[Diagnostic]:
    """`first` on a role with a fixed number of edges: `else N` within it, and more
    than one edge to choose from."""
    out = first_of_problems(first)
    if first.each:
        return out   # any number of edges may qualify, none included
    counts: set = set()
    for expansion in expansions:
        steps = [s for s in expansion.steps if s.label == step] if step else expansion.steps[:1]
        for candidate in steps:
            if candidate.region is not None or candidate.is_any:
                counts.add(None)
            counts.update(op.role_count(role) for op in candidate.ops)
    if not counts or None in counts or 0 in counts:
        return out   # open-ended (`input: 0[*]`) or reported as a missing edge
    if first.fallback is not None and first.fallback >= max(counts):
        out.append(diagnostic("QR328", f"`else {first.fallback}`: `{role}` has at most "
                              f"{max(counts)} edge(s) here", first.span))
    if counts == {1}:
        out.append(diagnostic("QR329", f"`{role}` is a single edge here, so `first` has "
                              f"nothing to choose: write `{role}` and a predicate",
                              first.span))
    return out
