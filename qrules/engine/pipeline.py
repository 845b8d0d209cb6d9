"""The shared pipeline: export, annotate+validate, prepare, calibrate, convert(fold).

``quantize`` does all of it; ``prepare`` and ``convert`` are for users who drive
calibration or QAT training themselves.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch

from qrules.adapter import shared_passes
from qrules.adapter.torchao import (
    convert_pt2e, export_module, forget_prepared_models, model_is_exported, prepare_pt2e,
    prepare_qat_pt2e, quiet_torchao,
)
from qrules.engine.compose import as_quantizer
from qrules.engine.progress import bar, showing, shown, stage


def _as_graph(model: torch.nn.Module, example_inputs: tuple) -> torch.fx.GraphModule:
    if isinstance(model, torch.fx.GraphModule) and model_is_exported(model):
        return model
    with stage("exporting"):
        return export_module(model, tuple(example_inputs))


def _check_engine(engine: str) -> None:
    if engine not in shared_passes.ENGINES:
        raise ValueError(f"engine must be one of {', '.join(shared_passes.ENGINES)}, "
                         f"not {engine!r}")


def prepare(model: torch.nn.Module, example_inputs: tuple, ruleset, *, qat: bool = False,
            engine: str = "qrules"):
    """Export (unless already exported), annotate with the ruleset(s), insert observers
    (or fake-quantizers with ``qat=True``). Returns the prepared GraphModule.

    ``engine="qrules"`` runs qrules' passes, ``"torchao"`` torchao's ``prepare_pt2e`` /
    ``prepare_qat_pt2e`` (the reference: both make the same graph)."""
    _check_engine(engine)
    graph = _as_graph(model, example_inputs)
    quantizer = as_quantizer(ruleset)
    with quiet_torchao(), stage("annotating and preparing"):
        if engine == "qrules":
            return shared_passes.prepare(graph, quantizer, qat=qat)
        return (prepare_qat_pt2e if qat else prepare_pt2e)(graph, quantizer)


def convert(prepared: torch.fx.GraphModule, *, fold_quantize: bool = True,
            engine: str = "qrules"):
    """Replace observers by quantize/dequantize ops, folding quantized weights
    (``engine`` as for ``prepare``)."""
    _check_engine(engine)
    with quiet_torchao(), stage("converting"):
        if engine == "qrules":
            return shared_passes.convert(prepared, fold_quantize=fold_quantize)
        return convert_pt2e(prepared, fold_quantize=fold_quantize)


def _batches(calibration: Optional[Iterable], example_inputs: tuple) -> list:
    if calibration is None:
        return [tuple(example_inputs)]
    out = []
    for batch in calibration:
        out.append(tuple(batch) if isinstance(batch, (list, tuple)) else (batch,))
    return out


def calibrate(prepared: torch.fx.GraphModule, batches: list, progress: Optional[bool] = None):
    show = shown(progress)
    with torch.no_grad():
        for index, batch in enumerate(batches, 1):
            prepared(*batch)
            if show:
                bar("calibrating", index, len(batches))


def quantize(model: torch.nn.Module, example_inputs: tuple, ruleset, *,
             calibration: Optional[Iterable] = None, qat: bool = False,
             progress: Optional[bool] = None, engine: str = "qrules") -> torch.fx.GraphModule:
    """Export, annotate, validate, prepare, calibrate, convert with weight folding.

    ``calibration``: an iterable of input batches (tuples, or single tensors);
    default: the example inputs once. ``ruleset``: a loaded ruleset, a quantizer, or
    ``qrules.compose(...)`` of several. ``engine``: as for ``prepare``.
    """
    with showing(shown(progress)):  # ``progress`` decides for every stage
        prepared = prepare(model, example_inputs, ruleset, qat=qat, engine=engine)
        calibrate(prepared, _batches(calibration, example_inputs))
        converted = convert(prepared, engine=engine)
    del prepared
    forget_prepared_models()  # else torchao's cache keeps the prepared copy alive
    return converted


def save_program(module: torch.fx.GraphModule, example_inputs: tuple, path) -> None:
    """Save a (quantized) module as a torch.export program (``.pt2``)."""
    with stage("saving"):
        torch.export.save(torch.export.export(module, tuple(example_inputs)), path)


def load_program(path) -> torch.fx.GraphModule:
    return torch.export.load(path).module()


