"""`qrules diff A B --model M`: exit 0 when equal, 1 when different, 2 on usage errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from qrules.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(tiny_model_args):
    return tiny_model_args


def test_equal_sides_exit_0(model, capsys):
    assert main(["diff", "xnnpack", "xnnpack", *model]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches" in out and out.rstrip().endswith("EQUAL")
    assert "outputs bit-identical" in out


def test_ruleset_against_torchao_is_equal(model, capsys):
    status = main(["diff", "torchao:xnnpack[per_channel]", "xnnpack", *model,
                   "--param", "per_channel=true", "--param", "flavor=torchao"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert ("A = torchao:xnnpack[per_channel], "
            "B = ruleset xnnpack (dynamic=False, exact_scopes=False, flavor=torchao, "
            "keep_integer_arithmetic=False, per_channel=True") in out
    assert "0 mismatches" in out and "outputs bit-identical" in out
    assert out.rstrip().endswith("EQUAL")


def test_ruleset_against_torchao_reports_each_mismatch(model, tmp_path, capsys):
    """xnnpack.qrule without its `takes(...)` clauses: torchao marks the linear's weight
    and bias nodes, the edited ruleset does not; the outputs are still identical."""
    text = (REPO / "rulesets" / "xnnpack.qrule").read_text()
    edited = re.sub(r"\s*takes\([^)]*\)", "", text)
    assert edited != text
    path = tmp_path / "no_takes.qrule"
    path.write_text(edited)
    status = main(["diff", "torchao:xnnpack[per_channel]", str(path), *model,
                   "--param", "per_channel=true"])
    out = capsys.readouterr().out
    assert status == 1
    assert "node linear_weight (linear.weight): annotation" in out
    assert "A: inputs {}, output none, _annotated=True" in out
    assert "B: no annotation" in out
    assert "outputs bit-identical" in out and out.rstrip().endswith("DIFFERENT")


def test_annotation_differences_name_the_rule(model, capsys):
    """Per-channel torchao against the per-tensor ruleset: the weight spec differs, and
    the report names the rule that made the ruleset's annotation."""
    status = main(["diff", "torchao:xnnpack[per_channel]", "xnnpack", *model, "--no-numerics"])
    out = capsys.readouterr().out
    assert status == 1
    assert "node linear (aten.linear.default): input linear_weight" in out
    assert "A: int8 [-127, 127] per_channel_symmetric ch_axis=0 PerChannelMinMaxObserver" in out
    assert "B: int8 [-127, 127] per_tensor_symmetric ch_axis=0 MinMaxObserver" in out
    assert "by rule linear_relu of xnnpack (rulesets/xnnpack.qrule:" in out
    assert "numerics:" not in out


@pytest.mark.parametrize("argv, message", [
    (["diff", "torchao:xnnpack[fast]", "xnnpack"], "takes no flag 'fast'"),
    (["diff", "torchao:nope", "xnnpack"], "unknown torchao quantizer"),
    (["diff", "no_such_ruleset", "xnnpack"], "no built-in ruleset named"),
    (["diff", "torchao:xnnpack", "torchao:embedding", "--param", "per_channel=true"],
     "--param sets ruleset parameters"),
    (["diff", "xnnpack", "xnnpack", "--param", "nope=1"], "has no parameter"),
])
def test_usage_errors_exit_2(model, capsys, argv, message):
    assert main([*argv, *model]) == 2
    assert message in capsys.readouterr().err


def test_model_is_required(capsys):
    assert main(["diff", "xnnpack", "xnnpack"]) == 2
    assert "--model" in capsys.readouterr().err


REUSED_RELU = textwrap.dedent("""
    import torch


    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 3, 3), torch.nn.Conv2d(3, 3, 3)
            self.relu = torch.nn.ReLU()

        def forward(self, x):
            return self.relu(self.b(self.relu(self.a(x))))


    def make():
        torch.manual_seed(0)
        return Block()
""")


def test_strict_export_for_the_x86_anchor(tmp_path, capsys):
    """One nn.ReLU called twice: torchao's X86InductorQuantizer needs a strict export
    to tell the calls apart; with --strict both sides agree."""
    path = tmp_path / "block.py"
    path.write_text(REUSED_RELU)
    status = main(["diff", "torchao:x86_inductor", "x86_inductor", f"--model={path}:make",
                   "--input-shape", "1,3,8,8", "--strict"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "0 mismatches" in out and "outputs bit-identical" in out


def test_a_side_that_fails_in_prepare_is_reported_with_a_hint(tmp_path, capsys):
    """Without --strict torchao's X86InductorQuantizer raises on the reused ReLU: the
    command names the failing side and suggests --strict, with exit 2, no traceback."""
    path = tmp_path / "block.py"
    path.write_text(REUSED_RELU)
    status = main(["diff", "torchao:x86_inductor", "x86_inductor", f"--model={path}:make",
                   "--input-shape", "1,3,8,8"])
    err = capsys.readouterr().err
    assert status == 2
    assert "X86InductorQuantizer failed in prepare: ValueError" in err
    assert "--strict" in err and "Traceback" not in err


# ------------------------------------------------------- per-side parameters (issue 12)
MINE = """ruleset mine version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule linear_relu: linear -> relu : { input: act, output: act }
"""


def _header(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("diff on "))


def test_param_goes_to_the_sides_that_declare_it(model, tmp_path, capsys):
    mine = tmp_path / "mine.qrule"
    mine.write_text(MINE)
    status = main(["diff", "xnnpack", str(mine), *model, "--no-numerics",
                   "--param", "per_channel=true"])
    header = _header(capsys.readouterr().out)
    assert status in (0, 1)
    assert "per_channel=True" in header.split(", B = ")[0]
    assert header.endswith(f"B = ruleset mine from {mine}")  # no parameters


def test_param_a_and_param_b_set_one_side_each(model, capsys):
    status = main(["diff", "xnnpack", "xnnpack", *model, "--no-numerics",
                   "--param", "per_channel=true", "--param-b", "per_channel=false",
                   "--param-a", "flavor=torchao"])
    side_a, side_b = _header(capsys.readouterr().out).split(", B = ")
    assert status == 1                                   # per-channel against per-tensor
    assert "flavor=torchao" in side_a and "per_channel=True" in side_a
    assert "flavor=executorch" in side_b and "per_channel=False" in side_b


@pytest.mark.parametrize("argv, message", [
    (["diff", "xnnpack", "embedding", "--param", "nope=1"],
     "--param nope: no ruleset side declares it (ruleset `xnnpack` has no parameter `nope`; "
     "ruleset `embedding` has no parameter `nope`)"),
    (["diff", "torchao:xnnpack", "xnnpack", "--param-a", "per_channel=true"],
     "--param-a sets ruleset parameters; A (torchao:xnnpack) is a hand-written quantizer"),
    (["diff", "xnnpack", "xnnpack", "--param-b", "nope=1"],
     "ruleset `xnnpack` has no parameter `nope`"),
    (["diff", "xnnpack", "xnnpack", "--param-a", "per_channel"],
     "--param-a takes NAME=VALUE, got 'per_channel'"),
])
def test_per_side_parameter_usage_errors(model, capsys, argv, message):
    assert main([*argv, *model]) == 2
    assert message in capsys.readouterr().err


def _grouped_example() -> tuple[dict[str, str], list[str], str]:
    """docs/cli.md's grouped diff example: the files it `cat`s, the command, its output."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text.split("<!-- grouped diff example")[1].split("```\n", 2)[1]
    chunks = re.split(r"^\$ (.*)\n", block, flags=re.M)[1:]  # command, its output, ...
    files = {command.split()[-1]: output for command, output in zip(chunks[::2], chunks[1::2])
             if command.startswith("cat ")}
    return files, chunks[-2].split(), chunks[-1]


def test_mismatches_are_grouped_most_significant_first(tmp_path, monkeypatch, capsys):
    """The doc's example, run: a uint8 ruleset without `takes` against torchao's XNNPACK.
    Dtype differences are counted and shown before weight-marking ones, and --limit
    cuts the detail list, not the counts."""
    files, command, expected = _grouped_example()
    assert set(files) == {"tiny.py", "npu.qrule"} and command[:2] == ["qrules", "diff"]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(command[1:]) == 1
    out = capsys.readouterr().out
    assert out == expected
    groups = out.split("most significant first:\n")[1].split("node ")[0].splitlines()
    kinds = [line.split(":")[0].split(maxsplit=1)[1] for line in groups]
    assert kinds.index("dtype") < kinds.index("marking")
    assert [line for line in out.splitlines() if line.startswith("node ")] == [
        "node linear (aten.linear.default): input x [dtype]",
        "node relu (aten.relu.default): output [dtype]"]
