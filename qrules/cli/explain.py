"""``qrules explain``: which rule annotates each node of a model, and why others stay
float. torch is imported only when the command runs."""

from __future__ import annotations

import argparse

from qrules.cli.common import (
    add_model_args, add_ruleset_arg, exported, load_model, parse_params, parse_shape, usage_errors,
)


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="show which rule annotates each node of a model, and why others "
                        "stay float",
        description="Per node of the exported model: the rule that annotated it (with its "
                    "file:line:col), or why it stays in float; then the coverage.")
    add_ruleset_arg(parser, None)
    add_model_args(parser, None)
    parser.add_argument("--qat", action="store_true",
                        help="explain as prepare_qat_pt2e sees the graph (batch norms kept)")
    parser.set_defaults(run=usage_errors(run))


def run(args: argparse.Namespace) -> int:
    import qrules

    ruleset = qrules.load(args.ruleset, **parse_params(args.param))
    model, inputs = load_model(args.model, parse_shape(args.input_shape))
    print(qrules.explain(exported(model, inputs), ruleset, qat=args.qat).format())
    return 0
