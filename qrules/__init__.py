"""qrules: PT2E quantization policy written as data.

``import qrules`` stays light (no torch): the front end is imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"parse", "check", "load", "load_text", "LoadedRuleset"}
_DIAGNOSTICS = {"QruleError", "Diagnostic", "Severity"}
# These import torch and torchao: only on first use. No module may be named like
# one of these names (qrules.compose, qrules.explain): importing a submodule sets it
# as an attribute of the package, which then hides the function for good.
_ENGINE = {
    "quantize": "qrules.pipeline", "prepare": "qrules.pipeline", "convert": "qrules.pipeline",
    "calibrate": "qrules.pipeline", "save_program": "qrules.pipeline",
    "load_program": "qrules.pipeline", "compose": "qrules.composing",
    "ComposeConflictError": "qrules.composing", "explain": "qrules.explaining",
    # qrules.equivalence, not qrules.diff: a module of that name would hide the function.
    "diff": "qrules.equivalence", "EquivalenceReport": "qrules.equivalence",
    "ValidationError": "qrules.adapter.quantizer", "RulesetQuantizer": "qrules.adapter.quantizer",
    "move_exported_model_to_eval": "qrules.adapter.torchao",
    "move_exported_model_to_train": "qrules.adapter.torchao",
    "allow_exported_model_train_eval": "qrules.adapter.torchao",
    "model_is_exported": "qrules.adapter.torchao",
    "export_program": "qrules.engine.device", "run_on_device": "qrules.engine.device",
}

__all__ = sorted(_API | _DIAGNOSTICS | set(_ENGINE) | {"__version__"})


def __getattr__(name: str):
    if name in _API:
        from qrules import api

        return getattr(api, name)
    if name in _DIAGNOSTICS:
        from qrules import diagnostics

        return getattr(diagnostics, name)
    if name in _ENGINE:
        import importlib

        return getattr(importlib.import_module(_ENGINE[name]), name)
    raise AttributeError(f"module 'qrules' has no attribute {name!r}")
