"""The fast (unvalidated) and the validated AST builders agree on every real file."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import qrules.syntax.build_expressions as build
from qrules.syntax import ast
from qrules.syntax.parser import parse

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "rulesets").glob("*.qrule")) + sorted(
    (ROOT / "tests" / "fixtures").rglob("*.qrule"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_unvalidated_ast_equals_validated(path: Path, monkeypatch):
    text = path.read_text()
    validated = parse(text, path.name)
    monkeypatch.setattr(build, "_VALIDATE", False)
    fast = parse(text, path.name)
    assert fast.diagnostics == validated.diagnostics
    assert fast.file == validated.file
    # And the fast tree is a valid tree of the declared types.
    ast.File.model_validate(fast.file.model_dump())


def test_validation_is_on_in_tests():
    assert importlib.import_module("qrules.syntax.build_expressions")._VALIDATE is True
