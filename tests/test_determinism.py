"""Annotations and the converted graph do not depend on PYTHONHASHSEED or on how many
times a ruleset ran before in the process (issue 14): every built-in ruleset on
resnet18, in subprocesses under different hash seeds (tests/determinism_probe.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "determinism_probe.py"


def _probe(hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(PROBE)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_annotations_and_converted_graph_are_deterministic():
    first, second = _probe("1"), _probe("2")
    assert sorted(first) == ["embedding", "x86_inductor", "xnnpack"]
    for ruleset, result in first.items():
        runs = result["annotations"]
        assert runs[0] == runs[1], f"{ruleset}: a second annotate run in one process differs"
    assert first == second, "annotations or converted code depend on PYTHONHASHSEED"
