"""qrules: PT2E quantization policy written as data.

``import qrules`` stays light (no torch): the front end is imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"parse", "check", "load", "load_text", "LoadedRuleset", "QruleError"}
_ERRORS = {"AnnotationWarning"}
_DIAGNOSTICS = {"Diagnostic", "Severity"}
# The extension API: torch-free, like the front end.
_REGISTRY = {"register_observer", "register_transform", "register_derive_function",
             "register_annotation_kind", "register_fact", "register_predicate_function"}
# These import torch and torchao: only on first use. No top-level module may be named
# like one of these names (qrules.compose, qrules.explain): importing a submodule sets
# it as an attribute of the package, which then hides the function for good. Under
# qrules.engine the names are free (qrules.engine.compose sets qrules.engine.compose).
_ENGINE = {
    "quantize": "qrules.engine.pipeline", "prepare": "qrules.engine.pipeline",
    "convert": "qrules.engine.pipeline", "calibrate": "qrules.engine.pipeline",
    "save_program": "qrules.engine.pipeline", "load_program": "qrules.engine.pipeline",
    "compose": "qrules.engine.compose", "ComposeConflictError": "qrules.engine.compose",
    "explain": "qrules.engine.explain",
    # No module may be named qrules.diff: it would hide the function. The API's diff
    # loads ruleset names, then runs the engine's.
    "diff": "qrules.api", "EquivalenceReport": "qrules.engine.diff",
    "ValidationError": "qrules.adapter.quantizer", "RulesetQuantizer": "qrules.adapter.quantizer",
    "move_exported_model_to_eval": "qrules.adapter.torchao",
    "move_exported_model_to_train": "qrules.adapter.torchao",
    "allow_exported_model_train_eval": "qrules.adapter.torchao",
    "model_is_exported": "qrules.adapter.torchao",
    "export_program": "qrules.engine.device", "run_on_device": "qrules.engine.device",
}

__all__ = sorted(_API | _ERRORS | _DIAGNOSTICS | _REGISTRY | set(_ENGINE) | {"__version__"})


def __getattr__(name: str):
    if name in _API:
        from qrules import api

        return getattr(api, name)
    if name in _ERRORS:
        from qrules import errors

        return getattr(errors, name)
    if name in _DIAGNOSTICS:
        from qrules import diagnostics

        return getattr(diagnostics, name)
    if name in _REGISTRY:
        from qrules.semantics import registry

        return getattr(registry, name)
    if name in _ENGINE:
        import importlib

        return getattr(importlib.import_module(_ENGINE[name]), name)
    raise AttributeError(f"module 'qrules' has no attribute {name!r}")
