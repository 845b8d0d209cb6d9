"""Evaluate specs and configs, on every branch their conditions leave open.

The evaluator is layered, each layer in its own module: parameter expressions and
conditions (``expressions``), references to observers and edges (``references``),
spec constructors (``specs``), and here named specs and configs. Problems found on
the way are collected in ``Evaluator.diagnostics``, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from qrules.diagnostics import note
from qrules.semantics.references import ReferenceEvaluator
from qrules.semantics.specs import construct
from qrules.semantics.symbols import Symbols
from qrules.syntax import ast


@dataclass(frozen=True)
class ConfigValue:
    """A config as evaluated: role key -> possible specs (one each when bound)."""

    entries: tuple[tuple[ast.RoleKey, tuple], ...]
    name: Optional[str] = None
    node: Optional[object] = None


class Evaluator(ReferenceEvaluator):
    """Everything a ruleset's values are made of: the evaluator checks and ``bind`` use."""

    def __init__(self, symbols: Symbols, values: Optional[dict[str, Any]] = None,
                 memo: Optional[dict] = None):
        super().__init__(symbols, values)
        self._active: list[tuple[str, str]] = []  # specs/configs being evaluated
        self._cycles = 0  # cycles found so far (QR314)
        #: What evaluating a named spec or config gave, by name and the assumptions it
        #: was evaluated under: its values, what it reported, and every spec and config
        #: its evaluation entered. Configs name the same specs again and again, and
        #: several checks evaluate the same configs (a tenth of a lint run did it over
        #: and over). Evaluators of one ruleset with the same parameter values may
        #: share it (``memo``).
        self._memo: dict[tuple, tuple] = {} if memo is None else memo
        self._recording: list[tuple[list, set]] = []  # (reports, entered) per open entry

    def report(self, code: str, message: str, span, notes=()) -> None:
        for reports, _ in self._recording:
            reports.append((code, message, span, notes))
        super().report(code, message, span, notes)

    def _enter(self, kind: str, name: str, span) -> bool:
        if (kind, name) in self._active:
            self._cycles += 1
            cycle = " -> ".join(n for _, n in self._active[self._active.index((kind, name)):])
            self.report("QR314", f"{kind} `{name}` refers to itself ({cycle} -> {name})", span)
            return False
        self._active.append((kind, name))
        for _, entered in self._recording:
            entered.add((kind, name))
        return True

    def _recall(self, key: tuple) -> Optional[list]:
        """A remembered evaluation, replayed: valid unless it entered a spec or config
        being evaluated now (evaluating it here would stop there, at a cycle)."""
        known = self._memo.get(key)
        if known is None or any(active in known[2] for active in self._active):
            return None
        values, reports, entered = known
        for report in reports:
            self.report(*report)
        for _, outer in self._recording:
            outer |= entered
        return list(values)

    # ------------------------------------------------------------------ specs
    def spec(self, expr, in_config: bool = False) -> list:
        """The specs an expression may denote (``None`` for ``none``)."""
        out: list = []
        for branch, implied in self.branches(expr):
            with self.assume(implied):
                out.extend(self._spec_branch(branch, in_config))
        return out

    def _spec_branch(self, expr, in_config: bool) -> list:
        if isinstance(expr, ast.NoneLit):
            return [None]
        if isinstance(expr, ast.Name):
            return self._named_spec(expr)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            result = construct(self, expr, in_config)
            return [] if result is None else [result]
        self.report("QR301", "expected a spec: a spec name, `none`, or a constructor such "
                    "as `affine(int8, -128..127)`", expr.span)
        return []

    def _named_spec(self, expr: ast.Name) -> list:
        return self._named(expr, "spec", "QR202", self.symbols.specs, self.symbols.configs,
                           lambda d: [v if v is None else v.with_name(expr.id)
                                     for v in self.spec(d.node.value)])

    def _named(self, expr: ast.Name, kind: str, code: str, table: dict, other: dict,
               evaluate) -> list:
        """Evaluate every definition of a named spec or config that may be in force,
        reporting unknown names (with a hint when it is the other kind) and cycles."""
        definitions = table.get(expr.id)
        if definitions is None:
            other_kind = "config" if kind == "spec" else "spec"
            hint = f"; `{expr.id}` is a {other_kind}" if expr.id in other else ""
            self.report(code, f"unknown {kind} `{expr.id}`{hint}", expr.span)
            return []
        key = (kind, expr.id, frozenset(self.assumed.items()))
        known = self._recall(key)
        if known is not None:
            return known
        if not self._enter(kind, expr.id, expr.span):
            return []
        cycles = self._cycles
        reports, entered = [], {(kind, expr.id)}
        self._recording.append((reports, entered))
        try:
            values = [value for d in self.in_force(definitions) for value in evaluate(d)]
        finally:
            self._active.pop()
            self._recording.pop()
        # A value cut short by a cycle depends on where the evaluation started.
        if cycles == self._cycles:
            self._memo[key] = (tuple(values), tuple(reports), frozenset(entered))
        return values

    # ------------------------------------------------------------------ configs
    def config(self, expr) -> list[Optional[ConfigValue]]:
        """The configs a rule's config (or ``config X = ...``) may denote."""
        if isinstance(expr, ast.ConfigBody):
            return [self.config_body(expr)]
        out: list[Optional[ConfigValue]] = []
        for branch, implied in self.branches(expr):
            if isinstance(branch, ast.NoneLit):
                out.append(None)
            elif isinstance(branch, ast.Name):
                with self.assume(implied):
                    out.extend(self._named_config(branch))
            else:
                self.report("QR301", "expected a config: a config name, `none`, or "
                            "`{ role: spec, ... }`", branch.span)
        return out

    def _named_config(self, expr: ast.Name) -> list[Optional[ConfigValue]]:
        def evaluate(definition):
            return [ConfigValue(v.entries, expr.id, definition.node)
                    if v is not None and v.name is None else v
                    for v in self.config(definition.node.value)]

        return self._named(expr, "config", "QR203", self.symbols.configs, self.symbols.specs,
                           evaluate)

    def config_body(self, body: ast.ConfigBody) -> ConfigValue:
        seen: dict[tuple, ast.ConfigEntry] = {}
        entries = []
        for entry in body.entries:
            key = (entry.key.step, entry.key.role, entry.key.index)
            if key in seen:
                self.report("QR315", f"`{entry.key}` is given twice in this "
                            "config", entry.key.span,
                            [note(message="first given here", span=seen[key].key.span)])
                continue
            seen[key] = entry
            entries.append((entry.key, tuple(self.spec(entry.value, in_config=True))))
        return ConfigValue(tuple(entries), None, body)
