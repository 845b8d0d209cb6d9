"""The harness itself, with executorch's XNNPACKQuantizer on both sides (independent of
the state of the xnnpack ruleset): programs load and run, the comparison is exact and
deterministic, failures to lower or to load are reported with the runtime's reason."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from qrules.adapter.executorch import device_backend, load_and_run
from qrules.adapter.torchao import QuantizationAnnotation, QuantizationSpec, Quantizer
from qrules.engine.device import (
    DeviceError, DeviceReport, device_mismatches, export_program, run_on_device,
)

from tests.models import device as models
from .conftest import device_report, quantizer_for

CASES = [(name, per_channel, dynamic) for name, (_, _, configs) in models.HELPERS.items()
         for per_channel, dynamic in configs]

#: Loaded by executorch's Arm backend (tests/device/test_arm_lowering.py imports it):
#: its out-variant kernels let programs lower that executorch alone cannot.
_QUANTIZED_KERNELS = "executorch.kernels.quantized"


def without_quantized_kernels(test):
    """Run ``test`` in an interpreter where executorch's quantized kernels library is not
    loaded (a fresh one, when this process has loaded it): what it pins is how
    executorch lowers without them, whatever ran earlier in the session."""
    @functools.wraps(test)
    def wrapped():
        if _QUANTIZED_KERNELS not in sys.modules:
            return test()
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"{Path(__file__).relative_to(root)}::{test.__name__}"],
            cwd=root, capture_output=True, text=True, timeout=900,
            env=dict(os.environ, PYTHONPATH=str(root)))
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return wrapped


@pytest.mark.parametrize("name,per_channel,dynamic", CASES)
def test_anchor_program_loads_and_runs(name, per_channel, dynamic):
    report = device_report("anchor", "helper", name, per_channel, dynamic)
    assert report.loads, report.error
    assert report.delegates >= 1 and report.delegated_nodes > 0
    assert report.max_abs_diff is not None
    print(f"{name} per_channel={per_channel} dynamic={dynamic}: {report.format()}")


@pytest.mark.parametrize("name", ["conv_add_cat", "conv_transpose"])
def test_anchor_against_itself_is_exact(name):
    """Quantizing and lowering again gives the same program: a ruleset that matches
    the anchor can be held to bit-identical runtime outputs."""
    first = device_report("anchor", "helper", name, True, False)
    module, inputs = models.helper(name)
    again = run_on_device(module, inputs, quantizer_for("anchor", True, False))
    assert device_mismatches(again, first) == []
    assert device_mismatches(first, again) == []


def _int8(**fields):
    from torchao.quantization.pt2e import HistogramObserver, PerChannelMinMaxObserver

    if "ch_axis" in fields:
        return QuantizationSpec(torch.int8, PerChannelMinMaxObserver.with_args(**fields),
                                quant_min=-127, quant_max=127,
                                qscheme=torch.per_channel_symmetric, **fields)
    return QuantizationSpec(torch.int8, HistogramObserver, quant_min=-128, quant_max=127,
                            qscheme=torch.per_tensor_affine)


class _CatOwnQParams(Quantizer):
    """Every cat input and its output quantized on their own (no sharing): XNNPACK's
    runtime refuses such a cat when it builds its graph (the issue's error)."""

    def annotate(self, model):
        for node in model.graph.nodes:
            if node.target == torch.ops.aten.cat.default:
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={arg: _int8() for arg in node.args[0]},
                    output_qspec=_int8(), _annotated=True)
        return model

    def validate(self, model):
        pass


class _TransposedWeightAxis0(Quantizer):
    """A transposed conv's weight per channel on axis 0: the partitioner leaves it out
    and to_executorch() finds no portable kernel for dequantize_per_channel."""

    def annotate(self, model):
        for node in model.graph.nodes:
            if node.target == torch.ops.aten.conv_transpose2d.input:
                x, weight = node.args[:2]
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={x: _int8(), weight: _int8(ch_axis=0)},
                    output_qspec=_int8(), _annotated=True)
        return model

    def validate(self, model):
        pass


class _Cat(nn.Module):
    def forward(self, x, y):
        return torch.cat([torch.relu(x), y * 4], 1)


def test_a_program_the_runtime_refuses_is_reported_with_its_reason():
    report = run_on_device(_Cat().eval(), (torch.randn(1, 2, 4), torch.randn(1, 3, 4)),
                           _CatOwnQParams())
    assert not report.loads and report.outputs is None
    assert "Failed to load method forward" in report.error
    assert "cat" in report.error  # the XNNPACK compiler's own line


@without_quantized_kernels
def test_a_program_that_does_not_lower_is_reported():
    module = nn.ConvTranspose2d(3, 4, 3).eval()
    report = run_on_device(module, (torch.randn(1, 3, 6, 6),), _TransposedWeightAxis0())
    assert not report.loads and report.pte is None
    assert report.error.startswith("to_executorch: ")
    assert "dequantize_per_channel" in report.error
    with pytest.raises(DeviceError, match="dequantize_per_channel"):
        export_program(module, (torch.randn(1, 3, 6, 6),), _TransposedWeightAxis0())


@without_quantized_kernels
def test_per_tensor_dynamic_does_not_lower_even_for_the_anchor():
    """Why the device matrix leaves out dynamic quantization with per-tensor weights:
    executorch's own quantizer's program fails to_executorch. When executorch lowers
    it, this fails: add the config to test_xnnpack_ruleset.CONFIGS."""
    report = device_report("anchor", "helper", "linear_stack", False, True)
    assert not report.loads and report.pte is None
    assert report.error.startswith("to_executorch: Missing out variants")
    assert "choose_qparams" in report.error


def test_garbage_is_not_a_program():
    run = load_and_run(b"not a program", (torch.randn(1),))
    assert run.outputs is None and run.error


def test_export_program_writes_a_pte_the_runtime_runs(tmp_path):
    module, inputs = models.helper("conv_add_cat")
    path = tmp_path / "model.pte"
    pte = export_program(module, inputs, quantizer_for("anchor", True, False), path=path)
    assert path.read_bytes() == pte
    assert load_and_run(path.read_bytes(), inputs).outputs is not None


def _report(**changes):
    base = dict(backend="xnnpack", loads=True, error=None, delegates=1, delegated_nodes=9,
                qdq_outside=[], outputs=(torch.zeros(2),), reference=(torch.zeros(2),),
                max_abs_diff=0.0)
    base.update(changes)
    return DeviceReport(**base)


def test_device_mismatches_names_each_shortfall():
    anchor = _report()
    assert device_mismatches(_report(), anchor) == []
    assert device_mismatches(_report(loads=False, error="boom", outputs=None,
                                     max_abs_diff=None), anchor)[0].endswith("boom")
    assert "the anchor's: 9 in 1" in device_mismatches(_report(delegated_nodes=8), anchor)[0]
    assert "dequantize_per_tensor" in device_mismatches(
        _report(qdq_outside=["dequantize_per_tensor"]), anchor)[0]
    assert "differ" in device_mismatches(_report(outputs=(torch.ones(2),)), anchor)[0]
    # q/dq outside is only a shortfall where the anchor leaves none
    assert device_mismatches(_report(qdq_outside=["x"]), _report(qdq_outside=["x"])) == []


def test_unknown_backend():
    with pytest.raises(ValueError, match="no device backend 'nope'; known: arm, xnnpack"):
        device_backend("nope")


def test_a_backend_that_does_not_run_here_is_held_to_its_payloads():
    lowered = dict(backend="arm", loads=False, outputs=None, max_abs_diff=None, runs=False,
                   pte=b"program", payloads=(b"tosa-a", b"tosa-b"))
    anchor = _report(**lowered)
    assert device_mismatches(_report(**lowered), anchor) == []
    assert "lowered (no runtime for its delegate here)" in anchor.format()
    assert device_mismatches(_report(**{**lowered, "payloads": (b"tosa-a", b"other")}),
                             anchor) == ["1 of 2 delegate payloads differ from the anchor's"]
    assert device_mismatches(_report(**{**lowered, "pte": None, "error": "boom"}),
                             anchor)[0] == "does not lower (the anchor's program does): boom"
