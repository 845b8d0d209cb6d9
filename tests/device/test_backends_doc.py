"""docs/backends.md's examples run as written: every ```python block right after a
``<!-- runs in tests/device/test_backends_doc.py -->`` line (in a scratch directory,
since they write the .pte they make)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends.md"
MARKER = "<!-- runs in tests/device/test_backends_doc.py -->"
EXAMPLES = re.findall(re.escape(MARKER) + r"\n```python\n(.*?)\n```",
                      DOC.read_text(encoding="utf-8"), re.S)


def test_the_doc_has_its_example():
    assert EXAMPLES and "export_program" in EXAMPLES[0]


@pytest.mark.parametrize("code", EXAMPLES, ids=lambda code: code.splitlines()[0][:40])
def test_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "backends_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    written = sorted(tmp_path.glob("*.pte"))
    assert written and all(p.read_bytes()[4:8] == b"ET12" for p in written)
