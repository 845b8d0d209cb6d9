"""The worked examples of docs/api.md run: every ```python block right after a
``<!-- runs in tests/engine/test_api_examples.py -->`` line, each in a fresh namespace,
with the registry restored afterwards."""

import re
from pathlib import Path

import pytest

from qrules.semantics import registry

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MARKER = "<!-- runs in tests/engine/test_api_examples.py -->"
EXAMPLES = re.findall(re.escape(MARKER) + r"\n```python\n(.*?)\n```", API_DOC.read_text(
    encoding="utf-8"), re.S)
TABLES = (registry.OBSERVERS, registry.TRANSFORMS, registry.DERIVE_FUNCTIONS,
          registry.ANNOTATION_KINDS, registry.FACTS, registry.PREDICATE_FUNCTIONS)


@pytest.fixture
def restored_registry():
    saved = [dict(table) for table in TABLES]
    yield
    for table, entries in zip(TABLES, saved):
        table.clear()
        table.update(entries)


def test_the_doc_has_the_worked_examples():
    assert len(EXAMPLES) == 3   # the engine switch, a vendor observer, a vendor fact


@pytest.mark.parametrize("code", EXAMPLES, ids=["engine", "observer", "fact"])
def test_example_runs(code, restored_registry):
    exec(compile(code, str(API_DOC), "exec"), {"__name__": "api_example"})
