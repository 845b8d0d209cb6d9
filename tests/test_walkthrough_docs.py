"""The walkthrough docs run: docs/tutorial.md, docs/migrating.md and docs/editors.md are
followed literally, block by block, in a fresh directory per doc, as a new user would.

What a doc's fenced blocks mean here:

- ```` ```LANG file=NAME ````: write the block to NAME (replacing it);
  ```` ```LANG append=NAME ````: add the block to the end of NAME.
- ```` ```console ````: each ``$ COMMAND`` line runs in bash in that directory (``qrules``
  and ``python`` are this checkout's); the lines after it, up to the next ``$``, must
  each appear in its output (stdout and stderr), ``...`` standing for any text. The
  command must exit 0, unless the line ends with ``# exit N``.
  ```` ```console cwd=checkout ```` runs in the checkout instead (for its scripts).
Other blocks (configuration for an editor, output shown for reading) are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest


REPO = Path(__file__).resolve().parent.parent
DOCS = ("tutorial.md", "migrating.md", "editors.md")
_FENCE = re.compile(r"^```(\S*)(.*)$")
_EXIT = re.compile(r"\s#\s*exit\s+(\d+)\s*$")


class Block(NamedTuple):
    line: int
    lang: str
    options: dict
    text: str


def blocks(doc: str) -> list[Block]:
    out, current = [], None
    for number, line in enumerate((REPO / "docs" / doc).read_text(encoding="utf-8").split("\n"), 1):
        fence = _FENCE.match(line)
        if fence and current is None:
            options = dict(part.split("=", 1) for part in fence.group(2).split() if "=" in part)
            current = (number, fence.group(1), options, [])
        elif line.startswith("```") and current is not None:
            out.append(Block(current[0], current[1], current[2], "\n".join(current[3]) + "\n"))
            current = None
        elif current is not None:
            current[3].append(line)
    return out


def _commands(block: Block) -> list[tuple[str, list[str], int]]:
    """(command, expected output lines, expected exit status) of a console block."""
    out = []
    for line in block.text.split("\n"):
        if line.startswith("$ "):
            status = _EXIT.search(line)
            out.append((line[2:], [], int(status.group(1)) if status else 0))
        elif out and line.strip():
            out[-1][1].append(line.rstrip())
    return out


def _seen(expected: str, output: list[str]) -> bool:
    pattern = re.compile(".*".join(re.escape(part) for part in expected.split("...")))
    return any(pattern.fullmatch(line.rstrip()) for line in output)


def _environment() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("doc", DOCS)
def test_doc_runs_as_written(doc, tmp_path):
    ran = 0
    for block in blocks(doc):
        if "file" in block.options or "append" in block.options:
            target = tmp_path / block.options.get("file", block.options.get("append"))
            mode = "w" if "file" in block.options else "a"
            with open(target, mode, encoding="utf-8") as handle:
                handle.write(block.text)
            continue
        if block.lang != "console":
            continue
        cwd = REPO if block.options.get("cwd") == "checkout" else tmp_path
        for command, expected, status in _commands(block):
            result = subprocess.run(["bash", "-c", command], cwd=cwd, env=_environment(),
                                    capture_output=True, text=True, timeout=600)
            output = (result.stdout + result.stderr).split("\n")
            where = f"docs/{doc}:{block.line}: `{command}`"
            assert result.returncode == status, (
                f"{where} exited {result.returncode}, not {status}:\n" + "\n".join(output))
            missing = [line for line in expected if not _seen(line, output)]
            assert not missing, f"{where}: output lacks {missing}; it was:\n" + "\n".join(output)
            ran += 1
    assert ran, f"docs/{doc} has no command to run"
