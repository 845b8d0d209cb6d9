"""The one exception the Python API raises for problems in a ruleset, and the one
warning it gives for annotations that are valid but likely unintended.

It sits above the diagnostics (data) and the report (their text), so ``str()`` of an
error is what ``qrules lint`` prints, without the data layer importing its formatter.
"""

from __future__ import annotations

from typing import Iterable, Optional

from qrules.diagnostics import Diagnostic
from qrules.report import format_text


class QruleError(Exception):
    """Raised by the Python API when a ruleset has errors; carries every diagnostic.

    ``str()`` is the same text ``qrules lint`` prints for these diagnostics.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Optional[dict] = None):
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        self._sources = dict(sources or {})
        super().__init__(self.diagnostics)

    def __str__(self) -> str:
        return format_text(self.diagnostics, self._sources).rstrip("\n")


class AnnotationWarning(UserWarning):
    """What annotating a graph found valid but likely unintended (QR615: a tensor
    quantized twice). ``diagnostics`` name each node, both rules and their spans;
    ``str()`` is the text ``qrules lint`` prints for them."""

    def __init__(self, diagnostics: Iterable[Diagnostic] | str,
                 sources: Optional[dict] = None):
        if isinstance(diagnostics, str):
            # Rebuilt from its text, as pickle (and pytest-xdist, copying warnings
            # between processes) rebuilds a warning from its args: the text survives,
            # the diagnostics do not.
            self.diagnostics = ()
            super().__init__(diagnostics)
            return
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__(format_text(self.diagnostics, dict(sources or {})).rstrip("\n"))
