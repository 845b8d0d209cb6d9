"""`is_float_value` and the `dtype` and `is_float` facts read a node's dtype from the `tensor_meta`
record export writes beside `val` when there is one (cheaper from cold memory), else
from `val`; on an exported graph both readings agree at every node."""

import types

import pytest
import torch
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from qrules.compile.context import RoleValue
from qrules.compile.graph_meta import is_float_value, recorded_dtype
from qrules.semantics.registry import FACTS
from tests.models import ConvLinear, TupleOutputs, export

FLOAT, INT = torch.zeros(2), torch.zeros(2, dtype=torch.int64)


def _node(**meta):
    return types.SimpleNamespace(meta=meta, op="call_function")


# (node meta, is_float_value, the `dtype` fact: a tensor's dtype, else the type name
# of the value the role holds, here the stand-in node)
CASES = [
    ({"val": FLOAT, "tensor_meta": _extract_tensor_metadata(FLOAT)}, True, "float32"),
    ({"val": INT, "tensor_meta": _extract_tensor_metadata(INT)}, False, "int64"),
    ({"val": INT}, False, "int64"),                   # no record: val
    ({"val": FLOAT, "tensor_meta": None}, True, "float32"),   # executorch's ExportPass
    ({"val": (FLOAT, INT), "tensor_meta": (_extract_tensor_metadata(FLOAT),
                                           _extract_tensor_metadata(INT))},
     True, "SimpleNamespace"),
    ({"val": (INT, FLOAT)}, False, "SimpleNamespace"),
    ({}, False, "SimpleNamespace"),                   # neither
    # the record decides when there is one (what a stale one would give)
    ({"val": FLOAT, "tensor_meta": _extract_tensor_metadata(INT)}, False, "int64"),
]


@pytest.mark.parametrize("meta,floating,dtype", CASES)
def test_dtype_is_read_from_the_record_first(meta, floating, dtype):
    node = _node(**meta)
    assert is_float_value(node) is floating
    fact = FACTS["dtype"].implementation(RoleValue(node, None))
    assert fact == dtype
    assert FACTS["is_float"].implementation(RoleValue(node, None)) is (
        floating and dtype.startswith("float"))   # a tuple is no tensor to the facts


@pytest.mark.parametrize("module", [ConvLinear, TupleOutputs])
def test_both_readings_agree_on_an_exported_graph(module):
    """Float and integer tensors (max_pool2d's indices), tuple values read through
    getitem: the record and the fake tensor give every node the same answer."""
    gm = export(module().eval(), (torch.randn(2, 3, 8, 8),))
    recorded = integers = 0
    for node in gm.graph.nodes:
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            assert is_float_value(node) == val.dtype.is_floating_point
            assert RoleValue(node, None).dtype == val.dtype
            recorded += recorded_dtype(node) is not None
            integers += not val.dtype.is_floating_point
    assert recorded > 5 and (integers > 0) == (module is TupleOutputs)
