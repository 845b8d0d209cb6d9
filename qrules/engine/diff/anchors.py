"""The hand-written quantizers a ruleset is held to (torchao's, executorch's), built
from a short spec through a fixed table: ``anchor("executorch:xnnpack[per_channel]")``,
``anchor("executorch:arm[per_channel=false,act_bits=16]")``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from typing import Callable, Iterator, Union

from qrules.adapter import torchao as adapter
from qrules.adapter.executorch import DEVICE_BACKENDS, cortex_m_quantizer


def _xnnpack(per_channel=False, dynamic=False, qat=False):
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat,
                                               is_dynamic=dynamic)
    return XNNPACKQuantizer().set_global(config)


def _x86_inductor(qat=False, dynamic=False, reduce_range=False):
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config,
    )

    config = get_default_x86_inductor_quantization_config(
        is_qat=qat, is_dynamic=dynamic, reduce_range=reduce_range)
    return X86InductorQuantizer().set_global(config)


def _embedding():
    from torchao.quantization.pt2e.quantizer.embedding_quantizer import EmbeddingQuantizer

    return EmbeddingQuantizer()


#: QnnQuantizer's QuantDtype members, as anchor flags (``use_16a4w`` -> ``16a4w``).
QNN_DTYPES = ("8a8w", "16a16w", "16a8w", "16a4w", "16a4w_block", "8a4w", "fp16a8w", "16a2w")

#: The block size ``executorch:qnn[16a4w_block]`` gives every linear (and its weight),
#: as executorch's LLM decoder manager does (``qnn_decoder_model_manager.py``): QNN's
#: block map is keyed by node name, so the anchor fills it from the graph it annotates.
QNN_LINEAR_BLOCK_SIZE = (1, 16)


@contextlib.contextmanager
def _qnn_sdk_left_to_caller() -> Iterator[None]:
    """``QnnQuantizer()`` sets up the QNN SDK to read op constraints and, with
    ``QNN_SDK_ROOT`` unset, downloads it (and libc++) from the network. An empty
    ``QNN_SDK_ROOT`` tells executorch the caller owns the SDK: no download, and the
    quantizer falls back to validating nothing, which does not change annotations."""
    if "QNN_SDK_ROOT" in os.environ:
        yield
        return
    os.environ["QNN_SDK_ROOT"] = ""
    try:
        yield
    finally:
        os.environ.pop("QNN_SDK_ROOT", None)


def _qnn(qat=False, per_channel=False, **dtype_flags):
    import torch
    from executorch.backends.qualcomm.quantizer.quantizer import QnnQuantizer, QuantDtype

    dtypes = [name for name in QNN_DTYPES if dtype_flags.get(name)]
    if len(dtypes) > 1:
        raise ValueError(f"executorch:qnn takes one dtype flag, not {', '.join(dtypes)}")
    dtype = dtypes[0] if dtypes else "8a8w"

    class BlockwiseQnnQuantizer(QnnQuantizer):
        """QnnQuantizer with ``QNN_LINEAR_BLOCK_SIZE`` on every linear of the graph."""

        def annotate(self, model):
            linears = [node for node in model.graph.nodes
                       if node.target == torch.ops.aten.linear.default]
            self.set_block_size_map({node.name: QNN_LINEAR_BLOCK_SIZE
                                     for linear in linears
                                     for node in (linear, linear.args[1])})
            return super().annotate(model)

    # On an AMD host ``QnnQuantizer()`` turns off PyTorch's MKLDNN for the whole process
    # (executorch's guard against a crash on device lowering), which makes every later
    # float convolution, of any model, several times slower. Annotations do not depend
    # on it, and both sides of a diff run their models under the same setting, so the
    # harness keeps the caller's setting.
    mkldnn_enabled = torch.backends.mkldnn.enabled
    try:
        with _qnn_sdk_left_to_caller():
            quantizer = (BlockwiseQnnQuantizer if dtype == "16a4w_block" else QnnQuantizer)()
    finally:
        torch.backends.mkldnn.enabled = mkldnn_enabled
    quantizer.set_default_quant_config(getattr(QuantDtype, f"use_{dtype}"), is_qat=qat,
                                       is_conv_per_channel=per_channel,
                                       is_linear_per_channel=per_channel)
    return quantizer


#: Hand-written quantizers by name: (factory, the flags it takes). The only way a spec
#: string reaches library code; nothing is imported by a user-given name. torchao's are
#: named bare (``torchao:xnnpack`` is "xnnpack", torchao being the first library the
#: table held); those of other libraries carry the library: ``executorch:xnnpack``.
ANCHORS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "xnnpack": (_xnnpack, ("per_channel", "dynamic", "qat")),
    "x86_inductor": (_x86_inductor, ("qat", "dynamic", "reduce_range")),
    "embedding": (_embedding, ()),
    # The device harness's anchor: one place builds executorch's quantizers.
    "executorch:xnnpack": (DEVICE_BACKENDS["xnnpack"].anchor, ("per_channel", "dynamic", "qat")),
    "executorch:arm": (DEVICE_BACKENDS["arm"].anchor,
                       ("per_channel", "qat", "dynamic", "act_bits", "weight_bits")),
    "executorch:cortex_m": (cortex_m_quantizer, ()),
    # executorch's QnnQuantizer (HTP): one dtype flag (default 8a8w), per_channel for
    # conv and linear weights, qat.
    "executorch:qnn": (_qnn, (*QNN_DTYPES, "per_channel", "qat")),
}

#: The libraries an anchor spec may name: ``LIBRARY:NAME[flag,...]``.
ANCHOR_LIBRARIES = ("torchao", "executorch")

_ANCHOR_RE = re.compile(r"^(torchao|executorch):([A-Za-z0-9_]+)(?:\[([A-Za-z0-9_,=\s]*)\])?$")


def is_anchor_spec(spec: str) -> bool:
    """Whether a diff side written as text names a hand-written quantizer
    (``torchao:...``, ``executorch:...``) rather than a ruleset."""
    return spec.strip().startswith(tuple(f"{library}:" for library in ANCHOR_LIBRARIES))


def _parameter_value(spec_name: str, factory: Callable, name: str,
                     text: str) -> Union[bool, int]:
    """A flag's value, of the type of the factory's default: ``name`` alone is True,
    ``name=true|false`` a bool, ``name=16`` an int."""
    parameter = inspect.signature(factory).parameters.get(name)
    # A flag the factory takes through **flags (QNN's dtypes) is a switch.
    default = True if parameter is None else parameter.default
    lowered = text.strip().lower()
    if isinstance(default, bool):
        if lowered in ("", "true", "false"):
            return lowered != "false"
        raise ValueError(f"{spec_name}: {name} is true or false, not {text.strip()!r}")
    if lowered.isdigit():
        return int(lowered)
    raise ValueError(f"{spec_name}: {name} takes a number: {name}={default}")


def parse_anchor(spec: str) -> tuple[str, dict[str, Union[bool, int]]]:
    """``torchao:xnnpack[per_channel,qat]`` -> ("xnnpack", {"per_channel": True, ...});
    ``executorch:arm[per_channel=false, act_bits=16]`` -> ("executorch:arm",
    {"per_channel": False, "act_bits": 16}): the key of ``ANCHORS`` and the parameters
    given (the factory's defaults hold for the others). A bare flag is True; a value
    has the type of the factory's default. Raises ValueError naming the known anchors
    and flags."""
    match = _ANCHOR_RE.match(spec.strip())
    if not match:
        raise ValueError(f"not an anchor spec: {spec!r} (expected LIBRARY:NAME or "
                         "LIBRARY:NAME[flag,flag=value], LIBRARY one of "
                         f"{', '.join(ANCHOR_LIBRARIES)})")
    library, bare, flags_text = match.group(1), match.group(2), match.group(3) or ""
    name = bare if library == "torchao" else f"{library}:{bare}"
    if name not in ANCHORS:
        known = sorted(key.partition(":")[2] for key in ANCHORS
                       if key.startswith(f"{library}:")) if library != "torchao" else \
            sorted(key for key in ANCHORS if ":" not in key)
        raise ValueError(f"unknown {library} quantizer {bare!r}; known: {', '.join(known)}")
    factory, allowed = ANCHORS[name]
    flags = {}
    for item in (f.strip() for f in flags_text.split(",")):
        if not item:
            continue
        flag, _, value = (part.strip() for part in item.partition("="))
        if flag not in allowed:
            raise ValueError(f"{library}:{bare} takes no flag {flag!r}; flags: "
                             f"{', '.join(allowed) or 'none'}")
        flags[flag] = _parameter_value(f"{library}:{bare}", factory, flag, value)
    return name, flags


def anchor(spec: str):
    """A hand-written quantizer from an anchor spec (see ``parse_anchor``)."""
    name, flags = parse_anchor(spec)
    with adapter.quiet_torchao():
        return ANCHORS[name][0](**flags)
