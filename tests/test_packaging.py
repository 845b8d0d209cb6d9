"""Packaging facts that a wheel build would only reveal later.

Building a wheel here would be too slow; ``.ci/run`` builds one and installs it in a
fresh venv. These tests check the cheap half: the data files exist where
``qrules.resources`` looks for them, and ``pyproject.toml`` maps the checkout's
top-level ``grammar/`` and ``rulesets/`` to exactly the in-package places that
``resources.py`` tries first.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import qrules
from qrules import resources

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    if not PYPROJECT.is_file():
        pytest.skip("not a source checkout (no pyproject.toml beside tests/)")
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_grammar_and_rulesets_are_found():
    grammar = resources.grammar_path()
    assert grammar.is_file() and grammar.name == "qrule.lark"
    assert "start:" in grammar.read_text(encoding="utf-8")
    rulesets = resources.rulesets_dir()
    assert rulesets.is_dir()
    assert any(rulesets.glob("*.qrule")), f"no .qrule files in {rulesets}"


def test_builtin_ruleset_lookup_agrees_with_the_directory():
    for name in resources.builtin_ruleset_names():
        path = resources.builtin_ruleset_path(name)
        assert path is not None and path.parent == resources.rulesets_dir()
    assert resources.builtin_ruleset_path("no-such-ruleset-xyz") is None


def test_force_include_matches_resources(pyproject, tmp_path, monkeypatch):
    """Lay the files out as the wheel would, and check resources.py finds them there."""
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["qrules"]
    mapping = wheel["force-include"]
    assert set(mapping) == {"grammar", "rulesets"}
    site = tmp_path / "site-packages"
    for source, dest in mapping.items():
        assert (ROOT / source).is_dir(), f"force-include source {source}/ is missing"
        assert dest.startswith("qrules/"), f"{dest} is not inside the package"
        shutil.copytree(ROOT / source, site / dest)
    # resources.py resolves everything from _PACKAGE (the package directory); point it
    # at the fake install, where no top-level grammar/ or rulesets/ exists to fall back on.
    monkeypatch.setattr(resources, "_PACKAGE", site / "qrules")
    assert resources.grammar_path() == site / mapping["grammar"] / "qrule.lark"
    assert resources.rulesets_dir() == site / mapping["rulesets"]
    assert resources.builtin_ruleset_names() == sorted(
        p.stem for p in (ROOT / "rulesets").glob("*.qrule") if not p.stem.startswith("_"))


def test_checkout_uses_top_level_data():
    if not (ROOT / "pyproject.toml").is_file() or (ROOT / "qrules" / "_grammar").exists():
        pytest.skip("not a plain source checkout")
    assert resources.grammar_path() == ROOT / "grammar" / "qrule.lark"
    assert resources.rulesets_dir() == ROOT / "rulesets"


def test_sdist_carries_the_data_and_the_tests(pyproject):
    include = pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    for needed in ("/qrules", "/grammar", "/rulesets", "/docs", "/tests"):
        assert needed in include


def test_project_metadata(pyproject):
    project = pyproject["project"]
    assert project["name"] == "qrules"
    assert project["version"] == qrules.__version__
    assert project["requires-python"] == ">=3.10"
    assert project["scripts"]["qrules"] == "qrules.cli:main"
    deps = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0]: d for d in project["dependencies"]}
    assert set(deps) == {"torch", "torchao", "lark", "pydantic"}
    dev = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0] for d in
           project["optional-dependencies"]["dev"]}
    assert {"pytest", "hypothesis", "torchvision", "ruff", "jsonschema", "build"} <= dev
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"


def test_console_script_target_is_callable():
    from qrules import cli

    assert callable(cli.main)


def test_pre_commit_hook_runs_qrules_lint():
    hooks = ROOT / ".pre-commit-hooks.yaml"
    if not hooks.is_file():
        pytest.skip("not a source checkout")
    text = hooks.read_text(encoding="utf-8")
    assert re.search(r"^- id: qrules-lint$", text, re.M)
    assert re.search(r"^\s+entry: qrules lint$", text, re.M)
    assert re.search(r"^\s+language: python$", text, re.M)
    assert re.search(r"^\s+files: .*\\\.qrule\$", text, re.M)
