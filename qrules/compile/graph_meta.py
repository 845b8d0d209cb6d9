"""What the engine reads from an fx node's ``meta``: one reader per field.

Torch-free (it only reads attributes), so both the predicates (compile) and the
passes use the same reading of ``nn_module_stack`` and ``val``.
"""

from __future__ import annotations

from typing import Any

# Graphs captured by dynamo (strict export's ExportedProgram.graph, the old
# capture_pre_autograd_graph) spell module paths from the root as `L['self'].conv`;
# `.module()` graphs spell them `conv`. Selectors are written the second way.
_ROOT_PREFIX = "L['self']."


def module_stack(node: Any) -> list[tuple[str, str]]:
    """The modules a node ran in, outermost first: (qualified path, class qualname)."""
    stack = node.meta.get("nn_module_stack") or {}
    return [module_stack_entry(entry) for entry in stack.values()]


def module_stack_entry(entry: tuple) -> tuple[str, str]:
    """One ``nn_module_stack`` value as (qualified path, class qualname)."""
    path, kind = entry
    if path.startswith(_ROOT_PREFIX):
        path = path[len(_ROOT_PREFIX):]
    if not isinstance(kind, str):
        kind = f"{kind.__module__}.{kind.__qualname__}"
    return path, kind


def innermost_module(node: Any) -> tuple[str, str]:
    """(path, class qualname) of the module a node ran in; ("", "") outside any."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ("", "")
    # Only the last entry: parsing the whole stack was most of a `source(...)` check.
    return module_stack_entry(next(reversed(stack.values())))


def recorded_dtype(node: Any):
    """The dtype ``tensor_meta`` records for the node's value, or None (no record, or
    a tuple's: those are read from ``val``)."""
    return getattr(node.meta.get("tensor_meta"), "dtype", None)


def is_float_value(node: Any) -> bool:
    """Is the node's value (the first one, for a tuple) a floating-point tensor?

    Read from the ``tensor_meta`` export records beside ``val`` when the node has one
    (a named tuple: ~5x cheaper to read from cold memory than the fake tensor, and
    asked of nearly every node a rule tries); else from ``val``. A pass that changed a
    node's dtype in place and left an old record would be read by that record
    (docs/semantics.md, "Float only")."""
    dtype = recorded_dtype(node)
    if dtype is not None:
        return dtype.is_floating_point
    val = node.meta.get("val")
    try:
        # Asked of nearly every node a rule tries: one attribute chain, no type tests,
        # in the common case of a tensor value.
        return val.dtype.is_floating_point
    except AttributeError:
        pass
    if isinstance(val, (tuple, list)) and val:
        return getattr(getattr(val[0], "dtype", None), "is_floating_point", False)
    return False
