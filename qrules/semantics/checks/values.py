"""Values: every spec, config and condition evaluated, on every branch.

The evaluator reports unknown names, bad constructor arguments, ranges outside
their dtype, fixed qparams, observers and derived specs as it goes.
"""

from __future__ import annotations

from qrules.diagnostics import Diagnostic
from qrules.semantics.analysis import Analysis


def check_values(analysis: Analysis) -> list[Diagnostic]:
    ev = analysis.evaluator
    symbols = analysis.symbols
    for table in (symbols.specs, symbols.configs):
        for definitions in table.values():
            for definition in definitions:
                ev.conditions_hold(definition.conditions)
                with ev.assuming(definition.conditions):
                    if table is symbols.specs:
                        ev.spec(definition.node.value)
                    else:
                        ev.config(definition.node.value)
    for entry in symbols.all_rules():
        for condition in entry.conditions:
            ev.condition(condition)
        with ev.assuming(entry.conditions):
            ev.config(entry.rule.config)
    for definition in symbols.transforms:
        ev.conditions_hold(definition.conditions)
    return []  # the evaluator's findings are collected once, by the driver
