"""Every diagnostic code, triggered by a fixture case at the right line and column.

Fixture format (``tests/fixtures/diagnostics/*.qrule``, one file per code family)
---------------------------------------------------------------------------------
* A fixture file is a sequence of cases. A case starts after a separator line that
  begins with ``# -----``; anything after the dashes is a free-form title. Text before
  the first separator is the file's preamble (what the file covers), never a case.
* Each case is an independent .qrule source, checked on its own as ``case.qrule``
  with ``qrules.checking.check_ruleset_text``.
* Lines are counted from the case's first line: the line right after its separator is
  line 1. ``# expect:`` lines are comments and part of the case, so they go at the end
  of the case, where they shift no line above them.
* ``# expect: LINE:COL CODE`` expects one diagnostic ``CODE`` at ``LINE:COL`` of the
  case. ``# expect: PATH:LINE:COL CODE`` expects it in another file, ``PATH`` relative to
  the case's directory (used by include cases, see below).
* A case passes when the set of ``(file, line, col, code)`` it produces equals the set
  it expects, exactly: a missing diagnostic fails, and so does an extra one. A case
  with no ``# expect:`` line must produce no warning and no error.
* Info-level diagnostics (today only QR502, "missing ruleset header", which fires on
  every case that has no ``ruleset`` line) are ignored, except in a case that expects
  an info-level code: that case is compared at every severity.
* Include cases: a case with a line starting with ``include`` needs real files. It is
  written to a temporary directory as ``case.qrule``, next to a copy of
  ``tests/fixtures/diagnostics/includes/``, and checked through the path loader
  (``check_path``), whose include roots are the case's directory and the built-in
  rulesets. Files under ``includes/`` are helpers, not cases.
* Inputs a text file cannot hold (NUL bytes, invalid UTF-8, a 4,001-character line,
  brackets 65 deep, a file that cannot be read) are generated below (``GENERATED``).

``test_every_code_is_covered`` checks that the expectations of all fixtures and
generated cases name every lint code in ``qrules.diagnostics.CODES``: all but the
``RUNTIME_FAMILIES`` (QR6xx), which are found on a model's graph, not in a file, and are
triggered by ``tests/engine/test_validation_codes.py``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from qrules.checking import check_path, check_ruleset_text
from qrules.diagnostics import CODES, RUNTIME_FAMILIES, Diagnostic, Severity

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diagnostics"
RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
CASE_NAME = "case.qrule"

_SEPARATOR = re.compile(r"^# -----")
_EXPECT = re.compile(r"^\s*#\s*expect:\s*(?:(?P<file>[^\s:]+):)?(?P<line>\d+):(?P<col>\d+)"
                     r"\s+(?P<code>QR\d{3})\s*$")
_EXPECT_PREFIX = re.compile(r"^\s*#\s*expect\b")
_INCLUDE = re.compile(r"^\s*include\b", re.M)

Found = tuple[str, int, int, str]  # (file, line, col, code)


@dataclass(frozen=True)
class Case:
    fixture: str
    number: int
    title: str
    text: str
    expected: frozenset  # of Found
    first_line: int      # the case's line 1 in the fixture file, for messages

    @property
    def id(self) -> str:
        return f"{self.fixture}:case{self.number}"

    @property
    def uses_includes(self) -> bool:
        return bool(_INCLUDE.search(self.text))


def parse_fixture(path: Path) -> list[Case]:
    """Split a fixture file into its cases and read their expectations."""
    lines = path.read_text(encoding="utf-8").split("\n")
    cases: list[Case] = []
    starts = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)]
    for number, start in enumerate(starts, 1):
        end = starts[number] if number < len(starts) else len(lines)
        body = lines[start + 1:end]
        expected = set()
        for offset, line in enumerate(body, 1):
            if not _EXPECT_PREFIX.match(line):
                continue
            match = _EXPECT.match(line)
            if match is None:
                raise ValueError(f"{path.name}:{start + 1 + offset}: malformed expect line "
                                 f"{line!r}; write `# expect: LINE:COL CODE`")
            expected.add((match["file"] or CASE_NAME, int(match["line"]), int(match["col"]),
                          match["code"]))
        title = lines[start].lstrip("#").strip().lstrip("-").strip()
        cases.append(Case(path.name, number, title, "\n".join(body) + "\n",
                          frozenset(expected), start + 2))
    return cases


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.qrule"))


ALL_CASES = [case for path in fixture_files() for case in parse_fixture(path)]


def _relative(file: Optional[str], base: Path) -> str:
    """A diagnostic's file, relative to the case's directory when it is under it."""
    if not file:
        return CASE_NAME
    path = Path(file)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return file


def run_case(case: Case, tmp_path: Path) -> tuple[Diagnostic, ...]:
    if case.uses_includes:
        shutil.copytree(FIXTURES / "includes", tmp_path / "includes")
        root = tmp_path / CASE_NAME
        root.write_text(case.text, encoding="utf-8")
        return check_path(root).diagnostics
    return check_ruleset_text(case.text, CASE_NAME).diagnostics


def compared(diagnostics, expected, base: Path) -> set:
    """The (file, line, col, code) of the diagnostics a case's expectations cover."""
    with_info = any(CODES[code].severity is Severity.INFO for *_, code in expected)
    return {(_relative(d.span.file, base), d.span.line, d.span.col, d.code)
            for d in diagnostics if with_info or d.severity is not Severity.INFO}


def _explain(case: Case, diagnostics, expected, found) -> str:
    lines = [f"{case.id} ({case.title or 'untitled'}; fixture line {case.first_line}):"]
    for item in sorted(expected - found):
        lines.append(f"  missing    {item[0]}:{item[1]}:{item[2]} {item[3]}")
    for item in sorted(found - expected):
        message = next((d.message for d in diagnostics
                        if (d.span.line, d.span.col, d.code) == item[1:]), "")
        lines.append(f"  unexpected {item[0]}:{item[1]}:{item[2]} {item[3]}  {message}")
    return "\n".join(lines)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_fixture_case(case: Case, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a text case's relative includes resolve nowhere real
    diagnostics = run_case(case, tmp_path)
    found = compared(diagnostics, case.expected, tmp_path)
    assert found == set(case.expected), _explain(case, diagnostics, case.expected, found)


# ----------------------------------------------------------------- generated cases
# Inputs a text fixture cannot hold. Each returns the diagnostics of one check.


def _text(source) -> Callable[[Path], tuple[Diagnostic, ...]]:
    return lambda tmp_path: check_ruleset_text(source, CASE_NAME).diagnostics


def _missing_file(tmp_path: Path) -> tuple[Diagnostic, ...]:
    return check_path(tmp_path / "no_such_file.qrule").diagnostics


def _directory(tmp_path: Path) -> tuple[Diagnostic, ...]:
    folder = tmp_path / "folder.qrule"
    folder.mkdir()
    return check_path(folder).diagnostics


_RULE = "ruleset gen version \"1.0\"\nrule relu: relu : none\n"

GENERATED: dict[str, tuple[Callable, set]] = {
    # NUL byte: line 2, column 7 (1-based, counted in bytes).
    "nul_byte": (_text(b"ruleset gen\nrule a\x00: relu : none\n"),
                 {(CASE_NAME, 2, 7, "QR101")}),
    "nul_first_byte": (_text(b"\x00\x01\x02"), {(CASE_NAME, 1, 1, "QR101")}),
    # 0xff can never start a UTF-8 sequence; a lone continuation byte neither.
    "invalid_utf8": (_text(b"ruleset gen\n# caf\xe9\nrule relu: relu : none\n"),
                     {(CASE_NAME, 2, 6, "QR102")}),
    "invalid_utf8_first_byte": (_text(b"\xff\xfe"), {(CASE_NAME, 1, 1, "QR102")}),
    # The column is the first one past the limit (4,000).
    "line_too_long": (_text(_RULE + "# " + "x" * 4000 + "\n"), {(CASE_NAME, 3, 4001, "QR104")}),
    "line_too_long_in_second_chunk": (
        _text("rule a: relu : \n" + "rule b: relu : none # " + "x" * 4000 + "\n"),
        {(CASE_NAME, 1, 14, "QR107"), (CASE_NAME, 2, 4001, "QR104")}),
    # 64 levels are fine; the 65th opening bracket is reported where it is.
    "nesting_too_deep": (_text(_RULE + "param p: int = " + "(" * 65 + "1" + ")" * 65 + "\n"),
                         {(CASE_NAME, 3, 80, "QR105")}),
    # A parse tree deeper than 160 levels (a long chain of unary operators), reported
    # at the operator where the limit is crossed.
    "expression_too_deep": (_text(_RULE + "param p: bool = " + "not " * 200 + "true\n"),
                            {(CASE_NAME, 3, 649, "QR105")}),
    "file_cannot_be_read": (_missing_file, {("no_such_file.qrule", 1, 1, "QR109")}),
    "directory_cannot_be_read": (_directory, {("folder.qrule", 1, 1, "QR109")}),
    # Valid input that looks unusual: no diagnostic.
    "nesting_64_is_fine": (
        _text(_RULE + "param p: int = " + "(" * 64 + "1" + ")" * 64 + "\nrule r when p > 0: "
              "gelu : none\n"), set()),
    "line_of_4000_is_fine": (_text(_RULE + "#" * 4000 + "\n"), set()),
    "utf8_bom_and_crlf": (_text("\ufeffruleset gen version \"1.0\"\r\nrule relu: relu : none"
                                "\r\n".encode("utf-8")), set()),
    "non_ascii_in_comments_and_strings": (
        _text("ruleset gen version \"1.0\"  # é ü 漢字\nscope module_name \"blöck.*\" "
              "{ rule relu: relu : none }\n"), set()),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    produce, expected = GENERATED[name]
    diagnostics = produce(tmp_path)
    found = compared(diagnostics, expected, tmp_path)
    detail = "\n".join(f"  {d.span.line}:{d.span.col} {d.code} {d.message}"
                       for d in diagnostics)
    assert found == expected, f"{name}:\n{detail}"


def test_builtin_rulesets_have_no_findings_at_all():
    """Real rulesets are valid, tricky input too: not even an info-level finding."""
    for path in sorted(RULESETS.glob("*.qrule")):
        diagnostics = check_path(path).diagnostics
        found = [f"{d.span} {d.code}" for d in diagnostics]
        assert found == [], f"{path.name}: {found}"


# ------------------------------------------------------------------------- coverage


def test_every_code_is_covered():
    expected = {code for case in ALL_CASES for *_, code in case.expected}
    expected |= {code for _, wanted in GENERATED.values() for *_, code in wanted}
    # QR6xx are raised on graphs by the quantizer; tests/engine/test_validation_codes.py
    # triggers each of them. Every other code must have a lint fixture.
    lint_codes = {c for c in CODES if not c.startswith(RUNTIME_FAMILIES)}
    assert sorted(lint_codes - expected) == [], "codes no fixture case triggers"
    assert sorted(expected - set(CODES)) == [], "fixtures expect codes that do not exist"


def test_every_family_has_a_fixture():
    names = {p.name for p in fixture_files()}
    for family in ("syntax", "names", "types", "reachability", "style"):
        assert f"{family}.qrule" in names


def test_case_ids_are_unique_and_cases_are_not_empty():
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)
    for case in ALL_CASES:
        assert case.text.strip(), f"{case.id} is empty"


def test_include_helpers_are_not_cases():
    helpers = FIXTURES / "includes"
    assert helpers.is_dir()
    assert not any(p.parent == FIXTURES for p in helpers.rglob("*.qrule"))


def test_expect_lines_are_parsed(tmp_path: Path):
    fixture = tmp_path / "demo.qrule"
    fixture.write_text("# preamble, not a case\n# ----- first\nrule a: nope : none\n"
                       "# expect: 1:9 QR201\n# -----\n# expect: other.qrule:2:3 QR100\n")
    first, second = parse_fixture(fixture)
    assert (first.title, first.expected) == ("first", {(CASE_NAME, 1, 9, "QR201")})
    assert second.expected == {("other.qrule", 2, 3, "QR100")}
    bad = tmp_path / "bad.qrule"
    bad.write_text("# -----\n# expect: 1 QR201\n")
    with pytest.raises(ValueError):
        parse_fixture(bad)

