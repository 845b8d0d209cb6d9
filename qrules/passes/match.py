"""Find matches of compiled rules in a torch.fx graph, in acceptance order.

Rules are tried in rank order (phase, scope specificity, priority, file order);
each rule looks only at the nodes whose target is one of its head ops (from one
index built in a single pass over the graph), in graph order, and takes its
longest expansion that matches. A match is accepted only if none of its nodes is
taken already — by an earlier rule, or by another quantizer's annotation. This is
the order torchao's hand-written quantizers annotate in: annotator by annotator,
node by node, skipping what is annotated.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from torch.fx import GraphModule, Node

from qrules.compile.matchers import CompiledRule, CompiledRuleset, CompiledStep, OpMatch
from qrules.compile.predicates import StepContext
from qrules.semantics.facts import type_matches

ANNOTATION_KEY = "quantization_annotation"


@dataclass
class Match:
    rule: CompiledRule
    nodes: list[Node]                 # one per step; a region lists all its nodes
    ops: list[Optional[OpMatch]]
    roles: list[dict[str, list[Any]]]
    labels: list[Optional[str]]
    region_inputs: list[tuple[Any, Node]] = field(default_factory=list)
    region_outputs: list[Node] = field(default_factory=list)
    interior: list[Node] = field(default_factory=list)   # getitems between two steps
    # With `takes(...)`: the nodes the match owns (marked annotated); None: its steps.
    owned: Optional[list[Node]] = None

    @property
    def is_region(self) -> bool:
        """A `region(...)` match: one step made of all the module instance's members."""
        return bool(self.region_inputs or self.region_outputs)

    @property
    def head(self) -> Node:
        return self.nodes[0]

    def output_of_step(self, index: int) -> Node:
        return output_of(self.nodes[index], self.ops[index]) or self.nodes[index]

    def output_node(self) -> Node:
        if self.region_outputs:
            return self.region_outputs[-1]
        return self.output_of_step(len(self.nodes) - 1)


def output_of(node: Node, op: Optional[OpMatch]) -> Optional[Node]:
    """The node carrying a step's tensor output (a getitem for tuple-returning ops)."""
    if op is None or op.output_item is None:
        return node
    items = [u for u in node.users if u.op == "call_function"
             and getattr(u.target, "__name__", "") == "getitem" and u.args[1] == op.output_item]
    return items[0] if len(items) == 1 else None


def is_float_value(node: Node) -> bool:
    val = node.meta.get("val")
    if isinstance(val, (tuple, list)):
        val = val[0] if val else None
    return val is not None and hasattr(val, "dtype") and val.dtype.is_floating_point


def bind_roles(node: Node, op: OpMatch) -> dict[str, list[Any]]:
    roles: dict[str, list[Any]] = defaultdict(list)
    for binding in op.bindings:
        if binding.position >= len(node.args):
            continue
        value = node.args[binding.position]
        if binding.element is None:
            roles[binding.role].append(value)
        elif isinstance(value, (list, tuple)):
            if binding.element == "*":
                roles[binding.role].extend(value)
            elif binding.element < len(value):
                roles[binding.role].append(value[binding.element])
    return dict(roles)


def owned_nodes(match: Match, takes, partition_of) -> list[Node]:
    """The nodes `takes(...)` names in this match: steps by label, producers by role,
    `STEP.partition` (or `partition`, the first step's) the step's source partition;
    getitems between steps always belong to the match."""
    owned: list[Node] = []
    for key in takes:
        if key.step is None and key.index is None and key.role in match.labels:
            owned.extend(n for n, label in zip(match.nodes, match.labels) if label == key.role)
            continue
        step = 0 if key.step is None else next(
            (i for i, label in enumerate(match.labels) if label == key.step), None)
        if step is None:
            continue
        if key.role == "partition":
            # A region is one step made of all its members.
            members = match.nodes if match.is_region else [match.nodes[step]]
            for member in members:
                owned.extend(partition_of(member))
            continue
        values = match.roles[step].get(key.role, [])
        if key.index not in (None, "*"):
            values = values[key.index:key.index + 1]
        owned.extend(v for v in values if isinstance(v, Node))
    owned.extend(match.interior)
    return list(dict.fromkeys(owned))


def _source_key(node: Node, inner_paths: set):
    """Which source partition torch's get_source_partitions puts a node in. After a
    strict export: its innermost source_fn_stack entry (a module's parameters carry it
    too). After a non-strict one: the leaf module instance it ran in (call nodes only),
    else, for code of a module with submodules (`x + y` in a forward), its own
    `torch_fn` record: that is how get_source_partitions tells two adds apart."""
    stack = node.meta.get("source_fn_stack")
    if stack:
        name, source = stack[-1]
        return ("source", name, source if isinstance(source, str) else id(source))
    modules = node.meta.get("nn_module_stack")
    if node.op != "call_function" or not modules:
        return None
    path = list(modules.values())[-1][0]
    record = node.meta.get("torch_fn")
    if path in inner_paths and record:
        return ("fn", path, record[0])
    return ("module", path)


# ------------------------------------------------------------------------ scopes


def _module_stack(node: Node) -> list[tuple[str, str]]:
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for path, kind in stack.values():
        if path.startswith("L['self']."):
            path = path[len("L['self']."):]
        if not isinstance(kind, str):
            kind = f"{kind.__module__}.{kind.__qualname__}"
        out.append((path, kind))
    return out


def in_scope(node: Node, kind: str, selector: str, op_targets=None) -> bool:
    if kind == "module_name":
        return any(fnmatch.fnmatchcase(path, selector) for path, _ in _module_stack(node))
    if kind == "module_type":
        return any(type_matches(selector, qualname) for _, qualname in _module_stack(node))
    if kind == "operator":
        return op_targets is not None and node.target in op_targets
    if kind == "operator_target":  # set from Python with an OpOverload(Packet)
        target = node.target
        return selector in (str(target), str(getattr(target, "overloadpacket", target)))
    return False


# ------------------------------------------------------------------------ state


class State:
    """Annotations as they stand: the graph's own (from other quantizers) plus ours."""

    def __init__(self, compiled: Optional[CompiledRuleset] = None):
        self.planned: dict[Node, Any] = {}   # node -> NodeAnnotation (qrules.passes.plan)
        self.sources: dict[Node, tuple] = {}  # `source(...)` names per node, read once
        # Ops some rule in force could quantize (heads of rules whose config is not
        # `none`), for `any_user_quantizable()`; `any` when a rule's head is open.
        self.quantizable: set = set()
        self.quantizable_any = False
        for rule in (compiled.rules if compiled is not None else ()):
            if rule.config is None:
                continue
            if rule.head_is_open():
                self.quantizable_any = True
            self.quantizable |= rule.head_targets()

    def could_quantize(self, node: Node) -> bool:
        """Is `node` quantized already, or the head op of a rule that quantizes?"""
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None or any(
                p is not None for p in planned.inputs.values())
        return node.op == "call_function" and (self.quantizable_any
                                               or node.target in self.quantizable)

    def taken(self, node: Node) -> bool:
        if node in self.planned:
            return True
        existing = node.meta.get(ANNOTATION_KEY)
        # Some torchao quantizers (EmbeddingQuantizer) write specs without setting
        # `_annotated`; such a node is taken too, or a later ruleset overwrote it.
        return existing is not None and bool(
            getattr(existing, "_annotated", False) or existing.output_qspec is not None
            or any(spec is not None for spec in existing.input_qspec_map.values()))

    def is_annotated(self, node: Node) -> bool:
        """`annotated(...)`: the node carries an annotation marked `_annotated`, as
        torchao's `_is_annotated` reads it. Taken nodes that an `unmarked` rule (or
        another quantizer, like EmbeddingQuantizer) annotated without the flag are not:
        XNNPACK's GRU guard annotates a GRU fed by such an embedding."""
        planned = self.planned.get(node)
        if planned is not None:
            return not planned.rule.unmarked
        existing = node.meta.get(ANNOTATION_KEY)
        return existing is not None and bool(getattr(existing, "_annotated", False))

    def output_quantized(self, node: Node) -> bool:
        # As docs/language.md defines `quantized`: the output has a spec, or the node
        # ends a match that quantized its inputs (a fused int8 pattern whose output the
        # next op quantizes; X86's `_is_output_of_quantized_pattern`). Only the first
        # was checked, so X86-style propagation after `conv2d -> relu? : { input, weight }`
        # never fired.
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None or planned.ends_quantized_pattern
        existing = node.meta.get(ANNOTATION_KEY)
        return existing is not None and (
            getattr(existing, "output_qspec", None) is not None
            or bool(getattr(existing, "_is_output_of_quantized_pattern", False)))


# ------------------------------------------------------------------------ matching


class Matcher:
    def __init__(self, gm: GraphModule, compiled: CompiledRuleset, op_targets: dict):
        self.gm = gm
        self.compiled = compiled
        self.op_targets = op_targets
        self.order: dict[Node, int] = {}
        # Per-annotate caches: role bindings per (op, node), results of predicates that
        # read no annotations, float-ness of outputs. The graph does not change while
        # it is planned.
        self._roles: dict = {}
        self._static: dict = {}
        self._float: dict = {}
        self._partitions: Optional[dict] = None   # source partitions, built on first use
        self._inner_paths: set = set()
        self.by_target: dict[Any, list[Node]] = defaultdict(list)
        self.calls: list[Node] = []
        for index, node in enumerate(gm.graph.nodes):
            self.order[node] = index
            if node.op == "call_function":
                self.by_target[node.target].append(node)
                self.calls.append(node)

    def partition_of(self, node: Node) -> list[Node]:
        """The nodes of `node`'s source partition (itself alone if it has none)."""
        if self._partitions is None:
            # Module paths with submodules: every path but the last of some node's stack.
            self._inner_paths = {path for other in self.gm.graph.nodes
                                 for path, _ in list(
                                     (other.meta.get("nn_module_stack") or {}).values())[:-1]}
            self._partitions = defaultdict(list)
            for other in self.gm.graph.nodes:
                key = _source_key(other, self._inner_paths)
                if key is not None:
                    self._partitions[key].append(other)
        key = _source_key(node, self._inner_paths)
        return list(self._partitions.get(key, [node])) if key is not None else [node]

    def candidates(self, rule: CompiledRule) -> Iterable[Node]:
        if rule.head_is_open():
            return self.calls
        heads: list[Node] = []
        for target in rule.head_targets():
            heads.extend(self.by_target.get(target, ()))
        heads.sort(key=self.order.__getitem__)
        return heads

    def in_rule_scope(self, rule: CompiledRule, nodes: list[Node]) -> bool:
        for scope in rule.scopes:
            targets = self.op_targets.get(scope.selector) if scope.kind == "operator" else None
            # An operator scope (also one set from Python with set_operator_type) holds
            # for a match whose head is that op: `linear -> relu` under the linear
            # operator type (operator_target used to require every node to be a linear).
            check = nodes[:1] if scope.kind in ("operator", "operator_target") else nodes
            if not all(in_scope(n, scope.kind, scope.selector, targets) for n in check):
                return False
        return True

    def try_rule(self, rule: CompiledRule, head: Node, state: State) -> Optional[Match]:
        for steps in rule.expansions:
            if steps[0].region is not None:
                match = self._region(rule, steps[0], head, state)
            else:
                match = self._chain(rule, steps, head, state)
            if match is not None and self.in_rule_scope(rule, match.nodes):
                # Owning a producer does not require it to be free (torchao's linear
                # annotator marks a shared weight again); rules that must skip a taken
                # weight say so: `conv2d[not annotated(weight)]`.
                if rule.takes is not None:
                    match.owned = owned_nodes(match, rule.takes, self.partition_of)
                return match
        return None

    def _step(self, step: CompiledStep, node: Node, state: State, amend: bool = False):
        """(op, roles) when `node` has the shape of this step; its predicates are left
        to `_holds`, which a chain runs once its whole shape has matched."""
        # An `amend` rule matches only what this ruleset planned already (it fills
        # empty edges of those annotations); other rules only what nobody took.
        blocked = node not in state.planned if amend else state.taken(node)
        if node.op != "call_function" or blocked or not self._is_float(node):
            return None
        op = step.op_for(node.target)
        if op is None and step.any_op:
            op = next(o for o in step.ops if o.name == "any")
        if op is None:
            return None
        key = (id(op), node)   # OpMatch hashes its target sets; its identity will do
        roles = self._roles.get(key)
        if roles is None:
            roles = self._roles[key] = bind_roles(node, op)
        return op, roles

    def _holds(self, step: CompiledStep, node: Node, op, roles, state: State) -> bool:
        predicate = step.predicate
        if predicate is None:
            return True
        if predicate.static:
            # Same predicate (by text and parameters) on the same node: same answer.
            cache_key = (id(predicate), id(op), node)
            passed = self._static.get(cache_key)
            if passed is None:
                passed = self._static[cache_key] = predicate(
                    StepContext(node, roles, state, self.op_targets))
        else:
            passed = predicate(StepContext(node, roles, state, self.op_targets))
        return passed

    def _is_float(self, node: Node) -> bool:
        known = self._float.get(node)
        if known is None:
            known = self._float[node] = is_float_value(node)
        return known

    def _chain(self, rule, steps, head: Node, state: State) -> Optional[Match]:
        # Shape first (ops, links, users), predicates once the whole shape matched:
        # they only read the graph and earlier annotations, so the order does not
        # change the answer, and most candidates fail on shape (a conv not followed
        # by a relu) before any predicate has to run.
        found = self._step(steps[0], head, state, rule.amend)
        if found is None:
            return None
        return self._extend(rule, steps, [head], [found[0]], [found[1]], [], state)

    def _extend(self, rule, steps, nodes, ops, roles, interior, state) -> Optional[Match]:
        """Match steps[len(nodes):] after the nodes matched so far; `a ~> b` tries each
        user of a's output in order, `a -> b` requires b to be the only one."""
        index = len(nodes)
        if index == len(steps):
            if not all(self._holds(step, node, op, role, state)
                       for step, node, op, role in zip(steps, nodes, ops, roles)):
                return None
            return Match(rule, nodes, ops, roles, [s.label for s in steps], interior=interior)
        step = steps[index]
        previous = output_of(nodes[-1], ops[-1])
        if previous is None or (len(previous.users) != 1 and not step.shared_input):
            return None
        between = []
        if previous is not nodes[-1]:
            # The getitem between a tuple op and the next step is inside the match:
            # taken with it, so no later rule can put an observer there.
            if state.taken(previous) and not rule.amend:
                return None
            between = [previous]
        for user in list(previous.users):
            found = self._step(step, user, state, rule.amend)
            # `a -> b`: b takes a's output as one of its `input` roles; feeding b's
            # weight or bias (or a keyword) is not a chain.
            if found is None or previous not in found[1].get("input", ()):
                continue
            match = self._extend(rule, steps, nodes + [user], ops + [found[0]],
                                 roles + [found[1]], interior + between, state)
            if match is not None:
                return match
        return None

    def _region(self, rule, step: CompiledStep, head: Node, state: State) -> Optional[Match]:
        parts = self.region_of(step.region, head)
        if parts is None:
            return None
        members, inputs, outputs = parts
        if members[0] is not head or any(state.taken(n) for n in members):
            return None
        # A region's predicates (`region(...)[not annotated(input)]`) see its input
        # sources as `input` and its output nodes as `output`, in the order collected.
        if step.predicate is not None and not step.predicate(
                StepContext(head, region_roles(inputs, outputs), state, self.op_targets)):
            return None
        return Match(rule, members, [None] * len(members), [{}] * len(members),
                     [None] * len(members), inputs, outputs)

    def region_of(self, region, node: Node) -> Optional[RegionParts]:
        """The instance of ``region`` that ``node`` belongs to: its members in graph
        order, its input edges and its output nodes; None when there is none."""
        instance = None
        for path, qualname in _module_stack(node):
            if (region.selector_kind == "module_type" and type_matches(region.selector,
                                                                       qualname)) or (
                    region.selector_kind == "module_name" and fnmatch.fnmatchcase(
                        path, region.selector)):
                instance = path
                break
        if instance is None:
            return None
        members = [n for n in self.calls if any(p == instance for p, _ in _module_stack(n))]
        inside = set(members)
        inputs, outputs = [], []
        for member in members:
            for arg in member.all_input_nodes:
                # The module's own parameters and buffers (get_attr nodes carry no
                # nn_module_stack) are inside it, not inputs: gru_io_only used to give
                # the GRU's weights and biases the activation spec.
                if arg.op == "get_attr" and (instance == "" or str(arg.target).startswith(
                        instance + ".")):
                    continue
                if arg not in inside and is_float_value(arg):
                    inputs.append((arg, member))
            if any(user not in inside for user in member.users) and is_float_value(member):
                outputs.append(member)
        return (members, inputs, outputs) if members else None


#: A region instance: (members in graph order, input edges (source, member), outputs).
RegionParts = tuple[list[Node], list[tuple[Node, Node]], list[Node]]


def region_roles(inputs: list[tuple[Node, Node]], outputs: list[Node]) -> dict[str, list]:
    """What a region's predicates call `input` and `output`."""
    return {"input": [source for source, _ in inputs], "output": list(outputs)}
