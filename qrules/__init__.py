"""qrules: PT2E quantization policy written as data.

``import qrules`` stays light (no torch): the front end is imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"parse", "check", "load"}
_DIAGNOSTICS = {"QruleError", "Diagnostic", "Severity"}

__all__ = sorted(_API | _DIAGNOSTICS | {"__version__"})


def __getattr__(name: str):
    if name in _API:
        from qrules import api

        return getattr(api, name)
    if name in _DIAGNOSTICS:
        from qrules import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'qrules' has no attribute {name!r}")
