"""``qrules explain``: which rule annotates each node of a model, and why others stay
float. torch is imported only when the command runs."""

from __future__ import annotations

import argparse
import json

from qrules.cli.common import (
    UsageError, add_model_args, add_ruleset_arg, exported, load_model, parse_params,
    parse_shape, usage_errors,
)


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="show which rule annotates each node of a model, and why others "
                        "stay float",
        description="Per node of the exported model: the rule that annotated it (with its "
                    "file:line:col), or why it stays in float and, under it, each rule "
                    "that could have taken it with the first thing that failed (step, "
                    "link, predicate with the values it read, phase, scope, region, "
                    "when). A header gives the coverage of the whole graph. Exit status: "
                    "0, or 2 on a usage error.")
    add_ruleset_arg(parser, None)
    add_model_args(parser, None)
    parser.add_argument("--qat", action="store_true",
                        help="explain as prepare_qat_pt2e sees the graph (batch norms kept)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or json (schema in docs/cli.md)")
    parser.add_argument("--float-only", action="store_true",
                        help="only the nodes left in float (no spec)")
    parser.add_argument("--rule", metavar="NAME",
                        help="only the nodes rule NAME annotated or could have taken")
    parser.add_argument("--node", metavar="NAME",
                        help="only the node NAME (as the graph names it, e.g. relu_2)")
    parser.set_defaults(run=usage_errors(run))


def run(args: argparse.Namespace) -> int:
    import qrules

    ruleset = qrules.load(args.ruleset, **parse_params(args.param))
    model, inputs = load_model(args.model, parse_shape(args.input_shape))
    explanation = qrules.explain(exported(model, inputs), ruleset, qat=args.qat)
    nodes = explanation.select(float_only=args.float_only, rule=args.rule, node=args.node)
    if args.node is not None and not nodes and not any(
            n.node == args.node for n in explanation.nodes):
        raise UsageError(f"the exported graph has no call node {args.node!r}")
    if args.format == "json":
        print(json.dumps(explanation.as_dict(nodes), indent=2))
    else:
        print(explanation.format(nodes))
    return 0
