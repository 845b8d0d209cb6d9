"""The built-in ``cortex_m`` ruleset through executorch's Cortex-M lowering, which runs
on CPU: Cortex-M has no partitioner and no delegate; ``to_edge`` with its edge compile
config, then ``CortexMPassManager`` replaces quantized patterns by CMSIS-NN operators
(``cortex_m::quantized_conv2d``, ...) whose Python implementations run here, as
executorch's own ``CortexMTester.test_dialect`` runs them. On each model the ruleset's
quantized program and ``executorch:cortex_m``'s must lower to the same operators, node
for node, and the lowered programs must give bit-identical outputs.

The lowering reads which nodes the quantizer took (Arm's ``meta["custom"]``): the
ruleset writes it with the ``arm`` annotation kind; without it, pooling and softmax
stay unfused aten ops."""

import copy
import warnings

import pytest
import torch

import qrules
from qrules.engine.pipeline import quantize

from tests.equivalence.arm_cases import exported

#: Convs, linears and their fused activations; pooling; shared-qspec clusters at the
#: graph's inputs and outputs and max pooling of a graph input with a fused relu.
#: executorch's own lowering fails on the anchor's program of cortex_m_ops
#: (FoldAndAnnotateQParamsPass) and of the transformer block
#: (ReplaceScalarWithTensorArgPass), so those are not lowered here.
CASES = ("cortex_m_chains", "pooling", "cortex_m_io")


def _lowered(model: str, quantizer):
    from executorch.backends.cortex_m.edge_compile_config import (
        cortex_m_edge_compile_config,
    )
    from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager
    from executorch.exir import to_edge

    graph, inputs = exported("helper", model, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = quantize(copy.deepcopy(graph), inputs, quantizer)
        edge = to_edge(torch.export.export(converted, tuple(inputs)),
                       compile_config=cortex_m_edge_compile_config())
        program = CortexMPassManager(edge.exported_program()).transform()
        ops = [getattr(node.target, "__name__", str(node.target))
               for node in program.graph.nodes if node.op == "call_function"]
        outputs = torch.utils._pytree.tree_leaves(program.module()(*inputs))
    return ops, outputs


@pytest.mark.parametrize("model", CASES)
def test_cortex_m_ruleset_lowers_like_the_anchor(model):
    from qrules.engine.diff import anchor

    anchor_ops, anchor_outputs = _lowered(model, anchor("executorch:cortex_m"))
    ops, outputs = _lowered(model, qrules.load("cortex_m"))
    assert any(op.startswith("cortex_m.quantized_") for op in anchor_ops), \
        "the anchor's program has no CMSIS-NN operator"
    assert ops == anchor_ops
    assert len(outputs) == len(anchor_outputs)
    assert all(torch.equal(a, b) for a, b in zip(outputs, anchor_outputs))
