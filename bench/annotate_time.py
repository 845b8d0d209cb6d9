"""Annotate time of a qrules ruleset vs its anchor quantizer, on the same graphs.

    python bench/annotate_time.py [--rulesets xnnpack,xnnpack_torchao,x86_inductor,arm,...]
                                  [--models resnet18,mobilenet_v2] [--runs 15]
                                  [--scaling 1000,10000,100000] [--json OUT]
                                  [--same-process]

Each torchvision model (weights=None) is exported once per ruleset (strictly for
x86_inductor, whose anchor needs it) and batch norms are folded as prepare_pt2e does.
Every run deep-copies that one export twice, one copy per side, and times both sides in
the same run, alternating which side goes first, so machine load falls on both alike.
Two timed regions per side, reported separately:

* ``annotate``: ``quantizer.annotate(copy)`` alone, after the side's own
  ``transform_for_annotation`` (untimed). This is the issue 13 target: <= 1.0x
  torchao's XNNPACKQuantizer, <= 0.5x X86InductorQuantizer.
* ``transform``: ``quantizer.transform_for_annotation(copy)`` alone. torchao's and
  executorch's XNNPACKQuantizer call ``_convert_scalars_to_attrs``, which recompiles
  the GraphModule every time; qrules' `scalars_to_attrs` transform recompiles only when
  it changed the graph. Keeping the two regions apart stops that recompile from hiding
  the annotate cost (the old bench timed transform + annotate together).

Times are the process's CPU time (``time.process_time``), not wall time: on a loaded
machine the scheduler preempts the process for 10-30 ms at a time, and it did so mostly
in the region right after the deep copy and ``gc.collect()`` (qrules' annotate, since
its transform is nearly free; the anchors' recompiling transform absorbed it), which
made wall-time medians of milliseconds-long regions measure the scheduler.

Quantizers are built outside the timed regions (qrules' ruleset is loaded and compiled
once, as a user would; the anchor is constructed per run, which costs it nothing timed).
Medians of ``--runs`` (default 15). `xnnpack` is timed against executorch's
XNNPACKQuantizer (whose static annotate re-traces four QAT conv-bn patterns on every
call), `xnnpack_torchao` (flavor=torchao) against torchao's testing copy, `arm` against
executorch's TOSAQuantizer (TOSA-1.0+INT, per channel), `cortex_m` against its
CortexMQuantizer (both exported with ``.module(check_guards=False)``, as the equivalence
suite does) and `qnn` against executorch's QnnQuantizer (8a8w, per channel); a ruleset
not written yet is skipped with a message.

Each ruleset, and the scaling runs, are measured in a fresh interpreter of their own
(``--same-process`` runs them all in this one). What one comparison leaves alive would
otherwise tax every later one: executorch's XNNPACKQuantizer leaks ~12k objects per
annotate (its pattern exports), ~1M over the default zoo, and the full collection
before each timed region then walks that heap and leaves both sides of the next
ruleset's comparison cold, in proportion to how many runs came before
(docs/benchmarks.md, "annotate() in a process of its own per ruleset").

``--scaling`` times qrules' xnnpack annotate on generated linear/relu/conv chains of
about N call_function nodes (one small export, its body replicated with fx node copies,
so a 100k-node graph takes seconds to build), reporting microseconds per node; target
<= 20 us per node at 100k, linear from 1k. torchao's XNNPACKQuantizer on the same
graphs is reported beside it.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torchvision  # noqa: E402

from bench._common import write_json  # noqa: E402
import qrules  # noqa: E402
from qrules.adapter.torchao import export_module, fold_batch_norms  # noqa: E402
from qrules.engine.diff import anchor  # noqa: E402
from qrules.resources import builtin_ruleset_names  # noqa: E402


# The anchors come from the diff's fixed table (one place builds each hand-written
# quantizer); each call builds a fresh one, as the timed runs need.
def anchor_xnnpack():
    return anchor("torchao:xnnpack[per_channel]")


# ruleset -> (its qrules quantizer factory, anchor factory, anchor name, strict export)
# (strict None: a non-strict export with check_guards=False, for Arm's preprocessing)
BENCHES = {
    "xnnpack": (lambda: qrules.load("xnnpack", per_channel=True).quantizer(),
                lambda: anchor("executorch:xnnpack[per_channel]"),
                "executorch XNNPACKQuantizer", False),
    "xnnpack_torchao": (
        lambda: qrules.load("xnnpack", per_channel=True, flavor="torchao").quantizer(),
        anchor_xnnpack, "torchao XNNPACKQuantizer", False),
    "x86_inductor": (lambda: qrules.load("x86_inductor").quantizer(),
                     lambda: anchor("torchao:x86_inductor"), "X86InductorQuantizer", True),
    "arm": (lambda: qrules.load("arm").quantizer(), lambda: anchor("executorch:arm"),
            "executorch TOSAQuantizer", None),
    "cortex_m": (lambda: qrules.load("cortex_m").quantizer(),
                 lambda: anchor("executorch:cortex_m"), "executorch CortexMQuantizer", None),
    "qnn": (lambda: qrules.load("qnn", dtype="8a8w", per_channel=True).quantizer(),
            lambda: anchor("executorch:qnn[8a8w,per_channel]"), "executorch QnnQuantizer",
            False),
}


def export_graph(model, inputs, strict):
    if strict is None:
        return torch.export.export(model, inputs).module(check_guards=False)
    return export_module(model, inputs, strict=strict)


def time_once(quantizer, graph) -> tuple[float, float]:
    """(transform seconds, annotate seconds) of one side on a fresh copy of `graph`."""
    work = copy.deepcopy(graph)
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.process_time()
        work = quantizer.transform_for_annotation(work)
        middle = time.process_time()
        quantizer.annotate(work)
        end = time.process_time()
    return middle - start, end - middle


def alternated(ours, make_anchor, graph, runs: int) -> dict:
    """Medians of both sides' regions, the side that goes first alternating per run."""
    times = {"qrules": ([], []), "anchor": ([], [])}
    for run in range(runs):
        order = ("qrules", "anchor") if run % 2 == 0 else ("anchor", "qrules")
        for side in order:
            quantizer = ours if side == "qrules" else make_anchor()
            transform, annotate = time_once(quantizer, graph)
            times[side][0].append(transform)
            times[side][1].append(annotate)
    return {f"{side}_{region}_s": statistics.median(values[index])
            for side, values in times.items()
            for index, region in enumerate(("transform", "annotate"))}


class _Block(torch.nn.Module):
    """conv -> relu -> flatten -> linear -> relu -> reshape: one link of the chain."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.linear = torch.nn.Linear(16, 16)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return torch.relu(self.linear(y.reshape(1, 4, 16))).reshape(1, 4, 4, 4) + x


def chain_graph(nodes: int) -> torch.fx.GraphModule:
    """A graph of about `nodes` call_function nodes: one exported block, its body
    copied (with node meta) after itself until the count is reached."""
    torch.manual_seed(0)
    model = export_module(_Block().eval(), (torch.randn(1, 4, 4, 4),))
    graph = model.graph
    body = [n for n in graph.nodes if n.op not in ("placeholder", "output")]
    output = next(n for n in graph.nodes if n.op == "output")
    block_input = next(n for n in graph.nodes if n.op == "placeholder")
    last = output.args[0][0] if isinstance(output.args[0], (tuple, list)) else output.args[0]
    per_block = sum(1 for n in body if n.op == "call_function")
    with graph.inserting_before(output):
        for _ in range(max(0, nodes // per_block - 1)):
            mapping = {block_input: last}
            for node in body:
                if node.op == "get_attr":
                    mapping[node] = node   # weights are shared; their uses are not
                    continue
                mapping[node] = graph.node_copy(node, lambda n: mapping[n])
            last = mapping[body_output(body, output)]
    output.args = ((last,),) if isinstance(output.args[0], (tuple, list)) else (last,)
    graph.eliminate_dead_code()
    model.recompile()
    return model


def body_output(body, output):
    arg = output.args[0]
    return arg[0] if isinstance(arg, (tuple, list)) else arg


def scaling(sizes, runs: int) -> list[dict]:
    ours = BENCHES["xnnpack_torchao"][0]()
    rows = []
    for size in sizes:
        graph = chain_graph(size)
        nodes = sum(1 for n in graph.graph.nodes if n.op == "call_function")
        result = alternated(ours, anchor_xnnpack, graph, max(3, runs if size <= 10_000 else 3))
        row = {"call_nodes": nodes, **{k: round(v, 4) for k, v in result.items()},
               "qrules_us_per_node": round(result["qrules_annotate_s"] / nodes * 1e6, 2),
               "anchor_us_per_node": round(result["anchor_annotate_s"] / nodes * 1e6, 2)}
        rows.append(row)
        print(f"scaling  {nodes:>7} nodes  qrules annotate {row['qrules_annotate_s']:8.3f}s "
              f"({row['qrules_us_per_node']:6.2f} us/node)  torchao XNNPACKQuantizer "
              f"{row['anchor_annotate_s']:8.3f}s ({row['anchor_us_per_node']:6.2f} us/node)",
              flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rulesets", default="xnnpack,xnnpack_torchao,x86_inductor")
    parser.add_argument("--models", default="resnet18,mobilenet_v2,mobilenet_v3_large,"
                        "efficientnet_b0,convnext_tiny,vit_b_16")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--scaling", default="1000,10000,100000",
                        help="node counts of the generated chains ('' for none)")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--same-process", action="store_true",
                        help="measure every ruleset and the scaling in this process "
                             "(by default each in a fresh one)")
    args = parser.parse_args(argv)
    unknown = sorted(set(filter(None, args.rulesets.split(","))) - set(BENCHES))
    if unknown:
        parser.error(f"no bench for {', '.join(unknown)} (one of {', '.join(BENCHES)})")
    if not args.same_process:
        rows, scaled = isolated(args)
    else:
        sizes = sizes_of(args)
        rows, scaled = comparisons(args), scaling(sizes, args.runs) if sizes else []
    if args.json:
        write_json(args.json, "annotate_time", vars(args), {"zoo": rows, "scaling": scaled})
    return 0


def sizes_of(args) -> list[int]:
    return [int(s) for s in args.scaling.split(",") if s]


def isolated(args) -> tuple[list, list]:
    """Each ruleset's comparisons, then the scaling runs, each by this script in a
    fresh interpreter (``--same-process``); their lines print as they come."""
    jobs = [["--rulesets", ruleset, "--scaling", ""]
            for ruleset in filter(None, args.rulesets.split(","))]
    if sizes_of(args):
        jobs.append(["--rulesets", "", "--scaling", args.scaling])
    rows, scaled = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index, job in enumerate(jobs):
            out = os.path.join(scratch, f"{index}.json")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--same-process",
                            "--models", args.models, "--runs", str(args.runs),
                            "--json", out, *job], check=True)
            with open(out, encoding="utf-8") as handle:
                results = json.load(handle)["results"]
            rows += results["zoo"]
            scaled += results["scaling"]
    return rows, scaled


def comparisons(args) -> list[dict]:
    """Each ruleset against its anchor on each model, in this process."""
    rows = []
    for ruleset in filter(None, args.rulesets.split(",")):
        ours_factory, anchor_factory, anchor_name, strict = BENCHES[ruleset]
        if ruleset.partition("_torchao")[0] not in builtin_ruleset_names():
            print(f"{ruleset:<15} skipped: no rulesets/{ruleset}.qrule yet", flush=True)
            continue
        ruleset_quantizer = ours_factory()   # load and compile once, as a user would
        for name in filter(None, args.models.split(",")):
            torch.manual_seed(0)
            model = torchvision.models.get_model(name, weights=None).eval()
            size = 224 if name.startswith("vit") else 96
            graph = fold_batch_norms(export_graph(model, (torch.randn(1, 3, size, size),),
                                                  strict))
            result = alternated(ruleset_quantizer, anchor_factory, graph, args.runs)
            nodes = sum(1 for n in graph.graph.nodes if n.op == "call_function")
            ratio = result["qrules_annotate_s"] / result["anchor_annotate_s"]
            rows.append({"ruleset": ruleset, "model": name, "call_nodes": nodes,
                         "anchor": anchor_name, **{k: round(v, 5) for k, v in result.items()},
                         "annotate_ratio": round(ratio, 3)})
            print(f"{ruleset:<15} {name:<18} {nodes:>4} nodes  annotate qrules "
                  f"{result['qrules_annotate_s'] * 1e3:7.2f} ms  {anchor_name} "
                  f"{result['anchor_annotate_s'] * 1e3:7.2f} ms  ratio {ratio:6.3g}x  "
                  f"(transform {result['qrules_transform_s'] * 1e3:6.2f} / "
                  f"{result['anchor_transform_s'] * 1e3:6.2f} ms)", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
