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
