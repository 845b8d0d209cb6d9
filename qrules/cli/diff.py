"""``qrules diff``: compare two rulesets, or a ruleset and a torchao quantizer, on a
model. torch is imported only when the command runs."""

from __future__ import annotations

import argparse

from qrules.cli.common import (
    ModelSpecError, add_model_args, bound_ruleset, checked_ruleset, load_model, parse_params,
    parse_shape, usage_errors,
)


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "diff", help="compare two rulesets, or a ruleset and a torchao quantizer, on a model",
        description="Run torchao's prepare with each side on the same exported model, "
                    "compare the annotations node by node, then calibrate both on the same "
                    "seeded inputs, convert, and compare op counts and outputs. A side is a "
                    "built-in ruleset name, a .qrule file, or a hand-written quantizer: "
                    "executorch:xnnpack[per_channel,dynamic,qat], "
                    "executorch:arm[per_channel=…,qat,dynamic,act_bits=16,weight_bits=4], "
                    "executorch:cortex_m, executorch:qnn[DTYPE,per_channel,qat], "
                    "torchao:xnnpack[per_channel,dynamic,qat], "
                    "torchao:x86_inductor[qat,dynamic,reduce_range], torchao:embedding. "
                    "Exit status: 0 equal, 1 different, 2 usage error.")
    parser.add_argument("a", metavar="A", help="the first side (the anchor, by convention)")
    parser.add_argument("b", metavar="B", help="the second side")
    add_model_args(parser, None)
    for side in ("a", "b"):
        parser.add_argument(f"--param-{side}", action="append", default=[],
                            metavar="NAME=VALUE",
                            help=f"a parameter of ruleset {side.upper()} only (repeatable; "
                                 "plain --param sets it on each ruleset side that declares it)")
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


def _side(spec: str):
    """A diff side: an anchor spec (torchao:… or executorch:…, a quantizer built from
    a fixed table), or a ruleset checked but not yet bound. Returns (quantizer, None)
    or (None, checked ruleset)."""
    from qrules.engine.diff import anchor, is_anchor_spec

    if is_anchor_spec(spec):
        try:
            return anchor(spec), None
        except ValueError as err:
            raise ModelSpecError(str(err)) from None
    return None, checked_ruleset(spec)


def _bound_side(side: tuple, shared: dict, own: dict, flag: str, label: str):
    """The side to compare: the anchor quantizer, or the ruleset bound with the plain
    --param values it declares and then its own --param-a/--param-b values (which win)."""
    quantizer, checked = side
    if checked is None:
        if own:
            raise ModelSpecError(f"{flag} sets ruleset parameters; {label} is a hand-written "
                                 "quantizer (give its flags in brackets instead)")
        return quantizer
    return bound_ruleset(checked, {**{k: v for k, v in shared.items() if k in checked.params},
                                   **own})


def run(args: argparse.Namespace) -> int:
    import qrules

    shared = parse_params(args.param)
    own_a, own_b = parse_params(args.param_a, "--param-a"), parse_params(args.param_b,
                                                                          "--param-b")
    sides = _side(args.a), _side(args.b)
    rulesets = [checked for _, checked in sides if checked is not None]
    if shared and not rulesets:
        raise ModelSpecError("--param sets ruleset parameters; both sides are torchao "
                             "quantizers (give their flags in brackets instead)")
    for name in shared:  # each goes to the sides that declare it; none is a typo
        if not any(name in checked.params for checked in rulesets):
            which = "; ".join(f"ruleset `{c.name}` has no parameter `{name}`" for c in rulesets)
            raise ModelSpecError(f"--param {name}: no ruleset side declares it ({which})")
    side_a = _bound_side(sides[0], shared, own_a, "--param-a", f"A ({args.a})")
    side_b = _bound_side(sides[1], shared, own_b, "--param-b", f"B ({args.b})")
    ruleset_a, ruleset_b = (checked is not None for _, checked in sides)
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
