"""``qrules export`` and ``qrules demo --pte`` (qrules/cli/export.py, cli/demo.py): the program they
write loads and runs in executorch's runtime."""

import argparse

import torch
from torch import nn

from qrules.adapter.executorch import load_and_run
from qrules.cli import main
from qrules.cli.demo import demo_pte
from qrules.cli.export import add, export

from .conftest import quantizer_for


def _conv_relu():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1)).eval()


def test_export_writes_a_program_that_runs(tmp_path):
    path = tmp_path / "model.pte"
    inputs = (torch.randn(1, 3, 8, 8),)
    line = export("xnnpack", {"per_channel": True}, _conv_relu(), inputs, path, 2)
    assert line.startswith(f"written      {path} (")
    assert load_and_run(path.read_bytes(), inputs).outputs is not None


def test_demo_pte_lowers_the_quantized_model(tmp_path):
    import qrules

    inputs = (torch.randn(1, 3, 8, 8),)
    quantized = qrules.quantize(_conv_relu(), inputs, quantizer_for("anchor", True, False))
    text = demo_pte(quantized, inputs, tmp_path / "demo.pte")
    assert text.startswith("device       xnnpack: loads and runs; 1 delegate(s)")
    assert (tmp_path / "demo.pte").read_bytes()[4:8] == b"ET12"  # the .pte identifier


def test_export_command_arguments(tmp_path, capsys):
    factory = tmp_path / "small.py"
    factory.write_text("from torch import nn\n\ndef make():\n"
                       "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\n")
    parser = argparse.ArgumentParser()
    add(parser.add_subparsers())
    args = parser.parse_args(["export", "--param", "per_channel=true", "--model",
                              f"{factory}:make", "--input-shape", "1,3,8,8",
                              "-o", str(tmp_path / "r.pte"), "--calibration", "1"])
    assert args.run(args) == 0
    assert "loads and runs" in capsys.readouterr().out


def test_qrules_export_and_demo_pte_from_the_command_line(tmp_path, capsys):
    """The commands as a user types them (COMMANDS wires both)."""
    factory = tmp_path / "small.py"
    factory.write_text("from torch import nn\n\ndef make():\n"
                       "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\n")
    model = ["--model", f"{factory}:make", "--input-shape", "1,3,8,8"]
    assert main(["export", *model, "--param", "per_channel=true", "-o",
                 str(tmp_path / "e.pte"), "--calibration", "1"]) == 0
    assert main(["demo", *model, "--calibration-batches", "1", "--output",
                 str(tmp_path / "d.pt2"), "--pte", str(tmp_path / "d.pte")]) == 0
    out = capsys.readouterr().out
    assert "loads and runs" in out and f"written      {tmp_path / 'd.pte'}" in out
    for name in ("e.pte", "d.pte"):
        assert (tmp_path / name).read_bytes()[4:8] == b"ET12"
