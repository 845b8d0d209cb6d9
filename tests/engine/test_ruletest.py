"""`qrules test` and .qtest rule-test files: parsing (errors at their line), checking
(FILE:LINE: FAIL per expectation), exit codes, --update as a golden rewrite, and the
pytest plugin collecting the same files."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qrules.cli import main
from qrules.engine.ruletest import RuleTestError, parse

RULES = """ruleset tiny version "1.0"
param relu_too: bool = true
spec act = affine(int8, -128..127, observer=histogram)
spec w = symmetric(int8, -127..127, observer=minmax)
rule linear_relu when relu_too: linear -> relu : { input: act, weight: w, output: act }
rule linear: linear : { input: act, weight: w, output: act }
"""


@pytest.fixture
def suite(tmp_path, tiny_model_args):
    """A directory with tiny.qrule and tiny.py (Linear + ReLU); returns a writer."""
    (tmp_path / "tiny.qrule").write_text(RULES)

    def write(body: str, name: str = "tiny.qtest") -> Path:
        path = tmp_path / name
        path.write_text("ruleset tiny.qrule\n\nmodel tiny.py:make 2,4\n"
                        + textwrap.dedent(body))
        return path
    return write


@pytest.mark.parametrize("text, message", [
    ("model m.py:make 1,2\n", "1: the file must start with `ruleset NAME`"),
    ("ruleset a\nruleset b\n", "2: `ruleset NAME` comes once, first"),
    ("ruleset a\nparam x=1\n", "2: `param` before the first `model` line"),
    ("ruleset a\nmodel m.py:make one\n", "2: `model SPEC [SHAPE]`"),
    ("ruleset a\nmodel m.py:make\nparam x\n", "3: `param NAME=VALUE`"),
    ("ruleset a\nmodel m.py:make\nrelu: float since no\n", "3: `NODE: float because"),
    ("ruleset a\nmodel m.py:make\nrelu: float because\n", "3: `NODE: float because"),
    ("ruleset a\nmodel m.py:make\nconv: r weight:w\n", "3: `weight:w`: an edge is KEY=SPEC"),
    ("ruleset a\nmodel m.py:make\ncoverage > 3%\n", "3: cannot read 'coverage > 3%'"),
    ("", "1: the file must start with `ruleset NAME`"),
])
def test_parse_errors_name_their_line(text, message):
    with pytest.raises(RuleTestError) as err:
        parse(text, "t.qtest")
    assert str(err.value).startswith(f"t.qtest:{message}")


def test_parse_cases():
    parsed = parse("ruleset xnnpack  # built in\nmodel torchvision:resnet18 1,3,32,32\n"
                   "param per_channel = true\nqat\ncoverage >= 99.5%\ncovered >= 100%\n"
                   "conv2d: conv_relu weight=w_i8 input[0]=act\nfc: float because no rule\n"
                   "relu: float\n\nmodel m.pt2\n", "t.qtest")
    first, second = parsed.cases
    assert (first.line, first.model, first.input_shape, first.params, first.qat) == (
        2, "torchvision:resnet18", "1,3,32,32", ("per_channel=true",), True)
    assert [(c.metric, c.at_least) for c in first.coverage] == [("coverage", 99.5),
                                                                ("covered", 100.0)]
    assert [(n.line, n.node, n.rule, n.reason, n.specs) for n in first.nodes] == [
        (7, "conv2d", "conv_relu", None, (("weight", "w_i8"), ("input[0]", "act"))),
        (8, "fc", None, "no rule", ()), (9, "relu", None, None, ())]
    assert (second.model, second.input_shape, second.nodes) == ("m.pt2", None, ())


def test_failures_are_reported_at_their_line(suite, capsys):
    path = suite("""\
        param relu_too=false
        coverage >= 100%
        linear: linear_relu
        relu: linear
        linear: linear weight=act output=act
        relu: float because no rule for this op
        nope: linear
        covered >= 50%
        """)
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    # the rule's location is its file as the ruleset was named, from the working directory
    assert out[1].startswith(f"{path}:6: FAIL linear: expected rule linear_relu, got "
                             f"annotated by linear (") and out[1].endswith("tiny.qrule:6:6)")
    assert out[:1] + out[2:] == [
        f"{path}:5: FAIL coverage is 50.0%, expected >= 100%",
        f"{path}:7: FAIL relu: expected rule linear, got float because no rule for this op",
        f"{path}:8: FAIL linear: expected weight=act, got weight=w",
        f"{path}:10: FAIL no call node 'nope' in the exported graph",
        "7 expectations, 5 failed"]


def test_passing_file_exits_0(suite, capsys):
    path = suite("""\
        coverage >= 100%
        linear: linear_relu input=act weight=w
        relu: linear_relu output=act
        """)
    assert main(["test", str(path.parent)]) == 0
    assert capsys.readouterr().out == "3 expectations, 0 failed\n"


@pytest.mark.parametrize("body, message", [
    ("param nope=1\n", "has no parameter `nope`"),
    ("model missing.py:make 2,4\n", ":7: no such file"),
    ("relu: float because\n", ":7: `NODE: float because REASON`"),
])
def test_usage_errors_exit_2(suite, body, message, capsys):
    path = suite("linear: linear_relu\n\n\n" + body)
    assert main(["test", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qrules test: error: ") and message in err, err


def test_missing_path_exits_2(tmp_path, capsys):
    assert main(["test", str(tmp_path / "none.qtest")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_update_rewrites_node_lines_like_a_golden_file(suite, capsys):
    path = suite("""\
        # the comment stays
        param relu_too=false
        coverage >= 100%
        relu: linear      # replaced: node lines are regenerated in graph order
        linear: linear weight=act
        """)
    assert main(["test", "--update", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: updated\n"
    assert path.read_text() == (
        "ruleset tiny.qrule\n\nmodel tiny.py:make 2,4\n# the comment stays\n"
        "param relu_too=false\ncoverage >= 50%\nlinear: linear weight=w\n"
        "relu: float because no rule for this op\n")
    assert main(["test", str(path)]) == 0          # what --update wrote passes
    capsys.readouterr()
    before = path.read_text()
    assert main(["test", "--update", str(path)]) == 0   # and is stable
    assert capsys.readouterr().out == "" and path.read_text() == before


def test_update_appends_node_lines_to_a_case_without_any(suite):
    path = suite("coverage >= 10%\n\n# the second case\nmodel tiny.py:make 3,4\n"
                 "param relu_too=false\n\n")
    assert main(["test", "--update", str(path)]) == 0
    assert path.read_text().splitlines()[3:] == [
        "coverage >= 10%", "linear: linear_relu", "relu: linear_relu", "",
        "# the second case", "model tiny.py:make 3,4", "param relu_too=false", "linear: linear",
        "relu: float because no rule for this op", ""]


def test_pytest_plugin_collects_qtest_files(suite):
    suite("linear: linear_relu\n", "good.qtest")
    bad = suite("linear: linear\n", "bad.qtest")
    # As tests/rules does: the conftest hook, or the pytest11 entry point when qrules
    # is installed with it (loading the module with -p as well would register it twice).
    shutil.copy(Path(__file__).parents[1] / "rules" / "conftest.py", bad.parent)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(bad.parent), str(bad.parent)],
        capture_output=True, text=True, cwd=bad.parent, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert (f"{bad}:4: FAIL linear: expected rule linear, got annotated by linear_relu"
            in run.stdout)


def test_a_saved_program_as_the_model(suite, tmp_path, capsys):
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
    torch.export.save(torch.export.export(module, (torch.randn(2, 4),)),
                      str(tmp_path / "saved.pt2"))
    path = suite("\nmodel saved.pt2\nlinear: linear_relu\nrelu: linear_relu\n")
    assert main(["test", str(path)]) == 0
    assert capsys.readouterr().out == "2 expectations, 0 failed\n"
