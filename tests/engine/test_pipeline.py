"""The pipeline end to end: quantize / prepare / calibrate / convert, QAT helpers,
save_program / load_program, and `qrules demo`."""

import copy

import pytest
import torch

import qrules
from qrules.cli import main
from qrules.cli.demo import sqnr

Q = torch.ops.quantized_decomposed


def _targets(gm):
    return [n.target for n in gm.graph.nodes if n.op == "call_function"]


def test_quantize_resnet18_sqnr(resnet18):
    model, inputs, gm = resnet18
    calibration = [(torch.randn(1, 3, 64, 64),) for _ in range(3)] + [inputs]
    quantized = qrules.quantize(copy.deepcopy(gm), inputs,
                                qrules.load("xnnpack", per_channel=True),
                                calibration=calibration, progress=False)
    targets = _targets(quantized)
    assert targets.count(Q.dequantize_per_channel.default) == 21     # 20 convs + fc
    assert Q.quantize_per_tensor.default in targets
    with torch.no_grad():
        # measured: ~33 dB (weights=None, random calibration on 64x64 inputs)
        assert sqnr(model(*inputs), quantized(*inputs)) > 20.0


def test_prepare_calibrate_convert_and_save_load(exported, tmp_path):
    gm, inputs = exported("conv_linear")
    expected = gm(*inputs)
    prepared = qrules.prepare(gm, inputs, qrules.load("xnnpack"))
    observers = [m for m in prepared.modules() if "Observer" in type(m).__name__]
    assert observers
    qrules.calibrate(prepared, [inputs, (torch.randn_like(inputs[0]),)], progress=False)
    quantized = qrules.convert(prepared)
    assert not [m for m in quantized.modules() if "Observer" in type(m).__name__]
    actual = quantized(*inputs)
    for ref, out in zip(expected, actual):
        assert sqnr(ref, out) > 15.0
    path = tmp_path / "q.pt2"
    qrules.save_program(quantized, inputs, path)
    loaded = qrules.load_program(path)
    for out, again in zip(actual, loaded(*inputs)):
        torch.testing.assert_close(again, out)
    assert Q.quantize_per_tensor.default in _targets(loaded)


def test_quantize_exports_an_eager_module():
    from tests.models import ConvReLU

    model = ConvReLU().eval()
    inputs = (torch.randn(1, 3, 8, 8),)
    quantized = qrules.quantize(model, inputs, qrules.load("xnnpack", per_channel=True))
    assert qrules.model_is_exported(quantized) and not qrules.model_is_exported(model)
    assert sqnr(model(*inputs), quantized(*inputs)) > 15.0


def test_validation_error_stops_the_pipeline_before_observers(exported):
    text = """ruleset bad version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
rule add: add : { input: act, output: act }
"""
    gm, inputs = exported("add_scalar")
    with pytest.raises(qrules.ValidationError) as info:
        qrules.prepare(gm, inputs, qrules.load_text(text, "bad.qrule"))
    assert "bad.qrule:3:6: QR601" in str(info.value)
    assert isinstance(info.value, qrules.QruleError) and isinstance(info.value, ValueError)


def test_qat_prepare_and_convert(exported):
    # (conv-bn graphs cost torchao's prepare_qat_pt2e ~60 s of pattern tracing here;
    # tests/seed covers them, this one uses a linear)
    gm, inputs = exported("linear_2d")
    prepared = qrules.prepare(gm, inputs, qrules.load("xnnpack", qat=True), qat=True)
    assert any("FakeQuantize" in type(m).__name__ for m in prepared.modules())
    prepared(*inputs)
    quantized = qrules.convert(prepared)
    assert Q.quantize_per_tensor.default in _targets(quantized)
    assert quantized(*inputs).shape == (2, 3)


def test_train_eval_helpers(exported):
    gm, _ = exported("conv_bn_relu_train")

    def bn_training_flags(m):
        return [n.args[5] for n in m.graph.nodes
                if n.target == torch.ops.aten.batch_norm.default]

    assert bn_training_flags(gm) == [True]
    qrules.move_exported_model_to_eval(gm)
    assert bn_training_flags(gm) == [False]
    qrules.move_exported_model_to_train(gm)
    assert bn_training_flags(gm) == [True]
    qrules.allow_exported_model_train_eval(gm)
    gm.eval()
    assert bn_training_flags(gm) == [False]
    gm.train()
    assert bn_training_flags(gm) == [True]


def test_cli_demo(tmp_path, capsys):
    output = tmp_path / "demo.pt2"
    status = main(["demo", "--model", "torchvision:resnet18", "--input-shape", "1,3,64,64",
                   "--calibration-batches", "2", "--output", str(output)])
    out = capsys.readouterr().out
    assert status == 0
    assert output.is_file() and output.stat().st_size > 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "coverage" in lines and "100.0%" in lines["coverage"]
    assert float(lines["SQNR"].split()[1]) > 15.0
    assert str(output) in lines["written"]
    loaded = qrules.load_program(output)
    assert loaded(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_cli_demo_bad_model(capsys):
    assert main(["demo", "--model", "torchvision:nope"]) == 2
    assert "qrules demo: error: torchvision has no model 'nope'" in capsys.readouterr().err


def test_quantize_and_diff_leave_no_model_in_torchao_device_caches(exported):
    """torchao (and torch.ao) cache a device per module with functools.cache, keeping
    every prepared and converted model alive; quantize and diff drop those entries
    (the equivalence suite grew to 16 GB before)."""
    from torch.ao.quantization.fx import utils as fx_utils
    from torchao import utils

    gm, inputs = exported("conv_linear")
    qrules.quantize(copy.deepcopy(gm), inputs, qrules.load("xnnpack"), progress=False)
    assert utils._assert_and_get_unique_device.cache_info().currsize == 0
    assert fx_utils.assert_and_get_unique_device.cache_info().currsize == 0
    report = qrules.diff("torchao:xnnpack", "xnnpack", copy.deepcopy(gm), inputs)
    assert report.equal
    assert utils._assert_and_get_unique_device.cache_info().currsize == 0
