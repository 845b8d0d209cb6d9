"""docs/diagnostics.md documents every diagnostic code, and its examples are true.

The page has one section per code: an ``<a id="qrNNN"></a>`` anchor (the SARIF
``helpUri`` links to ``diagnostics#qrNNN``), a ``### QRNNN title`` heading, a
``**Severity:** ...`` line, and examples in fenced blocks:

* ```` ```qrule ```` -- a complete file; checked as ``example.qrule`` from text. It must
  produce the section's code.
* ```` ```qrule file=PATH ```` -- one file of a multi-file example (includes). All files
  of the section are written to a temporary directory and the first one is checked
  from its path. It must produce the section's code.
* ```` ```python ```` -- a program (for input a text file cannot hold, and for QR6xx
  graph validation, which needs a model). It runs in a temporary directory and must
  leave the diagnostics it got in a variable ``diagnostics``, among them the section's.
* ```` ```qrule-fixed ```` -- the example, fixed. It must produce no warning or error,
  and not the section's code at any severity.
* ```` ```python-fixed ```` -- a fix that is Python, not .qrule (QR605: composing
  quantizers). It must run without raising.

Codes come from ``qrules.diagnostics.CODES``. Programs that import torch are skipped
when torch or torchao is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from qrules.checking import check_path, check_ruleset_text
from qrules.diagnostics import CODES, Severity

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "diagnostics.md"

_ANCHOR = re.compile(r'^<a id="(qr\d{3})"></a>\s*$')
_FENCE = re.compile(r"^```(\S*)\s*(.*?)\s*$")
_CODE = re.compile(r"\bQR\d{3}\b")
#: Codes documented without an example, and why.
NO_EXAMPLE = {
    "QR603": "no ruleset the linter accepts is known to build a sharing cycle on a graph; "
             "the check guards annotations combined from several rules and quantizers",
}


class Block(NamedTuple):
    tag: str
    info: str
    text: str
    line: int  # of the opening fence, 1-based


class Section(NamedTuple):
    code: str
    heading: str
    body: str
    blocks: tuple[Block, ...]
    line: int


def parse_doc(markdown: str) -> dict[str, Section]:
    """Sections by code: from an anchor to the next anchor or `## ` heading."""
    lines = markdown.split("\n")
    sections: dict[str, Section] = {}
    current: dict | None = None

    def close():
        if current is not None:
            sections[current["code"]] = Section(
                current["code"], current["heading"], "\n".join(current["body"]),
                tuple(current["blocks"]), current["line"])

    i = 0
    while i < len(lines):
        line = lines[i]
        anchor = _ANCHOR.match(line)
        if anchor or line.startswith("## "):
            close()
            current = None
            if anchor:
                code = anchor.group(1).upper()
                assert code not in sections, f"docs/diagnostics.md:{i + 1}: {code} twice"
                current = {"code": code, "heading": lines[i + 1] if i + 1 < len(lines) else "",
                           "body": [], "blocks": [], "line": i + 1}
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence and current is not None:
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            current["blocks"].append(Block(fence.group(1), fence.group(2),
                                           "\n".join(body) + "\n", start + 1))
        elif current is not None:
            current["body"].append(line)
        i += 1
    close()
    return sections


TEXT = DOC.read_text(encoding="utf-8")
SECTIONS = parse_doc(TEXT)


def _where(section: Section, block: Block | None = None) -> str:
    line = block.line if block else section.line
    return f"docs/diagnostics.md:{line} ({section.code})"


# ------------------------------------------------------------------------- coverage


def test_every_code_has_a_section():
    missing = sorted(set(CODES) - set(SECTIONS))
    assert missing == [], f"codes without a section in docs/diagnostics.md: {missing}"


def test_doc_names_no_unknown_code():
    known = set(CODES)
    assert sorted(set(SECTIONS) - known) == [], "sections for codes that do not exist"
    mentioned = set(_CODE.findall(TEXT))
    assert sorted(mentioned - known) == [], "docs/diagnostics.md mentions unknown codes"


@pytest.mark.parametrize("code", sorted(SECTIONS))
def test_section_heading_severity_and_parts(code: str):
    section = SECTIONS[code]
    entry = CODES.get(code)
    if entry is None:
        pytest.fail(f"{_where(section)}: {code} is not a known code")
    assert section.heading == f"### {code} {entry.title}", _where(section)
    assert f"**Severity:** {entry.severity.value}" in section.body, _where(section)
    for part in ("**What it means.**", "**Why it matters.**", "**How to fix.**"):
        assert part in section.body, f"{_where(section)}: no {part}"
    examples = [b for b in section.blocks if b.tag in ("qrule", "python")]
    if code in NO_EXAMPLE:
        assert not examples, f"{_where(section)}: has an example; drop it from NO_EXAMPLE"
    else:
        assert examples, f"{_where(section)}: no example that triggers {code}"
        assert "**Example.**" in section.body, _where(section)
    assert all(b.tag in ("qrule", "python", "qrule-fixed", "python-fixed")
               for b in section.blocks), f"{_where(section)}: unknown fence tag"


def test_index_table_matches_the_sections():
    rows = re.findall(r"^\| \[(QR\d{3})\]\(#(qr\d{3})\) \| (\w+) \| (.+?) \|$", TEXT, re.M)
    assert [r[0] for r in rows] == sorted(SECTIONS), "the index lists every section, in order"
    codes = CODES
    for code, anchor, severity, title in rows:
        assert anchor == code.lower()
        assert (severity, title) == (codes[code].severity.value, codes[code].title), code


def test_anchors_are_what_the_sarif_report_links_to():
    import inspect

    import qrules.report as report

    assert "diagnostics#{code.lower()}" in inspect.getsource(report)  # helpUri scheme
    for code in SECTIONS:
        assert f'<a id="{code.lower()}"></a>' in TEXT


# ------------------------------------------------------------------------- examples

EXAMPLES = [(code, block) for code, section in sorted(SECTIONS.items())
            for block in section.blocks if block.tag == "qrule" and not block.info]
MULTI_FILE = sorted(code for code, section in SECTIONS.items()
                    if any(b.tag == "qrule" and b.info for b in section.blocks))
PROGRAMS = [(code, block) for code, section in sorted(SECTIONS.items())
            for block in section.blocks if block.tag in ("python", "python-fixed")]
FIXES = [(code, block) for code, section in sorted(SECTIONS.items())
         for block in section.blocks if block.tag == "qrule-fixed"]


def _codes(diagnostics) -> set[str]:
    return {d.code for d in diagnostics}


def _describe(diagnostics) -> str:
    return "\n".join(f"  {d.span.line}:{d.span.col} {d.code} {d.severity.value}: {d.message}"
                     for d in diagnostics) or "  (nothing)"


@pytest.mark.parametrize("code, block", EXAMPLES,
                         ids=[f"{c}-line{b.line}" for c, b in EXAMPLES])
def test_example_triggers_its_code(code: str, block: Block, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    diagnostics = check_ruleset_text(block.text, "example.qrule").diagnostics
    assert code in _codes(diagnostics), \
        f"{_where(SECTIONS[code], block)} does not trigger {code}:\n{_describe(diagnostics)}"


@pytest.mark.parametrize("code", MULTI_FILE)
def test_multi_file_example_triggers_its_code(code: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in SECTIONS[code].blocks if b.tag == "qrule" and b.info]
    paths = []
    for block in blocks:
        match = re.fullmatch(r"file=(\S+)", block.info)
        assert match, f"{_where(SECTIONS[code], block)}: write ```qrule file=PATH"
        path = tmp_path / match.group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
        paths.append(path)
    diagnostics = check_path(paths[0]).diagnostics
    assert code in _codes(diagnostics), \
        f"{_where(SECTIONS[code], blocks[0])} does not trigger {code}:\n{_describe(diagnostics)}"


@pytest.mark.parametrize("code, block", PROGRAMS,
                         ids=[f"{c}-line{b.line}" for c, b in PROGRAMS])
def test_program_runs_and_triggers_its_code(code: str, block: Block, tmp_path: Path, monkeypatch):
    if re.search(r"^import torch\b", block.text, re.M):
        pytest.importorskip("torch")
        pytest.importorskip("torchao")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    exec(compile(block.text, _where(SECTIONS[code], block), "exec"), namespace)
    if block.tag == "python-fixed":
        return  # ran without raising
    assert "diagnostics" in namespace, \
        f"{_where(SECTIONS[code], block)}: the program must set `diagnostics`"
    diagnostics = namespace["diagnostics"]
    assert code in _codes(diagnostics), \
        f"{_where(SECTIONS[code], block)} does not trigger {code}:\n{_describe(diagnostics)}"


@pytest.mark.parametrize("code, block", FIXES, ids=[f"{c}-line{b.line}" for c, b in FIXES])
def test_fix_checks_clean(code: str, block: Block, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    diagnostics = check_ruleset_text(block.text, "example.qrule").diagnostics
    bad = [d for d in diagnostics
           if d.code == code or d.severity in (Severity.ERROR, Severity.WARNING)]
    assert not bad, f"{_where(SECTIONS[code], block)}: the fix is not clean:\n{_describe(bad)}"


def test_every_section_but_graph_ones_shows_a_fix():
    for code, section in SECTIONS.items():
        if code in NO_EXAMPLE:
            continue
        assert any(b.tag in ("qrule-fixed", "python-fixed") for b in section.blocks), \
            f"{_where(section)}: no ```qrule-fixed block"
