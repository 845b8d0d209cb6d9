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

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from torch.fx import GraphModule, Node

from qrules.compile.matchers import CompiledRule, CompiledRuleset, CompiledStep
from qrules.compile.targets import GRAPH_IO_KEYS, target_key
from qrules.compile.predicates import StepContext
from qrules.compile.producers import holds_bound
from qrules.passes.bindings import Match, bind_roles, output_of, owned_nodes, takes_plan
from qrules.passes.clusters import connected_region, touches_graph_io
from qrules.passes.scopes import (
    ModuleMembers, RegionHeads, SourcePartitions, in_rule_scope, region_of, region_roles,
)
from qrules.passes.state import State
from qrules.span import Span


@dataclass(frozen=True)
class Miss:
    """The first thing that kept a rule from matching at one head node: explain's
    "why not". Recorded only when ``Matcher.why_not`` asks, never while annotating."""

    kind: str        # step | link | predicate | phase | scope | region | order | when
    detail: str
    depth: int       # how far the match got: steps matched before it failed
    node: Optional[str] = None     # the node it was looking at
    span: Optional[Span] = None    # the failing predicate or condition
    values: str = ""               # what a failing predicate read


#: (selector kind, selector) of a rule's module regions -> its RegionHeads: its verdicts
#: (per raw module class or path) hold for every graph: judged once per process.
_REGION_HEADS: dict[tuple, RegionHeads] = {}


class Matcher:
    """Finds matches of the rules of one compiled ruleset in one graph."""

    def __init__(self, gm: GraphModule, compiled: CompiledRuleset,
                 annotation_key: Optional[str] = None):
        self.gm = gm
        self.compiled = compiled
        # Why-not records, a list only inside why_not(): annotating formats nothing.
        self.misses: Optional[list[Miss]] = None
        self._order: Optional[dict[Node, int]] = None
        # Per-annotate caches (the graph does not change while it is planned): role
        # bindings by op, then node (``roles_of``: no key tuple, which would count
        # towards the next collection), static predicates' answers, ``bound_for``.
        self.bound_roles: defaultdict = defaultdict(dict)
        self._static: dict = {}
        self._bound, self._bound_state = {}, None
        self._labels: dict = {}   # id(steps) -> their labels, one list shared by matches
        self._takes: dict = {}    # id(steps) -> takes_plan of their labels
        self.partitions = SourcePartitions(gm)
        self.by_target: dict[int, list[Node]] = defaultdict(list)   # by target_key
        self.calls: list[Node] = []
        # With ``annotation_key``: node -> what another quantizer wrote under it
        # (``node.meta[annotation_key]``), read in this one walk over the graph.
        self.annotated: dict[Node, Any] = {}
        by_target, calls = self.by_target, self.calls
        annotated = self.annotated
        for node in gm.graph.nodes:
            if annotation_key is not None:
                annotation = node.meta.get(annotation_key)
                if annotation is not None:
                    annotated[node] = annotation
            kind = node.op
            if kind == "call_function":
                by_target[id(node.target)].append(node)   # target_key, inlined
                calls.append(node)
            elif kind in ("placeholder", "output"):
                by_target[target_key(node)].append(node)
            # A get_attr (a weight or bias) is no step's op: its target is a name.
        self.members = ModuleMembers(self.calls)
        # head targets (or module regions) -> candidate heads in graph order: rules
        # with the same head ops (conv2d's several rules) share one list.
        self._heads: dict[Any, list[Node]] = {}

    @property
    def order(self) -> dict[Node, int]:
        """node -> its position in the graph. Built on first use: most rules' heads
        come in graph order from one target's list and need no sorting."""
        order = self._order
        if order is None:
            order = self._order = {node: index for index, node
                                   in enumerate(self.gm.graph.nodes)}
        return order

    def candidates(self, rule: CompiledRule, state: Optional[State] = None
                   ) -> Iterable[Node]:
        """The nodes the rule may match at, in graph order. With ``state``, a rule
        whose heads are module regions skips the nodes taken already before reading
        their module stacks (it cannot match at them): the caller visits them later."""
        if rule.head_is_open():
            return self._open_candidates(rule, state)
        keys = rule.head_keys()
        heads = self._heads.get(keys)
        if heads is None:
            found = [nodes for nodes in map(self.by_target.get, keys) if nodes]
            if len(found) == 1:
                heads = found[0]   # in graph order already, and never changed
            elif not found:
                heads = []
            elif keys.isdisjoint(GRAPH_IO_KEYS):
                # Several ops' nodes in graph order by one pass over the calls: the
                # position of every node would be read from cold memory.
                heads = [node for node in self.calls if id(node.target) in keys]
            else:
                heads = [node for nodes in found for node in nodes]
                heads.sort(key=self.order.__getitem__)
            self._heads[keys] = heads
        return heads

    def _open_candidates(self, rule: CompiledRule, state: Optional[State] = None
                         ) -> Iterable[Node]:
        """Every call node; for a rule whose heads are all module or source regions,
        only the nodes inside an instance of one (elsewhere `region_of` finds none)."""
        heads = [steps[0].region for steps in rule.expansions]
        if not all(region is not None and region.selector_kind in ("module_type",
                                                                   "module_name", "source")
                   for region in heads):
            return self.calls
        key = tuple((region.selector_kind, region.selector) for region in heads)
        found = self._heads.get(key)
        if found is not None:
            return found
        judge = _REGION_HEADS.get(key)
        if judge is None:
            judge = _REGION_HEADS[key] = RegionHeads(heads)
        inside = judge.inside
        if state is not None and not rule.amend:
            # Read lazily, as the caller takes matches: a module stack is the most
            # memory a node has, and most nodes are taken by the rules before this one
            # (``state.taken``, its common answer read inline).
            planned, existing = state.planned, state.existing
            return (node for node in self.calls if node not in planned and not (
                existing and state.taken(node)) and inside(node))
        found = self._heads[key] = [node for node in self.calls if inside(node)]
        return found

    def in_rule_scope(self, rule: CompiledRule, nodes: list[Node],
                      scoped: Optional[Iterable[Node]] = None) -> bool:
        return in_rule_scope(rule, nodes, self.compiled.op_targets, scoped)

    def region_of(self, region, node: Node):
        """The instance of ``region`` that ``node`` belongs to (see scopes.region_of)."""
        return region_of(region, node, self.members, self.partitions)

    def try_rule(self, rule: CompiledRule, head: Node, state: State) -> Optional[Match]:
        # Annotating skips the expansions whose first or second op cannot match (they
        # would fail at once); why_not tries them all, to report those failures too.
        if self.misses is not None:
            tries = tuple((steps, None, None) for steps in rule.expansions)
        else:
            tries = rule.tries_at(target_key(head))
        for steps, follow, _ in tries:
            if follow is not None:
                for user in head.users:
                    if target_key(user) in follow:
                        break
                else:
                    continue
            if steps[0].region is not None:
                match = self._region(rule, steps[0], head, state)
            else:
                match = self._chain(rule, steps, head, state)
            if match is None:
                continue
            scoped = None
            if rule.scoped is not None and rule.scopes:
                # `scoped(conv, weight, bias)`: the anchor's filter reads the weight's
                # get_attr too (which no module scope holds); `scoped()`: nothing.
                scoped = owned_nodes(match, rule.scoped, self.partitions.of) \
                    if rule.scoped else []
            if rule.scopes and not self.in_rule_scope(rule, match.nodes, scoped):
                if self.misses is not None:
                    self._miss("scope", "its match " + " -> ".join(
                        n.name for n in match.nodes) + " is outside the rule's scope: "
                        + ", ".join(f"{s.kind} " + " or ".join(map(repr, s.selectors))
                                   for s in rule.scopes),
                        len(steps) + 1, match.head)
            else:
                # Owning a producer does not require it to be free (torchao's linear
                # annotator marks a shared weight again); rules that must skip a taken
                # weight say so: `conv2d[not annotated(weight)]`.
                if rule.takes is not None:
                    takes = None
                    if steps[0].region is None:   # a region's labels are its members'
                        takes = self._takes.get(id(steps))
                        if takes is None:
                            takes = self._takes[id(steps)] = takes_plan(rule.takes,
                                                                        match.labels)
                    match.owned = owned_nodes(match, rule.takes, self.partitions.of, takes)
                return match
        return None

    def why_not(self, rule: CompiledRule, head: Node, state: State) -> Optional[Miss]:
        """Why ``rule`` takes no match at ``head`` in ``state``: the failure that got
        furthest over all expansions and paths (the first of equals); None if it
        matches. The same step functions as annotating, with recording on."""
        self.misses = []
        try:
            match = self.try_rule(rule, head, state)
        finally:
            misses, self.misses = self.misses, None
        if match is not None:
            return None
        return max(misses, key=lambda miss: miss.depth) if misses else None

    def _miss(self, kind: str, detail: str, depth: int, node: Optional[Node] = None,
              **extra) -> None:
        # Callers test `self.misses is not None` first, so that annotating never even
        # formats a message.
        self.misses.append(Miss(kind, detail, depth, node.name if node is not None else None,
                                **extra))

    def _step(self, step: CompiledStep, node: Node, state: State, rule: CompiledRule,
              depth: int = 0):
        """(op, roles) when `node` has the shape of this step; its predicates are left
        to `_finish`, which a chain runs once its whole shape has matched."""
        # The op first: it is in the matcher's own index, while the float test reads
        # the node's value from its meta (memory nothing else here touches).
        kind = node.op
        op = step.op_for(target_key(node))
        if op is None and kind == "call_function":
            op = step.any_match
        # An `amend` rule matches only what this ruleset planned already (it fills
        # empty edges of those annotations); other rules only what nobody took.
        if rule.amend:
            blocked = node not in state.planned
        else:
            blocked = node in state.planned or bool(state.existing) and state.taken(node)
        # Graph inputs and outputs match whatever their dtype (a `graph_input` rule
        # annotates an integer input too, without a spec: plan.py drops it); ops only
        # when their output is floating point, unless the rule says `any_dtype`.
        if op is None or blocked:
            shaped = False
        elif kind == "call_function":
            shaped = rule.any_dtype or state.is_float(node)
        else:
            shaped = kind in ("placeholder", "output")
        if not shaped:
            if self.misses is not None:
                # Explain reports what is wrong with the node itself before a wrong op.
                floating = kind in ("placeholder", "output") or kind == "call_function" \
                    and (rule.any_dtype or state.is_float(node))
                if blocked or not floating:
                    self._miss_shape(step, node, state, rule.amend, blocked, depth)
                else:
                    self._miss("step", f"step {depth + 1} expects "
                               f"{' | '.join(o.name for o in step.ops)}, found "
                               f"{node.target}", depth, node)
            return None
        return op, self.roles_of(op, node)

    def roles_of(self, op, node: Node) -> dict:
        """``bind_roles(node, op)``, once per (op, node) and annotate call."""
        bound = self.bound_roles[id(op)]   # an OpMatch hashes its target sets: by id
        roles = bound.get(node)
        if roles is None:
            roles = bound[node] = bind_roles(node, op)
        return roles

    def holds(self, predicate, op, node: Node, roles: dict, state: State) -> bool:
        """Do a step's predicates hold at ``node``? A static one (same text and
        parameters on the same node: same answer) is asked once per annotate call."""
        if not predicate.static:
            bound = self.bound_for(state)
            checks = bound.get(id(predicate), False)
            if checks is False:
                checks = bound[id(predicate)] = predicate.bound_checks(state)
            return predicate.holds(node, roles, state) if checks is None \
                else holds_bound(checks, node, roles)
        key = (id(predicate), id(op), node)
        passed = self._static.get(key)
        if passed is None:
            passed = self._static[key] = predicate.holds(node, roles, state)
        return passed

    def bound_for(self, state: State) -> dict:
        """id(predicate) -> its ``bound_checks(state)``, as the planners fill it: a
        predicate's producer questions are bound to one state once."""
        if state is not self._bound_state:
            self._bound, self._bound_state = {}, state
        return self._bound

    def _miss_shape(self, step, node, state, amend, blocked, depth) -> None:
        if node.op not in ("call_function", "placeholder", "output"):
            self._miss("step", f"step {depth + 1} expects an op call, found "
                       f"{node.op} {node.name}", depth, node)
        elif blocked and amend:
            self._miss("phase", f"{node.name} was not planned by this ruleset; "
                       f"`amend` only fills annotations made already", depth, node)
        elif blocked:
            planned = state.planned.get(node)
            taker = (f"rule {planned.rule.name} ({planned.rule.location})"
                     if planned is not None else "another quantizer")
            self._miss("phase", f"{node.name} is taken by {taker}", depth, node)
        else:
            self._miss("step", f"{node.name} has no float output", depth, node)

    def _chain(self, rule, steps, head: Node, state: State) -> Optional[Match]:
        # Shape first (ops, links, users), predicates once the whole shape matched:
        # they only read the graph and earlier annotations, so the order does not
        # change the answer, and most candidates fail on shape (a conv not followed
        # by a relu) before any predicate has to run.
        found = self._step(steps[0], head, state, rule, 0)
        if found is None:
            return None
        if len(steps) == 1:
            return self._finish(rule, steps, [head], [found[0]], [found[1]], [], state)
        return self._extend(rule, steps, [head], [found[0]], [found[1]], [], state)

    def _finish(self, rule, steps, nodes, ops, roles, interior, state) -> Optional[Match]:
        """The match of a chain whose every step has the right shape, if its steps'
        predicates hold."""
        for step, node, op, role in zip(steps, nodes, ops, roles):
            predicate = step.predicate
            if predicate is None:
                continue
            if not self.holds(predicate, op, node, role, state):
                if self.misses is not None:
                    self._miss_predicate(step, node, role, state, len(nodes))
                return None
        labels = self._labels.get(id(steps))   # steps: a tuple the rule keeps
        if labels is None:
            labels = self._labels[id(steps)] = [s.label for s in steps]
        return Match(rule, nodes, ops, roles, labels, interior=interior)

    def _extend(self, rule, steps, nodes, ops, roles, interior, state) -> Optional[Match]:
        """Match steps[len(nodes):] after the nodes matched so far; `a ~> b` tries each
        user of a's output in order, `a -> b` requires b to be the only one."""
        index = len(nodes)
        if index == len(steps):
            return self._finish(rule, steps, nodes, ops, roles, interior, state)
        step = steps[index]
        last = ops[-1]
        previous = nodes[-1] if last.output_item is None else output_of(nodes[-1], last)
        if previous is None or (len(previous.users) != 1 and not step.shared_input):
            if self.misses is not None:
                self._miss_link(nodes[-1], previous, index)
            return None
        between = []
        if previous is not nodes[-1]:
            # The getitem between a tuple op and the next step is inside the match:
            # taken with it, so no later rule can put an observer there.
            if state.taken(previous) and not rule.amend:
                if self.misses is not None:
                    self._miss("phase", f"{previous.name} (between steps) is taken", index,
                               previous)
                return None
            between = [previous]
        if not previous.users and self.misses is not None:
            self._miss("link", f"the chain ends at {previous.name}: its output has no "
                       f"user for step {index + 1}", index, previous)
        for user in list(previous.users):
            found = self._step(step, user, state, rule, index)
            # `a -> b`: b takes a's output as one of its `input` roles; feeding b's
            # weight or bias (or a keyword) is not a chain.
            if found is None or previous not in found[1].get("input", ()):
                if found is not None and self.misses is not None:
                    self._miss("link", f"{previous.name} feeds {user.name} but not as "
                               f"its input", index, user)
                continue
            match = self._extend(rule, steps, nodes + [user], ops + [found[0]],
                                 roles + [found[1]], interior + between, state)
            if match is not None:
                return match
        return None

    def _miss_link(self, node: Node, previous: Optional[Node], index: int) -> None:
        if previous is None:
            self._miss("link", f"{node.name}'s tensor output is not one getitem", index,
                       node)
            return
        users = ", ".join(u.name for u in previous.users) or "none"
        self._miss("link", f"{previous.name}'s output has {len(previous.users)} users "
                   f"({users}); `->` needs it to have one (`~>` allows more)", index,
                   previous)

    def _miss_predicate(self, step, node: Node, roles, state: State, depth: int) -> None:
        failed = step.predicate.first_failure(StepContext(node, roles, state))
        if failed is not None:
            expr, values = failed
            self._miss("predicate", f"a predicate is false on {node.name}", depth, node,
                       span=expr.span, values=values)

    def _region(self, rule, step: CompiledStep, head: Node, state: State) -> Optional[Match]:
        neighbour = None
        if step.region.selector_kind == "connected":
            if state.taken(head) or head.target not in self.compiled.op_targets.get(
                    step.region.selector, ()):
                if self.misses is not None:
                    self._miss("region", f"{head.name} is taken or not a "
                               f"{step.region.selector} op", 0, head)
                return None
            parts = connected_region(head, self.compiled.op_targets[step.region.selector],
                                     state, self.order)
            if parts is None:
                if self.misses is not None:
                    self._miss("region", f"{head.name} heads no connected "
                               f"{step.region.selector!r} region", 0, head)
                return None
            members, inputs, outputs, neighbour = parts
            # A config copying the neighbour's spec has nothing to copy without one.
            if neighbour is None and rule.copies_neighbour and not (
                    rule.neighbour_at_io is not None and touches_graph_io(members, state)):
                if self.misses is not None:
                    self._miss("region", f"the region at {head.name} has no annotated "
                               "neighbour to copy a spec from", 0, head)
                return None
        else:
            parts = self.region_of(step.region, head)
            if parts is None:
                if self.misses is not None:
                    self._miss("region", f"{head.name} is in no {step.region.selector_kind} "
                               f"{step.region.selector!r} region", 0, head)
                return None
            members, inputs, outputs = parts
        if members[0] is not head or any(state.taken(n) for n in members):
            if self.misses is not None:
                self._miss("region", f"{head.name} does not start a free region (its "
                           f"first member is {members[0].name})", 0, head)
            return None
        # A region's predicates (`region(...)[not annotated(input)]`) see its input
        # sources as `input` and its output nodes as `output`, in the order collected.
        if step.predicate is not None and not step.predicate(
                StepContext(head, region_roles(inputs, outputs), state)):
            if self.misses is not None:
                self._miss_predicate(step, head, region_roles(inputs, outputs), state, 1)
            return None
        connected = step.region.selector_kind == "connected"
        return Match(rule, members, [None] * len(members), [{}] * len(members),
                     [None] * len(members), inputs, outputs, neighbour=neighbour,
                     connected=connected, is_region=bool(inputs or outputs or connected))
