"""torchao's hand-written quantizers, built from a short spec through a fixed table:
``anchor("torchao:xnnpack[per_channel,dynamic]")``. The quantizers a ruleset is held to.
"""

from __future__ import annotations

import re
from typing import Callable

from qrules.adapter import torchao as adapter


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


#: torchao's hand-written quantizers by name: (factory, the flags it takes). The only
#: way a spec string reaches torchao code; nothing is imported by a user-given name.
ANCHORS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "xnnpack": (_xnnpack, ("per_channel", "dynamic", "qat")),
    "x86_inductor": (_x86_inductor, ("qat", "dynamic", "reduce_range")),
    "embedding": (_embedding, ()),
}

_ANCHOR_RE = re.compile(r"^torchao:([A-Za-z0-9_]+)(?:\[([A-Za-z0-9_,\s]*)\])?$")


def parse_anchor(spec: str) -> tuple[str, dict[str, bool]]:
    """``torchao:xnnpack[per_channel,qat]`` -> ("xnnpack", {"per_channel": True, ...}).
    Raises ValueError naming the known anchors and flags."""
    match = _ANCHOR_RE.match(spec.strip())
    if not match:
        raise ValueError(f"not an anchor spec: {spec!r} (expected torchao:NAME or "
                         "torchao:NAME[flag,flag])")
    name, flags_text = match.group(1), match.group(2) or ""
    if name not in ANCHORS:
        raise ValueError(f"unknown torchao quantizer {name!r}; known: "
                         f"{', '.join(sorted(ANCHORS))}")
    allowed = ANCHORS[name][1]
    flags = {}
    for flag in (f.strip() for f in flags_text.split(",")):
        if not flag:
            continue
        if flag not in allowed:
            raise ValueError(f"torchao:{name} takes no flag {flag!r}; flags: "
                             f"{', '.join(allowed) or 'none'}")
        flags[flag] = True
    return name, flags


def anchor(spec: str):
    """A torchao quantizer from an anchor spec (see ``parse_anchor``)."""
    name, flags = parse_anchor(spec)
    with adapter.quiet_torchao():
        return ANCHORS[name][0](**flags)
