"""docs/api.md documents every public name: each name of ``qrules.__all__`` and each
``register_*`` function of ``qrules.semantics.registry`` is a heading or a code entry."""

import re
from pathlib import Path

import pytest

import qrules
from qrules.semantics import registry

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TEXT = API_DOC.read_text(encoding="utf-8")
HEADINGS = set(re.findall(r"^#+\s+`([^`(]+)", TEXT, re.M))

REGISTRY = sorted(name for name in dir(registry) if name.startswith("register_"))
LOADED_METHODS = ["compiled", "quantizer", "set_global", "set_module_name",
                  "set_module_type", "set_operator_type"]


@pytest.mark.parametrize("name", sorted(qrules.__all__))
def test_public_name_is_documented(name):
    assert name in HEADINGS, f"docs/api.md has no `### {name}` heading"


@pytest.mark.parametrize("name", REGISTRY)
def test_registry_function_is_documented(name):
    assert name in HEADINGS, f"docs/api.md has no `### {name}` heading"
    assert re.search(rf"^{name}\(", TEXT, re.M), f"docs/api.md shows no signature of {name}"


@pytest.mark.parametrize("name", LOADED_METHODS)
def test_loaded_ruleset_methods_are_documented(name):
    assert f"`{name}(" in TEXT


def test_every_public_name_resolves():
    for name in qrules.__all__:
        assert getattr(qrules, name) is not None


def test_engine_commands_are_documented():
    for flag in ("--ruleset", "--model", "--input-shape", "--param", "--qat",
                 "--calibration-batches", "--seed", "--output"):
        assert f"`{flag}`" in TEXT
    assert "(cli.md)" in TEXT
