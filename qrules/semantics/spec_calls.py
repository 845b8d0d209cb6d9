"""The parts of spec constructors that are calls of their own: ``per_block(axis=A,
block=[...])`` in ``affine`` / ``symmetric``, and a derive function with arguments,
``fn=NAME(key=EXPR, ...)`` in ``derived``. ``qrules.semantics.specs`` builds the spec
values with them."""

from __future__ import annotations

from typing import Optional

from qrules.semantics import registry
from qrules.semantics.expressions import UNKNOWN
from qrules.semantics.references import ReferenceEvaluator
from qrules.semantics.values import MatchExpr, ObserverRef
from qrules.syntax import ast, tree


def takes_block(observer: ObserverRef) -> bool:
    """Whether the observer (or one it wraps) wants a `per_block` spec's block size."""
    entry = registry.OBSERVERS.get(observer.name)
    return entry is not None and "block_size" in entry.extra.get("wants", ()) or any(
        takes_block(value) for _, value in observer.kwargs if isinstance(value, ObserverRef))


def per_block(ev: ReferenceEvaluator, flags: dict) -> Optional[tuple]:
    """``per_block(axis=A, block=[1, 16])``: (A, the block tuple), or None when not
    per block. A block entry may be an int parameter: unknown (None) until bound."""
    flag = flags.get("per_block")
    if flag is None:
        return None
    if "per_channel" in flags:
        ev.report("QR338", "`per_block` is per channel already: drop `per_channel`",
                  flags["per_channel"].span)
    given = {k.name: k.value for k in getattr(flag, "kwargs", ())}
    block = given.get("block")
    if not isinstance(flag, ast.Call) or flag.args or set(given) - {"axis", "block"} or \
            not isinstance(block, ast.ListLit) or not block.items:
        ev.report("QR338", "`per_block` takes `block=[N, ...]` (the block shape, one size "
                  "per weight dimension) and optionally `axis=A`: "
                  "`per_block(axis=0, block=[1, 16])`", flag.span)
        return None
    axis = 0
    if "axis" in given:
        typed = ev.value(given["axis"])
        if typed.type != "int" or (typed.value is not UNKNOWN and typed.value < 0):
            ev.report("QR305", "the channel axis must be a non-negative integer",
                      given["axis"].span)
        else:
            axis = None if typed.value is UNKNOWN else typed.value
    sizes = []
    for item in block.items:
        typed = ev.value(item)
        if typed.type != "int" or (typed.value is not UNKNOWN and typed.value < 1):
            ev.report("QR338", "a block size is a positive integer", item.span)
            return None
        sizes.append(None if typed.value is UNKNOWN else typed.value)
    return axis, None if None in sizes else tuple(sizes)


def derive_call(ev: ReferenceEvaluator, expr) -> tuple[str, tuple]:
    """``fn=NAME`` or ``fn=NAME(key=EXPR, ...)``: the function and its arguments, each
    a value (constants, parameters) or a MatchExpr (it reads the match)."""
    call = expr if isinstance(expr, ast.Call) else None
    name_expr = call.func if call is not None else expr
    entry = registry.DERIVE_FUNCTIONS.get(name_expr.id) if isinstance(
        name_expr, ast.Name) else None
    if entry is None:
        known = ", ".join(sorted(registry.DERIVE_FUNCTIONS))
        ev.report("QR205", f"unknown derive function (registered: {known})", name_expr.span)
        return "scale_product", ()
    if call is None:
        return entry.name, ()
    if call.args:
        ev.report("QR229", f"derive function arguments are keywords: `{entry.name}(key=...)`",
                  call.args[0].span)
    values = []
    for keyword in call.kwargs:
        if keyword.name not in entry.kwargs:
            allowed = ", ".join(sorted(entry.kwargs)) or "none"
            ev.report("QR218", f"`{entry.name}` takes no argument `{keyword.name}` "
                      f"(it takes: {allowed})", keyword.span)
        elif _reads_match(ev, keyword.value):
            _check_match_names(ev, keyword.value)
            values.append((keyword.name, MatchExpr(keyword.value)))
        else:
            values.append((keyword.name, ev.value(keyword.value).value))
    return entry.name, tuple(values)


def _reads_match(ev: ReferenceEvaluator, expr) -> bool:
    """Whether an argument reads the match: it calls a predicate function or names
    something that is not a parameter (a role, as in `input[1].value`)."""
    return any(isinstance(node, ast.Call) or (isinstance(node, ast.Name) and node.id not in
                                              ev.symbols.params and node.id not in ev.choices)
               for node in tree.walk(expr))


def _check_match_names(ev: ReferenceEvaluator, expr) -> None:
    """QR209 for predicate functions and facts a derive argument names that do not
    exist (roles are the op's: a missing one is QR602 on the graph)."""
    for node in tree.walk(expr):
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and
                                               node.func.id in registry.PREDICATE_FUNCTIONS):
            ev.report("QR209", "unknown predicate function (known: "
                      f"{', '.join(sorted(registry.PREDICATE_FUNCTIONS))})", node.func.span)
        elif isinstance(node, ast.Attribute) and node.attr not in registry.FACTS:
            ev.report("QR209", f"unknown fact `.{node.attr}` (known: "
                      f"{', '.join(sorted(registry.FACTS))})", node.span)
