"""Test-wide settings.

QRULES_VALIDATE_AST=1 makes the parser validate every AST node it builds against
its pydantic model (lint skips that for speed); every test that parses therefore
also checks the builder's output types.
"""

import os

os.environ["QRULES_VALIDATE_AST"] = "1"
os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
