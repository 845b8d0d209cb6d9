"""`qrules demo`, `qrules explain` and `qrules diff`: the engine's commands (torch
imported lazily).

Model specs accepted by ``--model``: ``torchvision:NAME`` (built with weights=None),
``path/to/file.py:FACTORY`` (a function returning an nn.Module; the file is the
user's own code, run as they asked), or a saved ``.pt2`` program.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional


class ModelSpecError(ValueError):
    """A --model, --input-shape or --param the command cannot use."""


def _usage_errors(run):
    """Bad input (unknown ruleset or model, wrong parameter) is a usage error: exit 2
    with the message, never a traceback."""
    def wrapped(args):
        from qrules.cli import UsageError
        from qrules.diagnostics import QruleError

        try:
            return run(args)
        except (ModelSpecError, FileNotFoundError, QruleError) as err:
            raise UsageError(str(err)) from None
        except RuntimeError as err:
            from qrules.equivalence import SideFailed

            if isinstance(err, SideFailed):
                raise UsageError(str(err)) from None
            raise

    return wrapped


def _params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ModelSpecError(f"--param takes NAME=VALUE, got {pair!r}")
        lowered = value.lower()
        if lowered in ("true", "false"):
            out[key] = lowered == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
    return out


def _shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise ModelSpecError(f"--input-shape takes integers like 1,3,224,224, got {text!r}")


def load_model(spec: str, input_shape: Optional[tuple[int, ...]]):
    """(module or exported GraphModule, example inputs) for a --model spec."""
    import torch

    if spec.startswith("torchvision:"):
        import torchvision

        name = spec.split(":", 1)[1]
        if name not in torchvision.models.list_models():
            raise ModelSpecError(f"torchvision has no model {name!r}")
        model = torchvision.models.get_model(name, weights=None).eval()
        return model, (torch.randn(*(input_shape or (1, 3, 224, 224))),)
    if spec.endswith(".pt2"):
        if not Path(spec).is_file():
            raise ModelSpecError(f"no such program: {spec}")
        program = torch.export.load(spec)
        inputs = program.example_inputs[0] if program.example_inputs else None
        if inputs is None:
            if input_shape is None:
                raise ModelSpecError(f"{spec} stores no example inputs; pass --input-shape")
            inputs = (torch.randn(*input_shape),)
        return program.module(), tuple(inputs)
    path, sep, factory = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        raise ModelSpecError(f"--model takes torchvision:NAME, FILE.py:FACTORY or FILE.pt2, "
                             f"got {spec!r}")
    if not Path(path).is_file():
        raise ModelSpecError(f"no such file: {path}")
    if input_shape is None:
        raise ModelSpecError(f"{spec}: pass --input-shape for a model from a Python file")
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("qrules_user_model", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    make = getattr(module, factory, None)
    if not callable(make):
        raise ModelSpecError(f"{path} has no callable {factory!r}")
    return make().eval(), (torch.randn(*input_shape),)


def _exported(model, inputs):
    import torch

    if isinstance(model, torch.fx.GraphModule):
        return model
    from qrules.adapter.torchao import export_module

    return export_module(model, inputs)


def _add_model_args(parser: argparse.ArgumentParser, default_model: Optional[str]) -> None:
    parser.add_argument("--model", default=default_model, required=default_model is None,
                        help="torchvision:NAME, FILE.py:FACTORY or FILE.pt2"
                             + (f" (default: {default_model})" if default_model else ""))
    parser.add_argument("--input-shape", metavar="N,C,H,W",
                        help="example input shape (default for torchvision: 1,3,224,224)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a ruleset parameter, e.g. per_channel=true (repeatable)")


def add_explain(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="show which rule annotates each node of a model, and why others "
                        "stay float",
        description="Per node of the exported model: the rule that annotated it (with its "
                    "file:line:col), or why it stays in float; then the coverage.")
    parser.add_argument("--ruleset", required=True,
                        help="a built-in ruleset name or a .qrule file")
    _add_model_args(parser, None)
    parser.add_argument("--qat", action="store_true",
                        help="explain as prepare_qat_pt2e sees the graph (batch norms kept)")
    parser.set_defaults(run=_usage_errors(run_explain))


def run_explain(args: argparse.Namespace) -> int:
    import qrules

    ruleset = qrules.load(args.ruleset, **_params(args.param))
    model, inputs = load_model(args.model, _shape(args.input_shape))
    print(qrules.explain(_exported(model, inputs), ruleset, qat=args.qat).format())
    return 0


def add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="quantize a torchvision model with the xnnpack ruleset and report",
        description="Quantize a model (weights=None, seeded random calibration) with a "
                    "ruleset; print coverage, SQNR of quantized vs float output, and timings; "
                    "write the quantized program.")
    parser.add_argument("--ruleset", default="xnnpack",
                        help="a built-in ruleset name or a .qrule file (default: xnnpack)")
    _add_model_args(parser, "torchvision:resnet18")
    parser.add_argument("--calibration-batches", type=int, default=8, metavar="N",
                        help="random calibration batches (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--output", default="qrules-demo.pt2", metavar="FILE",
                        help="where to write the quantized program (default: qrules-demo.pt2)")
    parser.set_defaults(run=_usage_errors(run_demo))


def sqnr(reference, actual) -> float:
    import torch

    noise = (reference - actual).pow(2).mean()
    signal = reference.pow(2).mean()
    return float(10 * torch.log10(signal / noise.clamp_min(1e-20)))


def run_demo(args: argparse.Namespace) -> int:
    import torch

    import qrules

    torch.manual_seed(args.seed)
    timings = {}
    start = time.perf_counter()
    params = _params(args.param) or {"per_channel": True}
    ruleset = qrules.load(args.ruleset, **params)
    model, inputs = load_model(args.model, _shape(args.input_shape) or (1, 3, 96, 96))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    graph = _exported(model, inputs)
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
    print(f"coverage     {explanation.coverage:.1f}% of "
          f"{sum(n.reason != 'non-float output' for n in explanation.nodes)} float call nodes")
    floats = [n for n in explanation.nodes if n.rule is None and n.reason != "non-float output"]
    for node in floats[:10]:
        print(f"  float      {node.node}: {node.reason}")
    print(f"q/dq ops     {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}")
    print(f"SQNR         {sqnr(reference, actual):.2f} dB (quantized vs float output)")
    print("timings      " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"written      {args.output}")
    return 0


def add_diff(subparsers) -> None:
    parser = subparsers.add_parser(
        "diff", help="compare two rulesets, or a ruleset and a torchao quantizer, on a model",
        description="Run torchao's prepare with each side on the same exported model, "
                    "compare the annotations node by node, then calibrate both on the same "
                    "seeded inputs, convert, and compare op counts and outputs. A side is a "
                    "built-in ruleset name, a .qrule file, or a torchao quantizer: "
                    "torchao:xnnpack[per_channel,dynamic,qat], "
                    "torchao:x86_inductor[qat,dynamic,reduce_range], torchao:embedding. "
                    "Exit status: 0 equal, 1 different, 2 usage error.")
    parser.add_argument("a", metavar="A", help="the first side (the anchor, by convention)")
    parser.add_argument("b", metavar="B", help="the second side")
    _add_model_args(parser, None)
    parser.add_argument("--qat", action="store_true",
                        help="export in train mode and compare under prepare_qat_pt2e "
                             "(set a ruleset's own qat parameter with --param qat=true)")
    parser.add_argument("--no-numerics", dest="numerics", action="store_false",
                        help="compare annotations only: no calibration or convert")
    parser.add_argument("--strict", action="store_true",
                        help="export with torch.export's strict=True (torchao's "
                             "X86InductorQuantizer needs it for models that call one "
                             "module twice, such as resnet18)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the calibration batches (default: 0)")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="show at most N mismatches (default: 50; 0: all)")
    parser.set_defaults(run=_usage_errors(run_diff))


def _side(spec: str, params: dict):
    """A diff side: an anchor spec (torchao:… or executorch:…, a quantizer built from a
    fixed table) or a ruleset loaded with the --param values."""
    from qrules.equivalence import anchor, is_anchor_spec

    if is_anchor_spec(spec):
        try:
            return anchor(spec), False
        except ValueError as err:
            raise ModelSpecError(str(err)) from None
    import qrules

    return qrules.load(spec, **params), True


def run_diff(args: argparse.Namespace) -> int:
    import qrules

    params = _params(args.param)
    side_a, ruleset_a = _side(args.a, params)
    side_b, ruleset_b = _side(args.b, params)
    if params and not (ruleset_a or ruleset_b):
        raise ModelSpecError("--param sets ruleset parameters; both sides are torchao "
                             "quantizers (give their flags in brackets instead)")
    model, inputs = load_model(args.model, _shape(args.input_shape))
    report = qrules.diff(side_a, side_b, model, inputs, qat=args.qat, numerics=args.numerics,
                         seed=args.seed, model_label=args.model, strict=args.strict)
    for side, spec, is_ruleset in (("a", args.a, ruleset_a), ("b", args.b, ruleset_b)):
        label = getattr(report, f"{side}_label")
        if not is_ruleset:
            label = spec              # the anchor spec, rather than the class name
        elif spec.endswith(".qrule"):
            label = f"{label} from {spec}"
        setattr(report, f"{side}_label", label)
    print(report.format(limit=args.limit or None))
    return 0 if report.equal else 1
