"""``qrules diff``: compare two rulesets, or a ruleset and a torchao quantizer, on a
model. torch is imported only when the command runs."""

from __future__ import annotations

import argparse

from qrules.cli.common import (
    ModelSpecError, add_model_args, load_model, parse_params, parse_shape, usage_errors,
)


def add(subparsers) -> None:
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
    add_model_args(parser, None)
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
    parser.set_defaults(run=usage_errors(run))


def _side(spec: str, params: dict):
    """A diff side: a torchao anchor spec (quantizer built from a fixed table) or a
    ruleset loaded with the --param values."""
    if spec.startswith("torchao:"):
        from qrules.engine.diff import anchor

        try:
            return anchor(spec), False
        except ValueError as err:
            raise ModelSpecError(str(err)) from None
    import qrules

    return qrules.load(spec, **params), True


def run(args: argparse.Namespace) -> int:
    import qrules

    params = parse_params(args.param)
    side_a, ruleset_a = _side(args.a, params)
    side_b, ruleset_b = _side(args.b, params)
    if params and not (ruleset_a or ruleset_b):
        raise ModelSpecError("--param sets ruleset parameters; both sides are torchao "
                             "quantizers (give their flags in brackets instead)")
    model, inputs = load_model(args.model, parse_shape(args.input_shape))
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
