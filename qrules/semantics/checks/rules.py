"""Rules: their patterns, predicates, configs against the match, and sharing."""

from __future__ import annotations

from typing import Optional

from qrules.diagnostics import Diagnostic, diagnostic, did_you_mean, note
from qrules.semantics import registry
from qrules.semantics.analysis import Analysis
from qrules.semantics.checks.predicates import predicate_type_errors
from qrules.semantics.evaluate import ConfigValue
from qrules.semantics.checks.selections import first_of_problems, selection_problems
from qrules.semantics.patterns import (
    ANY_OP, Expansion, StepInfo, nullable, op_refs, repeated_alternatives,
)
from qrules.semantics.entries import RuleEntry
from qrules.semantics.values import EdgeRef
from qrules.syntax import ast, tree

#: Names a predicate may compare a tensor's dtype with.
TENSOR_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64", "int64", "int32",
                           "int16", "int8", "uint8", "bool"})
#: Roles every match has, whatever its ops: the head's inputs, the tail's output,
#: and `extra`, the inputs of later steps that come from outside the match.
MATCH_ROLES = frozenset({"input", "output", "extra"})
#: What a region's predicates may name: its input sources and its output nodes.
REGION_ROLES = frozenset({"input", "output"})


def check_rules(analysis: Analysis) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    ev = analysis.new_evaluator()  # for the values: check_values reports on them
    for entry in analysis.symbols.all_rules():
        out.extend(_check_pattern(analysis, entry))
        if entry.rule.amend and entry.rule.unmarked:
            # An amend rule writes no annotation of its own: it fills edges of
            # annotations earlier rules made, which keep their own `_annotated`.
            out.append(diagnostic("QR323", "`unmarked` has no effect on an `amend` rule: "
                                  "the annotations it fills belong to the rules that made "
                                  "them", entry.rule.unmarked_span or entry.rule.name_span))
        expansions = analysis.expansions(entry)
        if not expansions:
            continue
        for clause in ("takes", "scoped"):
            out.extend(_check_takes(entry, expansions, clause))
        with ev.assuming(entry.conditions):
            configs = ev.config(entry.rule.config)
        for config in configs:
            if config is not None:
                out.extend(_check_config(entry, config, expansions))
    return _unique(out)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diagnostics:
        key = (d.code, d.span.file, d.span.start, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


# ------------------------------------------------------------------------ patterns


def _check_pattern(analysis: Analysis, entry: RuleEntry) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    pattern = entry.rule.pattern
    ops = analysis.symbols.ops
    for ref in op_refs(pattern):
        if ref.name not in ops and ref.name != ANY_OP:
            out.append(diagnostic("QR201", f"unknown op `{ref.name}`", ref.span,
                                  did_you_mean(ref.name, ops)))
    for node in tree.walk(pattern):
        if isinstance(node, ast.Region):
            if node.selector_kind not in ("module_type", "module_name", "source",
                                          "connected"):
                out.append(diagnostic("QR217", f"a region is selected by `module_type`, "
                                      f"`module_name`, `source` or `connected`, not "
                                      f"`{node.selector_kind}`", node.kind_span or node.span))
            elif node.selector_kind == "connected" and node.selector not in ops:
                out.append(diagnostic("QR201", f"unknown op `{node.selector}`", node.span,
                                      did_you_mean(node.selector, ops)))
            elif pattern is not node and not _guarded_region(pattern, node):
                out.append(diagnostic("QR324", "a region is a whole pattern on its own; it "
                                      "cannot be chained, optional or labelled (predicates "
                                      "are fine: `region(...)[not annotated(input)]`)",
                                      node.span))
        if isinstance(node, ast.Alternation):
            # Only the options written inside it: an `extend rule` alternative is
            # appended from elsewhere, and QR417 judges whether it adds anything.
            options = [o for o in node.options if isinstance(o, ast.OpRef)
                       and o.span.file == node.span.file
                       and node.span.start <= o.span.start < node.span.end]
            out.extend(repeated_alternatives(options, analysis.resolver, "this alternation"))
        if isinstance(node, ast.Step) and node.predicates:
            region = isinstance(node.atom, ast.Region)
            roles = set(REGION_ROLES if region else MATCH_ROLES)
            ops = [op for ref in op_refs(node.atom)
                   for op in analysis.resolver.resolve(ref.name) or ()]
            for op in ops:
                roles |= op.role_names()
            for predicate in node.predicates:
                out.extend(_check_predicate(predicate, roles, analysis, region)
                           or _missing_edges(predicate, ops))
    # `expand` drops the empty expansion, so a nullable pattern (`relu?`) still has
    # expansions; ask the pattern itself whether it can match nothing.
    if nullable(pattern):
        out.append(diagnostic("QR408", "this pattern can match an empty sequence; at least "
                              "one step must be required", pattern.span))
    return out


def _missing_edges(predicate, ops) -> list[Diagnostic]:
    """`input[2]` in a predicate of an op with two inputs: as QR210 says of a config key,
    an edge no match of this step has (reading it would always give nothing)."""
    out = []
    for node in tree.walk(predicate):
        if not (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
                and isinstance(node.index, ast.IntLit)) or not ops:
            continue
        counts = [op.role_count(node.value.id) for op in ops]
        if ANY_OP not in {op.name for op in ops} and None not in counts and all(
                node.index.value >= count for count in counts):
            names = " | ".join(op.name for op in ops)
            out.append(diagnostic("QR210", f"`{names}` has {max(counts)} "
                                  f"`{node.value.id}` edge(s), so `{node.value.id}"
                                  f"[{node.index.value}]` never exists", node.span))
    return out


def _guarded_region(pattern, region: ast.Region) -> bool:
    """``region(...)[preds]``: the one form a region takes besides standing alone."""
    return (isinstance(pattern, ast.Step) and pattern.atom is region
            and not pattern.optional and pattern.label is None)


def _check_predicate(expr, roles: set[str], analysis: Analysis,
                     region: bool = False) -> list[Diagnostic]:
    """Names in a predicate: roles, facts, predicate functions, parameters, dtypes.
    A region has no single node, so functions of the node are not available on it."""
    out: list[Diagnostic] = []
    symbols = analysis.symbols
    choices = analysis.new_evaluator().choices
    owner, example = ("region", "input.rank") if region else ("op", "weight.rank")

    def role_ref(node) -> bool:
        base = node.value if isinstance(node, (ast.Index, ast.Each)) else node
        return isinstance(base, ast.Name) and base.id in roles

    def list_valued(node) -> bool:
        """`input[*]`, a fact of it, a role function of it, or a list literal."""
        if isinstance(node, ast.Each):
            return True
        if isinstance(node, ast.Attribute):
            return list_valued(node.value)
        if isinstance(node, ast.Call):
            return bool(node.args) and isinstance(node.args[0], ast.Each)
        return isinstance(node, ast.ListLit)

    def visit(node) -> None:
        if isinstance(node, ast.Name):
            if not (node.id in roles or node.id in symbols.params or node.id in choices
                    or node.id in TENSOR_DTYPES):
                out.append(diagnostic("QR209", f"unknown name `{node.id}` in a predicate: not "
                                      f"a role of this {owner} ({', '.join(sorted(roles))}), a "
                                      "parameter or a dtype", node.span))
        elif isinstance(node, ast.Attribute):
            if node.attr not in registry.FACTS:
                known = ", ".join(sorted(registry.FACTS))
                out.append(diagnostic("QR209", f"unknown fact `.{node.attr}` (known: {known})",
                                      node.span))
            if not role_ref(node.value) and not isinstance(node.value, ast.Attribute):
                out.append(diagnostic("QR209", f"facts are read from a role of the {owner}, "
                                      f"as in `{example}`", node.value.span))
            else:
                visit(node.value)
        elif isinstance(node, ast.Index):
            visit(node.value)
            if isinstance(node.index, ast.FirstOf):
                out.extend(first_of_problems(node.index, in_predicate=True))
            else:
                visit(node.index)
        elif isinstance(node, ast.Each):
            if not role_ref(node):
                out.append(diagnostic("QR210", "`[*]` takes a role of this op "
                                      f"({', '.join(sorted(roles))})", node.span))
        elif isinstance(node, ast.Call):
            visit_call(node)
        elif isinstance(node, ast.Unary):
            visit(node.operand)
        elif isinstance(node, ast.Binary):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.Conditional):
            for child in (node.then, node.cond, node.otherwise):
                visit(child)
        elif isinstance(node, ast.ListLit):
            for item in node.items:
                visit(item)
        elif isinstance(node, ast.Range):
            visit(node.low)
            visit(node.high)

    def visit_call(node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        function = registry.PREDICATE_FUNCTIONS.get(name)
        if function is None:
            known = ", ".join(sorted(registry.PREDICATE_FUNCTIONS))
            out.append(diagnostic("QR209", f"unknown predicate function (known: {known})",
                                  node.func.span))
            return
        kinds = function.arg_kinds
        if region and function.node_only:
            out.append(diagnostic("QR325", f"`{name}()` reads one node, and a region has "
                                  "none; use facts of its `input` and `output`",
                                  node.func.span))
            return
        variadic = bool(kinds) and kinds[-1].endswith("...")
        if variadic:
            if len(node.args) < len(kinds) or node.kwargs:
                out.append(diagnostic("QR326", f"`{name}` takes at least {len(kinds)} "
                                      "argument(s)", node.span))
                return
            kinds = function.kinds_for(len(node.args))
        elif len(node.args) != len(kinds) or node.kwargs:
            out.append(diagnostic("QR326", f"`{name}` takes {len(kinds)} argument(s)",
                                  node.span))
            return
        for kind, arg in zip(kinds, node.args):
            if kind == "role" and isinstance(arg, ast.Index) and isinstance(
                    arg.index, ast.FirstOf):
                out.extend(first_of_problems(arg.index, in_predicate=True))
            if kind == "role" and not role_ref(arg):
                out.append(diagnostic("QR210", f"`{name}` takes a role of this {owner} "
                                      f"({', '.join(sorted(roles))})", arg.span))
            elif kind == "op" and not (isinstance(arg, ast.Name) and (
                    arg.id in symbols.ops or arg.id == ANY_OP)):
                out.append(diagnostic("QR201", f"`{name}` takes an op name", arg.span))
            elif kind == "int" and not isinstance(arg, ast.IntLit):
                out.append(diagnostic("QR326", f"`{name}` takes an integer literal",
                                      arg.span))
            elif kind == "str" and not isinstance(arg, ast.StringLit):
                out.append(diagnostic("QR326", f"`{name}` takes string literals, as in "
                                      f"`{name}(\"torch.nn.Conv2d\")`", arg.span))
            elif kind == "list" and not list_valued(arg):
                out.append(diagnostic("QR326", f"`{name}` takes a list: every value of a "
                                      "role, as in `quantized(input[*])` or "
                                      "`input[*].dtype`", arg.span))
            elif kind in ("any", "list"):
                visit(arg)

    visit(expr)
    if not out:  # types only once the names are right
        out.extend(predicate_type_errors(expr, roles, symbols.params, choices))
    return out


# ------------------------------------------------------------------------ takes


def _check_takes(entry: RuleEntry, expansions: list[Expansion], clause: str) -> list:
    """`takes(conv, weight, bn.weight)`, `scoped(...)`: steps of the pattern, or edges."""
    out: list[Diagnostic] = []
    labels = {s.label for e in expansions for s in e.steps if s.label}
    for key in getattr(entry.rule, clause) or ():
        if isinstance(key.index, ast.FirstOf):
            # What a match owns (or is scoped by) is fixed by its shape.
            out.append(diagnostic("QR327", f"`{clause}` names fixed edges; `{key}` depends "
                                  "on annotations", key.index.span))
            continue
        if key.step is None and key.index is None and key.role in labels:
            continue  # a step
        if key.role == "partition" and key.index is None and (
                key.step is None or key.step in labels):
            continue  # a step's source partition
        if key.step is not None and key.step not in labels:
            out.append(diagnostic("QR220", f"`{key.step}` is not a step of rule "
                                  f"`{entry.name}` (steps: {', '.join(sorted(labels))})",
                                  key.span))
        elif key.role in ("output", "extra") or not _edge_exists(
                key.step, key.role, key.index, expansions):
            out.append(diagnostic("QR210", f"`{clause}` names steps of the pattern and "
                                  f"input edges whose producers it means; rule "
                                  f"`{entry.name}` has no step or edge `{key.role}`",
                                  key.span))
    return out


# ------------------------------------------------------------------------ configs


def _step_roles(step: StepInfo) -> set[str]:
    roles: set[str] = set()
    for op in step.ops:
        roles |= op.role_names()
    return roles


def _edge_exists(step: Optional[str], role: str, index, expansions: list[Expansion]) -> bool:
    """Does some expansion of the pattern have this edge?"""
    if isinstance(index, ast.FirstOf):
        index = None   # some edge of the role; which one is decided on the graph
    for expansion in expansions:
        steps = expansion.steps
        if step is not None:
            candidates = [s for s in steps if s.label == step]
        elif role in ("input", "weight", "bias") or role not in MATCH_ROLES:
            candidates = [steps[0]] if role in ("input", "weight", "bias") else list(steps)
        elif role == "output" or len(steps) > 1:
            return True  # every match has an output; `extra` needs a second step
        else:
            continue
        for candidate in candidates:
            if candidate.region is not None or candidate.is_any:
                if role in ("input", "output"):
                    return True
                continue
            if role == "output" or role == "extra" and candidate is not steps[0]:
                return True
            if role == "extra":
                continue  # the first step's inputs are `input`, never `extra`
            if not candidate.ops:
                # An unknown op (already QR201): its roles are unknown too, so do not
                # report its edges as missing on top of it.
                return True
            for op in candidate.ops:
                count = op.role_count(role)
                if count is None or (count > 0 and (index in (None, "*") or index < count)):
                    return True
    return False


def _check_config(entry: RuleEntry, config: ConfigValue,
                  expansions: list[Expansion]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    labels = {s.label for e in expansions for s in e.steps if s.label}
    inline = config.name is None
    where = [] if inline else [note(message=f"config used by rule `{entry.name}` here",
                                    span=entry.rule.name_span)]
    keys: dict[tuple, ast.RoleKey] = {}
    connected = all(len(e.steps) == 1 and e.steps[0].region is not None
                    and e.steps[0].region.selector_kind == "connected" for e in expansions)
    for key, specs in config.entries:
        if not connected and any(spec is not None and spec.copies_neighbour for spec in specs):
            out.append(diagnostic("QR330", f"`neighbour()` copies the spec next to a "
                                  f"connected region, and rule `{entry.name}` does not match "
                                  "one: write its pattern as `region(connected \"OP\")`",
                                  key.span, where))
            continue
        if key.step is not None and any(
                sum(s.label == key.step for s in e.steps) > 1 for e in expansions):
            out.append(diagnostic("QR222", f"`{key.step}` names more than one step of rule "
                                  f"`{entry.name}`; label one of them, as in "
                                  f"`{key.step} as second`, and use that label here",
                                  key.span, where))
            continue
        if key.step is not None and key.step not in labels:
            out.append(diagnostic("QR220", f"`{key.step}` is not a step of rule "
                                  f"`{entry.name}` (steps: {', '.join(sorted(labels))})",
                                  key.span, where))
            continue
        known_role = key.role in MATCH_ROLES or key.role in registry.CONFIG_ROLES or any(
            key.role in _step_roles(s) for e in expansions for s in e.steps)
        if not known_role:
            out.append(diagnostic("QR210", f"`{key.role}` is not a role of any op in rule "
                                  f"`{entry.name}`", key.span, where))
            continue
        if (inline or key.step is not None or key.index is not None) and not _edge_exists(
                key.step, key.role, key.index, expansions):
            why = (": `extra` is an input of a later step that comes from outside the "
                   "match, and no step after the first has one") if key.role == "extra" else ""
            out.append(diagnostic("QR210", f"rule `{entry.name}` never has the edge "
                                  f"`{key}`{why}", key.span, where))
            continue
        if isinstance(key.index, ast.FirstOf):
            out.extend(selection_problems(key.step, key.role, key.index, expansions))
        keys[(key.step, key.role, key.index)] = key
        for spec in specs:
            if spec is not None and spec.is_dynamic and key.role not in (
                    "input", "extra"):
                out.append(diagnostic("QR312", f"a dynamic spec on `{key}`: dynamic "
                                      "quantization applies to activation inputs", key.span,
                                      where))
    shared: dict[tuple, tuple[EdgeRef, ast.RoleKey]] = {}
    for key, specs in config.entries:
        for spec in specs:
            if spec is None:
                continue
            shared_edge = spec.refs[0] if spec.shares else None
            if shared_edge is not None and not shared_edge.producer and not _edge_exists(
                    shared_edge.step, shared_edge.role, shared_edge.index, expansions):
                out.append(diagnostic("QR307", f"rule `{entry.name}` never has the edge "
                                      f"`{shared_edge}`", shared_edge.span or key.span, where))
                continue
            for edge in spec.refs:
                if isinstance(edge.index, ast.FirstOf):
                    out.extend(selection_problems(edge.step, edge.role, edge.index,
                                                   expansions))
                if edge.producer:  # outside the match: validated on the graph
                    continue
                target = _lookup(keys, edge)
                if target is None and entry.rule.amend:
                    continue  # an amend rule shares with edges earlier rules quantized
                if target is None:
                    code = "QR307" if spec.shares else "QR313"
                    out.append(diagnostic(code, f"`{edge}` is not quantized by this config, "
                                          "so there is nothing to share or derive from",
                                          edge.span or key.span, where))
                elif spec.shares:
                    shared[(key.step, key.role, key.index)] = (edge, key)
    out.extend(_sharing_cycles(shared, keys, where))
    return out


def _lookup(keys: dict[tuple, ast.RoleKey], edge: EdgeRef) -> Optional[tuple]:
    index = edge.index
    # `input[*]: spec` quantizes every input, `input[0]` included.
    for candidate in ((edge.step, edge.role, index), (edge.step, edge.role, None),
                      (edge.step, edge.role, 0 if index is None else index),
                      (edge.step, edge.role, "*")):
        if candidate in keys:
            return candidate
    return None


def _sharing_cycles(shared, keys, where) -> list[Diagnostic]:
    out = []
    reported: set[frozenset] = set()  # one diagnostic per circle, not one per member
    for start in shared:
        seen, current = [start], start
        while current in shared:
            edge, _ = shared[current]
            current = _lookup(keys, edge)
            if current is None:
                break
            if current == start:
                if frozenset(seen) in reported:
                    break
                reported.add(frozenset(seen))
                _, key = shared[start]
                names = " -> ".join(str(keys[k]) for k in seen + [start])
                out.append(diagnostic("QR308", f"these edges share with each other in a "
                                      f"circle: {names}", key.span, where))
                break
            if current in seen:
                break
            seen.append(current)
    return out
