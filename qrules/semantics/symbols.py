"""Collect every definition and rule of a loaded ruleset, with its context.

Walks the spliced items (prelude, includes, root) once, carrying the enclosing
phase, scopes and ``when`` conditions down into blocks. Produces the symbol tables
the checks read. Duplicates, overrides of undefined names and misplaced headers are
reported here; everything else is left to the checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from qrules.diagnostics import Diagnostic, Note, diagnostic, note
from qrules.semantics.entries import (
    MAIN_PHASE, Context, Definition, Extension, RuleEntry, ScopeRef, extended, under_conditions,
)
from qrules.semantics.loader import Loaded, Unit
from qrules.syntax import ast

@dataclass
class Symbols:
    name: str = "<unnamed>"
    version: Optional[str] = None
    header: Optional[ast.Header] = None
    params: dict[str, Definition] = field(default_factory=dict)
    ops: dict[str, list[Definition]] = field(default_factory=dict)
    specs: dict[str, list[Definition]] = field(default_factory=dict)
    configs: dict[str, list[Definition]] = field(default_factory=dict)
    rules: list[RuleEntry] = field(default_factory=list)
    #: `override rule` items inside `when` blocks: each is in force only when its
    #: block's conditions hold, so the original stays for the other case.
    overrides: dict[str, list[RuleEntry]] = field(default_factory=dict)
    scopes: list[ast.Scope] = field(default_factory=list)
    disabled: list[tuple[ast.Disable, Context]] = field(default_factory=list)
    transforms: list[Definition] = field(default_factory=list)
    #: `pattern NAME = …` items; rules hold their patterns already substituted.
    patterns: dict[str, Definition] = field(default_factory=dict)
    #: `annotation NAME` items (a ruleset has at most one; checks report the rest).
    annotation_kinds: list[Definition] = field(default_factory=list)
    #: `scoping MODE` items with the conditions they hold under (the last in force wins).
    scopings: list[Definition] = field(default_factory=list)
    #: `extend rule` items, in file order; those inside `when` blocks are applied
    #: when the ruleset is bound, the others already are in ``rules``.
    extensions: list[Extension] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    #: Phases declared `per node` at their first block.
    per_node_phases: set[str] = field(default_factory=set)
    units: tuple[Unit, ...] = ()
    #: The root file's unit (``Loaded.root``): its header names the ruleset.
    root: Optional[Unit] = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Items dropped with a QR207/QR212 error. Not in force, but what they name is
    #: not "never used" (QR403-405) while the author fixes the duplicate.
    dropped: list = field(default_factory=list)

    def all_rules(self) -> list[RuleEntry]:
        """Every rule entry, conditional overrides and extensions included (for checks)."""
        by_name = {r.name: r for r in self.rules}
        conditional = [under_conditions(extended(by_name[e.node.name], e.node.pattern),
                                        e.conditions)
                       for e in self.extensions if e.conditions and e.node.name in by_name]
        return self.rules + [o for group in self.overrides.values() for o in group] + \
            conditional

    def active_rules(self) -> list[RuleEntry]:
        """Rules after ``disable rule`` (unconditional disables only) and overrides."""
        off = {d.name for d, ctx in self.disabled if d.what == "rule" and not ctx.conditions}
        return sorted((r for r in self.rules if r.name not in off), key=lambda r: r.rank)


def _first_note(definition: Definition, what: str) -> Note:
    node = definition.node
    span = getattr(node, "name_span", None) or node.span
    return note(message=f"{what} first defined here", span=span)


class _Collector:
    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.symbols = Symbols(units=loaded.units, root=loaded.root)
        self.rule_order = 0
        self.rule_names: dict[str, RuleEntry] = {}
        self.phase_blocks: dict[str, ast.Phase] = {}   # each phase's first block

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.symbols.diagnostics

    def run(self) -> Symbols:
        root = self.loaded.root
        for unit in self.loaded.units:
            self._check_header_position(unit)
        if root is not None:
            self.symbols.name = self._ruleset_of(root)
            header = root.file.header
            if header is not None:
                self.symbols.version, self.symbols.header = header.version, header
        for unit, item in self.loaded.items:
            self.item(unit, item, Context())
        self._drop_patterns_named_like_ops()
        if self.symbols.patterns:
            self._substitute_patterns()
        return self.symbols

    # ------------------------------------------------------------ named patterns
    def _patterndef(self, unit, item: ast.PatternDef, ctx):
        # A pattern is vocabulary, like an op: one meaning for the whole ruleset.
        if not self._top_level_only(item, ctx, "`pattern` defines vocabulary for the "
                                    "whole ruleset"):
            return
        first = self.symbols.patterns.get(item.name)
        if first is not None:
            self.diagnostics.append(diagnostic(
                "QR207", f"pattern `{item.name}` is already defined", item.name_span,
                [note(message="first defined here", span=first.node.name_span)]))
            return
        self.symbols.patterns[item.name] = Definition(item, unit, ctx.conditions)

    def _drop_patterns_named_like_ops(self) -> None:
        """A name is an op or a pattern, never both; checked once every op is known,
        since the op may come after the pattern (or from the prelude, before it)."""
        for name in [n for n in self.symbols.patterns if n in self.symbols.ops]:
            pattern = self.symbols.patterns.pop(name).node
            self.diagnostics.append(diagnostic(
                "QR207", f"`{name}` names both an op and a pattern", pattern.name_span,
                [note(message="the op is defined here",
                      span=self.symbols.ops[name][0].node.name_span)]))

    def _top_level_only(self, item, ctx: Context, what: str) -> bool:
        """Ruleset-wide items (`pattern`, `annotation`): QR110 inside a block."""
        if ctx != Context():
            self.diagnostics.append(diagnostic(
                "QR110", f"{what}; it cannot be inside a block", item.span))
            return False
        return True

    def _substitute_patterns(self) -> None:
        """Rules see a named pattern's body where they name it, as if written there:
        every later check and the compiler work on the substituted pattern."""
        def swap(entry: RuleEntry) -> RuleEntry:
            pattern = self._expand_names(entry.rule.pattern, ())
            if pattern is entry.rule.pattern:
                return entry
            return dataclasses.replace(entry, rule=entry.rule.model_copy(
                update={"pattern": pattern}))

        self.symbols.rules = [swap(e) for e in self.symbols.rules]
        for name, group in self.symbols.overrides.items():
            self.symbols.overrides[name] = [swap(e) for e in group]
        self.symbols.extensions = [dataclasses.replace(e, node=e.node.model_copy(update={
            "pattern": self._expand_names(e.node.pattern, ())})) for e in self.symbols.extensions]

    def _expand_names(self, node, stack: tuple[str, ...]):
        if isinstance(node, ast.OpRef):
            definition = self.symbols.patterns.get(node.name)
            if definition is None:
                return node
            if node.name in stack:
                self.diagnostics.append(diagnostic(
                    "QR221", f"pattern `{node.name}` refers to itself", node.span))
                return node
            return self._expand_names(definition.node.pattern, stack + (node.name,))
        if isinstance(node, ast.Step):
            atom = self._expand_names(node.atom, stack)
            return node if atom is node.atom else node.model_copy(update={"atom": atom})
        if isinstance(node, (ast.Chain, ast.Alternation)):
            field_name = "steps" if isinstance(node, ast.Chain) else "options"
            parts = tuple(self._expand_names(p, stack) for p in getattr(node, field_name))
            if all(a is b for a, b in zip(parts, getattr(node, field_name))):
                return node
            return node.model_copy(update={field_name: parts})
        return node

    def _check_header_position(self, unit: Unit) -> None:
        headers = [i for i in unit.file.items if isinstance(i, ast.Header)]
        for extra in headers[1:]:
            self.diagnostics.append(diagnostic(
                "QR110", "a file has one `ruleset` header", extra.span,
                [note(message="the header is here", span=headers[0].span)]))
        if headers and unit.file.items[0] is not headers[0]:
            self.diagnostics.append(diagnostic(
                "QR110", "the `ruleset` header must be the first item of its file",
                headers[0].span))

    def _ruleset_of(self, unit: Unit) -> str:
        header = unit.file.header
        if header is not None:
            return header.name
        return unit.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]

    # ------------------------------------------------------------------ items
    def item(self, unit: Unit, item, ctx: Context) -> None:
        self._HANDLERS[type(item)](self, unit, item, ctx)

    def _header(self, unit, item, ctx):
        if ctx != Context():
            self.diagnostics.append(diagnostic(
                "QR110", "a `ruleset` header cannot be inside a block", item.span))

    def _param(self, unit, item: ast.Param, ctx):
        first = self.symbols.params.get(item.name)
        if first is not None:
            self.diagnostics.append(diagnostic(
                "QR207", f"parameter `{item.name}` is defined twice", item.name_span,
                [_first_note(first, "parameter")]))
            return
        self.symbols.params[item.name] = Definition(item, unit, ctx.conditions)

    def _define(self, table: dict, what: str, unit, item, ctx) -> None:
        existing = table.get(item.name)
        definition = Definition(item, unit, ctx.conditions)
        if item.override:
            if not existing:
                self.diagnostics.append(diagnostic(
                    "QR212", f"`override {what} {item.name}`: no {what} `{item.name}` is "
                    "defined before this", item.name_span))
                self.symbols.dropped.append(definition)
                return
            existing.append(definition)
            return
        if existing:
            self.diagnostics.append(diagnostic(
                "QR207", f"{what} `{item.name}` is already defined; write `override "
                f"{what} {item.name}` to replace it", item.name_span,
                [_first_note(existing[0], what)]))
            self.symbols.dropped.append(definition)
            return
        table[item.name] = [definition]

    def _opdef(self, unit, item, ctx):
        self._define(self.symbols.ops, "op", unit, item, ctx)

    def _opalias(self, unit, item, ctx):
        self._define(self.symbols.ops, "op", unit, item, ctx)

    def _specdef(self, unit, item, ctx):
        self._define(self.symbols.specs, "spec", unit, item, ctx)

    def _configdef(self, unit, item, ctx):
        self._define(self.symbols.configs, "config", unit, item, ctx)

    def _rule(self, unit, item: ast.Rule, ctx):
        if ctx.phase not in self.symbols.phases:
            self.symbols.phases.append(ctx.phase)
        entry = RuleEntry(rule=item, unit=unit, ruleset=self._ruleset_of(unit), context=ctx,
                          phase_index=self.symbols.phases.index(ctx.phase),
                          order=self.rule_order,
                          per_node=ctx.phase in self.symbols.per_node_phases)
        self.rule_order += 1
        first = self.rule_names.get(item.name)
        if item.override:
            if first is None:
                self.diagnostics.append(diagnostic(
                    "QR212", f"`override rule {item.name}`: no rule `{item.name}` is "
                    "defined before this", item.name_span))
                self.symbols.dropped.append(Definition(item, unit, entry.conditions))
                return
            # The override takes the original's place in the order, so priorities
            # and file order of the base ruleset are kept.
            entry = RuleEntry(rule=item, unit=unit, ruleset=entry.ruleset, context=ctx,
                              phase_index=first.phase_index, order=first.order,
                              per_node=first.per_node)
            if ctx.conditions:
                self.symbols.overrides.setdefault(item.name, []).append(entry)
                return
            self.symbols.rules[self.symbols.rules.index(first)] = entry
            self.rule_names[item.name] = entry
            return
        if first is not None:
            self.diagnostics.append(diagnostic(
                "QR207", f"rule `{item.name}` is already defined; write `override rule "
                f"{item.name}` to replace it", item.name_span,
                [note(message="rule first defined here", span=first.rule.name_span)]))
            self.symbols.dropped.append(Definition(item, unit, entry.conditions))
            return
        self.rule_names[item.name] = entry
        self.symbols.rules.append(entry)

    def _extendrule(self, unit, item: ast.ExtendRule, ctx):
        if ctx.scopes or ctx.phase != MAIN_PHASE:
            self.diagnostics.append(diagnostic(
                "QR119", f"`extend rule {item.name}` inside a `scope` or `phase` block: the "
                "alternative takes the rule's own scope and phase; write it at the top level "
                "or inside `when`", item.span))
            return
        first = self.rule_names.get(item.name)
        if first is None:
            self.diagnostics.append(diagnostic(
                "QR239", f"`extend rule {item.name}`: no rule `{item.name}` is defined "
                "before this", item.name_span))
            self.symbols.dropped.append(Definition(item, unit, ctx.conditions))
            return
        if first.unit is unit:
            self.diagnostics.append(diagnostic(
                "QR240", f"rule `{item.name}` is defined in this file: add the alternative "
                "to its pattern", item.name_span,
                [note(message="the rule is here", span=first.rule.name_span)]))
        self.symbols.extensions.append(Extension(item, unit, ctx.conditions))
        if ctx.conditions:
            return   # applied when bound, only where the conditions hold
        entry = extended(first, item.pattern)
        self.symbols.rules[self.symbols.rules.index(first)] = entry
        self.rule_names[item.name] = entry
        # Overrides made so far are definitions of the rule too: they get it as well.
        group = self.symbols.overrides.get(item.name)
        if group:
            self.symbols.overrides[item.name] = [extended(e, item.pattern) for e in group]

    def _scope(self, unit, item: ast.Scope, ctx):
        self.symbols.scopes.append(item)
        conditions = ctx.conditions + ((item.condition,) if item.condition else ())
        inner = Context(ctx.phase, ctx.scopes + (ScopeRef(item.selector_kind, item.selectors,
                                                          item),), conditions)
        for child in item.items:
            self.item(unit, child, inner)

    def _phase(self, unit, item: ast.Phase, ctx):
        if item.mode is not None and not item.per_node:
            self.diagnostics.append(diagnostic(
                "QR112", f"`phase {item.name} {item.mode}`: a phase is plain or `per node`",
                item.mode_span or item.name_span))
        first = self.phase_blocks.get(item.name)
        if first is None:
            self.phase_blocks[item.name] = item
            if item.name not in self.symbols.phases:
                self.symbols.phases.append(item.name)
            if item.per_node:
                self.symbols.per_node_phases.add(item.name)
        elif first.per_node != item.per_node:
            # Rules of one phase run in one order; a block cannot change it.
            how = "per node" if first.per_node else "rule by rule"
            self.diagnostics.append(diagnostic(
                "QR224", f"phase `{item.name}` runs {how}, as its first block says; this "
                f"block {'does not say' if first.per_node else 'says'} `per node`",
                item.mode_span or item.name_span,
                [note(message="first block of the phase", span=first.name_span)]))
        inner = Context(item.name, ctx.scopes, ctx.conditions)
        for child in item.items:
            self.item(unit, child, inner)

    def _when(self, unit, item: ast.When, ctx):
        inner = Context(ctx.phase, ctx.scopes, ctx.conditions + (item.condition,))
        for child in item.items:
            self.item(unit, child, inner)

    def _disable(self, unit, item: ast.Disable, ctx):
        self.symbols.disabled.append((item, ctx))

    def _transform(self, unit, item: ast.Transform, ctx):
        self.symbols.transforms.append(Definition(item, unit, ctx.conditions))

    def _annotationkind(self, unit, item: ast.AnnotationKind, ctx):
        # What a ruleset writes is one choice for all its rules, like its name.
        if self._top_level_only(item, ctx,
                                "`annotation` sets what the whole ruleset writes"):
            self.symbols.annotation_kinds.append(Definition(item, unit, ctx.conditions))

    def _scoping(self, unit, item: ast.Scoping, ctx):
        # Inside a `when` block it holds under the block's conditions (xnnpack's
        # `exact_scopes`); a scope or phase block would suggest it were theirs alone.
        if ctx.scopes or ctx.phase != MAIN_PHASE:
            self.diagnostics.append(diagnostic(
                "QR110", "`scoping` sets how the whole ruleset is scoped; it cannot be "
                "inside a scope or phase block", item.span))
            return
        self.symbols.scopings.append(Definition(item, unit, ctx.conditions))

    def _include(self, unit, item, ctx):
        # Top-level includes were spliced by the loader; one inside a block would
        # make a file's definitions conditional, which the language does not have.
        self.diagnostics.append(diagnostic(
            "QR111", "`include` must be a top-level item, not inside a block", item.span))

    #: What each kind of item adds to the symbol tables.
    _HANDLERS = {
        ast.Header: _header, ast.Include: _include, ast.Param: _param, ast.OpDef: _opdef,
        ast.OpAlias: _opalias, ast.SpecDef: _specdef, ast.ConfigDef: _configdef,
        ast.Rule: _rule, ast.Scope: _scope, ast.Phase: _phase, ast.When: _when,
        ast.Disable: _disable, ast.Transform: _transform,
        ast.AnnotationKind: _annotationkind, ast.PatternDef: _patterndef,
        ast.ExtendRule: _extendrule, ast.Scoping: _scoping,
    }


def collect(loaded: Loaded) -> Symbols:
    return _Collector(loaded).run()
