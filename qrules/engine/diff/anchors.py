"""The hand-written quantizers a ruleset is held to (torchao's, executorch's), built
from a short spec through a fixed table: ``anchor("executorch:xnnpack[per_channel]")``,
``anchor("executorch:arm[per_channel=false,act_bits=16]")``.
"""

from __future__ import annotations

import inspect
import re
from typing import Callable, Union

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
    default = inspect.signature(factory).parameters[name].default
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
