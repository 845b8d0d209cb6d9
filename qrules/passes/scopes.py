"""Where in the model a node is: rule scopes, module instances (regions), source partitions.

Everything here reads a node's module stack (``qrules.compile.graph_meta``) or its
source records, never annotations: the answers hold for a whole annotate call.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from typing import Iterable, Optional

from torch.fx import GraphModule, Node

from qrules.compile.context import source_names
from qrules.compile.graph_meta import (
    innermost_module, is_float_value, module_stack, module_stack_entry,
)
from qrules.compile.matchers import CompiledRule
from qrules.semantics.facts import source_matches, type_matches

#: A region instance: (members in graph order, input edges (source, member), outputs).
RegionParts = tuple[list[Node], list[tuple[Node, Node]], list[Node]]


def in_scope(node: Node, kind: str, selector, op_targets=None) -> bool:
    if kind == "module_name":
        return any(fnmatch.fnmatchcase(path, selector) for path, _ in module_stack(node))
    if kind == "module_type":
        return any(type_matches(selector, qualname) for _, qualname in module_stack(node))
    if kind == "operator":
        return op_targets is not None and node.target in op_targets
    if kind == "node_name":
        return fnmatch.fnmatchcase(node.name, selector)
    if kind == "graph_io":  # set from Python (set_io): placeholders, the output node
        return node.op == selector
    if kind == "node_filter":  # set from Python: a callable (set_filter_function)
        return bool(selector(node))
    if kind == "operator_target":  # set from Python with an OpOverload(Packet)
        target = node.target
        return selector in (str(target), str(getattr(target, "overloadpacket", target)))
    if kind == "operator_overload":  # the same under `scoping filters`: overloads only
        return selector == str(node.target)
    if kind == "outside":  # under `scoping filters`: not in that scope (a ScopeRef)
        return not any(in_scope(node, selector.kind, s) for s in selector.selectors)
    return False


#: Scope kinds tested on a match's head only, whatever `scoped(...)` says.
HEAD_SCOPES = ("operator", "operator_target", "operator_overload", "node_name")


def in_rule_scope(rule: CompiledRule, nodes: list[Node], op_targets: dict,
                  scoped: Optional[Iterable[Node]] = None) -> bool:
    """Do the nodes of a match lie in every scope of the rule? ``scoped``: the nodes
    the rule's `scoped(...)` clause names in this match, tested instead of ``nodes``
    for module and filter scopes (none: the rule ignores them)."""
    for scope in rule.scopes:
        # An operator scope (also one set from Python with set_operator_type) holds
        # for a match whose head is that op: `linear -> relu` under the linear
        # operator type (operator_target used to require every node to be a linear).
        if scope.kind in HEAD_SCOPES:
            check = nodes[:1]
        else:
            check = nodes if scoped is None else scoped
        if not all(any(in_scope(n, scope.kind, selector, op_targets.get(selector))
                       for selector in scope.selectors) for n in check):
            return False
    return True


class ModuleMembers:
    """The call nodes that ran inside each module path, in graph order: a region's
    members, indexed once per graph on first use (only region rules ask) instead of a
    scan of every call node at every head a region rule tries."""

    def __init__(self, calls: list[Node]):
        self.calls = calls
        self._by_path: Optional[dict[str, list[Node]]] = None

    def __call__(self, path: str) -> list[Node]:
        if self._by_path is None:
            self._by_path = defaultdict(list)
            for node in self.calls:
                for inside in dict.fromkeys(p for p, _ in module_stack(node)):
                    self._by_path[inside].append(node)
        return list(self._by_path.get(path, ()))


def region_instance(region, node: Node) -> Optional[str]:
    """The module path of the (outermost) instance of ``region`` that ``node`` ran in."""
    for path, qualname in module_stack(node):
        if (region.selector_kind == "module_type" and type_matches(region.selector,
                                                                   qualname)) or (
                region.selector_kind == "module_name" and fnmatch.fnmatchcase(
                    path, region.selector)):
            return path
    return None


class RegionHeads:
    """Which call nodes ran inside an instance of any of some module regions, or belong
    to a source partition of a `source` region (the only heads a rule of such regions
    can match at): the same answer as ``region_instance`` / ``source_region`` per
    region, with each distinct module class, path or set of source names judged once
    rather than every node's whole module stack parsed. The verdicts depend on those
    alone, so one instance serves every graph."""

    def __init__(self, regions):
        self.types = [r.selector for r in regions if r.selector_kind == "module_type"]
        self.names = [r.selector for r in regions if r.selector_kind == "module_name"]
        self.sources = [r.selector for r in regions if r.selector_kind == "source"]
        # A dotted selector (a class) never matches a `torch_fn` name, which has no dot.
        self._functions = any("." not in selector for selector in self.sources)
        self._kinds: dict = {}   # raw nn_module_stack class -> one of the types?
        self._paths: dict = {}   # raw nn_module_stack path -> one of the names?
        self._sourced: dict = {}   # source names, or a raw class -> one of the sources?
        if not (self.types or self.names):
            self.inside = self._sourced_from   # `source` regions only: one call a node

    def inside(self, node: Node) -> bool:
        if self.sources and self._sourced_from(node):
            return True
        if not (self.types or self.names):
            return False
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return False
        kinds, paths = self._kinds, self._paths
        for path, kind in stack.values():
            if self.types:
                found = kinds.get(kind)
                if found is None:
                    qualname = module_stack_entry((path, kind))[1]
                    found = kinds[kind] = any(type_matches(selector, qualname)
                                              for selector in self.types)
                if found:
                    return True
            if self.names:
                found = paths.get(path)
                if found is None:
                    stripped = module_stack_entry((path, kind))[0]
                    found = paths[path] = any(fnmatch.fnmatchcase(stripped, selector)
                                              for selector in self.names)
                if found:
                    return True
        return False

    def _sourced_from(self, node: Node) -> bool:
        """Does `source(...)` of one of the source selectors hold at ``node``? After a
        non-strict export, with dotted selectors only, that is its innermost module's
        class (``source_names`` without functions), judged once per raw class."""
        if self._functions or node.meta.get("source_fn_stack"):
            key = names = source_names(node)
        else:
            stack = node.meta.get("nn_module_stack")
            key = next(reversed(stack.values()))[1] if stack else None
            names = None
        found = self._sourced.get(key)
        if found is None:
            if names is None:
                names = source_names(node, functions=False)
            found = self._sourced[key] = any(source_matches(selector, name)
                                             for selector in self.sources for name in names)
        return found


def region_of(region, node: Node, members_of: ModuleMembers,
              partitions: "SourcePartitions") -> Optional[RegionParts]:
    """The instance of ``region`` that ``node`` belongs to (``members_of``: the graph's
    call nodes by module path; ``partitions``: its source partitions): its members in
    graph order, its input edges and its output nodes; None when there is none."""
    if region.selector_kind == "source":
        return source_region(region, node, partitions)
    instance = region_instance(region, node)
    if instance is None:
        return None
    return _region_parts(members_of(instance), instance, set())


def source_region(region, node: Node, partitions: "SourcePartitions"
                  ) -> Optional[RegionParts]:
    """`region(source "S")`: the call nodes of ``node``'s source partition (as torch's
    get_source_partitions groups them), when ``node`` is a call traced from ``S`` (what
    `source("S")` reads). The partition's parameters (after a strict export) and those
    of the module the node ran in are inside it, not inputs."""
    if node.op != "call_function" or not any(
            source_matches(region.selector, name) for name in source_names(node)):
        return None
    partition = partitions.of(node)
    members = [member for member in partition if member.op == "call_function"]
    return _region_parts(members, innermost_module(node)[0] or None, set(partition))


def _region_parts(members: list[Node], instance: Optional[str], inside: set
                  ) -> Optional[RegionParts]:
    """A region's parts from its members: ``instance`` is the module path whose
    parameters are inside it (None: no module's); ``inside``: other nodes that are."""
    inside.update(members)
    inputs, outputs = [], []
    for member in members:
        for arg in member.all_input_nodes:
            # The module's own parameters and buffers (get_attr nodes carry no
            # nn_module_stack) are inside it, not inputs: gru_io_only used to give
            # the GRU's weights and biases the activation spec.
            if arg.op == "get_attr" and instance is not None and (
                    instance == "" or str(arg.target).startswith(instance + ".")):
                continue
            if arg not in inside and is_float_value(arg):
                inputs.append((arg, member))
        if any(user not in inside for user in member.users) and is_float_value(member):
            outputs.append(member)
    return (members, inputs, outputs) if members else None


def region_roles(inputs: list[tuple[Node, Node]], outputs: list[Node]) -> dict[str, list]:
    """What a region's predicates call `input` and `output`."""
    return {"input": [source for source, _ in inputs], "output": list(outputs)}


class SourcePartitions:
    """The graph's nodes grouped as torch's get_source_partitions groups them, built
    on first use (only `takes(partition)` asks)."""

    def __init__(self, gm: GraphModule):
        self.gm = gm
        self._partitions: Optional[dict] = None
        self._inner_paths: set = set()

    def of(self, node: Node) -> list[Node]:
        """The nodes of `node`'s source partition (itself alone if it has none)."""
        if self._partitions is None:
            # Module paths with submodules: every path but the last of some node's stack.
            self._inner_paths = {path for other in self.gm.graph.nodes
                                 for path, _ in module_stack(other)[:-1]}
            self._partitions = defaultdict(list)
            for other in self.gm.graph.nodes:
                key = _source_key(other, self._inner_paths)
                if key is not None:
                    self._partitions[key].append(other)
        key = _source_key(node, self._inner_paths)
        return list(self._partitions.get(key, [node])) if key is not None else [node]


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
    modules = module_stack(node)
    if node.op != "call_function" or not modules:
        return None
    path = modules[-1][0]
    record = node.meta.get("torch_fn")
    if path in inner_paths and record:
        return ("fn", path, record[0])
    return ("module", path)
