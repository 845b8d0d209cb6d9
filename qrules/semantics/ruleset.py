"""The checked ruleset, and binding its parameters.

``check_loaded`` runs every check over a loaded ruleset and returns a ``Ruleset``
(immutable, with all diagnostics). ``Ruleset.bind(**params)`` evaluates every
condition under the given parameters and returns a ``BoundRuleset``: the rules in
force in matching order, each with its one config, plus the transforms to run.
That is what the compiler turns into matchers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from qrules.diagnostics import Diagnostic, Severity, diagnostic, has_errors
from qrules.errors import QruleError
from qrules.semantics import registry
from qrules.semantics.analysis import Analysis
from qrules.semantics.checks import CHECKS
from qrules.semantics.checks.reachability import names_in
from qrules.semantics.evaluate import ConfigValue, Evaluator
from qrules.semantics.loader import PRELUDE, Loaded
from qrules.semantics.patterns import OpResolver
from qrules.semantics.entries import RuleEntry, extended
from qrules.semantics.symbols import Symbols, collect
from qrules.span import Span
from qrules.syntax import ast
from qrules.syntax.parser import blank_strings_and_comments


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    choices: tuple[str, ...]
    default: Any
    span: Span


@dataclass(frozen=True)
class BoundRule:
    entry: RuleEntry
    config: Optional[ConfigValue]     # None: "leave in float"

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def location(self) -> str:
        return str(self.entry.rule.name_span)


@dataclass(frozen=True)
class BoundTransform:
    name: str
    kwargs: tuple[tuple[str, Any], ...]
    span: Span
    after_annotate: bool = False   # runs once the annotations are written


@dataclass(frozen=True)
class BoundRuleset:
    name: str
    version: Optional[str]
    params: dict[str, Any]
    rules: tuple[BoundRule, ...]
    transforms: tuple[BoundTransform, ...]
    phases: tuple[str, ...]
    resolver: OpResolver
    annotation_kind: Optional[str] = None   # `annotation NAME`; None: torchao's own
    # Rules these parameters turn off, with why (the false `when`, or the `disable`),
    # so explain can say "rule R is off here" rather than "no rule for this op".
    off: tuple[tuple[BoundRule, str, Span], ...] = ()
    scoping: str = "nodes"   # `scoping MODE` in force (docs/language.md)


@dataclass(frozen=True)
class Ruleset:
    name: str
    version: Optional[str]
    params: dict[str, ParamInfo]
    symbols: Symbols
    diagnostics: tuple[Diagnostic, ...]
    sources: dict

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    def bind(self, **values: Any) -> BoundRuleset:
        """Set parameters (defaults for the rest) and resolve every condition.

        Raises QruleError naming the parameter for an unknown name, a wrong type or
        an enum value outside its choices, and for any error already in the ruleset.
        """
        if not self.ok:
            raise QruleError([d for d in self.diagnostics if d.severity is Severity.ERROR],
                             self.sources)
        bound = self._param_values(values)
        ev = Evaluator(self.symbols, bound)
        rules, off = [], []
        for base in self.symbols.active_rules():
            entry = base
            for override in self.symbols.overrides.get(base.name, ()):
                if ev.conditions_hold(override.context.conditions) is True:
                    entry = override  # the last conditional override in force wins
            for extension in self.symbols.extensions:
                if extension.conditions and extension.node.name == entry.name and \
                        ev.conditions_hold(extension.conditions) is True:
                    entry = extended(entry, extension.node.pattern)
            if ev.conditions_hold(entry.conditions) is not True:
                off.append(self._off_by_condition(entry, ev))
                continue
            if self._disabled(entry.name, "rule", ev):
                off.append((BoundRule(entry, None), "disabled by `disable rule`",
                            entry.rule.name_span))
                continue
            configs = ev.config(entry.rule.config)
            rules.append(BoundRule(entry, configs[0] if configs else None))
        transforms = []
        for definition in self.symbols.transforms:
            node: ast.Transform = definition.node
            if ev.conditions_hold(definition.conditions) is True and not self._disabled(
                    node.name, "transform", ev):
                transforms.append(BoundTransform(node.name, _transform_kwargs(node, ev),
                                                 node.span, node.after_annotate))
        if has_errors(ev.diagnostics):  # only parameter-dependent values can get here
            raise QruleError(ev.diagnostics, self.sources)
        return BoundRuleset(self.name, self.version, bound, tuple(rules), tuple(transforms),
                            tuple(self.symbols.phases),
                            OpResolver(self.symbols.ops, pick=lambda defs: (
                                ev.in_force(defs) or defs[:1])[0]),
                            self._annotation_kind(), tuple(off), self._scoping(ev))

    def _off_by_condition(self, entry: RuleEntry, ev: Evaluator) -> tuple:
        failed = next(c for c in entry.conditions if ev.conditions_hold((c,)) is not True)
        text = self.sources.get(failed.span.file, "")[failed.span.start:failed.span.end]
        return BoundRule(entry, None), f"`when {text}` is false", failed.span

    def _scoping(self, ev: Evaluator) -> str:
        """The last `scoping` item whose `when` conditions hold; `nodes` without one."""
        modes = [d.node.mode for d in self.symbols.scopings
                 if ev.conditions_hold(d.conditions) is True]
        return modes[-1] if modes else "nodes"

    def _annotation_kind(self) -> Optional[str]:
        kinds = self.symbols.annotation_kinds
        return kinds[0].node.name if kinds else None

    def _disabled(self, name: str, what: str, ev: Evaluator) -> bool:
        return any(node.what == what and node.name == name and
                   ev.conditions_hold(ctx.conditions) is True
                   for node, ctx in self.symbols.disabled)

    def _param_values(self, values: dict[str, Any]) -> dict[str, Any]:
        errors = []
        here = Span.point(f"<{self.name} parameters>", 1, 1)
        for name, value in values.items():
            info = self.params.get(name)
            if info is None:
                known = ", ".join(sorted(self.params)) or "none"
                errors.append(diagnostic("QR204", f"ruleset `{self.name}` has no parameter "
                                         f"`{name}` (its parameters: {known})", here))
                continue
            problem = _type_problem(info, value)
            if problem:
                errors.append(diagnostic("QR301", f"parameter `{name}`: {problem}", info.span))
        missing = [p for p in self.params.values() if p.name not in values and p.default is None]
        for info in missing:
            errors.append(diagnostic("QR301", f"parameter `{info.name}` has no default; pass "
                                     f"`{info.name}=...`", info.span))
        if errors:
            raise QruleError(errors, self.sources)
        return {**{p.name: p.default for p in self.params.values()}, **values}


def _transform_kwargs(node: ast.Transform, ev: Evaluator) -> tuple[tuple[str, Any], ...]:
    """Keyword values; an op-list keyword (``ops=[add, mul]``) keeps its op names,
    which the compiler resolves to overloads with the rest of the vocabulary."""
    entry = registry.TRANSFORMS.get(node.name)
    op_kwargs = entry.op_kwargs if entry is not None else frozenset()
    return tuple((k.name, tuple(item.id for item in k.value.items)
                  if k.name in op_kwargs else ev.value(k.value).value)
                 for k in node.kwargs)


def _type_problem(info: ParamInfo, value: Any) -> Optional[str]:
    expected = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,),
                "enum": (str,)}[info.type]
    if isinstance(value, bool) and info.type != "bool":
        return f"expected {info.type}, got bool {value!r}"
    if not isinstance(value, expected):
        return f"expected {info.type}, got {type(value).__name__} {value!r}"
    if info.type == "enum" and value not in info.choices:
        return f"{value!r} is not one of {', '.join(info.choices)}"
    return None


def _params(symbols: Symbols, ev: Evaluator) -> dict[str, ParamInfo]:
    out = {}
    for name, definition in symbols.params.items():
        node: ast.Param = definition.node
        default = None
        if node.default is not None:
            if node.type.name == "enum" and isinstance(node.default, ast.Name):
                default = node.default.id
            else:
                default = ev.value(node.default).value
        out[name] = ParamInfo(name, node.type.name, node.type.choices, default, node.span)
    return out


#: "No such name" codes, and "never used" codes: both are wrong when the definition,
#: or the use, sits in an item that did not parse.
_UNKNOWN_NAME = frozenset({"QR201", "QR202", "QR203", "QR204", "QR206", "QR212"})
_UNUSED_NAME = frozenset({"QR403", "QR404", "QR405"})
#: The item keywords whose items define what those codes look up: ops, specs,
#: configs, parameters and rules. A subset of the grammar's item keywords chosen by
#: meaning (tests/test_one_copy.py checks that each still is one).
DEFINING_KEYWORDS = ("op", "spec", "config", "param", "rule")


@lru_cache(maxsize=1)
def _name_regexes() -> tuple[re.Pattern, re.Pattern]:
    """A defining item's name, and any name, as the grammar spells a name."""
    from qrules.syntax.grammar import name_pattern  # lark: only after a syntax error

    name = name_pattern()
    return (re.compile(r"\b(?:%s)\s+(%s)" % ("|".join(DEFINING_KEYWORDS), name)),
            re.compile(name))


def _without_cascades(found: list[Diagnostic], loaded: Loaded,
                      symbols: Symbols) -> list[Diagnostic]:
    """Drop what only follows from a syntax error: a name defined in an item that did
    not parse is not "unknown", and a name used only there (directly, or through the
    specs and configs it names) is not "never used"."""
    if not loaded.unparsed:
        return found
    defining, any_name = _name_regexes()
    masked = [blank_strings_and_comments(chunk) for chunk in loaded.unparsed]
    defined = {m.group(1) for chunk in masked for m in defining.finditer(chunk)}
    mentioned = {m.group() for chunk in masked for m in any_name.finditer(chunk)}
    pending = list(mentioned)
    while pending:
        name = pending.pop()
        for table in (symbols.specs, symbols.configs):
            for definition in table.get(name, ()):
                for used in names_in(definition.node.value) - mentioned:
                    mentioned.add(used)
                    pending.append(used)

    def name_at(d: Diagnostic) -> str:
        text = loaded.sources.get(d.span.file, "")
        return text[d.span.start:d.span.end]

    return [d for d in found
            if not (d.code in _UNKNOWN_NAME and name_at(d) in defined)
            and not (d.code in _UNUSED_NAME and name_at(d) in mentioned)]


def check_loaded(loaded: Loaded, keep_prelude: bool = False) -> Ruleset:
    symbols = collect(loaded)
    analysis = Analysis.of(symbols)
    found: list[Diagnostic] = list(loaded.diagnostics) + list(symbols.diagnostics)
    for check in CHECKS:
        found.extend(check(analysis))
    if not keep_prelude:
        prelude_names = {u.name for u in loaded.units if u.path is not None
                         and u.path.stem == PRELUDE}
        found = [d for d in found if d.span.file not in prelude_names]
    found = _without_cascades(found, loaded, symbols)
    unique = {(d.code, d.span.file, d.span.start, d.message): d for d in found}
    diagnostics = tuple(sorted(unique.values(), key=Diagnostic.sort_key))
    return Ruleset(symbols.name, symbols.version, _params(symbols, Evaluator(symbols)),
                   symbols, diagnostics, dict(loaded.sources))
