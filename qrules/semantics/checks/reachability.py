"""Reachability: shadowed rules, dead optional steps, unused names, dead conditions.

Shadowing follows the matcher's acceptance order (``RuleEntry.rank``): a match
is accepted only if none of its nodes is taken. Rule A shadows a later rule B when,
wherever B matches, A matches too starting at the same node: A always applies
(no condition of its own beyond B's, at least B's scopes), and every expansion of
B starts with some expansion of A whose steps cover B's steps op-for-op and carry
no predicates. A's match then takes B's head node first.
"""

from __future__ import annotations

from qrules.diagnostics import Diagnostic, diagnostic, note
from qrules.semantics.analysis import Analysis
from qrules.semantics.expressions import contradictory
from qrules.semantics.patterns import Expansion, StepInfo, expand, optional_steps
from qrules.semantics.specs import SPEC_KINDS
from qrules.semantics.entries import RuleEntry
from qrules.syntax import ast, tree


def _covers(a: StepInfo, b: StepInfo) -> bool:
    if a.predicates:
        return False
    if a.region is not None or b.region is not None:
        return a.region is not None and b.region is not None and (
            a.region.selector_kind, a.region.selector) == (b.region.selector_kind,
                                                           b.region.selector)
    if a.is_any:
        return True
    return bool(b.targets()) and b.targets() <= a.targets()


def _prefix_covers(a: Expansion, b: Expansion) -> bool:
    return len(a.steps) <= len(b.steps) and all(
        _covers(x, y) for x, y in zip(a.steps, b.steps))


def _condition_keys(entry: RuleEntry) -> frozenset:
    return frozenset(tree.structure(c) for c in entry.conditions)


def _applies_wherever(a: RuleEntry, b: RuleEntry, keys: dict) -> bool:
    """A applies at least wherever B does: no extra conditions, no narrower scope
    (each scope of A lists at least the selectors of a scope of B of its kind)."""
    if not keys[id(a)] <= keys[id(b)]:
        return False
    return all(any(s.kind == t.kind and set(t.selectors) <= set(s.selectors)
                   for t in b.context.scopes) for s in a.context.scopes)


class _HeadIndex:
    """Earlier rules' expansions indexed by the targets of their predicate-free head
    step, so a rule is compared only with rules that can take its head node."""

    def __init__(self):
        self.by_target: dict[str, list[tuple[RuleEntry, Expansion]]] = {}
        self.wild: list[tuple[RuleEntry, Expansion]] = []

    def add(self, entry: RuleEntry, expansions: list[Expansion]) -> None:
        for expansion in expansions:
            head = expansion.steps[0]
            if head.predicates:
                continue
            if head.is_any or head.region is not None:
                self.wild.append((entry, expansion))
            else:
                for target in head.targets():
                    self.by_target.setdefault(target, []).append((entry, expansion))

    def candidates(self, expansion: Expansion):
        head = expansion.steps[0]
        targets = head.targets()
        if head.region is not None or not targets:
            return self.wild
        # A must cover every head target of B: the shortest per-target list suffices.
        shortest = min((self.by_target.get(t, []) for t in targets), key=len)
        return self.wild + shortest


def _shadower(index: _HeadIndex, expansion: Expansion, b: RuleEntry, keys: dict):
    for a, candidate in index.candidates(expansion):
        if _prefix_covers(candidate, expansion) and _applies_wherever(a, b, keys):
            return a
    return None


def check_shadowing(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    rules = analysis.symbols.active_rules()
    keys = {id(r): _condition_keys(r) for r in rules}
    index = _HeadIndex()
    for b in rules:
        expansions = analysis.expansions(b)
        if not expansions or b.rule.amend:  # amend rules match taken nodes too
            continue
        shadowers = [_shadower(index, e, b, keys) for e in expansions]
        index.add(b, expansions)
        if all(shadowers):
            a = shadowers[0]
            out.append(diagnostic(
                "QR401", f"rule `{b.name}` never matches: rule `{a.name}` runs first and "
                "matches wherever it would", b.rule.name_span,
                [note(message=f"`{a.name}` is here", span=a.rule.name_span)]))
            continue
        for step in optional_steps(b.rule.pattern):
            taking = [(e, s) for e, s in zip(expansions, shadowers) if id(step) in e.optionals]
            if taking and all(s is not None for _, s in taking):
                a = taking[0][1]
                out.append(diagnostic(
                    "QR402", f"this optional step never matches: rule `{a.name}` takes "
                    "every match that includes it", step.span,
                    [note(message=f"`{a.name}` is here", span=a.rule.name_span)]))
    return out


def check_unused(analysis: Analysis) -> list[Diagnostic]:
    """Specs, configs and parameters that a file defines and nothing uses.

    Only files that define rules are checked: a file of shared definitions exists
    to be included, so its names are used elsewhere.
    """
    symbols = analysis.symbols
    files_with_rules = {id(r.unit) for r in symbols.all_rules()}
    used = _used_names(analysis)
    out: list[Diagnostic] = []
    tables = (("spec", "QR403", symbols.specs), ("config", "QR404", symbols.configs))
    for what, code, table in tables:
        for name, definitions in table.items():
            first = definitions[0]
            if id(first.unit) in files_with_rules and name not in used[what]:
                out.append(diagnostic(code, f"{what} `{name}` is never used",
                                      first.node.name_span))
    for name, definition in symbols.params.items():
        if id(definition.unit) in files_with_rules and name not in used["param"]:
            out.append(diagnostic("QR405", f"parameter `{name}` is never used",
                                  definition.node.name_span))
    return out


def _used_names(analysis: Analysis) -> dict[str, set[str]]:
    symbols = analysis.symbols
    names: set[str] = set()
    roots: list = []
    for entry in symbols.all_rules():
        roots.append(entry.rule)
        roots.extend(entry.conditions)
    for table in (symbols.specs, symbols.configs):
        for definitions in table.values():
            for definition in definitions:
                roots.extend(definition.conditions)
                if definition is not definitions[0]:  # overrides use what they name
                    roots.append(definition.node.value)
    for definition in symbols.transforms:
        roots.append(definition.node)
        roots.extend(definition.conditions)
    for definitions in symbols.ops.values():
        for definition in definitions:
            roots.extend(definition.conditions)
    for _, context in symbols.disabled:  # `when legacy { disable rule x }` uses `legacy`
        roots.extend(context.conditions)
    for definition in symbols.scopings:  # `when exact { scoping nodes }` uses `exact`
        roots.extend(definition.conditions)
    for definition in symbols.dropped:  # duplicates (QR207): their uses still count
        roots.append(definition.node)
        roots.extend(definition.conditions)
    # Spec and config values are used only when their definition is used.
    pending = list(roots)
    visited: set[tuple[str, str]] = set()
    # The rules of a `when` block share its condition nodes: read each node once.
    read: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in read:
            continue
        read.add(id(node))
        for name in names_in(node):
            names.add(name)
            for kind, table in (("spec", symbols.specs), ("config", symbols.configs)):
                if name in table and (kind, name) not in visited:
                    visited.add((kind, name))
                    for definition in table[name]:
                        pending.append(definition.node.value)
    return {"spec": names, "config": names, "param": names}


def names_in(node: ast.Node) -> set[str]:
    """The names an expression reads: not a called function's name, nor a spec
    constructor's flag (`per_channel` in `symmetric(int8, -127..127, per_channel)` or
    `per_channel(axis=0)` reads no parameter `per_channel`)."""
    skipped: set[int] = set()
    names: set[str] = set()
    for n in tree.walk(node):  # a call comes before its arguments
        if isinstance(n, ast.Name):
            if id(n) not in skipped:
                names.add(n.id)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            skipped.add(id(n.func))
            if n.func.id in SPEC_KINDS:
                skipped.update(id(arg) for arg in n.args if isinstance(arg, ast.Name))
    return names


def check_conditions(analysis: Analysis) -> list[Diagnostic]:
    """Conditions that are false whatever the parameters are: on their own, or together
    with the conditions they are nested in (``when not qat { when qat { ... } }``)."""
    out: list[Diagnostic] = []
    seen: set[int] = set()
    ev = analysis.new_evaluator()  # only for the values: check_values reports on them
    params = analysis.symbols.params
    chains = [r.conditions for r in analysis.symbols.all_rules()]
    for table in (analysis.symbols.specs, analysis.symbols.configs):
        for definitions in table.values():
            chains.extend(d.conditions for d in definitions)
    for chain in chains:  # outermost first
        for depth, condition in enumerate(chain):
            if id(condition) in seen:
                continue
            seen.add(id(condition))
            if ev.condition(condition) is False or contradictory((condition,), params):
                out.append(diagnostic("QR406", "this condition is always false, so what it "
                                      "guards never applies", condition.span))
            elif contradictory(chain[:depth + 1], params):
                out.append(diagnostic(
                    "QR406", "this condition contradicts a condition it is nested in, so "
                    "what it guards never applies", condition.span,
                    [note(message="the enclosing condition", span=outer.span)
                     for outer in chain[:depth]]))
    return out



def check_extensions(analysis: Analysis) -> list[Diagnostic]:
    """QR417: an `extend rule` whose alternative never runs: the rule is disabled
    everywhere, or each of its expansions is one the rule's other alternatives already
    take (same length, each step accepting as much, no predicate in the way: the
    rule tries its expansions longest first, the earlier alternative first)."""
    symbols = analysis.symbols
    out: list[Diagnostic] = []
    for extension in symbols.extensions:
        name, node = extension.node.name, extension.node
        off = next((d for d, ctx in symbols.disabled
                    if d.what == "rule" and d.name == name and not ctx.conditions), None)
        if off is not None:
            out.append(diagnostic(
                "QR417", f"this alternative never runs: `disable rule {name}` turns the "
                "rule off", node.pattern.span, [note(message="disabled here", span=off.span)]))
            continue
        rule = next((r for r in symbols.rules if r.name == name), None)
        if rule is None:
            continue
        added = expand(node.pattern, analysis.resolver)
        out.extend(_unowned_steps(rule, added))
        others = [e for option in _without_last(rule.rule.pattern, node.pattern)
                  for e in expand(option, analysis.resolver)]
        if added and all(any(len(o.steps) == len(e.steps) and _prefix_covers(o, e)
                             for o in others) for e in added):
            out.append(diagnostic(
                "QR417", f"this alternative never runs: rule `{name}` already takes every "
                "match of it with an alternative it tries first", node.pattern.span,
                [note(message="the rule is here", span=rule.rule.name_span)]))
    return out


def _without_last(pattern, option) -> list:
    """The alternatives of ``pattern`` but the last one written like ``option``."""
    options = list(pattern.options if isinstance(pattern, ast.Alternation) else (pattern,))
    key = tree.structure(option)
    for index in reversed(range(len(options))):
        if tree.structure(options[index]) == key:
            del options[index]
            break
    return options


def _unowned_steps(rule: RuleEntry, added: list[Expansion]) -> list[Diagnostic]:
    """QR418: with `takes(...)`, a match owns (marks annotated) only what the list
    names; a step of the added alternative it does not name is annotated, not owned."""
    takes = rule.rule.takes
    if takes is None or any(k.role == "partition" for k in takes):
        return []
    named = {k.role for k in takes if k.step is None and k.index is None}
    out, seen = [], set()
    for expansion in added:
        for step in expansion.steps:
            if step.label in named or id(step.node) in seen or step.region is not None:
                continue
            seen.add(id(step.node))
            out.append(diagnostic(
                "QR418", f"rule `{rule.name}` takes({', '.join(map(str, takes))}) does not "
                f"name this step: its matches leave it unmarked; label it `as NAME` with a "
                "name the list has", step.node.span,
                [note(message="the takes list is here", span=takes[0].span)]))
    return out
