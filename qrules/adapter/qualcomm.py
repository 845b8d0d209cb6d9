"""executorch's Qualcomm (QNN) quantizer classes and functions, named by registry entries.

The observer registry (``qrules.semantics.registry``) names its built-ins as fixed
``qrules.…:name`` strings; the QNN observers live in executorch, which qrules imports
only when a ruleset that names one is turned into torchao specs. So the classes are
attributes of this module, each imported from executorch on first access (lint never
imports this module). The derive functions compute what executorch's closures compute
(``qconfig._derived_bias_quant_spec``, ``htp_rules.Div``), with the node facts those
closures read passed as arguments (``fn=qnn_bias(groups=…)``).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch


_QNN_OBSERVERS = "executorch.backends.qualcomm.quantizer.observers"

#: Class name -> the executorch module defining it.
_CLASSES = {
    "PerChannelParamObserver": f"{_QNN_OBSERVERS}.per_channel_param_observer",
    "PerBlockParamObserver": f"{_QNN_OBSERVERS}.per_block_param_observer",
    "PerBlockParamFakeQuantize": f"{_QNN_OBSERVERS}.per_block_param_observer",
    "ConcatObserver": f"{_QNN_OBSERVERS}.concat_observer",
}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def qnn_bias(observers, groups: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """executorch QNN's derived bias qparams (``qconfig._derived_bias_quant_spec``), with
    the groups its closure reads from a transposed conv passed in (1 elsewhere)."""
    act, weight = observers
    weight_scale, weight_zero_point = weight.calculate_qparams()
    act_scale, _ = act.calculate_qparams()
    act_scale, weight_scale = torch.broadcast_tensors(act_scale, weight_scale)
    scale = (act_scale * weight_scale).to(torch.float32)
    if groups != 1:  # the bias has groups × the weight's axis-1 channels
        scale = scale.repeat_interleave(groups)
    zero_point = torch.zeros(scale.size(), device=weight_zero_point.device).to(torch.int32)
    from executorch.backends.qualcomm.quantizer.observers.per_block_param_observer import (
        PerBlockParamFakeQuantize, PerBlockParamObserver,
    )

    observer = weight
    if isinstance(weight, PerBlockParamFakeQuantize):
        observer = weight.activation_post_process
    if isinstance(observer, PerBlockParamObserver):
        # the largest block scale of each channel, in the observer's scale steps
        scale = scale.view(scale.size(0), -1).amax(dim=-1) / observer.num_steps
        zero_point = zero_point.view(zero_point.size(0), -1).amax(dim=-1)
    return scale, zero_point
