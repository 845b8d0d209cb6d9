"""Diagnostics -> text for people, JSON for scripts, GitHub annotations, SARIF.

Formatting only: finding is ``qrules.checking``'s job and the exit status is
``qrules.cli``'s. Every formatter sorts with :func:`_order` so the same findings
always print the same bytes, whatever order the checks produced them in.
The JSON schema is documented field by field in ``docs/cli.md``; changing a field
means bumping ``JSON_VERSION``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import PurePath
from typing import Iterable, Mapping, Optional
from urllib.parse import quote

from qrules.diagnostics import CODES, Diagnostic, Severity
from qrules.span import Span

JSON_VERSION = 1
SOURCE_WIDTH = 120  # longest source excerpt shown under a diagnostic
TAB_WIDTH = 4  # tabs are expanded so the caret lines up in any terminal
DOCS_URL = "https://qrules.invalid/docs/"
SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
_SEVERITIES = tuple(Severity)  # error, warning, info: the order summaries use


def _order(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (*d.sort_key(), -d.severity.rank, d.message))


def _title(code: str) -> str:
    entry = CODES.get(code)  # a hand-built Diagnostic may carry an unlisted code
    return entry.title if entry else ""


def _where(span: Span) -> str:
    return f"{span.file or '<string>'}:{span.line}:{span.col}"


# ----------------------------------------------------------------------------- text

def format_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Human-readable report: location, code, message, source line with a caret, notes.

    ``sources`` maps ``Span.file`` to the file's text; a file missing from it (or a
    line past its end) just gets no excerpt. No summary line: that is the CLI's.
    """
    lines_of = _LineCache(sources)
    blocks = []
    for diag in _order(diagnostics):
        out = [f"{_where(diag.span)}: {diag.code} {diag.severity.value}: {diag.message}"]
        out += _excerpt(diag.span, lines_of)
        for note in diag.notes:
            if note.span is None:
                out.append(f"  note: {note.message}")
            else:
                out.append(f"  note: {_where(note.span)}: {note.message}")
                out += _excerpt(note.span, lines_of)
        blocks.append("\n".join(out) + "\n")
    return "\n".join(blocks)  # a blank line between diagnostics


class _LineCache:
    """Split each source once, the way the parser counts lines (\\n after CRLF/CR)."""

    def __init__(self, sources: Mapping[str, str]):
        self._sources = sources
        self._lines: dict[str, list[str]] = {}

    def line(self, file: Optional[str], number: int) -> Optional[str]:
        key = file or "<string>"
        if key not in self._lines:
            text = self._sources.get(key)
            if text is None:
                return None
            self._lines[key] = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        lines = self._lines[key]
        return lines[number - 1] if 1 <= number <= len(lines) else None


def _excerpt(span: Span, lines_of: _LineCache) -> list[str]:
    """The span's first line and a caret line under it, with a line-number gutter."""
    source = lines_of.line(span.file, span.line)
    if source is None or span.col > len(source) + 1:
        return []  # the span does not fit the text we have: no excerpt beats a wrong one
    start = min(max(span.col, 1), len(source) + 1) - 1  # 0-based; may sit just past the end
    if span.end_line == span.line:
        stop = max(start + 1, min(span.end_col - 1, len(source)))
    else:  # a multi-line span is underlined to the end of its first line
        stop = max(start + 1, len(source))
    cells = [_cell(ch) for ch in source] + [(" ", 1)]  # the extra cell: a caret at EOL
    first, last = _window(len(cells), start)
    text = "".join(shown for shown, _ in cells[first:last]).rstrip()
    marks = " " * sum(width for _, width in cells[first:start])
    marks += "^" + "~" * (cells[start][1] - 1)
    marks += "".join("~" * width for _, width in cells[start + 1:min(stop, last)])
    if first > 0:
        text, marks = "..." + text, "   " + marks
    if last < len(source):
        text += "..."
    gutter = str(span.line)
    return [f" {gutter} |" + (f" {text}" if text else ""), f" {' ' * len(gutter)} | {marks}"]


def _cell(ch: str) -> tuple[str, int]:
    """How one source character is shown and how many columns it takes on screen."""
    if ch == "\t":
        return " " * TAB_WIDTH, TAB_WIDTH
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
        # Never echo control or bidi-override characters (terminal escapes,
        # "Trojan Source" tricks) into a terminal or a CI log.
        return "\ufffd", 1
    if unicodedata.combining(ch):
        return ch, 0
    return ch, 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _window(length: int, start: int) -> tuple[int, int]:
    """The slice of a long line to show: about SOURCE_WIDTH characters around the caret."""
    if length <= SOURCE_WIDTH:
        return 0, length
    first = max(0, start - SOURCE_WIDTH // 3)
    last = min(length, first + SOURCE_WIDTH)
    return max(0, last - SOURCE_WIDTH), last


# ----------------------------------------------------------------------------- JSON

def format_json(diagnostics: Iterable[Diagnostic], files_checked: int) -> str:
    """The ``qrules lint --format json`` document (schema version ``JSON_VERSION``)."""
    ordered = _order(diagnostics)
    summary = {sev.value: 0 for sev in _SEVERITIES}
    for diag in ordered:
        summary[diag.severity.value] += 1
    document = {
        "version": JSON_VERSION,
        "files": files_checked,
        "diagnostics": [_json_diagnostic(d) for d in ordered],
        "summary": summary,
    }
    # ASCII-only output survives any stdout encoding; JSON readers undo the escapes.
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def _json_diagnostic(diag: Diagnostic) -> dict:
    span = diag.span
    return {
        "code": diag.code,
        "severity": diag.severity.value,
        "title": _title(diag.code),
        "message": diag.message,
        "file": span.file,
        "line": span.line,
        "column": span.col,
        "end_line": span.end_line,
        "end_column": span.end_col,
        "notes": [{"message": n.message,
                   "file": n.span.file if n.span else None,
                   "line": n.span.line if n.span else None,
                   "column": n.span.col if n.span else None} for n in diag.notes],
    }


# ----------------------------------------------------------------------------- GitHub

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def format_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: one ``::error file=…::message`` line each.

    GitHub has no related locations, so notes become extra lines of the message.
    ``endColumn`` is the span's exclusive end, as other linters emit it.
    """
    out = []
    for diag in _order(diagnostics):
        span = diag.span
        props = [("file", span.file or "<string>"), ("line", span.line), ("col", span.col),
                 ("endLine", span.end_line), ("endColumn", span.end_col),
                 ("title", f"{diag.code} {_title(diag.code)}".rstrip())]
        message = diag.message + "".join(
            f"\nnote: {_where(n.span) + ': ' if n.span else ''}{n.message}" for n in diag.notes)
        head = ",".join(f"{key}={_escape_property(str(value))}" for key, value in props)
        out.append(f"::{_GITHUB_COMMAND[diag.severity]} {head}::{_escape_data(message)}\n")
    return "".join(out)


def _escape_data(text: str) -> str:
    # The rules of @actions/core's toCommandValue/escapeData; '%' must go first.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# ----------------------------------------------------------------------------- SARIF

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def format_sarif(diagnostics: Iterable[Diagnostic], tool_version: str) -> str:
    """A SARIF 2.1.0 log with one run; ``rules`` lists every code qrules can emit."""
    index = {code: i for i, code in enumerate(CODES)}
    driver = {
        "name": "qrules",
        "version": tool_version,
        "informationUri": DOCS_URL + "cli",
        "rules": [_sarif_rule(entry.code, entry.title, entry.severity)
                  for entry in CODES.values()],
    }
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            # Span columns count code points (Python string indices), not UTF-16 units.
            "columnKind": "unicodeCodePoints",
            "results": [_sarif_result(d, index.get(d.code)) for d in _order(diagnostics)],
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=True) + "\n"


def _sarif_rule(code: str, title: str, severity: Severity) -> dict:
    return {
        "id": code,
        # SARIF wants an identifier-like name: "unknown op" -> "UnknownOp".
        "name": "".join(w.capitalize() for w in re.findall(r"[A-Za-z0-9]+", title)),
        "shortDescription": {"text": title},
        "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
        "helpUri": f"{DOCS_URL}diagnostics#{code.lower()}",
    }


def _sarif_result(diag: Diagnostic, rule_index: Optional[int]) -> dict:
    # A note without a place has no SARIF location to live in: it joins the message.
    text = diag.message + "".join(f"\nnote: {n.message}" for n in diag.notes if n.span is None)
    result: dict = {"ruleId": diag.code}
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    result["level"] = _SARIF_LEVEL[diag.severity]
    result["message"] = {"text": text}
    result["locations"] = [{"physicalLocation": _sarif_physical(diag.span)}]
    related = [{"id": i, "message": {"text": n.message},
                "physicalLocation": _sarif_physical(n.span)}
               for i, n in enumerate((n for n in diag.notes if n.span is not None))]
    if related:
        result["relatedLocations"] = related
    return result


def _sarif_physical(span: Span) -> dict:
    line, col = max(span.line, 1), max(span.col, 1)
    end_line = max(span.end_line, line)
    end_col = max(span.end_col, col) if end_line == line else max(span.end_col, 1)
    return {"artifactLocation": {"uri": _sarif_uri(span.file)},
            "region": {"startLine": line, "startColumn": col,
                       "endLine": end_line, "endColumn": end_col}}


def _sarif_uri(file: Optional[str]) -> str:
    """A relative path stays relative (code scanning resolves it against the checkout)."""
    path = PurePath(file or "<string>")
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/")
