"""Op targets as compiled rules match them: an aten overload resolved from its name
(``aten.conv2d.default``), the kinds of graph input and output nodes, and the key a
node is matched by (``target_key``: the identity of its target)."""

from __future__ import annotations

import importlib
import operator
from dataclasses import dataclass
from typing import Any

import torch

from qrules.semantics import registry


class CompileError(ValueError):
    """An op target in the vocabulary does not name a real operator overload."""


_OVERLOADS: dict[str, Any] = {}


@dataclass(frozen=True)
class GraphNodeKind:
    """The target of a graph input or output node, which has no operator overload:
    ``placeholder`` (a graph input) or ``output`` (the graph's output node)."""

    op: str


#: The one GraphNodeKind of each kind: steps and nodes are matched by their identity.
_GRAPH_INPUT, _GRAPH_OUTPUT = GraphNodeKind("placeholder"), GraphNodeKind("output")
_IO_KEYS = {"placeholder": id(_GRAPH_INPUT), "output": id(_GRAPH_OUTPUT)}
#: The target keys of graph inputs and outputs (every other node's is its target's id).
GRAPH_IO_KEYS = frozenset(_IO_KEYS.values())

#: Targets that are not aten overloads: graph I/O nodes (the prelude's `graph_input`
#: and `graph_output`; backends annotate model inputs and outputs, Arm's `set_io`) and
#: Python's `operator.getitem` (the items of split, chunk, max.dim).
GRAPH_IO_TARGETS = {"graph.input.default": _GRAPH_INPUT,
                    "graph.output.default": _GRAPH_OUTPUT,
                    "operator.getitem.default": operator.getitem}


def target_key(node) -> int:
    """What a node is matched by: the identity of its target (its overload, or the
    GraphNodeKind of a graph input or output). An OpOverload defines no ``__eq__``, so
    identity is how it compares anyway, and there is one per overload per process;
    an int hashes in C, an OpOverload's ``__hash__`` is Python code. The compiled
    tables hold their targets, so no other live object can have such an id."""
    io = _IO_KEYS.get(node.op)
    return io if io is not None else id(node.target)


def resolve_target(target: str):
    """``aten.conv2d.default`` -> ``torch.ops.aten.conv2d.default`` (cached);
    ``graph.input.default`` / ``graph.output.default`` -> a ``GraphNodeKind``.

    Namespaces are looked up attribute by attribute on ``torch.ops``; one a backend
    library defines is imported first from the fixed table ``registry.OP_LIBRARIES``
    (nothing a rule file names is imported).
    """
    if target in GRAPH_IO_TARGETS:
        return GRAPH_IO_TARGETS[target]
    if target not in _OVERLOADS:
        namespace, op, overload = target.split(".")
        try:
            _OVERLOADS[target] = _lookup(namespace, op, overload)
        except (AttributeError, RuntimeError, ImportError) as err:
            raise CompileError(f"`{target}` is not an operator overload known to torch "
                               f"{torch.__version__}: {err}") from None
    return _OVERLOADS[target]


def _lookup(namespace: str, op: str, overload: str):
    try:
        return getattr(getattr(getattr(torch.ops, namespace), op), overload)
    except AttributeError:
        if namespace not in registry.OP_LIBRARIES:
            raise
    importlib.import_module(registry.OP_LIBRARIES[namespace])
    return getattr(getattr(getattr(torch.ops, namespace), op), overload)
