"""What every check reads: the symbols, op resolution, rule expansions, evaluators.

Built once per checked ruleset; checks take it and return diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qrules.semantics.evaluate import Evaluator
from qrules.semantics.patterns import Expansion, OpResolver, expand
from qrules.semantics.entries import RuleEntry
from qrules.semantics.symbols import Symbols


@dataclass
class Analysis:
    symbols: Symbols
    resolver: OpResolver
    _expansions: dict[int, list[Expansion]] = field(default_factory=dict)
    _evaluations: dict[tuple, tuple] = field(default_factory=dict)

    @classmethod
    def of(cls, symbols: Symbols) -> "Analysis":
        return cls(symbols, OpResolver(symbols.ops))

    def new_evaluator(self) -> Evaluator:
        """An evaluator of the check's own: what it reports (``diagnostics``) is what
        that check's evaluations found, whatever other checks ran before. Evaluations
        of named specs and configs are remembered across them (replayed, reports
        included, so nothing depends on which check ran first)."""
        return Evaluator(self.symbols, memo=self._evaluations)

    def expansions(self, entry: RuleEntry) -> list[Expansion]:
        key = id(entry.rule)
        if key not in self._expansions:
            self._expansions[key] = expand(entry.rule.pattern, self.resolver)
        return self._expansions[key]

