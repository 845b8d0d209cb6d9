"""``qrules demo``: quantize a model with a ruleset and report coverage, SQNR and
timings. torch is imported only when the command runs."""

from __future__ import annotations

import argparse
import time

from qrules.cli.common import (
    add_model_args, add_ruleset_arg, bound_ruleset, checked_ruleset, exported, load_model,
    parse_params, parse_shape, usage_errors,
)

#: What demo sets unless --param does, for a ruleset that declares the parameter (a
#: ruleset without it would refuse it with QR204).
DEFAULT_PARAMS = {"per_channel": True}


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="quantize a torchvision model with the xnnpack ruleset and report",
        description="Quantize a model (weights=None, seeded random calibration) with a "
                    "ruleset; print coverage, SQNR of quantized vs float output, and timings; "
                    "write the quantized program.")
    add_ruleset_arg(parser, "xnnpack")
    add_model_args(parser, "torchvision:resnet18")
    parser.add_argument("--calibration-batches", type=int, default=8, metavar="N",
                        help="random calibration batches (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--output", default="qrules-demo.pt2", metavar="FILE",
                        help="where to write the quantized program (default: qrules-demo.pt2)")
    parser.add_argument("--pte", metavar="FILE",
                        help="also lower the quantized program for XNNPACK, check that "
                             "executorch's runtime loads and runs it, and write it here")
    parser.set_defaults(run=usage_errors(run))


def sqnr(reference, actual) -> float:
    import torch

    noise = (reference - actual).pow(2).mean()
    signal = reference.pow(2).mean()
    return float(10 * torch.log10(signal / noise.clamp_min(1e-20)))


def run(args: argparse.Namespace) -> int:
    import torch

    import qrules

    torch.manual_seed(args.seed)
    timings = {}
    start = time.perf_counter()
    checked = checked_ruleset(args.ruleset)
    params = {name: value for name, value in DEFAULT_PARAMS.items() if name in checked.params}
    params.update(parse_params(args.param))
    ruleset = bound_ruleset(checked, params)
    model, inputs = load_model(args.model, parse_shape(args.input_shape) or (1, 3, 96, 96))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    graph = exported(model, inputs)
    timings["export"] = time.perf_counter() - start
    explanation = qrules.explain(graph, ruleset)

    start = time.perf_counter()
    prepared = qrules.prepare(graph, inputs, ruleset)
    timings["annotate+prepare"] = time.perf_counter() - start
    batches = [tuple(torch.randn_like(x) for x in inputs)
               for _ in range(args.calibration_batches)]
    start = time.perf_counter()
    qrules.calibrate(prepared, batches)
    timings["calibrate"] = time.perf_counter() - start
    start = time.perf_counter()
    quantized = qrules.convert(prepared)
    timings["convert"] = time.perf_counter() - start

    with torch.no_grad():
        reference = (model if not isinstance(model, torch.fx.GraphModule) else graph)(*inputs)
        actual = quantized(*inputs)
    start = time.perf_counter()
    qrules.save_program(quantized, inputs, args.output)
    timings["save"] = time.perf_counter() - start

    counts = {}
    for node in quantized.graph.nodes:
        name = getattr(node.target, "__name__", "")
        if name.startswith(("quantize_per", "dequantize_per")):
            counts[name] = counts.get(name, 0) + 1
    print(f"model        {args.model} {tuple(inputs[0].shape)}")
    print(f"ruleset      {ruleset!r}")
    print(f"coverage     {explanation.coverage:.1f}% covered by a rule, "
          f"{explanation.quantized_coverage:.1f}% quantized, of "
          f"{sum(n.reason != 'non-float output' for n in explanation.nodes)} float call nodes")
    floats = [n for n in explanation.nodes if n.rule is None and n.reason != "non-float output"]
    for node in floats[:10]:
        print(f"  float      {node.node}: {node.reason}")
    print(f"q/dq ops     {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}")
    print(f"SQNR         {sqnr(reference, actual):.2f} dB (quantized vs float output)")
    print("timings      " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"written      {args.output}")
    if args.pte:
        print(demo_pte(quantized, inputs, args.pte))
    return 0


def demo_pte(quantized, inputs: tuple, path) -> str:
    """Lower the demo's quantized model for XNNPACK, load and run it, write ``path``."""
    from pathlib import Path

    from qrules.engine.device import DeviceError, run_on_device

    report = run_on_device(None, inputs, None, converted=quantized)
    if not report.loads:
        raise DeviceError(f"{report.backend}: {report.error}")
    Path(path).write_bytes(report.pte)
    return f"device       {report.format()}\nwritten      {path}"
