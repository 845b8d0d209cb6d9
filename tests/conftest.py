"""Test-wide settings, and the tiny model file the CLI tests hand to `--model`.

QRULES_VALIDATE_AST=1 makes the parser validate every AST node it builds against
its pydantic model (lint skips that for speed); every test that parses therefore
also checks the builder's output types.
"""

import gc
import os
import textwrap

import pytest

os.environ["QRULES_VALIDATE_AST"] = "1"
os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One of the README command's pytest-xdist workers, one per core: one intra-op
    # thread each (torch's default of a thread per core would run two per core, and
    # its OpenMP threads spin while they wait). Set before torch is imported; the
    # processes the tests start inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


#: A model file as a user hands it to the CLI (`--model FILE.py:make`).
TINY_MODEL = textwrap.dedent("""
    import torch


    class LinearReLU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.relu(self.linear(x))


    def make():
        torch.manual_seed(0)
        return LinearReLU()
""")


def pytest_collection_finish(session):
    """Freeze what collection left alive (torch, torchao, executorch, qrules, the test
    modules and their case tables: all of it lives until the session ends), as
    ``qrules lint`` does at start-up: the cyclic garbage collector then walks only
    what the tests make, in the suites' explicit collections after each diff and in
    every full collection allocation triggers (about 0.2 s less each, at the ~370,000
    objects those imports leave)."""
    gc.freeze()


@pytest.fixture
def tiny_model_args(tmp_path):
    """The CLI arguments naming ``TINY_MODEL``, written to a file: a Linear + ReLU."""
    path = tmp_path / "tiny.py"
    path.write_text(TINY_MODEL)
    return [f"--model={path}:make", "--input-shape", "2,4"]
