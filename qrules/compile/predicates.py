"""Predicates (``conv2d[weight.rank == 4, is_float(input)]``) compiled to closures.

A predicate reads facts of one candidate node: its role arguments (as tensors
from ``node.meta["val"]``, or Python constants), its users, its module, and the
annotations already made (by earlier rules, phases or quantizers). Parameters are
bound at compile time. The names were checked by lint; anything that still goes
wrong at run time (a fact of a missing argument) makes the predicate false.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Optional

from qrules.compile.graph_meta import innermost_module
from qrules.syntax import ast

_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "%": operator.mod, "**": operator.pow, "==": operator.eq, "!=": operator.ne,
           "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def type_matches(selector: str, qualname: str) -> bool:
    """``torch.nn.Linear`` matches ``torch.nn.modules.linear.Linear``: same class name,
    and the selector's module is a package the class's module lives in."""
    if selector == qualname:
        return True
    sel_module, _, sel_name = selector.rpartition(".")
    module, _, name = qualname.rpartition(".")
    return sel_name == name and (module == sel_module or module.startswith(sel_module + "."))


# torch keeps many functions on private classes; name them as users call them.
_MODULE_ALIASES = (("torch._VariableFunctionsClass", "torch"), ("torch._C._nn",
                   "torch.nn.functional"), ("_operator", "operator"))


def callable_name(source) -> str:
    """`torch.nn.modules.conv.Conv2d`, `torch.conv2d` (also F.conv2d, the same object),
    `operator.add`, or a method name such as `add_` (export records those as strings)."""
    if isinstance(source, str):
        return source
    module = getattr(source, "__module__", None) or ""
    for private, public in _MODULE_ALIASES:
        if module == private:
            module = public
    name = source.__qualname__ if isinstance(source, type) else getattr(
        source, "__name__", repr(source))
    return f"{module}.{name}" if module else name


@functools.lru_cache(maxsize=4096)
def _source_matches(wanted: str, found: str) -> bool:
    """Exact names, plus classes by their public path (`torch.nn.ReLU`)."""
    return wanted == found or ("." in wanted and type_matches(wanted, found))


class RoleValue:
    """One argument of the candidate node, with the facts a predicate may read."""

    def __init__(self, value: Any, ctx: "StepContext"):
        self.value_ = value
        self.ctx = ctx

    @property
    def _node(self):
        return self.value_ if hasattr(self.value_, "meta") and hasattr(self.value_, "op") \
            else None

    @property
    def _tensor(self):
        node = self._node
        return node.meta.get("val") if node is not None else None

    def _constant_value(self) -> Any:
        """A Python constant as is; a one-element tensor the module stores (what
        ``scalars_to_attrs`` makes of ``x + 6``) as its number; else None."""
        node = self._node
        if node is None:
            return self.value_
        if node.op != "get_attr":
            return None
        module = node.graph.owning_module
        value = module
        for part in str(node.target).split("."):
            value = getattr(value, part, None)
        if hasattr(value, "numel") and value.numel() == 1:
            return value.item()
        return None

    def fact(self, name: str) -> Any:
        tensor = self._tensor
        if name == "is_node":
            return self._node is not None
        if name == "is_scalar":
            return self._node is None and isinstance(self.value_, (int, float, bool))
        if name == "is_constant":  # a Python constant, or a tensor stored in the module
            return self._node is None or self._node.op == "get_attr"
        if name == "value":
            return self._constant_value()
        if name == "is_float":
            return bool(tensor is not None and hasattr(tensor, "dtype")
                        and tensor.dtype.is_floating_point)
        if name == "rank":
            return tensor.dim() if hasattr(tensor, "dim") else 0
        if name == "shape":
            return list(tensor.shape) if hasattr(tensor, "shape") else []
        if name == "numel":
            return int(tensor.numel()) if hasattr(tensor, "numel") else 1
        if name == "dtype":
            return str(tensor.dtype).replace("torch.", "") if hasattr(tensor, "dtype") \
                else type(self.value_).__name__
        if name == "users":
            return len(self._node.users) if self._node is not None else 0
        if name == "annotated":
            return self._node is not None and self.ctx.is_annotated(self._node)
        if name == "quantized":
            return self._node is not None and self.ctx.output_quantized(self._node)
        raise KeyError(name)


class StepContext:
    """What a predicate sees: the node, its role bindings, and ``state``: the annotations
    made so far and the ruleset in force (``state.op_targets``: op name -> overloads)."""

    def __init__(self, node, roles: dict[str, list[Any]], state):
        self.node = node
        self.roles = roles
        self.state = state

    def role(self, name: str, index: int = 0) -> RoleValue:
        values = self.roles.get(name, [])
        if index >= len(values):
            raise LookupError(f"no {name}[{index}]")
        return RoleValue(values[index], self)

    def is_annotated(self, node) -> bool:
        return self.state.is_annotated(node)

    def output_quantized(self, node) -> bool:
        return self.state.output_quantized(node)

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
        stack = self.node.meta.get("source_fn_stack")
        if stack:
            return (callable_name(stack[-1][1]),)
        out = []
        record = self.node.meta.get("torch_fn")
        if record and len(record) > 1 and "." in str(record[1]):
            out.append(str(record[1]).split(".")[1])
        kind = self.module()[1]
        if kind:
            out.append(kind)
        return tuple(out)

    def module(self) -> tuple[str, str]:
        return innermost_module(self.node)


def _role_of(expr, ctx: StepContext):
    if isinstance(expr, ast.Each) and isinstance(expr.value, ast.Name):
        return ctx.every(expr.value.id)
    if isinstance(expr, ast.Name):
        return ctx.role(expr.id)
    if isinstance(expr, ast.Index) and isinstance(expr.value, ast.Name):
        return ctx.role(expr.value.id, _eval(expr.index, ctx, {}))
    raise LookupError("not a role")


def _argument(node, index: int) -> Any:
    """Argument ``index`` in schema order: positional, else keyword, else the schema's
    default (exported graphs leave defaults out: `conv2d(x, w, b)` has groups == 1).
    Only positional arguments were read, so `arg(6) == 1` was false for such a conv."""
    if index < len(node.args):
        return node.args[index]
    schema = getattr(node.target, "_schema", None)
    if schema is not None and 0 <= index < len(schema.arguments):
        argument = schema.arguments[index]
        if argument.name in node.kwargs:
            return node.kwargs[argument.name]
        if argument.has_default_value():
            return argument.default_value
    return None


def _users_of(ctx: StepContext):
    return list(ctx.node.users)


def _call(expr: ast.Call, ctx: StepContext, params) -> Any:
    name = expr.func.id
    args = expr.args
    if name in ("is_float", "is_node", "rank", "quantized", "annotated", "is_constant"):
        try:
            role = _role_of(args[0], ctx)
        except LookupError:
            if name == "rank":
                raise
            # An argument the call leaves out (a conv without bias) is no node: not
            # float, not annotated. `not annotated(bias)` used to fail the whole match.
            return False
        if isinstance(role, list):
            return [value.fact(name) for value in role]
        return role.fact(name)
    if name in ("all", "any"):
        values = _eval(args[0], ctx, params)
        return all(values) if name == "all" else any(values)
    if name == "source":
        names = [_eval(a, ctx, params) for a in args]
        return any(_source_matches(wanted, found)
                   for found in ctx.sources() for wanted in names)
    if name == "abs":
        value = _eval(args[0], ctx, params)
        return abs(value.value_ if isinstance(value, RoleValue) else value)
    if name == "arg":
        return _argument(ctx.node, _eval(args[0], ctx, params))
    if name == "num_users":
        return len(ctx.node.users)
    if name in ("any_user", "all_users"):
        targets = ctx.state.op_targets.get(args[0].id, frozenset())
        hits = [user.op == "call_function" and (args[0].id == "any" or user.target in targets)
                for user in _users_of(ctx)]
        return any(hits) if name == "any_user" else bool(hits) and all(hits)
    if name == "any_user_quantizable":
        return any(ctx.state.could_quantize(user) for user in _users_of(ctx))
    if name == "module_type":
        return ctx.module()[1]
    if name == "module_name":
        return ctx.module()[0]
    raise LookupError(f"unknown predicate function {name}")


def _eval(expr, ctx: StepContext, params: dict) -> Any:
    if isinstance(expr, (ast.IntLit, ast.FloatLit, ast.StringLit, ast.BoolLit)):
        return expr.value
    if isinstance(expr, ast.NoneLit):
        return None
    if isinstance(expr, ast.Name):
        if expr.id in ctx.roles:
            return ctx.role(expr.id)
        if expr.id in params:
            return params[expr.id]
        return expr.id  # an enum choice or a dtype name, compared as a string
    if isinstance(expr, ast.Each):
        return _role_of(expr, ctx)
    if isinstance(expr, ast.Attribute):
        base = _eval(expr.value, ctx, params)
        if isinstance(base, RoleValue):
            return base.fact(expr.attr)
        if isinstance(base, list) and all(isinstance(b, RoleValue) for b in base):
            return [b.fact(expr.attr) for b in base]
        raise LookupError(f"no fact {expr.attr}")
    if isinstance(expr, ast.Index):
        base = expr.value
        if isinstance(base, ast.Name) and base.id in ctx.roles:
            return ctx.role(base.id, _eval(expr.index, ctx, params))
        container = _eval(base, ctx, params)
        return container[_eval(expr.index, ctx, params)]
    if isinstance(expr, ast.Call):
        return _call(expr, ctx, params)
    if isinstance(expr, ast.Unary):
        value = _eval(expr.operand, ctx, params)
        return (not value) if expr.op == "not" else -value
    if isinstance(expr, ast.Binary):
        if expr.op == "and":
            return bool(_eval(expr.left, ctx, params)) and bool(_eval(expr.right, ctx, params))
        if expr.op == "or":
            return bool(_eval(expr.left, ctx, params)) or bool(_eval(expr.right, ctx, params))
        left, right = _eval(expr.left, ctx, params), _eval(expr.right, ctx, params)
        if isinstance(left, RoleValue):
            left = left.value_
        if isinstance(right, RoleValue):
            right = right.value_
        return _BINARY[expr.op](left, right)
    if isinstance(expr, ast.Conditional):
        chosen = expr.then if _eval(expr.cond, ctx, params) else expr.otherwise
        return _eval(chosen, ctx, params)
    if isinstance(expr, ast.ListLit):
        return [_eval(item, ctx, params) for item in expr.items]
    raise LookupError(f"cannot evaluate {type(expr).__name__}")


# What a predicate reads that earlier matches change; everything else (tensor facts,
# users, modules, sources) is fixed while one graph is annotated.
_STATEFUL_CALLS = frozenset({"quantized", "annotated", "any_user_quantizable"})
_STATEFUL_FACTS = frozenset({"quantized", "annotated"})


def reads_annotations(expr) -> bool:
    """Does the predicate read annotations made so far (so it cannot be cached)?"""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) \
            and expr.func.id in _STATEFUL_CALLS:
        return True
    if isinstance(expr, ast.Attribute) and expr.attr in _STATEFUL_FACTS:
        return True
    children = [getattr(expr, name) for name in type(expr).model_fields
                if name not in ("span", "kind")]
    for child in children:
        items = child if isinstance(child, tuple) else (child,)
        for item in items:
            if isinstance(item, ast.Keyword):
                item = item.value
            if isinstance(item, ast.Node) and reads_annotations(item):
                return True
    return False


class StepPredicate:
    """All predicates of a step as one callable. ``static``: it reads no annotations,
    so its result for a node holds for the whole annotate call (the matcher caches
    it: every conv2d rule of a ruleset shares `conv2d[source(...)]`)."""

    __slots__ = ("exprs", "params", "static", "key")

    def __init__(self, exprs: tuple, params: dict):
        self.exprs = exprs
        self.params = params
        self.static = not any(reads_annotations(e) for e in exprs)
        self.key = ast.structure(exprs)   # the same text at two places: one key

    def __call__(self, ctx: StepContext) -> bool:
        for expr in self.exprs:
            try:
                if not _eval(expr, ctx, self.params):
                    return False
            except (LookupError, TypeError, ValueError, AttributeError, IndexError,
                    ZeroDivisionError):
                return False
        return True


def compile_predicates(predicates, params: dict,
                       shared: Optional[dict] = None) -> Optional[StepPredicate]:
    """All predicates of a step as one callable; None when there are none. With
    ``shared`` (one dict per compiled ruleset), steps with the same predicate text get
    the same object, so the matcher computes a static one once per node."""
    if not predicates:
        return None
    predicate = StepPredicate(tuple(predicates), params)
    if shared is None:
        return predicate
    return shared.setdefault(predicate.key, predicate)
