"""docs/language.md is executable: every ```qrule example parses, checks clean, and
matches its reviewed golden AST in tests/golden/.

Each example gets an id from the heading it sits under (GitHub-style slug) and its
position under that heading, counting from 1: ``specs-1``, ``hard-cases-…-1``. Its AST
(``parse(text, "example.qrule").file.model_dump(mode="json")``) is compared with
``tests/golden/<id>.json``, pretty-printed with ``indent=1`` and sorted keys.

To (re)write the goldens after changing an example, run

    QRULES_UPDATE_GOLDEN=1 python -m pytest tests/test_language_examples.py

and review the diff like code. Update mode also deletes goldens no example produces.
Blocks tagged ```qrule-fragment (snippets that need other files) must parse, and are
not checked or goldened.

A second test keeps the doc's prelude table and ``rulesets/_prelude.qrule`` equal.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

import pytest

import qrules
from qrules.diagnostics import Severity
from qrules.syntax import ast
from qrules.syntax.parser import parse

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "language.md"
PRELUDE = REPO / "rulesets" / "_prelude.qrule"
GOLDEN = Path(__file__).resolve().parent / "golden"
FILENAME = "example.qrule"
UPDATE = os.environ.get("QRULES_UPDATE_GOLDEN") == "1"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")


class Example(NamedTuple):
    id: str
    tag: str      # "qrule" or "qrule-fragment"
    text: str
    line: int     # line of the opening fence in docs/language.md


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`."""
    text = re.sub(r"`", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def extract(markdown: str) -> list[Example]:
    """Every fenced qrule / qrule-fragment block, in order, with its id."""
    examples: list[Example] = []
    heading, counts = "top", {}
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            tag, start = fence.group(1), i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if tag in ("qrule", "qrule-fragment"):
                key = (heading, tag)
                counts[key] = counts.get(key, 0) + 1
                suffix = "" if tag == "qrule" else "-fragment"
                examples.append(Example(f"{heading}{suffix}-{counts[key]}", tag,
                                        "\n".join(body) + "\n", start + 1))
        else:
            match = _HEADING.match(line)
            if match:
                heading = slug(match.group(2))
        i += 1
    return examples


EXAMPLES = extract(DOC.read_text(encoding="utf-8"))
CHECKED = [e for e in EXAMPLES if e.tag == "qrule"]
FRAGMENTS = [e for e in EXAMPLES if e.tag == "qrule-fragment"]


def _where(example: Example) -> str:
    return f"docs/language.md:{example.line} ({example.id})"


def _describe(diagnostics) -> str:
    return "\n".join(f"  {d.span.line}:{d.span.col} {d.code} {d.severity.value}: {d.message}"
                     for d in diagnostics)


def golden_text(tree: ast.File) -> str:
    return json.dumps(tree.model_dump(mode="json"), indent=1, sort_keys=True,
                      ensure_ascii=False) + "\n"


def test_examples_exist_and_ids_are_unique():
    assert CHECKED, "docs/language.md has no ```qrule examples"
    ids = [e.id for e in EXAMPLES]
    assert len(ids) == len(set(ids)), f"duplicate example ids: {ids}"


@pytest.mark.parametrize("example", CHECKED, ids=[e.id for e in CHECKED])
def test_example_parses_checks_and_matches_golden(example: Example):
    result = parse(example.text, FILENAME)
    assert not result.diagnostics, \
        f"{_where(example)} has syntax diagnostics:\n{_describe(result.diagnostics)}"

    found = qrules.check(example.text, FILENAME)
    bad = [d for d in found if d.severity in (Severity.ERROR, Severity.WARNING)]
    assert not bad, f"{_where(example)} does not check clean:\n{_describe(bad)}"

    path = GOLDEN / f"{example.id}.json"
    text = golden_text(result.file)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), (f"no golden for {_where(example)}: run with "
                           "QRULES_UPDATE_GOLDEN=1 and review tests/golden/")
    assert path.read_text(encoding="utf-8") == text, (
        f"the AST of {_where(example)} differs from {path.relative_to(REPO)}; if the change "
        "is intended, rerun with QRULES_UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.parametrize("example", FRAGMENTS, ids=[e.id for e in FRAGMENTS])
def test_fragment_parses(example: Example):
    result = parse(example.text, FILENAME)
    assert not result.diagnostics, \
        f"{_where(example)} has syntax diagnostics:\n{_describe(result.diagnostics)}"


def test_goldens_match_examples():
    expected = {f"{e.id}.json" for e in CHECKED}
    present = {p.name for p in GOLDEN.glob("*.json")} if GOLDEN.is_dir() else set()
    stale = present - expected
    if UPDATE:
        for name in stale:
            (GOLDEN / name).unlink()
        return
    assert not stale, f"goldens without an example (delete them): {sorted(stale)}"
    assert not expected - present, \
        f"examples without a golden: {sorted(expected - present)}"


# ------------------------------------------------------------------ prelude table


def _section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"docs/language.md has no section `## {title}`"
    return match.group(1)


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def doc_prelude_table() -> dict[str, tuple]:
    rows: dict[str, tuple] = {}
    section = _section(DOC.read_text(encoding="utf-8"), "The prelude vocabulary")
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"prelude table row needs 4 cells: {line}"
        (name,) = _ticked(cells[0])
        assert name not in rows, f"`{name}` is listed twice in the prelude table"
        roles = _ticked(cells[3])
        rows[name] = (cells[1], tuple(_ticked(cells[2])), roles[0] if roles else "")
    return rows


def prelude_vocabulary() -> dict[str, tuple]:
    result = parse(PRELUDE.read_text(encoding="utf-8"), str(PRELUDE))
    assert not result.diagnostics
    ops: dict[str, tuple] = {}
    for item in result.file.items:
        if isinstance(item, ast.OpDef):
            ops[item.name] = ("op", item.targets, ", ".join(map(str, item.roles)))
        elif isinstance(item, ast.OpAlias):
            ops[item.name] = ("alias", tuple(m.name for m in item.members), "")
    return ops


def test_prelude_table_lists_every_prelude_op_and_nothing_else():
    table, prelude = doc_prelude_table(), prelude_vocabulary()
    missing = sorted(set(prelude) - set(table))
    extra = sorted(set(table) - set(prelude))
    assert not missing and not extra, (
        f"docs/language.md's prelude table is out of date: missing {missing}, "
        f"not in the prelude {extra}")
    for name, (kind, members, roles) in prelude.items():
        doc_kind, doc_members, doc_roles = table[name]
        assert doc_kind == kind, f"`{name}`: the table says {doc_kind}, the prelude {kind}"
        assert doc_members == members, \
            f"`{name}`: the table lists {doc_members}, the prelude {members}"
        if kind == "op":
            assert doc_roles == roles, f"`{name}`: the table's roles are `{doc_roles}`, " \
                                       f"the prelude's `{roles}`"
