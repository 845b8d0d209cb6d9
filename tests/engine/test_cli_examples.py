"""The examples of docs/cli.md marked ``<!-- runs in tests/engine/test_cli_examples.py -->``
run: a ```console block's ``$ qrules ...`` command prints exactly the lines under it
(from the repository root), and a ```qtest block is a rule-test file that passes next to
tests/rules/models.py."""

import re
import shlex
import shutil
from pathlib import Path

import pytest

from qrules.cli import main

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- runs in tests/engine/test_cli_examples.py -->"
TEXT = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
CONSOLE = re.findall(re.escape(MARKER) + r"\n```console\n\$ (.*?)\n(.*?)```", TEXT, re.S)
QTEST = re.findall(re.escape(MARKER) + r"\n```qtest\n(.*?)```", TEXT, re.S)


def test_the_doc_has_the_examples():
    assert len(CONSOLE) == 3 and len(QTEST) == 1


@pytest.mark.parametrize("command, output", CONSOLE, ids=[c[:60] for c, _ in CONSOLE])
def test_console_example(command, output, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    argv = shlex.split(command)
    assert argv[0] == "qrules"
    assert main(argv[1:]) == 0
    assert capsys.readouterr().out == output


def test_qtest_example(tmp_path, capsys):
    shutil.copy(REPO / "tests" / "rules" / "models.py", tmp_path / "models.py")
    (tmp_path / "example.qtest").write_text(QTEST[0])
    assert main(["test", str(tmp_path / "example.qtest")]) == 0
    assert capsys.readouterr().out == "6 expectations, 0 failed\n"
