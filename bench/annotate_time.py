"""Annotate time of a qrules ruleset vs its anchor quantizer, on the same graphs.

    python bench/annotate_time.py [--rulesets xnnpack,xnnpack_torchao,x86_inductor,arm,cortex_m,qnn]
                                  [--models resnet18,mobilenet_v2] [--repeat 3] [--json OUT]

Each torchvision model (weights=None) is exported once per ruleset (strictly for
x86_inductor, whose anchor needs it); every timing annotates a fresh deep copy of that
graph, after the same batch-norm folding prepare_pt2e does. Reported: median seconds
per annotate (transform_for_annotation + annotate) and the ratio qrules / anchor,
measured in the same run. Targets (issue 4): <= 1.0x XNNPACKQuantizer (per_channel),
<= 0.3x X86InductorQuantizer (default config). `xnnpack` is timed against executorch's
XNNPACKQuantizer (whose static annotate re-traces four QAT conv-bn patterns on every
call), `xnnpack_torchao` (flavor=torchao) against torchao's testing copy, `arm` against
executorch's TOSAQuantizer (TOSA-1.0+INT, per channel) and `cortex_m` against its
CortexMQuantizer; both export with ``.module(check_guards=False)``, as the equivalence
suite does, and a ruleset not written yet is skipped with a message.
`qnn` times executorch's QnnQuantizer (8a8w, per channel; issue 11).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torchvision  # noqa: E402

import qrules  # noqa: E402
from qrules.adapter.torchao import export_module, fold_batch_norms  # noqa: E402
from qrules.engine.diff import anchor  # noqa: E402
from qrules.resources import builtin_ruleset_names  # noqa: E402


def anchor_xnnpack():
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True))


def anchor_executorch_xnnpack():
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def anchor_x86_inductor():
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())


def anchor_qnn():
    from qrules.engine.diff import anchor

    return anchor("executorch:qnn[8a8w,per_channel]")


# ruleset -> (its qrules quantizer factory, anchor factory, anchor name, strict export)
# (None: export with check_guards=False, for Arm's preprocessing)
BENCHES = {
    "xnnpack": (lambda: qrules.load("xnnpack", per_channel=True).quantizer(),
                anchor_executorch_xnnpack, "executorch XNNPACKQuantizer", False),
    "xnnpack_torchao": (
        lambda: qrules.load("xnnpack", per_channel=True, flavor="torchao").quantizer(),
        anchor_xnnpack, "torchao XNNPACKQuantizer", False),
    "x86_inductor": (lambda: qrules.load("x86_inductor").quantizer(), anchor_x86_inductor,
                     "X86InductorQuantizer", True),
    "arm": (lambda: qrules.load("arm").quantizer(), lambda: anchor("executorch:arm"),
            "executorch TOSAQuantizer", None),
    "cortex_m": (lambda: qrules.load("cortex_m").quantizer(),
                 lambda: anchor("executorch:cortex_m"), "executorch CortexMQuantizer", None),
    "qnn": (lambda: qrules.load("qnn", dtype="8a8w", per_channel=True).quantizer(),
            anchor_qnn, "executorch QnnQuantizer", False),
}


def export_graph(model, inputs, strict):
    if strict is None:
        return torch.export.export(model, inputs).module(check_guards=False)
    return export_module(model, inputs, strict=strict)


def time_annotate(make_quantizer, graph, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        work = copy.deepcopy(graph)
        quantizer = make_quantizer()
        start = time.perf_counter()
        work = quantizer.transform_for_annotation(work)
        quantizer.annotate(work)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rulesets", default="xnnpack,xnnpack_torchao,x86_inductor,arm,"
                        "cortex_m")
    parser.add_argument("--models", default="resnet18,mobilenet_v2,mobilenet_v3_large,"
                        "efficientnet_b0,convnext_tiny,vit_b_16")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    rows = []
    for ruleset in args.rulesets.split(","):
        ours_factory, anchor_factory, anchor_name, strict = BENCHES[ruleset]
        if ruleset.partition("_torchao")[0] not in builtin_ruleset_names():
            print(f"{ruleset:<15} skipped: no rulesets/{ruleset}.qrule yet", flush=True)
            continue
        ruleset_quantizer = ours_factory()   # load and compile once, as a user would
        for name in args.models.split(","):
            torch.manual_seed(0)
            model = torchvision.models.get_model(name, weights=None).eval()
            size = 224 if name.startswith("vit") else 96
            graph = fold_batch_norms(export_graph(model, (torch.randn(1, 3, size, size),),
                                                  strict))
            theirs = time_annotate(anchor_factory, graph, args.repeat)
            nodes = sum(1 for n in graph.graph.nodes if n.op == "call_function")
            ours = time_annotate(lambda: ruleset_quantizer, graph, args.repeat)
            rows.append({"ruleset": ruleset, "model": name, "call_nodes": nodes,
                         "qrules_s": round(ours, 4), "anchor": anchor_name,
                         "anchor_s": round(theirs, 4), "ratio": round(ours / theirs, 3)})
            print(f"{ruleset:<15} {name:<20} {nodes:>5} nodes  qrules {ours:7.3f}s  "
                  f"{anchor_name} {theirs:7.3f}s  ratio {ours / theirs:5.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": f"{os.cpu_count()} cores", "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
