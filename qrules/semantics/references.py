"""Evaluate references in specs: observers (``histogram(eps=2**-12)``) and edges of a
match (``input[1]``, ``add.output``, ``producer(input)``)."""

from __future__ import annotations

from typing import Optional

from qrules.semantics import registry
from qrules.semantics.expressions import UNKNOWN, ExpressionEvaluator
from qrules.semantics.values import EdgeRef, ObserverRef
from qrules.syntax import ast


class ReferenceEvaluator(ExpressionEvaluator):
    """Expressions, plus the observers and edges spec constructors refer to."""

    def observer(self, expr) -> Optional[ObserverRef]:
        branches = self.branches(expr)
        refs = []
        for branch, implied in branches:  # linting: check every branch, keep the first
            with self.assume(implied):
                refs.append(self._observer_branch(branch))
        return next((r for r in refs if r is not None), None)

    def _observer_branch(self, expr) -> Optional[ObserverRef]:
        if isinstance(expr, ast.Name):
            name, kwargs, span = expr.id, (), expr.span
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and not expr.args:
            name, kwargs, span = expr.func.id, expr.kwargs, expr.func.span
        else:
            self.report("QR310", "an observer is a registered name, optionally with keyword "
                        "arguments: `histogram(eps=2**-12)`", expr.span)
            return None
        entry = registry.OBSERVERS.get(name)
        if entry is None:
            known = ", ".join(sorted(registry.OBSERVERS))
            self.report("QR205", f"unknown observer or fake-quantizer `{name}` (registered: "
                        f"{known})", span)
            return None
        values = []
        for keyword in kwargs:
            if keyword.name not in entry.kwargs:
                allowed = ", ".join(sorted(entry.kwargs)) or "none"
                self.report("QR218", f"`{name}` takes no argument `{keyword.name}` "
                            f"(it takes: {allowed})", keyword.span)
                continue
            if keyword.name == "observer":
                values.append((keyword.name, self.observer(keyword.value)))
            else:
                values.append((keyword.name, self.value(keyword.value).value))
        return ObserverRef(name, tuple(values), span)

    # ------------------------------------------------------------------ edges
    def edge(self, expr) -> Optional[EdgeRef]:
        """``input``, ``input[1]``, ``weight``, ``add.input[1]``, ``output``,
        or ``producer(input[0])``: the tensor that feeds an input edge."""
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and \
                expr.func.id == "producer":
            if len(expr.args) != 1 or expr.kwargs:
                self.report("QR322", "`producer` takes one input edge: `producer(input)`",
                            expr.span)
                return None
            inner = self.edge(expr.args[0])
            if inner is None:
                return None
            if inner.role not in ("input", "extra") or inner.producer:
                self.report("QR322", "`producer(...)` takes an input edge, such as `input` "
                            "or `input[1]`", expr.args[0].span)
                return None
            return EdgeRef(inner.role, inner.step, inner.index, expr.span, producer=True)
        index = None
        if isinstance(expr, ast.Index) and isinstance(expr.index, ast.FirstOf):
            index, expr = expr.index, expr.value   # checked with the rule (QR223, QR327)
        elif isinstance(expr, ast.Index):
            idx = self.value(expr.index)
            if idx.type == "int" and idx.value is UNKNOWN:
                return None  # an int parameter: checked when the ruleset is bound
            if idx.type != "int" or idx.value is UNKNOWN:
                self.report("QR322", "an edge index must be an integer", expr.index.span)
                return None
            index, expr = idx.value, expr.value
        if isinstance(expr, ast.Name):
            return EdgeRef(expr.id, None, index, expr.span)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            return EdgeRef(expr.attr, expr.value.id, index, expr.span)
        self.report("QR322", "expected an edge of the match: `input`, `input[1]`, `weight`, "
                    "`bias`, `output` or `step.role`", expr.span)
        return None

