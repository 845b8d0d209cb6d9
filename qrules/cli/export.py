"""``qrules export``: a ruleset's quantized model as a ``.pte`` program executorch's
runtime loads (torch and executorch imported lazily).

``add(subparsers)`` adds the ``export`` command with the arguments
  ``--ruleset NAME|FILE`` (default: xnnpack), ``--param NAME=VALUE`` (repeatable),
  ``--model SPEC`` (default: torchvision:resnet18), ``--input-shape N,C,H,W``,
  ``-o/--output FILE.pte`` (default: model.pte), ``--calibration N`` (random batches,
  default 8; seeded, so the program is reproducible);
``run(args)`` runs it (exit 0; 1 when the program does not lower, load or run,
  with the runtime's reason; 2 for a usage error).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from qrules.cli.common import (
    add_model_args, add_ruleset_arg, load_model, parse_params, parse_shape, usage_errors,
)

DEFAULT_CALIBRATION_BATCHES = 8


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="quantize a model with a ruleset and write the program executorch "
                       "runs (.pte)",
        description="Quantize a model with a ruleset (seeded random calibration), lower it "
                    "with the XNNPACK partitioner, check that executorch's runtime loads "
                    "and runs it, and write the .pte.")
    add_ruleset_arg(parser, "xnnpack")
    add_model_args(parser, "torchvision:resnet18")
    parser.add_argument("-o", "--output", default="model.pte", metavar="FILE",
                        help="where to write the program (default: model.pte)")
    parser.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION_BATCHES,
                        metavar="N", help="random calibration batches (default: "
                                          f"{DEFAULT_CALIBRATION_BATCHES})")
    parser.set_defaults(run=usage_errors(run))


def run(args: argparse.Namespace) -> int:
    from qrules.engine.device import DeviceError

    params = parse_params(args.param)
    model, inputs = load_model(args.model, parse_shape(args.input_shape))
    try:
        print(export(args.ruleset, params, model, inputs, args.output, args.calibration))
    except DeviceError as err:
        print(f"qrules export: {err}", file=sys.stderr)
        return 1
    return 0


def export(ruleset: str, params: dict, model, inputs: tuple, output,
           calibration_batches: int = DEFAULT_CALIBRATION_BATCHES,
           seed: Optional[int] = 0) -> str:
    """Quantize ``model`` with the named ruleset, lower, verify and write ``output``;
    the summary line. Raises ``qrules.engine.device.DeviceError`` when the program does
    not lower, load or run."""
    import torch

    import qrules
    from qrules.engine.device import export_program

    if seed is not None:
        torch.manual_seed(seed)
    loaded = qrules.load(ruleset, **params)
    batches = [tuple(torch.randn_like(x) for x in inputs) for _ in range(calibration_batches)]
    pte = export_program(model, inputs, loaded, calibration=batches or None, path=output)
    return f"written      {output} ({len(pte)} bytes; loads and runs in executorch's runtime)"
