"""Graph transforms run before annotation (``transform NAME`` in a ruleset).

Pre: an exported GraphModule. Post: the same module, modified in place and
recompiled; node metadata (``val``) is kept valid for the matcher.
"""

from __future__ import annotations

from typing import Collection, Optional

import torch
from torch.fx import GraphModule, Node

_SCALAR_OPS = (torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor,
               torch.ops.aten.sub.Tensor, torch.ops.aten.div.Tensor)


def _float_result(node: Node) -> bool:
    val = node.meta.get("val")
    return val is not None and hasattr(val, "dtype") and val.dtype.is_floating_point


def scalars_to_attrs(gm: GraphModule, float_only: bool = True,
                     ops: Optional[Collection] = None) -> GraphModule:
    """Turn Python scalar operands of add/mul/sub/div into float32 tensor constants,
    so they become graph edges a spec can be put on.

    ``ops``: the overloads whose scalars are converted (a ruleset writes
    ``ops=[add, mul]``; the compiler resolves the names); default add/mul/sub/div
    ``.Tensor``. With ``float_only`` (the default) only ops whose result is floating
    point are touched: torchao's XNNPACKQuantizer also converts the int scalar of
    ``arange(n) + 0``, turning an integer index into a float tensor that then fails
    at calibration. ``float_only=false`` reproduces torchao's behaviour exactly.
    """
    targets = _SCALAR_OPS if ops is None else frozenset(ops)
    counter = 0
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in targets:
            continue
        if float_only and not _float_result(node):
            continue
        new_args = []
        for arg in node.args:
            if isinstance(arg, Node) or not isinstance(arg, (int, float)):
                new_args.append(arg)
                continue
            while hasattr(gm, f"_tensor_constant_{counter}"):
                counter += 1
            name = f"_tensor_constant_{counter}"
            constant = torch.tensor(float(arg))
            gm.register_buffer(name, constant)
            with gm.graph.inserting_before(node):
                attr = gm.graph.create_node("get_attr", name, (), {})
            fake_mode = getattr(node.meta.get("val"), "fake_mode", None)
            attr.meta["val"] = (fake_mode.from_tensor(constant, static_shapes=True)
                                if fake_mode is not None else constant)
            new_args.append(attr)
            changed = True
        node.args = tuple(new_args)
    if changed:  # regenerating the module's code is most of this pass's cost
        gm.recompile()
    return gm
