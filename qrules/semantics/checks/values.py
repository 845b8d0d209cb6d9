"""Values: every spec, config and condition evaluated, on every branch.

The evaluator reports unknown names, bad constructor arguments, ranges outside
their dtype, fixed qparams, observers and derived specs as it goes; this check
owns those findings. Other checks that need values use evaluators of their own and
leave the reporting to this one.
"""

from __future__ import annotations

from qrules.diagnostics import Diagnostic
from qrules.semantics.analysis import Analysis


def check_values(analysis: Analysis) -> list[Diagnostic]:
    ev = analysis.new_evaluator()
    symbols = analysis.symbols
    for table in (symbols.specs, symbols.configs):
        for definitions in table.values():
            for definition in definitions:
                _conditions(ev, definition.conditions)
                with ev.assuming(definition.conditions):
                    if table is symbols.specs:
                        ev.spec(definition.node.value)
                    else:
                        ev.config(definition.node.value)
    for entry in symbols.all_rules():
        _conditions(ev, entry.conditions)
        with ev.assuming(entry.conditions):
            ev.config(entry.rule.config)
    for definition in symbols.transforms:
        ev.conditions_hold(definition.conditions)
    return ev.diagnostics


def _conditions(ev, conditions) -> None:
    """Every condition, even after one that is always false (QR406 is reported on
    each of them, so each is checked)."""
    for condition in conditions:
        ev.condition(condition)
