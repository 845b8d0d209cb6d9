"""Definitions: parameters, ops and aliases, scopes, transforms, disables."""

from __future__ import annotations

import re

from qrules.diagnostics import Diagnostic, diagnostic, did_you_mean, note
from qrules.semantics import registry
from qrules.semantics.analysis import Analysis
from qrules.semantics.patterns import repeated_alternatives
from qrules.syntax import ast

_TARGET = re.compile(r"^aten\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$|"
                     r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


def check_params(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    ev = analysis.new_evaluator()
    for definition in analysis.symbols.params.values():
        param: ast.Param = definition.node
        kind = param.type.name
        if kind not in registry.PARAM_TYPES:
            out.append(diagnostic("QR219", f"unknown parameter type `{kind}` (known: "
                                  f"{', '.join(sorted(registry.PARAM_TYPES))})",
                                  param.type.span))
            continue
        if kind == "enum" and not param.type.choices:
            out.append(diagnostic("QR219", "an enum lists its choices: `enum(a, b)`",
                                  param.type.span))
            continue
        if kind != "enum" and param.type.choices:
            out.append(diagnostic("QR219", f"`{kind}` takes no choices", param.type.span))
        if param.default is None:
            continue
        if kind == "enum":
            default = param.default
            value = default.id if isinstance(default, ast.Name) else getattr(default, "value", None)
            if not isinstance(default, (ast.Name, ast.StringLit)) or \
                    value not in param.type.choices:
                out.append(diagnostic("QR311", f"the default of `{param.name}` must be one "
                                      f"of {', '.join(param.type.choices)}", default.span))
            continue
        typed = ev.value(param.default)
        if typed.type not in (kind, "unknown") and not (kind == "float" and typed.type == "int"):
            out.append(diagnostic("QR301", f"the default of `{param.name}: {kind}` is "
                                  f"{typed.type}", param.default.span))
    return out + ev.diagnostics


def check_ops(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    resolver = analysis.resolver
    for name, definitions in analysis.symbols.ops.items():
        for definition in definitions:
            node = definition.node
            if isinstance(node, ast.OpDef):
                out.extend(_check_op_def(node))
                continue
            resolver.resolve(name)  # first, so a cycle is reported at the alias
            out.extend(repeated_alternatives(node.members, resolver, "this alias"))
            for member in node.members:
                if member.name not in analysis.symbols.ops:
                    out.append(diagnostic("QR201", f"unknown op `{member.name}`", member.span))
    for name, node in resolver.cycles:
        out.append(diagnostic("QR221", f"op alias `{name}` refers back to itself",
                              node.name_span))
    return out


def _check_op_def(node: ast.OpDef) -> list[Diagnostic]:
    out = []
    for target, span in zip(node.targets, node.target_spans):
        if not _TARGET.match(target):
            out.append(diagnostic("QR216", f"`{target}` is not `namespace.op.overload` "
                                  "(e.g. `aten.conv2d.default`)", span))
    outputs = [r for r in node.roles if r.role == "output"]
    for role in outputs:
        if role.through is None:
            out.append(diagnostic("QR310", "`output` can only be bound through a getitem: "
                                  "`output: item(0)`", role.span))
    for role in node.roles:
        if role.through is not None and (role.role != "output" or role.through != "item"):
            out.append(diagnostic("QR310", "only `output: item(N)` is supported", role.span))
    return out


def check_scopes(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for scope in analysis.symbols.scopes:  # every scope block, with or without rules
        if scope.selector_kind not in registry.SCOPE_KINDS:
            out.append(diagnostic("QR217", f"unknown scope kind `{scope.selector_kind}` "
                                  f"(known: {', '.join(sorted(registry.SCOPE_KINDS))})",
                                  scope.kind_span or scope.span))
        elif scope.selector_kind == "operator":
            out.extend(diagnostic("QR201", f"unknown op `{selector}`", span)
                       for selector, span in zip(scope.selectors, scope.selector_spans)
                       if selector not in analysis.symbols.ops)
    return out


def check_annotation_kinds(analysis: Analysis) -> list[Diagnostic]:
    """`annotation NAME`: a registered kind, once per ruleset (the collector rejects
    one inside a block)."""
    out: list[Diagnostic] = []
    first = None
    for definition in analysis.symbols.annotation_kinds:
        node: ast.AnnotationKind = definition.node
        if node.name not in registry.ANNOTATION_KINDS:
            known = ", ".join(sorted(registry.ANNOTATION_KINDS))
            out.append(diagnostic("QR205", f"unknown annotation kind `{node.name}` "
                                  f"(registered: {known})", node.name_span))
        if first is not None:
            out.append(diagnostic("QR207", "a ruleset has one `annotation` kind",
                                  node.span, [note(message="first set here",
                                                   span=first.node.span)]))
        first = first or definition
    return out


#: `scoping MODE`: what a scope test reads (docs/language.md, "Scoping modes").
SCOPING_MODES = ("nodes", "filters")


def check_scoping(analysis: Analysis) -> list[Diagnostic]:
    """`scoping MODE`: a known mode (QR340); `scoped(...)` clauses are read only under
    `scoping filters`, so one in a ruleset that never says so is a mistake (QR341)."""
    out: list[Diagnostic] = []
    for definition in analysis.symbols.scopings:
        node: ast.Scoping = definition.node
        if node.mode not in SCOPING_MODES:
            out.append(diagnostic("QR340", f"unknown scoping mode `{node.mode}` (known: "
                                  f"{', '.join(SCOPING_MODES)})", node.mode_span))
    if any(d.node.mode == "filters" for d in analysis.symbols.scopings):
        return out
    for entry in analysis.symbols.all_rules():
        if entry.rule.scoped is not None:
            out.append(diagnostic(
                "QR341", f"rule `{entry.name}`'s `scoped(...)` has no effect: only a "
                "ruleset that says `scoping filters` reads it", entry.rule.name_span))
    return out


def check_transforms(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    ev = analysis.new_evaluator()
    for definition in analysis.symbols.transforms:
        node: ast.Transform = definition.node
        entry = registry.TRANSFORMS.get(node.name)
        if entry is None:
            known = ", ".join(sorted(registry.TRANSFORMS))
            out.append(diagnostic("QR211", f"unknown transform `{node.name}` (registered: "
                                  f"{known})", node.name_span))
            continue
        if node.stage is not None and node.stage != "after annotate":
            out.append(diagnostic("QR117", "only `after annotate` may follow a transform's "
                                  f"name, not `{node.stage}`", node.stage_span))
        elif node.after_annotate != bool(entry.extra.get("after_annotate")):
            out.append(diagnostic(
                "QR233", f"transform `{node.name}` rewrites the graph "
                + (f"once it is annotated: write `transform {node.name} after annotate`"
                   if entry.extra.get("after_annotate") else
                   f"before annotation: write `transform {node.name}` without `after "
                   "annotate`"), node.name_span))
        if node.args:
            out.append(diagnostic("QR318", "transform arguments are keywords: "
                                  f"`{node.name}(name=value)`", node.args[0].span))
        for keyword in node.kwargs:
            if keyword.name not in entry.kwargs:
                allowed = ", ".join(sorted(entry.kwargs)) or "none"
                out.append(diagnostic("QR218", f"transform `{node.name}` takes no argument "
                                      f"`{keyword.name}` (it takes: {allowed})", keyword.span))
            elif keyword.name in entry.op_kwargs:
                out.extend(_check_op_list(keyword, analysis))
            else:
                ev.value(keyword.value)
    return out + ev.diagnostics


def _check_op_list(keyword: ast.Keyword, analysis: Analysis) -> list[Diagnostic]:
    """``ops=[add, mul]``: a literal list of op names of the vocabulary. The compiler
    resolves them to overloads as it does a pattern's ops; nothing else is accepted."""
    value = keyword.value
    if not isinstance(value, ast.ListLit):
        return [diagnostic("QR310", f"`{keyword.name}` takes a list of op names: "
                           f"`{keyword.name}=[add, mul]`", value.span)]
    out = []
    ops = analysis.symbols.ops
    for item in value.items:
        if not isinstance(item, ast.Name):
            out.append(diagnostic("QR310", "expected an op name", item.span))
        elif item.id not in ops:
            # The wildcard `any` names no overloads, so it is unknown here too.
            out.append(diagnostic("QR201", f"unknown op `{item.id}`", item.span,
                                  did_you_mean(item.id, ops)))
    return out


def check_disables(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    rule_names = {r.name for r in analysis.symbols.rules}
    transform_names = {d.node.name for d in analysis.symbols.transforms}
    for node, _ in analysis.symbols.disabled:
        names = rule_names if node.what == "rule" else transform_names
        if node.name not in names:
            out.append(diagnostic("QR206", f"no {node.what} `{node.name}` to disable",
                                  node.name_span))
    return out
