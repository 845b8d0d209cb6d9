"""What a predicate can read: every fact and predicate function, declared once.

A declaration carries the name, the type, whether it reads annotations made so far, the
doc row of docs/language.md and the implementation. Lint checks names and arity against
it, the interpreter (``compile.predicates``) dispatches through it, and the docs table is
generated from it (``scripts/registry_tables.py``).

Implementations run on the exported graph but never import torch: they read fx nodes
and tensors by duck typing. A fact's implementation takes a role value (``.value``, the
argument as the node has it; ``.node``, the fx node or None for a Python constant;
``.tensor``, the node's ``meta["val"]``; ``.dtype``, its dtype; ``.ctx``, the step); a
predicate function's takes the step context, then one value per argument, by kind
(``ARGUMENT_KINDS``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

#: Result types a fact or a predicate function may declare.
RESULT_TYPES = frozenset({"bool", "int", "number", "str", "list", "any"})

#: What a predicate function receives for an argument of each kind: a role value (a list
#: of them for `ROLE[*]`, None when the node lacks that argument), the evaluated value
#: (a role's raw argument for `any`), the op name as written, or the literal's value.
ARGUMENT_KINDS = frozenset({"role", "any", "int", "op", "str", "list"})


@dataclass(frozen=True)
class Fact:
    """``ROLE.name``: ``implementation(role) -> value`` of type ``type``."""

    kind: ClassVar[str] = "fact"
    name: str
    type: str
    doc: str
    implementation: Callable[[Any], Any]
    reads_annotations: bool = False


@dataclass(frozen=True)
class PredicateFunction:
    """``name(args)``: ``implementation(ctx, *values) -> result``. A last argument kind
    ending in ``...`` repeats (one or more). ``node_only``: reads the step's node itself,
    which a region (many nodes) does not have."""

    kind: ClassVar[str] = "predicate function"
    name: str
    arg_kinds: tuple[str, ...]
    result: str
    doc: str
    implementation: Callable[..., Any]
    reads_annotations: bool = False
    node_only: bool = False

    def kinds_for(self, count: int) -> tuple[str, ...]:
        """The kind of each of ``count`` arguments (variadic kinds repeated)."""
        kinds = self.arg_kinds
        if kinds and kinds[-1].endswith("..."):
            return kinds[:-1] + (kinds[-1][:-3],) * (count - len(kinds) + 1)
        return kinds


# ------------------------------------------------------------------------ facts


def _constant_value(role) -> Any:
    """A Python constant as is; a one-element tensor the module stores (what
    ``scalars_to_attrs`` makes of ``x + 6``) as its number; else None."""
    node = role.node
    if node is None:
        return role.value
    if node.op != "get_attr":
        return None
    value = node.graph.owning_module
    for part in str(node.target).split("."):
        value = getattr(value, part, None)
    if hasattr(value, "numel") and value.numel() == 1:
        return value.item()
    return None


#: dtype -> its name: a handful of dtypes, compared at nearly every add and mul.
_DTYPE_NAMES: dict = {}


def _dtype_name(dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).replace("torch.", "")
    return name


def _dtype(role) -> str:
    dtype = role.dtype   # read once: a tensor's C getter, or its export record
    return _dtype_name(dtype) if dtype is not None else type(role.value).__name__


def _is_float(role) -> bool:
    dtype = role.dtype   # as `dtype` reads it: the two facts never disagree
    return dtype is not None and bool(dtype.is_floating_point)


#: Layouts a tensor's strides can be dense in, each as its dimensions from the fastest
#: varying: torch's is_contiguous(memory_format=...) (contiguous: the last dim first).
_LAYOUTS = (("channels_last", (1, 3, 2, 0)), ("channels_last_3d", (1, 4, 3, 2, 0)))


def _dense_in(order, shape, strides) -> bool:
    """Size-1 dimensions may have any stride, as in torch's check."""
    expected = 1
    for dim in order:
        if shape[dim] != 1:
            if strides[dim] != expected:
                return False
            expected *= shape[dim]
    return True


def _memory_format(role) -> str:
    tensor = role.tensor
    if not (hasattr(tensor, "shape") and hasattr(tensor, "stride")):
        return "other"
    shape, strides = tuple(tensor.shape), tuple(tensor.stride())
    if 0 in shape or _dense_in(range(len(shape) - 1, -1, -1), shape, strides):
        return "contiguous"   # also when channels-last strides say the same (C == 1)
    for name, order in _LAYOUTS:
        if len(order) == len(shape) and _dense_in(order, shape, strides):
            return name
    return "other"


def _of_producer(question: str) -> Callable:
    """A fact about the node producing the tensor, answered by the match's state
    (``StepContext.is_annotated`` / ``output_quantized``); false for a constant."""
    return lambda role: role.node is not None and getattr(role.ctx, question)(role.node)


FACTS: dict[str, Fact] = {f.name: f for f in (
    Fact("rank", "int", "number of dimensions of the tensor",
         lambda role: role.tensor.dim() if hasattr(role.tensor, "dim") else 0),
    Fact("shape", "list", "the tensor's sizes; index it: `weight.shape[1]`",
         lambda role: list(role.tensor.shape) if hasattr(role.tensor, "shape") else []),
    Fact("numel", "int", "number of elements",
         lambda role: int(role.tensor.numel()) if hasattr(role.tensor, "numel") else 1),
    Fact("dtype", "str", "the tensor's dtype, compared with a dtype name: "
         "`input.dtype == float32`", _dtype),
    Fact("is_float", "bool", "the tensor has a floating-point dtype", _is_float),
    Fact("memory_format", "str", "the layout the tensor's strides are dense in: "
         "`\"contiguous\"` (row-major; also when another layout's strides say the same, "
         "as with one channel), `\"channels_last\"` (4-D NHWC), `\"channels_last_3d\"` "
         "(5-D NDHWC) or `\"other\"` (also for a Python constant), as torch's "
         "`is_contiguous(memory_format=...)` decides", _memory_format),
    Fact("is_node", "bool", "the argument is a graph node (false for a Python constant, as "
         "in `x + 6`)", lambda role: role.node is not None),
    Fact("is_scalar", "bool", "the argument is a Python number, not a graph node (as the "
         "`6` in `x + 6`)",
         lambda role: role.node is None and isinstance(role.value, (int, float, bool))),
    Fact("is_constant", "bool", "the argument is a Python constant or a tensor the module "
         "stores (a `get_attr` node: a parameter, a buffer, or what `scalars_to_attrs` made "
         "of a scalar)", lambda role: role.node is None or role.node.op == "get_attr"),
    Fact("value", "any", "a Python constant's value, or the number in a one-element stored "
         "tensor; otherwise `none`", _constant_value),
    Fact("users", "int", "number of users of the tensor",
         lambda role: len(role.node.users) if role.node is not None else 0),
    Fact("annotated", "bool", "the node producing it is annotated and marked so: taken by "
         "an earlier match of a rule that is not `unmarked`, or carrying another "
         "quantizer's annotation with torchao's `_annotated` flag (what torchao's "
         "`_is_annotated` reads)", _of_producer("is_annotated"), reads_annotations=True),
    Fact("quantized", "bool", "an earlier match quantized the tensor: it gave the "
         "producer's output a spec, or the producer is the last node of a match that "
         "quantized that match's `input` edges (a fused int8 pattern, X86's "
         "`_is_output_of_quantized_pattern`)", _of_producer("output_quantized"),
         reads_annotations=True),
    Fact("shared", "bool", "an earlier match gave the producer's output a spec that shares "
         "another edge's observer (`same_as`; another quantizer's "
         "SharedQuantizationSpec), as a split's items do", _of_producer("output_shared"),
         reads_annotations=True),
    Fact("has_output_spec", "bool", "an earlier match (or another quantizer) gave the "
         "producer's output itself a spec: `quantized` without the fused-pattern case, "
         "so false after a dynamically quantized linear (executorch's "
         "`propagate_annotation` reads this)", _of_producer("has_output_spec"),
         reads_annotations=True),
)}


# ---------------------------------------------------------- predicate functions


def _fact_function(name: str, *, false_when_absent: bool) -> PredicateFunction:
    """``name(ROLE)``: the fact of that role. An argument the call leaves out (a conv
    without bias) is no node: not float, not annotated; `not annotated(bias)` holds."""
    fact = FACTS[name]

    def implementation(ctx, role):
        if role is None:
            if false_when_absent:
                return False
            raise LookupError(f"{name}() of an argument the node does not have")
        if isinstance(role, list):
            return [value.fact(name) for value in role]
        return role.fact(name)

    absent = "; false when the node lacks that argument" if false_when_absent else ""
    return PredicateFunction(name, ("role",), fact.type, f"`ROLE.{name}`{absent}",
                             implementation, reads_annotations=fact.reads_annotations)


def _argument(ctx, index: int) -> Any:
    """Argument ``index`` in schema order: positional, else keyword, else the schema's
    default (exported graphs leave defaults out: `conv2d(x, w, b)` has groups == 1).
    A dtype argument reads as its name, so `arg(1) == int32` compares it with a dtype
    name as `input.dtype == int32` does."""
    value = _raw_argument(ctx.node, index)
    return _dtype_name(value) if type(value).__name__ == "dtype" else value


def _raw_argument(node, index: int) -> Any:
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


def _user_hits(ctx, op: str) -> list[bool]:
    targets = ctx.state.op_targets.get(op, frozenset())
    return [user.op == "call_function" and (op == "any" or user.target in targets)
            for user in ctx.node.users]


def _all_users(ctx, op: str) -> bool:
    hits = _user_hits(ctx, op)
    return bool(hits) and all(hits)


def type_matches(selector: str, qualname: str) -> bool:
    """``torch.nn.Linear`` matches ``torch.nn.modules.linear.Linear``: same class name,
    and the selector's module is a package the class's module lives in."""
    if selector == qualname:
        return True
    sel_module, _, sel_name = selector.rpartition(".")
    module, _, name = qualname.rpartition(".")
    return sel_name == name and (module == sel_module or module.startswith(sel_module + "."))


@functools.lru_cache(maxsize=4096)
def source_matches(wanted: str, found: str) -> bool:
    """Exact names, plus classes by their public path (`torch.nn.ReLU`)."""
    return wanted == found or ("." in wanted and type_matches(wanted, found))


def _source(ctx, *names: str) -> bool:
    return any(source_matches(wanted, found) for found in ctx.sources() for wanted in names)


PREDICATE_FUNCTIONS: dict[str, PredicateFunction] = {f.name: f for f in (
    *(_fact_function(name, false_when_absent=name != "rank")
      for name in ("is_float", "is_node", "is_constant", "rank", "quantized", "annotated",
                   "shared", "has_output_spec")),
    PredicateFunction("abs", ("any",), "number",
                      "absolute value: `abs(input[1].value) <= 65504`",
                      lambda ctx, value: abs(value)),
    PredicateFunction("arg", ("int",), "any", "argument `N` of the node (its schema "
                      "default when the call leaves it out); `N` is an integer literal. A "
                      "dtype argument reads as its name: `arg(1) == int32` on `to.dtype`",
                      _argument, node_only=True),
    PredicateFunction("num_users", (), "int", "number of users of the node's output",
                      lambda ctx: len(ctx.node.users), node_only=True),
    PredicateFunction("next_is_user", (), "bool", "the node right after this one in graph "
                      "order uses its output (executorch's Arm pattern matcher chains only "
                      "such neighbours: `conv[next_is_user()] -> relu`)",
                      lambda ctx: ctx.node.next in ctx.node.users, node_only=True),
    PredicateFunction("any_user", ("op",), "bool", "some user of the node's output is an "
                      "instance of `OP` (an op name or `any`)",
                      lambda ctx, op: any(_user_hits(ctx, op)), node_only=True),
    PredicateFunction("all_users", ("op",), "bool", "the node's output has users and every "
                      "one is an instance of `OP` (an op name or `any`)",
                      _all_users, node_only=True),
    PredicateFunction("any_user_quantizable", (), "bool", "some user of the node's output "
                      "can be quantized: it is the first step of a rule in force whose "
                      "config is not `none`",
                      lambda ctx: any(ctx.state.could_quantize(u) for u in ctx.node.users),
                      reads_annotations=True, node_only=True),
    PredicateFunction("module_type", (), "str", "the full class path of the innermost "
                      "module the node belongs to (`torch.nn.modules.linear.Linear`, not "
                      "`torch.nn.Linear`)", lambda ctx: ctx.module()[1], node_only=True),
    PredicateFunction("module_name", (), "str", "the qualified name of the innermost "
                      "module the node belongs to", lambda ctx: ctx.module()[0],
                      node_only=True),
    PredicateFunction("source", ("str...",), "bool", "the node was traced from one of "
                      "these callables (string literals): a module class "
                      "(`\"torch.nn.Conv2d\"`, public or full path), a function "
                      "(`\"torch.conv2d\"`, which `F.conv2d` is; `\"operator.add\"`; "
                      "`\"torch.nn.functional.relu\"`) or a tensor method (`\"add_\"`). It "
                      "reads what torchao's `get_source_partitions` reads: after a strict "
                      "export the innermost `source_fn_stack` entry; after a non-strict one "
                      "the function name in `torch_fn` (`add` for `x + y`) and the "
                      "innermost module's class", _source),
    PredicateFunction("all", ("list",), "bool", "every element of a list from `ROLE[*]` "
                      "holds", lambda ctx, values: all(values)),
    PredicateFunction("any", ("list",), "bool", "some element of a list from `ROLE[*]` "
                      "holds", lambda ctx, values: any(values)),
)}

#: The declarations qrules itself makes (held here, so their identities stay theirs
#: after a registry replaces one): what they do is known, so the compiler may choose
#: the order it evaluates a step's predicates in (`compile.predicates`).
BUILT_IN_DECLARATIONS: tuple = (*FACTS.values(), *PREDICATE_FUNCTIONS.values())
