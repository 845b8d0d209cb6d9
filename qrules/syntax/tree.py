"""Walking the AST: a node's children, every node under it, and its structure without
spans. The node classes are in ast.py; this is the one walker every stage uses."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator, Literal, Optional, get_args, get_origin

from qrules.syntax.ast import Node

@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[str, ...]:
    """A node class's fields without its spans: what the code says, not where."""
    return tuple(name for name in cls.model_fields
                 if not name.endswith("span") and not name.endswith("spans"))


@lru_cache(maxsize=None)
def _node_fields(cls: type) -> tuple[str, ...]:
    """The fields of a node class whose type lets them hold nodes (``name: str`` and
    ``value: int`` cannot), in field order: all ``children`` needs to look at."""
    return tuple(name for name in _fields(cls)
                 if _may_hold_nodes(cls.model_fields[name].annotation))


def _may_hold_nodes(annotation) -> bool:
    if annotation is Ellipsis:  # tuple[X, ...]
        return False
    if isinstance(annotation, type) and not get_args(annotation):
        return issubclass(annotation, Node)
    arguments = get_args(annotation)
    if get_origin(annotation) is Literal:
        return False
    # A forward reference, a TypeVar, Any: it may, as far as we can tell.
    return any(map(_may_hold_nodes, arguments)) if arguments else True


def children(node: Node) -> list[Node]:
    """The nodes directly inside ``node``, in field order."""
    found: list[Node] = []
    values = node.__dict__
    for name in _node_fields(node.__class__):
        value = values[name]
        if isinstance(value, Node):
            found.append(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Node):
            found.extend(value)  # a field's tuple holds nodes or holds none
    return found


def walk(node: Node, into: Optional[tuple[type, ...]] = None) -> Iterator[Node]:
    """``node`` and every node inside it, parents before children, in field order
    (source order for patterns and expressions). With ``into``, only nodes of those
    types are looked inside (``into=(ast.File, ast.Phase, ast.Scope, ast.When)``: items, not their
    expressions). Iterative: the parser lets through trees deeper than a recursive
    walk could go."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if into is None or isinstance(current, into):
            stack.extend(reversed(children(current)))


def structure(node) -> object:
    """A hashable picture of a node without its spans: equal for the same code
    written in different places (``when qat`` here and there)."""
    if isinstance(node, Node):
        return (type(node).__name__,) + tuple(
            (name, structure(getattr(node, name))) for name in _fields(type(node)))
    if isinstance(node, (list, tuple)):
        return tuple(structure(item) for item in node)
    return node
