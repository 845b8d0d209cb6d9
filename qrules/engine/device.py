"""The device harness: quantize, lower to a ``.pte``, load it in executorch's runtime,
run it, compare.

``run_on_device`` does it for one quantizer (a ruleset or a backend's own quantizer)
and returns a ``DeviceReport``; ``device_mismatches`` says how a ruleset's report falls
short of its anchor's; ``export_program`` is the user's path from a ruleset to a
program a device runs. A backend plugs in as a ``DeviceBackend`` (adapter/executorch.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

import torch

from qrules.adapter.executorch import DeviceBackend, device_backend, load_and_run, lower
from qrules.engine.pipeline import quantize
from qrules.engine.progress import stage

__all__ = ["DeviceReport", "DeviceError", "run_on_device", "device_mismatches",
           "export_program", "anchor_quantizer"]


class DeviceError(RuntimeError):
    """The program could not be lowered to a ``.pte``, or the runtime refused it."""


@dataclass
class DeviceReport:
    """One quantizer's program on one backend.

    ``loads``: the ``.pte`` was written, loaded and ran. ``error``: why not (the
    runtime's own log lines included). ``delegates`` / ``delegated_nodes``: delegate
    calls and the nodes inside them. ``qdq_outside``: q/dq ops the partitioner left out.
    ``outputs``: the runtime's outputs; ``reference``: the converted PyTorch model's;
    ``max_abs_diff``: the largest difference between the two (None when it did not run).
    ``payloads``: what the backend compiled each delegate to. ``runs``: the backend's
    delegate runs in this install's runtime (when not, as for Arm's TOSA, the program
    is lowered and written but not loaded: ``loads`` stays False with no ``error``).
    """

    backend: str
    loads: bool
    error: Optional[str]
    delegates: int
    delegated_nodes: int
    qdq_outside: list[str]
    outputs: Optional[tuple]
    reference: tuple
    max_abs_diff: Optional[float]
    pte: Optional[bytes] = field(default=None, repr=False)
    seconds: dict = field(default_factory=dict)
    payloads: tuple = field(default=(), repr=False)
    runs: bool = True

    def format(self) -> str:
        if self.loads:
            status = "loads and runs"
        elif self.error is None and not self.runs:
            status = "lowered (no runtime for its delegate here)"
        else:
            status = f"FAILS: {self.error}"
        diff = "" if self.max_abs_diff is None else \
            f", max |runtime - converted| {self.max_abs_diff:.3g}"
        return (f"{self.backend}: {status}; {self.delegates} delegate(s) holding "
                f"{self.delegated_nodes} nodes, {len(self.qdq_outside)} q/dq outside"
                f"{diff}")


def _outputs(value) -> tuple:
    if isinstance(value, torch.Tensor):
        return (value,)
    return tuple(torch.utils._pytree.tree_leaves(value))


def _max_abs_diff(outputs: tuple, reference: tuple) -> float:
    diffs = [float((out.float() - ref.reshape(out.shape).float()).abs().max())
             for out, ref in zip(outputs, reference) if out.numel()]
    return max(diffs, default=0.0)


def anchor_quantizer(backend: Union[str, DeviceBackend] = "xnnpack", **params):
    """The backend's own quantizer configured with the ruleset's parameters, e.g.
    ``anchor_quantizer("xnnpack", per_channel=True)``."""
    return device_backend(backend).anchor(**params)


def run_on_device(model: torch.nn.Module, example_inputs: tuple, quantizer, *,
                  backend: Union[str, DeviceBackend] = "xnnpack",
                  calibration: Optional[Iterable] = None,
                  converted: Optional[torch.fx.GraphModule] = None) -> DeviceReport:
    """Quantize ``model`` with ``quantizer`` (a ruleset, a composition or any torchao
    Quantizer), lower it for ``backend``, load the ``.pte`` in executorch's runtime, run
    it on ``example_inputs`` and compare with the converted PyTorch model.

    Pass ``converted`` to skip quantizing (a model ``qrules.quantize`` already
    returned). Errors of quantization raise; a program that does not lower, load or
    run is reported (``loads=False`` with the error text)."""
    backend = device_backend(backend)
    inputs = tuple(example_inputs)
    seconds = {}
    start = time.perf_counter()
    if converted is None:
        converted = quantize(model, inputs, quantizer, calibration=calibration)
        seconds["quantize"] = time.perf_counter() - start
        start = time.perf_counter()
    with torch.no_grad():
        reference = _outputs(converted(*inputs))
    with stage(f"lowering for {backend.name}"):
        program = lower(converted, inputs, backend)
    seconds["lower"] = time.perf_counter() - start
    report = DeviceReport(backend.name, False, program.error, program.delegates,
                          program.delegated_nodes, program.qdq_outside, None, reference,
                          None, program.pte, seconds, program.payloads, backend.runs)
    if program.pte is None or not backend.runs:
        return report
    start = time.perf_counter()
    with stage("running in executorch's runtime"):
        run = load_and_run(program.pte, inputs)
    seconds["run"] = time.perf_counter() - start
    if run.outputs is None:
        report.error = run.error
        return report
    report.loads, report.outputs = True, run.outputs
    report.max_abs_diff = _max_abs_diff(run.outputs, reference)
    return report


def device_mismatches(ours: DeviceReport, anchor: DeviceReport) -> list[str]:
    """How ``ours`` falls short of ``anchor``'s program (empty when it does not): it
    must load when the anchor's does, delegate as many nodes, leave no q/dq outside a
    delegate where the anchor leaves none, and give bit-identical runtime outputs; on a
    backend that does not run here, lower when the anchor's does and compile to the
    same delegate payloads."""
    problems = []
    if anchor.loads and not ours.loads:
        problems.append(f"does not load (the anchor's program does): {ours.error}")
    if (ours.delegates, ours.delegated_nodes) != (anchor.delegates, anchor.delegated_nodes):
        problems.append(f"{ours.delegated_nodes} nodes in {ours.delegates} delegate(s); "
                        f"the anchor's: {anchor.delegated_nodes} in {anchor.delegates}")
    if not ours.runs and anchor.pte is not None and ours.pte is None:
        problems.append(f"does not lower (the anchor's program does): {ours.error}")
    if not ours.runs and len(ours.payloads) == len(anchor.payloads) and \
            ours.payloads != anchor.payloads:
        differing = sum(a != b for a, b in zip(ours.payloads, anchor.payloads))
        problems.append(f"{differing} of {len(ours.payloads)} delegate payloads differ "
                        "from the anchor's")
    if ours.qdq_outside and not anchor.qdq_outside:
        problems.append(f"q/dq ops left outside delegates: {', '.join(ours.qdq_outside)}")
    if ours.loads and anchor.loads:
        if len(ours.outputs) != len(anchor.outputs) or not all(
                torch.equal(a, b) for a, b in zip(ours.outputs, anchor.outputs)):
            problems.append("runtime outputs differ from the anchor's program's "
                            f"(max |ours - converted| {ours.max_abs_diff:.3g}, "
                            f"anchor's {anchor.max_abs_diff:.3g})")
    return problems


def export_program(model: torch.nn.Module, example_inputs: tuple, ruleset, *,
                   backend: Union[str, DeviceBackend] = "xnnpack",
                   calibration: Optional[Iterable] = None, path=None,
                   verify: bool = True) -> bytes:
    """Quantize with ``ruleset``, lower for ``backend`` and return the ``.pte`` bytes
    (also written to ``path`` when given). ``verify``: load and run the program once in
    executorch's runtime first (on a backend whose delegate runs here). Raises
    ``DeviceError`` when the program does not lower, load or run."""
    backend = device_backend(backend)
    inputs = tuple(example_inputs)
    converted = quantize(model, inputs, ruleset, calibration=calibration)
    with stage(f"lowering for {backend.name}"):
        program = lower(converted, inputs, backend)
    if program.pte is None:
        raise DeviceError(f"{backend.name}: {program.error}")
    if verify and backend.runs:
        with stage("running in executorch's runtime"):
            run = load_and_run(program.pte, inputs)
        if run.outputs is None:
            raise DeviceError(f"{backend.name}: the runtime refused the program: {run.error}")
    if path is not None:
        Path(path).write_bytes(program.pte)
    return program.pte
