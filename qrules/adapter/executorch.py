"""executorch: lower a converted (quantized) model to a ``.pte`` program, load and run it.

The one module of qrules that imports executorch. A device backend is a partitioner
factory plus its anchor quantizer factory (``DeviceBackend``); ``DEVICE_BACKENDS`` holds
them by name: XNNPACK, and Arm's TOSA lowering (whose delegate executorch's runtime does
not carry here: its programs are lowered and compared, not run). Executorch's
hand-written quantizers without a partitioner of their own (Cortex-M's) are built here
too, for the diff anchors.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

import torch

from qrules.adapter.torchao import Quantizer

__all__ = [
    "DeviceBackend", "DEVICE_BACKENDS", "device_backend", "LoweredProgram",
    "arm_quantizer", "cortex_m_quantizer", "cortex_m_transform_for_annotation",
    "qnn_transform_for_annotation", "qnn_conv_bn_bias", "qnn_replace_inf",
    "mark_arm_nodes",
    "export_for_lowering", "lower",
    "ProgramRun", "load_and_run",
]


@dataclass(frozen=True)
class DeviceBackend:
    """What the device harness needs from a backend.

    ``partitioners()``: fresh partitioner objects for ``to_edge_transform_and_lower``.
    ``anchor(**params)``: the backend's own quantizer, configured like the ruleset with
    those parameters (the ruleset's parameter names: per_channel, dynamic, qat, ...).
    ``runs``: executorch's runtime in this install carries the backend's delegate, so
    its programs are loaded and run; when not (Arm's TOSA), they are lowered and the
    delegates' payloads compared.
    """

    name: str
    partitioners: Callable[[], list]
    anchor: Callable[..., Quantizer]
    runs: bool = True


def _xnnpack_partitioners() -> list:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return [XnnpackPartitioner()]


def _xnnpack_anchor(*, per_channel: bool = False, dynamic: bool = False,
                    qat: bool = False) -> Quantizer:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(
        is_per_channel=per_channel, is_dynamic=dynamic, is_qat=qat)
    return XNNPACKQuantizer().set_global(config)


#: The TOSA profile of each activation width: int16 activations need the int16 extension.
TOSA_PROFILES = {8: "TOSA-1.0+INT", 16: "TOSA-1.0+INT+int16"}


def _tosa_partitioners() -> list:
    from executorch.backends.arm.tosa.compile_spec import TosaCompileSpec
    from executorch.backends.arm.tosa.partitioner import TOSAPartitioner

    return [TOSAPartitioner(TosaCompileSpec(TOSA_PROFILES[8]))]


def arm_quantizer(*, per_channel: bool = True, qat: bool = False, dynamic: bool = False,
                  act_bits: int = 8, weight_bits: int = 8) -> Quantizer:
    """executorch's ``TOSAQuantizer`` with ``set_global`` of the config helper the
    widths select: ``get_symmetric_quantization_config`` (8/8, profile TOSA-1.0+INT),
    ``get_symmetric_a16w8_quantization_config`` (act_bits=16, profile
    TOSA-1.0+INT+int16), ``get_symmetric_a8w4_quantization_config`` (weight_bits=4).
    Every flag is passed explicitly: the a8w4 helper's own ``is_qat`` default is True."""
    from executorch.backends.arm.quantizer import arm_quantizer as arm
    from executorch.backends.arm.tosa import TosaSpecification

    helpers = {(8, 8): arm.get_symmetric_quantization_config,
               (16, 8): arm.get_symmetric_a16w8_quantization_config,
               (8, 4): arm.get_symmetric_a8w4_quantization_config}
    helper = helpers.get((act_bits, weight_bits))
    if helper is None:
        raise ValueError(f"executorch's Arm quantizer has no config for act_bits={act_bits}, "
                         f"weight_bits={weight_bits}; it has "
                         + ", ".join(f"act_bits={a} weight_bits={w}" for a, w in helpers))
    spec = TosaSpecification.create_from_string(TOSA_PROFILES[act_bits])
    config = helper(per_channel, qat, dynamic)
    return arm.TOSAQuantizer(spec).set_global(config)


def cortex_m_quantizer() -> Quantizer:
    """executorch's ``CortexMQuantizer()`` with its defaults."""
    from executorch.backends.cortex_m.quantizer.quantizer import CortexMQuantizer

    return CortexMQuantizer()


def cortex_m_transform_for_annotation(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The graph CortexMQuantizer annotates: its pass manager's pre-annotation passes
    (the ``cortex_m_passes`` transform a ruleset names). Python code, not rule data:
    the passes rewrite the graph (constants, decompositions) in ways a rule cannot."""
    from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager

    return CortexMPassManager(None).transform_for_annotation(model)


def qnn_transform_for_annotation(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The graph QnnQuantizer (HTP) annotates: its pass manager's annotation pipeline
    (decompositions and recompositions; the ``qnn_passes`` transform a ruleset names)."""
    from executorch.backends.qualcomm._passes.qnn_pass_manager import get_qnn_pass_manager_cls

    return get_qnn_pass_manager_cls()().transform_for_annotation_pipeline(model)


def qnn_conv_bn_bias(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The graph change of QnnQuantizer's QAT conv -> batch norm partitions (the
    ``qnn_conv_bn_bias`` transform): a conv whose only user is a batch norm gets a zero
    bias parameter when it has none, so the QAT fold writes a quantized bias into it.
    executorch's own helpers pick the convs and add the bias (conv_bn.py)."""
    from executorch.backends.qualcomm.quantizer import conv_bn

    added = False
    for conv in list(model.graph.nodes):
        if conv.op != "call_function" or conv.target not in conv_bn.CONV_TARGETS:
            continue
        norm = conv_bn._sole_user(conv)
        if norm is not None and norm.target in conv_bn.BN_TARGETS and conv_bn._bn_output(norm):
            added |= conv_bn._materialize_conv_bias(model, conv) is not None
    if added:
        model.recompile()
    return model


def qnn_replace_inf(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """QnnQuantizer's last annotation step (the ``qnn_replace_inf`` transform, run
    ``after annotate``): infinite constants and scalar arguments become +- the quantized
    range of their consumers, read from the annotations. executorch's own method, on a
    stand-in for the quantizer: it reads nothing of the quantizer but its two helpers,
    and building a QnnQuantizer loads every HTP rule."""
    from types import SimpleNamespace

    from executorch.backends.qualcomm.quantizer.quantizer import QnnQuantizer

    stand_in = SimpleNamespace()
    stand_in._get_quant_range = QnnQuantizer._get_quant_range.__get__(stand_in)
    stand_in._get_candidates_with_infinity_args = (
        QnnQuantizer._get_candidates_with_infinity_args.__get__(stand_in))
    QnnQuantizer._replace_inf(stand_in, model)
    return model


def mark_arm_nodes(model: torch.fx.GraphModule, quantized: dict) -> None:
    """The ``arm`` annotation kind's node marker: the metadata executorch's Arm lowering
    reads, as TOSAQuantizer writes it (arm_quantizer_utils.py, ``_mark_node_as_quantized``;
    arm_quantizer.py, the default for nodes no quantizer took): ``custom`` holds an
    ``ArmAnnotationInfo`` on each annotated op, and ``_arm_disallow_tfa`` keeps Arm's own
    decompositions off what is not quantized."""
    from executorch.backends.arm.common.annotation_meta import ArmAnnotationInfo
    from executorch.backends.arm.constants import DISALLOW_TFA_META_KEY

    for node in model.graph.nodes:
        if node in quantized:
            if node.op == "call_function":
                custom = node.meta.get("custom", {})
                custom[ArmAnnotationInfo.CUSTOM_META_KEY] = ArmAnnotationInfo(
                    quantized=quantized[node])
                node.meta["custom"] = custom
            node.meta[DISALLOW_TFA_META_KEY] = not quantized[node]
        elif DISALLOW_TFA_META_KEY not in node.meta:
            node.meta[DISALLOW_TFA_META_KEY] = True


DEVICE_BACKENDS: dict[str, DeviceBackend] = {
    "xnnpack": DeviceBackend("xnnpack", _xnnpack_partitioners, _xnnpack_anchor),
    "arm": DeviceBackend("arm", _tosa_partitioners, arm_quantizer, runs=False),
}


def device_backend(name: Union[str, DeviceBackend]) -> DeviceBackend:
    """A backend by name (``"xnnpack"``); a ``DeviceBackend`` passes through."""
    if isinstance(name, DeviceBackend):
        return name
    try:
        return DEVICE_BACKENDS[name]
    except KeyError:
        raise ValueError(f"no device backend {name!r}; known: "
                         f"{', '.join(sorted(DEVICE_BACKENDS))}") from None


_QDQ_PREFIXES = ("quantize_per", "dequantize_per", "choose_qparams")


def _op_name(node: torch.fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    return name.split("::")[-1]


def _is_qdq(node: torch.fx.Node) -> bool:
    return node.op == "call_function" and _op_name(node).startswith(_QDQ_PREFIXES)


@dataclass
class LoweredProgram:
    """A lowered program: its ``.pte`` bytes (None when ``to_executorch`` failed) and
    what the partitioner took.

    ``delegates``: delegate calls in the top-level graph. ``delegated_nodes``: the
    call_function nodes inside all delegates. ``qdq_outside``: the q/dq ops left in the
    top-level graph, by name, in graph order. ``payloads``: what the backend compiled
    each delegate to (a TOSA flatbuffer, an XNNPACK graph), in graph order. ``error``:
    why no ``.pte`` was written.
    """

    pte: Optional[bytes]
    delegates: int
    delegated_nodes: int
    qdq_outside: list[str]
    payloads: tuple = ()
    error: Optional[str] = None


def _count_delegation(graph_module: torch.fx.GraphModule):
    delegates = delegated = 0
    outside, payloads = [], []
    for node in graph_module.graph.nodes:
        if node.op == "call_function" and "call_delegate" in _op_name(node):
            delegates += 1
            lowered = getattr(graph_module, node.args[0].target)
            delegated += sum(n.op == "call_function"
                             for n in lowered.original_module.graph.nodes)
            payloads.append(bytes(lowered.processed_bytes))
        elif _is_qdq(node):
            outside.append(_op_name(node))
    return delegates, delegated, outside, tuple(payloads)


def export_for_lowering(module: torch.nn.Module, example_inputs: tuple):
    """``torch.export.export`` of a converted model, as executorch's lowering takes it.
    Exporting the ``.module()`` graph again traces through the ``_guards_fn``
    submodule torch 2.14 puts there, so the lowered program has no such node."""
    return torch.export.export(module, tuple(example_inputs))


def lower(module: torch.nn.Module, example_inputs: tuple,
          backend: DeviceBackend) -> LoweredProgram:
    """Export a converted model, lower it with the backend's partitioners, then
    ``to_executorch()``. A failure of either (a pattern the partitioner chokes on, an op
    left outside the delegates with no portable kernel) is reported, not raised."""
    from executorch.exir import to_edge_transform_and_lower

    program = export_for_lowering(module, example_inputs)
    try:
        edge = to_edge_transform_and_lower(program, partitioner=backend.partitioners())
    except Exception as err:  # executorch raises bare RuntimeError/KeyError/...
        return LoweredProgram(None, 0, 0, [], error=f"to_edge_transform_and_lower: {err}")
    counts = _count_delegation(edge.exported_program().graph_module)
    try:
        pte = edge.to_executorch().buffer
    except Exception as err:
        return LoweredProgram(None, *counts, error=f"to_executorch: {err}")
    return LoweredProgram(pte, *counts)


@contextlib.contextmanager
def _runtime_log() -> Iterator[list[str]]:
    """Capture the runtime's log: it says why a delegate failed to initialise (the
    Python exception only says "0x1"). The pybinding writes it to ``sys.stderr`` when
    that is redirected (as under pytest), else to file descriptor 2."""
    lines: list[str] = []
    redirected = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink, \
            contextlib.redirect_stderr(redirected):
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())
            lines.extend(redirected.getvalue().splitlines())


@dataclass
class ProgramRun:
    """``outputs`` of the program's ``forward``, or ``error`` (with the runtime's log
    lines that explain it) when it did not load or run."""

    outputs: Optional[tuple]
    error: Optional[str] = None


def load_and_run(pte: bytes, inputs: tuple, method: str = "forward") -> ProgramRun:
    """Load a ``.pte`` with ``executorch.runtime`` and run one method."""
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    with _runtime_log() as log:
        try:
            outputs = runtime.load_program(pte).load_method(method).execute(tuple(inputs))
        except Exception as err:  # the pybinding raises RuntimeError with an error code
            error = str(err)
        else:
            return ProgramRun(tuple(outputs))
    reasons = [line for line in log if "Failed" in line or "failed" in line]
    return ProgramRun(None, "\n".join(reasons + [error]))


def arm_decompositions(model: torch.fx.GraphModule, quantized: frozenset,
                       profile: str = "TOSA-1.0+INT") -> torch.fx.GraphModule:
    """The ``arm_decompositions`` transform: what executorch's TOSAQuantizer runs in
    ``transform_for_annotation``, so a ruleset annotates the graph the anchor does.

    Arm's pass manager decomposes only the nodes whose ``DISALLOW_TFA_META_KEY`` is
    false (the anchor sets it from a first annotation of the graph); here the mark
    comes from ``quantized``, the ruleset's own plan. The marks are removed after."""
    from executorch.backends.arm._passes.arm_pass_manager import ArmPassManager
    from executorch.backends.arm.constants import DISALLOW_TFA_META_KEY
    from executorch.backends.arm.quantizer.arm_quantizer import (
        _prefer_table_for_quantized_leaky_relu,
    )
    from executorch.backends.arm.tosa.compile_spec import TosaCompileSpec
    from executorch.backends.arm.tosa.specification import TosaSpecification

    for node in model.graph.nodes:
        node.meta[DISALLOW_TFA_META_KEY] = node not in quantized
    compile_spec = TosaCompileSpec(TosaSpecification.create_from_string(profile))
    # The anchor lowers quantized leaky_relu as a table, not decomposed, while it
    # prepares the graph (its private context manager, used as the anchor uses it).
    with _prefer_table_for_quantized_leaky_relu(compile_spec):
        transformed = ArmPassManager(compile_spec).transform_for_annotation_pipeline(model)
    for node in transformed.graph.nodes:
        node.meta.pop(DISALLOW_TFA_META_KEY, None)
    return transformed
