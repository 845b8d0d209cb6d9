"""Diagnostics: stable codes, severities, spans, notes; and the error that carries them.

Finding (the checks) is separate from formatting (``qrules.report``) and from exit
status (``qrules.cli``). Codes are never reused; ``docs/diagnostics.md`` documents
each one (what, why, example) and a test keeps the two lists equal.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict

from qrules.span import Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Code(NamedTuple):
    code: str
    severity: Severity
    title: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

#: Every diagnostic code qrules can emit. Append only; never renumber or reuse.
CODES: dict[str, Code] = {c.code: c for c in (
    # QR1xx: reading and syntax
    Code("QR100", _E, "syntax error"),
    Code("QR101", _E, "file is binary"),
    Code("QR102", _E, "file is not valid UTF-8"),
    Code("QR103", _E, "unterminated string"),
    Code("QR104", _E, "line too long"),
    Code("QR105", _E, "nesting too deep"),
    Code("QR106", _E, "unexpected character"),
    Code("QR107", _E, "unexpected end of file"),
    Code("QR108", _W, "file defines nothing"),
    Code("QR109", _E, "file cannot be read"),
    Code("QR110", _E, "misplaced ruleset header"),
    Code("QR111", _E, "include inside a block"),
    Code("QR112", _E, "unknown word in a phase mode or edge selection"),
    Code("QR119", _E, "extend rule inside a scope or phase"),
    Code("QR117", _E, "unknown stage after a transform's name"),
    # QR2xx: names
    Code("QR201", _E, "unknown op"),
    Code("QR202", _E, "unknown spec"),
    Code("QR203", _E, "unknown config"),
    Code("QR204", _E, "unknown name"),
    Code("QR205", _E, "unknown registry name"),
    Code("QR206", _E, "unknown rule"),
    Code("QR207", _E, "duplicate definition"),
    Code("QR208", _E, "unknown spec constructor"),
    Code("QR209", _E, "unknown predicate or fact"),
    Code("QR210", _E, "unknown role"),
    Code("QR211", _E, "unknown transform"),
    Code("QR212", _E, "override of an undefined name"),
    Code("QR213", _E, "included file not found"),
    Code("QR214", _E, "include cycle"),
    Code("QR215", _E, "include outside the include roots"),
    Code("QR216", _E, "malformed aten target"),
    Code("QR217", _E, "unknown scope kind"),
    Code("QR218", _E, "unknown keyword argument"),
    Code("QR219", _E, "unknown parameter type"),
    Code("QR220", _E, "unknown step label"),
    Code("QR221", _E, "op alias cycle"),
    Code("QR222", _E, "ambiguous step label"),
    Code("QR223", _E, "unknown predicate in an edge selection"),
    Code("QR224", _E, "phase blocks disagree on per node"),
    Code("QR229", _E, "positional derive function argument"),
    Code("QR239", _E, "extension of an undefined rule"),
    Code("QR233", _E, "transform declared for the other stage"),
    Code("QR234", _E, "`each` selection with `else`"),
    Code("QR235", _E, "`each` selection in a predicate"),
    Code("QR240", _W, "extension of a rule of the same file"),
    # QR3xx: types, ranges, sharing
    Code("QR301", _E, "type mismatch"),
    Code("QR302", _E, "empty quantization range"),
    Code("QR303", _E, "range outside the dtype"),
    Code("QR304", _W, "symmetric range is not symmetric"),
    Code("QR305", _E, "invalid channel axis"),
    Code("QR306", _E, "invalid fixed qparams"),
    Code("QR307", _E, "dangling same_as"),
    Code("QR308", _E, "sharing cycle"),
    Code("QR309", _E, "unknown dtype"),
    Code("QR310", _E, "bad constructor arguments"),
    Code("QR311", _E, "value not among the enum choices"),
    Code("QR312", _W, "dynamic spec outside an input role"),
    Code("QR313", _E, "invalid derived spec"),
    Code("QR314", _E, "definition refers to itself"),
    Code("QR315", _E, "duplicate config key"),
    Code("QR316", _E, "keyword argument given twice"),
    Code("QR317", _E, "missing required argument"),
    Code("QR318", _E, "unexpected argument"),
    Code("QR319", _E, "misused `range=`"),
    Code("QR320", _E, "dynamic spec per channel"),
    Code("QR321", _E, "same_as outside a config"),
    Code("QR322", _E, "malformed edge reference"),
    Code("QR323", _E, "unmarked on an amend rule"),
    Code("QR324", _E, "region inside a larger pattern"),
    Code("QR325", _E, "node function in a region's predicates"),
    Code("QR326", _E, "bad predicate function arguments"),
    Code("QR327", _E, "edge selection predicate of the wrong kind"),
    Code("QR328", _E, "edge selection fallback out of range"),
    Code("QR329", _W, "edge selection on a single edge"),
    Code("QR330", _E, "neighbour() outside a connected region"),
    Code("QR335", _E, "misused `qscheme=`"),
    Code("QR337", _E, "stored-as dtype does not fit its storage"),
    Code("QR338", _E, "malformed per_block spec"),
    Code("QR340", _E, "unknown scoping mode"),
    Code("QR341", _W, "scoped clause without scoping filters"),
    # QR4xx: reachability and shadowing
    Code("QR401", _W, "rule is shadowed"),
    Code("QR402", _W, "optional step can never match"),
    Code("QR403", _W, "unused spec"),
    Code("QR404", _W, "unused config"),
    Code("QR405", _W, "unused parameter"),
    Code("QR406", _W, "condition is always false"),
    Code("QR407", _W, "duplicate alternative"),
    Code("QR408", _E, "pattern can match nothing"),
    Code("QR417", _W, "extension can never match"),
    Code("QR418", _W, "extension step not owned by the rule's takes"),
    # QR5xx: style
    Code("QR501", _W, "name is not snake_case"),
    Code("QR502", _I, "missing ruleset header"),
    Code("QR503", _W, "version is not MAJOR.MINOR[.PATCH]"),
    # QR6xx: validation of annotations on a graph (raised by the quantizer, not lint)
    Code("QR601", _E, "spec on an input that is not a graph tensor"),
    Code("QR602", _E, "shared or derived spec refers to an unquantized edge"),
    Code("QR603", _E, "sharing cycle in the graph"),
    Code("QR604", _E, "channel axis outside the tensor"),
    Code("QR605", _E, "quantizers disagree on a node"),
    Code("QR615", _W, "input edge quantizes its producer's output again"),
)}

#: Code families raised on a graph at quantization time rather than by lint.
RUNTIME_FAMILIES = ("QR6",)


class Note(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    message: str
    span: Optional[Span] = None


class Diagnostic(BaseModel):
    """One finding: a stable code, its severity, where, what, and related places."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    severity: Severity
    message: str
    span: Span
    notes: tuple[Note, ...] = ()

    @property
    def title(self) -> str:
        return CODES[self.code].title

    def sort_key(self) -> tuple:
        return (self.span.file or "", self.span.line, self.span.col, self.code)


def diagnostic(code: str, message: str, span: Span, notes: Iterable[Note] = (),
               severity: Optional[Severity] = None) -> Diagnostic:
    """The one constructor every stage uses: looks up the code's default severity."""
    entry = CODES[code]  # KeyError here means a stage invented an unlisted code
    # model_construct: every field is built right here, so validating it again (and
    # building the model's schema on first use) would only cost start-up time.
    return Diagnostic.model_construct(code=code, severity=severity or entry.severity,
                                      message=message, span=span, notes=tuple(notes))


def note(message: str, span: Optional[Span] = None) -> Note:
    """The constructor the checks use for a note: like :func:`diagnostic`, it builds
    the fields right here, so ``Note``'s schema is never built on the lint path (that
    alone, with pydantic's plugin discovery, costs a tenth of a lint run)."""
    return Note.model_construct(message=message, span=span)


def did_you_mean(name: str, known: Iterable[str]) -> list[Note]:
    """A note suggesting the closest known name, if one is close enough."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return [note(f"did you mean `{close[0]}`?")] if close else []


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
