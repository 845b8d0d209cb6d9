"""The Python API: parse, check, load, QruleError."""

from __future__ import annotations

from pathlib import Path

import pytest

import qrules
from qrules.errors import QruleError
from qrules.syntax import ast

GOOD = """\
ruleset tiny version "1.0"
param strict: bool = true
spec act = affine(int8, -128..127, observer=histogram(eps=2**-12))
rule conv_relu: conv2d -> relu : { input: act, output: act }
rule relu when strict: relu : { input: act, output: same_as(input) }
"""


def test_parse_returns_ast_with_spans():
    tree = qrules.parse(GOOD, "tiny.qrule")
    assert isinstance(tree, ast.File)
    rule = [i for i in tree.items if isinstance(i, ast.Rule)][0]
    assert rule.name == "conv_relu"
    assert (rule.span.file, rule.span.line, rule.span.col) == ("tiny.qrule", 4, 1)
    assert isinstance(rule.pattern, ast.Chain)
    assert [s.name for s in rule.pattern.steps] == ["conv2d", "relu"]


def test_ast_is_frozen():
    tree = qrules.parse(GOOD)
    with pytest.raises(Exception):
        tree.items[0].name = "other"


def test_parse_raises_qrule_error_with_lint_text():
    with pytest.raises(QruleError) as info:
        qrules.parse("rule a: conv -> : x\n", "bad.qrule")
    text = str(info.value)
    assert "bad.qrule:1:17: QR100" in text
    assert "rule a: conv -> : x" in text  # the source line, as lint prints it
    assert info.value.diagnostics[0].code == "QR100"


def test_check_text_and_path(tmp_path: Path):
    assert [d for d in qrules.check(GOOD) if d.severity.value != "info"] == []
    path = tmp_path / "t.qrule"
    path.write_text(GOOD.replace("conv2d", "conv9d"))
    codes = [(d.code, d.span.line, d.span.col) for d in qrules.check(path)]
    assert ("QR201", 4, 17) in codes


def test_load_builtin_binds_parameters():
    ruleset = qrules.load("xnnpack", per_channel=True)
    assert ruleset.name == "xnnpack"
    assert ruleset.params["per_channel"] is True
    names = [r.name for r in ruleset.rules]
    assert "conv_relu" in names and "dynamic_linear" not in names
    conv = next(r for r in ruleset.rules if r.name == "conv")
    weight = dict((k.role, v) for k, v in conv.config.entries)["weight"]
    assert weight[0].qscheme == "per_channel_symmetric"


def test_load_dynamic_switches_rules():
    # executorch's XNNPACKQuantizer (the default flavour) also quantizes convolutions
    # dynamically, and propagates whatever the config; torchao's testing copy only
    # quantizes linears.
    names = [r.name for r in qrules.load("xnnpack", dynamic=True).rules]
    assert names == ["dynamic_linear", "conv", "conv_transpose", "propagate"]
    names = [r.name for r in qrules.load("xnnpack", dynamic=True, flavor="torchao").rules]
    assert names == ["dynamic_linear"]


def test_load_qat_adds_conv_bn_rules_first():
    names = [r.name for r in qrules.load("xnnpack", qat=True).rules]
    assert names[:4] == ["conv_bn_relu", "conv_bn", "conv_transpose_bn_relu",
                         "conv_transpose_bn"]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"per_chanel": True}, "has no parameter `per_chanel`"),
    ({"per_channel": "yes"}, "parameter `per_channel`: expected bool, got str"),
    ({"dynamic": 1}, "parameter `dynamic`: expected bool, got int"),
])
def test_load_rejects_bad_parameters(kwargs, fragment):
    with pytest.raises(QruleError) as info:
        qrules.load("xnnpack", **kwargs)
    assert fragment in str(info.value)


def test_load_enum_parameter(tmp_path: Path):
    path = tmp_path / "modes.qrule"
    path.write_text('ruleset modes version "1.0"\nparam mode: enum(ptq, qat) = ptq\n'
                    'rule r when mode == qat: relu : { input: affine(int8) }\n')
    assert [r.name for r in qrules.load(path, mode="qat").rules] == ["r"]
    assert qrules.load(path).rules == ()
    with pytest.raises(QruleError, match="'dyn' is not one of ptq, qat"):
        qrules.load(path, mode="dyn")


def test_load_unknown_builtin():
    with pytest.raises(FileNotFoundError, match="no built-in ruleset named 'nope'"):
        qrules.load("nope")


def test_load_file_with_errors_raises_all_diagnostics(tmp_path: Path):
    path = tmp_path / "bad.qrule"
    path.write_text('ruleset bad version "1.0"\nrule a: conv9 : c1\nrule b: relu9 : c2\n')
    with pytest.raises(QruleError) as info:
        qrules.load(path)
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["QR201", "QR201", "QR203", "QR203"]


def test_import_qrules_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, qrules; qrules.check('rule a: relu : none');"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[1])


# ------------------------------------------------- the root file names the ruleset
# The loader lists the root file first and the files it includes after it; the root's
# header (not the last included file's) names the ruleset (issue 12, bug 1).

def test_an_included_header_does_not_rename_the_including_ruleset():
    ruleset = qrules.load_text('ruleset my_xnnpack version "2.0"\ninclude xnnpack')
    assert (ruleset.name, ruleset.version) == ("my_xnnpack", "2.0")


def test_a_ruleset_file_including_another_keeps_its_own_name(tmp_path):
    (tmp_path / "base.qrule").write_text('ruleset base version "1.0"\n')
    (tmp_path / "v2.qrule").write_text('ruleset npu_v2 version "2.1"\ninclude "base.qrule"\n')
    ruleset = qrules.load(tmp_path / "v2.qrule")
    assert (ruleset.name, ruleset.version) == ("npu_v2", "2.1")


def test_missing_header_is_reported_against_the_root_file(tmp_path):
    # QR502 is about the root file: reported when it lacks a header even though an
    # included file has one, and not for a headerless included file.
    (tmp_path / "base.qrule").write_text('ruleset base version "1.0"\n')
    (tmp_path / "bare.qrule").write_text('op bare_op: aten.relu.default\n')
    (tmp_path / "root.qrule").write_text('include "base.qrule"\n')
    (tmp_path / "named.qrule").write_text('ruleset named version "1.0"\ninclude "bare.qrule"\n')
    root = [d for d in qrules.check(tmp_path / "root.qrule") if d.code == "QR502"]
    assert [(d.span.file.rsplit("/", 1)[-1], d.span.line) for d in root] == [("root.qrule", 1)]
    assert "its ruleset is called `root`" in root[0].message
    assert [d for d in qrules.check(tmp_path / "named.qrule") if d.code == "QR502"] == []
