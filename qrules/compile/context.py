"""What a predicate sees at one candidate node: the step context and its role values.

``StepContext`` is the node, its role bindings and the annotation state; a
``RoleValue`` is one argument as fact implementations read it. The predicate compiler
(``compile.predicates``), the matcher and explain build them. ``first_position`` picks
the value `ROLE[first PRED else N]` names.
"""

from __future__ import annotations

from typing import Any, Optional

from qrules.compile.graph_meta import innermost_module, recorded_dtype
from qrules.semantics import registry
from qrules.syntax import ast

# torch keeps many functions on private classes; name them as users call them.
_MODULE_ALIASES = (("torch._VariableFunctionsClass", "torch"), ("torch._C._nn",
                   "torch.nn.functional"), ("_operator", "operator"))


#: id(source) -> (source, its name): a source_fn_stack entry is a module class or a
#: function, the same few objects in every graph. Held, so an id names no other object
#: while its entry lives; bounded, in case a tracer records short-lived callables.
_NAMES: dict[int, tuple[Any, str]] = {}
_NAMES_KEPT = 4096


def callable_name(source) -> str:
    """`torch.nn.modules.conv.Conv2d`, `torch.conv2d` (also F.conv2d, the same object),
    `operator.add`, or a method name such as `add_` (export records those as strings)."""
    if isinstance(source, str):
        return source
    known = _NAMES.get(id(source))
    if known is not None and known[0] is source:
        return known[1]
    name = _callable_name(source)
    if len(_NAMES) < _NAMES_KEPT:
        _NAMES[id(source)] = (source, name)
    return name


def _callable_name(source) -> str:
    module = getattr(source, "__module__", None) or ""
    for private, public in _MODULE_ALIASES:
        if module == private:
            module = public
    name = source.__qualname__ if isinstance(source, type) else getattr(
        source, "__name__", repr(source))
    return f"{module}.{name}" if module else name


class RoleValue:
    """One argument of the candidate node, as fact implementations read it: ``value``
    (the argument itself), ``node`` (its fx node, None for a Python constant),
    ``tensor`` (the node's ``meta["val"]``) and ``ctx`` (the step)."""

    __slots__ = ("value", "ctx", "node")

    def __init__(self, value: Any, ctx: "StepContext"):
        self.value = value
        self.ctx = ctx
        # Facts ask for the node several times per value: told apart once.
        self.node = value if hasattr(value, "meta") and hasattr(value, "op") else None

    @property
    def tensor(self):
        node = self.node
        return node.meta.get("val") if node is not None else None

    @property
    def dtype(self):
        """The tensor's dtype (``recorded_dtype`` first: the fake tensor read from
        cold memory costs ~5x more); None for a Python constant or a non-tensor."""
        node = self.node
        if node is None:
            return None
        dtype = recorded_dtype(node)
        return dtype if dtype is not None else getattr(node.meta.get("val"), "dtype", None)

    def fact(self, name: str) -> Any:
        return registry.FACTS[name].implementation(self)


class StepContext:
    """What a predicate sees: the node, its role bindings, and ``state``: the annotations
    made so far and the ruleset in force (``state.op_targets``: op name -> overloads)."""

    def __init__(self, node, roles: dict[str, list[Any]], state):
        self.node = node
        self.roles = roles
        self.state = state

    def role(self, name: str, index: int = 0) -> RoleValue:
        values = self.roles.get(name)
        if values is None:
            # `output` is the node's own value unless the op binds it (`item(N)`).
            values = [self.node] if name == "output" else []
        if index >= len(values):
            raise LookupError(f"no {name}[{index}]")
        return RoleValue(values[index], self)

    def is_annotated(self, node) -> bool:
        return self.state.is_annotated(node)

    def output_quantized(self, node) -> bool:
        return self.state.output_quantized(node)

    def output_shared(self, node) -> bool:
        return self.state.output_shared(node)
    def has_output_spec(self, node) -> bool:
        return self.state.has_output_spec(node)

    def every(self, name: str) -> list[RoleValue]:
        """``input[*]``: every value bound to the role."""
        return [RoleValue(value, self) for value in self.roles.get(name, [])]

    def sources(self) -> tuple[str, ...]:
        """Names of what the node was traced from, as torchao's get_source_partitions
        sees it: the innermost `source_fn_stack` entry after a strict export; else the
        function name torch.export records in `torch_fn` (`add` for `x + y`, `add_`
        for `+=`), and the innermost module's class. Read once per node and plan."""
        cache = getattr(self.state, "sources", None)
        if cache is None:
            return self._sources()
        found = cache.get(self.node)
        if found is None:
            found = cache[self.node] = self._sources()
        return found

    def _sources(self) -> tuple[str, ...]:
        return source_names(self.node)

    def module(self) -> tuple[str, str]:
        return innermost_module(self.node)


def source_names(node, functions: bool = True) -> tuple[str, ...]:
    """What ``node`` was traced from (``StepContext.sources``). ``functions=False``
    leaves out the `torch_fn` name of a non-strict export: it has no dot, so only a
    selector without one (`add_`) can match it, never a dotted one (a class)."""
    stack = node.meta.get("source_fn_stack")
    if stack:
        return (callable_name(stack[-1][1]),)
    out = []
    record = node.meta.get("torch_fn") if functions else None
    if record and len(record) > 1 and "." in str(record[1]):
        out.append(str(record[1]).split(".")[1])
    kind = innermost_module(node)[1]
    if kind:
        out.append(kind)
    return tuple(out)


def first_position(first: ast.FirstOf, values: list, ctx: StepContext) -> Optional[int]:
    """``first PRED else N`` over one role's values: the position of the first value
    the one-edge predicate function holds for, else ``N`` if the role has it, else
    None (the rule does not match there)."""
    function = registry.PREDICATE_FUNCTIONS[first.predicate]
    for position, value in enumerate(values):
        try:
            if function.implementation(ctx, RoleValue(value, ctx)):
                return position
        except (LookupError, TypeError, ValueError, AttributeError):
            continue   # a fact the value lacks: it does not qualify
    if first.fallback is not None and first.fallback < len(values):
        return first.fallback
    return None
