"""qrules lint end to end: real files, the real checker, exit codes and every format."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qrules
from qrules import cli
from qrules.diagnostics import CODES

REPO = Path(__file__).resolve().parent.parent

CLEAN = """\
ruleset demo version "1.0"

spec act = affine(int8, -128..127, observer=histogram)
config static_i8 { input: act, output: act }
rule add_relu: add -> relu? : static_i8
"""

# One error (QR201 unknown op) and one warning (QR403 unused spec).
BROKEN = """\
ruleset demo version "1.0"

spec act = affine(int8, -128..127, observer=histogram)
spec unused = affine(int8, -128..127, observer=minmax)
config static_i8 { input: act, output: act }
rule add_relu: add -> relu? : static_i8
rule typo: convv : static_i8
"""

# Only a warning: QR403, the unused spec.
WARNS = """\
ruleset demo version "1.0"

spec act = affine(int8, -128..127, observer=histogram)
spec unused = affine(int8, -128..127, observer=minmax)
config static_i8 { input: act, output: act }
rule add_relu: add -> relu? : static_i8
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A small rules directory; the cwd is its parent so names print relative."""
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules"
    (rules / "nested").mkdir(parents=True)
    (rules / ".hidden").mkdir()
    (rules / "clean.qrule").write_text(CLEAN)
    (rules / "warns.qrule").write_text(WARNS)
    (rules / "nested" / "broken.qrule").write_text(BROKEN)
    (rules / "notes.txt").write_text("not a ruleset: directories only pick *.qrule")
    (rules / ".hidden" / "skipped.qrule").write_text("garbage ((((")
    return rules


def lint(capsys, *args):
    code = cli.main(["lint", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def codes_in_json(out):
    return [d["code"] for d in json.loads(out)["diagnostics"]]


# ----------------------------------------------------------------------------- exit codes

def test_clean_file_exits_0_with_a_summary(tree, capsys):
    code, out, err = lint(capsys, "rules/clean.qrule")
    assert (code, out) == (0, "")
    assert err == "no problems found in 1 file\n"


def test_error_file_exits_1_and_prints_located_diagnostics(tree, capsys):
    code, out, err = lint(capsys, "rules/nested/broken.qrule")
    assert code == 1
    assert "rules/nested/broken.qrule:7:12: QR201 error: unknown op `convv`" in out
    assert " 7 | rule typo: convv : static_i8\n   |            ^~~~~\n" in out
    assert "rules/nested/broken.qrule:4:6: QR403 warning:" in out
    assert err == "1 error, 1 warning in 1 file\n"


def test_missing_path_exits_2_naming_it(tree, capsys):
    code, out, err = lint(capsys, "rules/clean.qrule", "rules/nope.qrule")
    assert code == 2
    assert out == ""
    assert err == "qrules lint: error: rules/nope.qrule: no such file or directory\n"


def test_dangling_symlink_in_a_directory_exits_2(tree, capsys):
    (tree / "gone.qrule").symlink_to(tree / "does-not-exist.qrule")
    code, _, err = lint(capsys, "rules")
    assert code == 2
    assert "rules/gone.qrule: no such file or directory" in err


def test_warnings_pass_by_default_and_fail_with_fail_on_warning(tree, capsys):
    assert lint(capsys, "rules/warns.qrule")[0] == 0
    assert lint(capsys, "rules/warns.qrule", "--fail-on", "warning")[0] == 1
    assert lint(capsys, "rules/warns.qrule", "--fail-on", "info")[0] == 1
    assert lint(capsys, "rules/clean.qrule", "--fail-on", "info")[0] == 0


def test_fail_on_info_counts_info_findings(tree, capsys):
    (tree / "headerless.qrule").write_text(CLEAN.split("\n", 1)[1])  # QR502 is info
    code, out, err = lint(capsys, "rules/headerless.qrule", "--fail-on", "warning")
    assert code == 0
    assert "QR502 info:" in out
    assert err == "1 info in 1 file\n"
    assert lint(capsys, "rules/headerless.qrule", "--fail-on", "info")[0] == 1


@pytest.mark.parametrize("argv", [
    ["lint"],                                      # no path
    ["lint", "x.qrule", "--format", "xml"],
    ["lint", "x.qrule", "--fail-on", "never"],
    ["frobnicate"],
    [],
])
def test_argparse_errors_exit_2(argv, capsys, tree):
    assert cli.main(argv) == 2
    assert "usage: qrules" in capsys.readouterr().err


def test_unknown_code_patterns_are_usage_errors(tree, capsys):
    code, _, err = lint(capsys, "rules", "--select", "QR9,QR2")
    assert code == 2
    assert err == "qrules lint: error: --select: no diagnostic code starts with QR9\n"
    assert lint(capsys, "rules", "--ignore", "E501")[0] == 2


def test_include_root_must_be_a_directory(tree, capsys):
    code, _, err = lint(capsys, "rules", "--include-root", "nowhere")
    assert code == 2
    assert "--include-root nowhere: not a directory" in err


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"qrules {cli.version()}\n"
    assert cli.version() == qrules.__version__
    assert cli.main(["lint", "--help"]) == 0
    help_text = capsys.readouterr().out
    for flag in ("--format", "--fail-on", "--select", "--ignore", "--include-root"):
        assert flag in help_text


# ----------------------------------------------------------------------------- selection

def test_directories_recurse_sorted_skipping_hidden_and_other_extensions(tree, capsys):
    code, out, err = lint(capsys, "rules", "--format", "json")
    document = json.loads(out)
    assert code == 1
    assert document["files"] == 3
    assert {d["file"] for d in document["diagnostics"]} == {
        "rules/nested/broken.qrule", "rules/warns.qrule"}
    assert cli.collect_files(["rules"]) == [
        "rules/clean.qrule", "rules/warns.qrule", "rules/nested/broken.qrule"]


def test_a_named_file_is_linted_whatever_its_extension(tree, capsys):
    (tree / "broken.txt").write_text(BROKEN)
    code, out, _ = lint(capsys, "rules/broken.txt", "--format", "json")
    assert code == 1
    assert "QR201" in codes_in_json(out)


def test_a_file_named_twice_is_linted_once(tree, capsys):
    _, out, _ = lint(capsys, "rules/nested/broken.qrule", "rules", "--format", "json")
    document = json.loads(out)
    assert document["files"] == 3
    assert codes_in_json(out).count("QR201") == 1


def test_select_and_ignore_with_prefixes(tree, capsys):
    _, out, _ = lint(capsys, "rules", "--format", "json")
    assert sorted(codes_in_json(out)) == ["QR201", "QR403", "QR403"]

    code, out, _ = lint(capsys, "rules", "--format", "json", "--select", "QR4")
    assert (code, codes_in_json(out)) == (0, ["QR403", "QR403"])

    code, out, _ = lint(capsys, "rules", "--format", "json", "--ignore", "qr2")
    assert (code, codes_in_json(out)) == (0, ["QR403", "QR403"])

    code, out, _ = lint(capsys, "rules", "--format", "json", "--select", "QR201,QR403",
                        "--ignore", "QR403")
    assert (code, codes_in_json(out)) == (1, ["QR201"])

    # Repeated flags add up; a whole-family prefix works too.
    code, out, _ = lint(capsys, "rules", "--format", "json", "--select", "QR1",
                        "--select", "QR2")
    assert (code, codes_in_json(out)) == (1, ["QR201"])


def test_ignored_findings_do_not_fail_the_run(tree, capsys):
    code, out, err = lint(capsys, "rules/nested/broken.qrule", "--ignore", "QR201")
    assert code == 0
    assert "QR201" not in out
    assert err == "1 warning in 1 file\n"


# ----------------------------------------------------------------------------- formats

def test_json_format(tree, capsys):
    code, out, err = lint(capsys, "rules/nested/broken.qrule", "--format", "json")
    document = json.loads(out)
    assert code == 1
    assert err == ""  # machine formats keep stderr quiet on success
    assert document["version"] == 1
    assert document["summary"] == {"error": 1, "warning": 1, "info": 0}
    typo = next(d for d in document["diagnostics"] if d["code"] == "QR201")
    assert typo["title"] == "unknown op"
    assert (typo["file"], typo["line"], typo["column"], typo["end_column"]) == (
        "rules/nested/broken.qrule", 7, 12, 17)
    assert typo["notes"][0]["message"] == "did you mean `conv`?"


def test_github_format(tree, capsys):
    code, out, _ = lint(capsys, "rules/nested/broken.qrule", "--format", "github")
    assert code == 1
    assert out.splitlines() == [
        "::warning file=rules/nested/broken.qrule,line=4,col=6,endLine=4,endColumn=12,"
        "title=QR403 unused spec::spec `unused` is never used",
        "::error file=rules/nested/broken.qrule,line=7,col=12,endLine=7,endColumn=17,"
        "title=QR201 unknown op::unknown op `convv`%0Anote: did you mean `conv`?",
    ]


def test_sarif_format_is_valid_sarif(tree, capsys):
    code, out, _ = lint(capsys, "rules", "--format", "sarif")
    log = json.loads(out)
    schema = json.loads((REPO / "tests/data/sarif-2.1.0.schema.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    assert code == 1
    assert run["tool"]["driver"]["version"] == cli.version()
    assert len(run["tool"]["driver"]["rules"]) == len(CODES)
    assert sorted(r["ruleId"] for r in run["results"]) == ["QR201", "QR403", "QR403"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]}
    assert uris == {"rules/nested/broken.qrule", "rules/warns.qrule"}


def test_output_is_deterministic(tree, capsys):
    first = lint(capsys, "rules", "--format", "json")[1]
    assert lint(capsys, "rules", "--format", "json")[1] == first


def test_included_files_are_reported_once_with_their_own_name(tree, capsys):
    (tree / "base.qrule").write_text(WARNS)
    (tree / "top.qrule").write_text('include "base.qrule"\n')
    code, out, _ = lint(capsys, "rules/top.qrule", "rules/base.qrule", "--format", "json")
    files = [(d["code"], d["file"]) for d in json.loads(out)["diagnostics"]]
    assert code == 0
    assert files.count(("QR403", "rules/base.qrule")) == 1


# ----------------------------------------------------------------------------- robustness

ODD_INPUTS = {
    "empty.qrule": b"",
    "binary.qrule": b"\x00\x01\x02 rule",
    "latin1.qrule": "rule caf\xe9: add : x\n".encode("latin-1"),
    "bom.qrule": b"\xef\xbb\xbf" + CLEAN.encode(),
    "crlf.qrule": CLEAN.replace("\n", "\r\n").encode(),
    "long.qrule": b"spec a = " + b"1 + " * 5000 + b"1\n",
    "deep.qrule": b"spec a = " + b"(" * 500 + b"1" + b")" * 500 + b"\n",
    "unclosed.qrule": b'ruleset x version "1.0\nrule r: add : {\n',
    "escape.qrule": b"rule r\x1b[2J: add : c\n",
    "tabs.qrule": b"\tspec\ta = affine(int8, -128..127)\n\trule r: convv : { input: a }\n",
    "unicode.qrule": "spec π = affine(int8, -128..127)\nrule 漢: add : { input: π }\n".encode(),
    "only_comments.qrule": b"# nothing here\n",
}


@pytest.mark.parametrize("fmt", cli.FORMATS)
def test_odd_inputs_give_diagnostics_not_crashes(tmp_path, monkeypatch, capsys, fmt):
    monkeypatch.chdir(tmp_path)
    for name, data in ODD_INPUTS.items():
        (tmp_path / name).write_bytes(data)
    code, out, err = lint(capsys, ".", "--format", fmt)
    assert code == 1, err
    assert "internal error" not in err
    assert "Traceback" not in out + err
    if fmt == "text":
        assert "\x1b" not in out  # terminal escapes in a source are never echoed
        assert "QR101 error" in out  # the binary file is reported, not skipped


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300) | st.text(
    alphabet=st.sampled_from(list("ruleset spec config op include :->?|(){}[],.=\"#\n\t0129a_")),
    max_size=200).map(str.encode))
def test_arbitrary_bytes_never_reach_the_internal_error_path(tmp_path, capsys, data):
    path = tmp_path / "fuzz.qrule"
    path.write_bytes(data)
    for fmt in cli.FORMATS:
        code = cli.main(["lint", str(path), "--format", fmt])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        assert "internal error" not in err


def test_an_unexpected_exception_becomes_a_clean_exit_2(tree, capsys, monkeypatch):
    # The one way to reach the internal-error path: a checker bug, simulated here.
    import qrules.checking

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(qrules.checking, "check_path", explode)
    code, out, err = lint(capsys, "rules/clean.qrule")
    assert code == 2
    assert out == ""
    assert err.startswith("qrules lint: internal error: RuntimeError: boom\n")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- no torch

def test_lint_never_imports_torch(tree):
    """In a fresh interpreter: `python -m qrules lint` and main() keep torch out."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = ("import sys\n"
             "from qrules.cli import main\n"
             "rc = main(['lint', 'rules', '--format', 'sarif'])\n"
             "heavy = sorted(m for m in sys.modules\n"
             "               if m.split('.')[0] in ('torch', 'torchao', 'torchvision'))\n"
             "assert not heavy, heavy\n"
             "sys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # findings, and no AssertionError (exit 1 too)
    assert "AssertionError" not in done.stderr
    assert json.loads(done.stdout)["runs"][0]["results"]

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "qrules", "lint",
                           "rules/clean.qrule"], cwd=tree.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "qrules.checking" in imported  # the probe really sees lint's imports
    assert not {m for m in imported if m.split(".")[0] in ("torch", "torchao", "torchvision")}
    assert done.stderr.rstrip().endswith("no problems found in 1 file")


def test_lint_start_up_stays_light(tree, tmp_path):
    """What makes `qrules lint` start in well under 0.3 s stays out of its process:
    with the table cache warm, lark is not even imported for files without syntax
    errors (the driver's own tables are read), and for a file with one, lark's
    grammar compiler never runs; no pydantic model builds its validator (the checked
    AST keeps pydantic, but lint constructs nodes, notes and diagnostics it already
    knows are valid); pydantic's plugin discovery (importlib.metadata) does not
    happen."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "QRULES_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("QRULES_NO_CACHE", None)
    env.pop("QRULES_VALIDATE_AST", None)  # the suite validates every node; users do not
    targets = [str(REPO / "rulesets"), "rules"]  # clean rulesets, and findings with notes
    warm = subprocess.run([sys.executable, "-m", "qrules", "lint", *targets],
                          cwd=tree.parent, env=env, capture_output=True, text=True,
                          timeout=120)
    assert warm.returncode == 1, warm.stderr
    # The driver's table cache; lark's, because the run built the driver's from it.
    assert list((tmp_path / "cache" / "qrules").glob("qrule-driver-*"))
    assert list((tmp_path / "cache" / "qrules").glob("qrule-lalr-*"))
    probe = (
        "import sys, lark\n"
        "from pydantic import BaseModel\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('the grammar was compiled')\n"
        "lark.Lark.__init__ = refuse\n"
        "from qrules.cli import main\n"
        f"rc = main(['lint', *{targets!r}, '--format', 'json'])\n"
        "def models(cls):\n"
        "    for sub in cls.__subclasses__():\n"
        "        yield sub\n"
        "        yield from models(sub)\n"
        "built = sorted(m.__qualname__ for m in models(BaseModel)\n"
        "               if m.__module__.startswith('qrules.')\n"
        "               and type(m.__pydantic_validator__).__name__ != 'MockValSer')\n"
        "assert not built, built\n"
        "sys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # findings, no AssertionError (exit 1 too)
    assert "AssertionError" not in done.stderr and "Traceback" not in done.stderr
    found = json.loads(done.stdout)["diagnostics"]
    assert any(d["notes"] for d in found)  # notes were made, without Note's validator

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "qrules", "lint",
                           *targets], cwd=tree.parent, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"qrules.checking", "pydantic"} <= imported  # the probe sees lint's imports
    assert not imported & {"lark", "regex", "importlib.metadata", "pydantic.plugin._loader",
                           "torch", "qrules.compile", "qrules.engine", "html"}
    assert re.search(r"\d+ warnings? in \d+ files$", done.stderr.rstrip())  # it ran to the end
    # A syntax error brings lark in (its errors make the diagnostics), from its cache.
    broken = tmp_path / "broken.qrule"
    broken.write_text("rule r: conv -> : int8\n")
    done = subprocess.run([sys.executable, "-c", probe.replace(repr(targets), repr([str(broken)]))],
                          cwd=tree.parent, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "AssertionError" not in done.stderr and "Traceback" not in done.stderr
    assert [d["code"] for d in json.loads(done.stdout)["diagnostics"]] == ["QR100"]


def test_docs_cover_every_lint_flag_and_format():
    docs = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    lint_parser = next(action for action in cli.build_parser()._actions
                       if isinstance(action, argparse._SubParsersAction)).choices["lint"]
    flags = {opt for action in lint_parser._actions for opt in action.option_strings
             if opt.startswith("--") and opt != "--help"}
    assert flags == {"--format", "--fail-on", "--select", "--ignore", "--include-root", "--jobs"}
    for flag in flags | {"--version"}:
        assert f"| `{flag}" in docs, flag  # a row of the flags table
    assert "id: qrules-lint" in docs
    assert "github/codeql-action/upload-sarif" in docs
    for fmt in cli.FORMATS:
        assert f"### `{fmt}`" in docs, fmt


def test_docs_cover_every_command_and_flag():
    """docs/architecture.md's "add a CLI command" recipe: every command listed in
    COMMANDS has a section in docs/cli.md, and each of its flags is mentioned there."""
    docs = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = next(action for action in cli.build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction)).choices
    assert len(commands) == len(cli.COMMANDS)
    for name, parser in commands.items():
        assert re.search(rf"^#+ .*`qrules {name}", docs, re.M), f"no section for {name}"
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in docs, f"qrules {name} {flag} is not in docs/cli.md"


def test_each_command_s_name_is_its_module_s():
    """main builds only the command a command line names first, found by its module's
    name; a command whose module is named otherwise would never run."""
    commands = next(action for action in cli.build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction)).choices
    assert sorted(commands) == sorted(cli._name(add) for add in cli.COMMANDS)
    only = next(action for action in cli.build_parser(only="lint")._actions
                if isinstance(action, argparse._SubParsersAction)).choices
    assert list(only) == ["lint"]
