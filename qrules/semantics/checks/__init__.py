"""The semantic checks, in the order they run. Each takes an Analysis and returns
diagnostics; none raises, none mutates the symbols."""

from qrules.semantics.checks.definitions import (
    check_annotation_kinds, check_disables, check_ops, check_params, check_scopes,
    check_scoping, check_transforms,
)
from qrules.semantics.checks.reachability import (
    check_conditions, check_extensions, check_shadowing, check_unused,
)
from qrules.semantics.checks.rules import check_rules
from qrules.semantics.checks.style import check_style
from qrules.semantics.checks.values import check_values

CHECKS = (
    check_params, check_ops, check_scopes, check_transforms, check_annotation_kinds,
    check_disables, check_scoping,
    check_values, check_rules, check_shadowing, check_unused, check_conditions,
    check_style, check_extensions,
)

__all__ = ["CHECKS"]
