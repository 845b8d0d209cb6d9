"""The engine commands' rough edges (issue 12): demo's `per_channel` default only for a
ruleset that declares it, both coverages in demo's output, and a ruleset's diagnostics
printed by every command as `qrules lint` prints them (source line and caret intact)."""

from __future__ import annotations

import re

import pytest

import qrules
from qrules.cli import main
from qrules.errors import QruleError

# No `per_channel` parameter; relu left in float on purpose by a `none` rule.
MINE = """ruleset mine version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule linear: linear : { input: act, output: act }
rule relu: relu : none
"""


@pytest.fixture
def model(tiny_model_args):
    return tiny_model_args


def _lines(out: str) -> dict:
    return {line.split()[0]: line for line in out.splitlines() if line.strip()}


def _run_demo(tmp_path, model, *argv) -> int:
    return main(["demo", *model, "--calibration-batches", "1",
                 "--output", str(tmp_path / "demo.pt2"), *argv])


def test_demo_runs_a_ruleset_without_per_channel(tmp_path, model, capsys):
    path = tmp_path / "mine.qrule"
    path.write_text(MINE)
    assert _run_demo(tmp_path, model, "--ruleset", str(path)) == 0
    lines = _lines(capsys.readouterr().out)
    assert "per_channel" not in lines["ruleset"]
    # relu is covered by its `none` rule but not quantized: both numbers, named
    assert lines["coverage"].split(None, 1)[1] == (
        "100.0% covered by a rule, 50.0% quantized, of 2 float call nodes")


@pytest.mark.parametrize("params, per_channel", [
    ([], "per_channel=True"),
    (["--param", "flavor=torchao"], "per_channel=True"),
    (["--param", "per_channel=false"], "per_channel=False"),
])
def test_demo_sets_per_channel_unless_given(tmp_path, model, capsys, params, per_channel):
    assert _run_demo(tmp_path, model, "--ruleset", "xnnpack", *params) == 0
    assert per_channel in _lines(capsys.readouterr().out)["ruleset"]


BROKEN = """ruleset broken version "1.0"
rule r: convv : none
"""


@pytest.mark.parametrize("argv", [
    ["explain", "--ruleset", "{path}", "--model", "torchvision:resnet18"],
    ["demo", "--ruleset", "{path}"],
    ["diff", "{path}", "xnnpack", "--model", "torchvision:resnet18"],
    ["export", "--ruleset", "{path}", "--model", "torchvision:resnet18"],
])
def test_a_ruleset_error_is_printed_as_lint_prints_it(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.qrule").write_text(BROKEN)
    with pytest.raises(QruleError) as raised:
        qrules.load("broken.qrule")
    diagnostics = str(raised.value)
    assert len(diagnostics.splitlines()) >= 3 and "^" in diagnostics  # source line, caret
    status = main([arg.format(path="broken.qrule") for arg in argv])
    err = capsys.readouterr().err
    assert status == 2
    # the prefix once, on the first line; the source line and caret as they are
    assert err == f"qrules {argv[0]}: error: {diagnostics}\n"


#: The stages each command shows with --progress, in order (issue 12: only
#: calibration showed progress; export, prepare and convert of a large model were silent).
STAGES = {
    "explain": ["exporting", "explaining"],
    "demo": ["exporting", "explaining", "annotating and preparing", "calibrating",
             "converting", "saving"],
    "diff": ["exporting", "annotating and preparing", "annotating and preparing",
             "calibrating and converting both sides"],
    "export": ["exporting", "annotating and preparing", "calibrating", "converting",
               "lowering for xnnpack", "running in executorch's runtime"],
}


@pytest.mark.parametrize("command", sorted(STAGES))
def test_progress_shows_every_stage_on_stderr_only_when_asked(tmp_path, model, capsys,
                                                              command):
    argv = {"explain": ["explain", "--ruleset", "xnnpack"],
            "demo": ["demo", "--calibration-batches", "2", "--output",
                     str(tmp_path / "demo.pt2")],
            "diff": ["diff", "xnnpack", "xnnpack"],
            "export": ["export", "--calibration", "2", "-o", str(tmp_path / "m.pte")]}[command]
    assert main([*argv, *model]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""  # stderr is not a terminal here: nothing unless asked
    assert main([*argv, *model, "--progress"]) == 0
    stages = []
    for line in capsys.readouterr().err.split("\n")[:-1]:  # one line per stage, finished
        done = re.fullmatch(r"(.+) \.\.\. done \(\d+\.\d s\)", line)
        bar = re.fullmatch(r"(\rcalibrating \[[#.]{30}\] \d/2)+", line)
        assert done or bar and line.endswith("[" + "#" * 30 + "] 2/2"), repr(line)
        stages.append(done.group(1) if done else "calibrating")
    assert [re.sub(" (A|B)$", "", s) for s in stages] == STAGES[command]
