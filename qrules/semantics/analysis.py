"""What every check reads: the symbols, op resolution, rule expansions, an evaluator.

Built once per checked ruleset; checks take it and return diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from qrules.diagnostics import Diagnostic
from qrules.semantics.evaluate import Evaluator
from qrules.semantics.patterns import Expansion, OpResolver, expand
from qrules.semantics.symbols import RuleEntry, Symbols


@dataclass
class Analysis:
    symbols: Symbols
    resolver: OpResolver
    evaluator: Evaluator
    _expansions: dict[int, list[Expansion]] = field(default_factory=dict)

    @classmethod
    def of(cls, symbols: Symbols) -> "Analysis":
        return cls(symbols, OpResolver(symbols.ops), Evaluator(symbols))

    def expansions(self, entry: RuleEntry) -> list[Expansion]:
        key = id(entry.rule)
        if key not in self._expansions:
            self._expansions[key] = expand(entry.rule.pattern, self.resolver)
        return self._expansions[key]

    def is_user_definition(self, definition) -> bool:
        """Definitions from the prelude are the vocabulary, not the user's to fix."""
        return not definition.in_prelude


Check = Callable[[Analysis], list[Diagnostic]]
