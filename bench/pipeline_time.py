"""prepare / calibrate / convert time: qrules' passes vs torchao's, on the same graphs.

    python bench/pipeline_time.py [--cases qat_block,qat_resnet18,ptq_mlp,ptq_zoo,calibration,
                                           fresh_qat_block,fresh_qat_resnet18]
                                  [--mlp-blocks 2500] [--repeat 3] [--fresh-repeat 5]
                                  [--json OUT]

Each case exports its model once; every timing works on a fresh deep copy of that
export, and the two engines (``qrules.prepare/convert(..., engine="qrules"|"torchao")``)
alternate run by run (calibration: batch by batch), each going first every other time,
so machine load, and going first or second, hit both alike.
Reported: median seconds of prepare + convert (calibration: of ten batches through a
prepared copy) and torchao / qrules, the speed-up, measured in the same run. The first
qrules QAT run of a process builds and caches the conv-bn pattern graphs of the conv
kinds present (qrules/adapter/qat_patterns.py); ``first_qrules_s`` reports that cold
run, the medians the warm ones.

The ``fresh_*`` cases are what a user running one script sees: each run is a new
interpreter (this file with ``--child CASE ENGINE``) that builds and exports the model,
then times QAT prepare + convert (the move to eval mode and one calibration batch in
between are not timed); torchao and qrules alternate run by run, ``--fresh-repeat``
runs each (median). The child also counts ``torch.export.export`` calls inside the
timed steps. Targets (issue 13): QAT >= 10x (< 2 s on the block), in a fresh process
too; PTQ >= 5x on the 10k-node MLP and never slower on the zoo; calibration never
slower.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time

from _common import ensure_repo_on_path, write_json

ensure_repo_on_path()

import torch  # noqa: E402
import torchvision  # noqa: E402

import qrules  # noqa: E402
from qrules.adapter.torchao import export_module, move_exported_model_to_eval  # noqa: E402

ENGINES = ("torchao", "qrules")


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3)
        self.bn = torch.nn.BatchNorm2d(16)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def _mlp(blocks: int):
    layers = []
    for _ in range(blocks):
        layers += [torch.nn.Linear(16, 16), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers).eval(), (torch.randn(4, 16),)


def _zoo(name: str, qat: bool = False):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None)
    return (model.train() if qat else model.eval()), (torch.randn(2, 3, 64, 64),)


def _prepare_convert(graph, inputs, ruleset, qat: bool, run: int) -> dict:
    """Seconds of prepare + convert per engine; which engine goes first alternates
    with ``run``."""
    seconds = {}
    for engine in _order(run):
        work = copy.deepcopy(graph)
        start = time.perf_counter()
        prepared = qrules.prepare(work, inputs, ruleset, qat=qat, engine=engine)
        elapsed = time.perf_counter() - start
        if qat:
            move_exported_model_to_eval(prepared)
        qrules.calibrate(prepared, [inputs], progress=False)
        start = time.perf_counter()
        qrules.convert(prepared, engine=engine)
        seconds[engine] = elapsed + time.perf_counter() - start
    return seconds


def _calibrate(graph, inputs, ruleset, qat: bool, run: int) -> dict:
    """Seconds of ten calibration batches per engine, alternating batch by batch, and
    which engine goes first with every batch (the two prepared graphs are the same, so
    only load, or going second, can tell them apart)."""
    prepared = {engine: qrules.prepare(copy.deepcopy(graph), inputs, ruleset, engine=engine)
                for engine in ENGINES}
    seconds = dict.fromkeys(ENGINES, 0.0)
    for index in range(10):
        batch = [tuple(x * (1 + index / 10) for x in inputs)]
        for engine in _order(run + index):
            start = time.perf_counter()
            qrules.calibrate(prepared[engine], batch, progress=False)
            seconds[engine] += time.perf_counter() - start
    return seconds


def _order(run: int) -> tuple:
    """The engines in the order they go on this run: each goes first every other run,
    so what going first or second costs (a warmer cache, memory the other just freed)
    falls on both alike."""
    return ENGINES if run % 2 == 0 else ENGINES[::-1]


# fresh-process case -> the model it builds (seeded, in train mode)
FRESH = {"fresh_qat_block": ("conv-bn-relu", lambda: (_Block().train(),
                                                      (torch.randn(2, 3, 32, 32),))),
         "fresh_qat_resnet18": ("resnet18 64px", lambda: _zoo("resnet18", qat=True))}


def _child(case: str, engine: str) -> dict:
    """One fresh-process run: export, then QAT prepare + convert timed, the
    ``torch.export.export`` calls inside them counted."""
    torch.manual_seed(0)
    module, inputs = FRESH[case][1]()
    graph = export_module(module, inputs)
    ruleset = qrules.load("xnnpack", per_channel=True, qat=True)
    exports, export = [0], torch.export.export

    def counted(*args, **kwargs):
        exports[0] += 1
        return export(*args, **kwargs)

    torch.export.export = counted
    start = time.perf_counter()
    prepared = qrules.prepare(graph, inputs, ruleset, qat=True, engine=engine)
    seconds = time.perf_counter() - start
    counted_before = exports[0]
    move_exported_model_to_eval(prepared)
    qrules.calibrate(prepared, [inputs], progress=False)
    exports[0] = counted_before
    start = time.perf_counter()
    qrules.convert(prepared, engine=engine)
    seconds += time.perf_counter() - start
    return {"seconds": seconds, "exports": exports[0], "nodes": len(graph.graph.nodes)}


def _fresh(case: str, repeat: int) -> dict:
    """``repeat`` fresh-process runs per engine, alternating; median seconds."""
    runs = {engine: [] for engine in ENGINES}
    for run in range(repeat):
        for engine in _order(run):
            done = subprocess.run([sys.executable, __file__, "--child", case, engine],
                                  capture_output=True, text=True, check=True)
            runs[engine].append(json.loads(done.stdout.strip().splitlines()[-1]))
    theirs, ours = (statistics.median(run["seconds"] for run in runs[engine])
                    for engine in ENGINES)
    return {"case": case, "model": FRESH[case][0], "nodes": runs["qrules"][0]["nodes"],
            "torchao_s": round(theirs, 3), "qrules_s": round(ours, 3),
            "runs": repeat, "speedup": round(theirs / ours, 2),
            "exports": {engine: runs[engine][0]["exports"] for engine in ENGINES}}


def _cases(args) -> list:
    """(case, model label, (module, inputs), ruleset, qat, what is timed)."""
    per_channel = qrules.load("xnnpack", per_channel=True)
    qat_rules = qrules.load("xnnpack", per_channel=True, qat=True)
    torch.manual_seed(0)
    out = [("qat_block", "conv-bn-relu", (_Block().train(), (torch.randn(2, 3, 32, 32),)),
            qat_rules, True, _prepare_convert),
           ("qat_resnet18", "resnet18 64px", _zoo("resnet18", qat=True), qat_rules, True,
            _prepare_convert),
           ("ptq_mlp", f"MLP {args.mlp_blocks} x (Linear, ReLU)", _mlp(args.mlp_blocks),
            per_channel, False, _prepare_convert)]
    out += [("ptq_zoo", f"{name} 64px", _zoo(name), per_channel, False, _prepare_convert)
            for name in ("resnet18", "mobilenet_v2")]
    out.append(("calibration", "resnet18 64px, 10 batches", _zoo("resnet18"), per_channel,
                False, _calibrate))
    wanted = set(args.cases.split(","))
    return [case for case in out if case[0] in wanted]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="qat_block,qat_resnet18,ptq_mlp,ptq_zoo,calibration,"
                                              "fresh_qat_block,fresh_qat_resnet18")
    parser.add_argument("--mlp-blocks", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh-repeat", type=int, default=5)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    rows = []
    for case, label, (module, inputs), ruleset, qat, timed in _cases(args):
        graph = export_module(module, inputs)
        nodes = len(graph.graph.nodes)
        times = {engine: [] for engine in ENGINES}
        for run in range(args.repeat):
            for engine, seconds in timed(graph, inputs, ruleset, qat, run).items():
                times[engine].append(seconds)
        theirs, ours = (statistics.median(times[engine]) for engine in ENGINES)
        rows.append({"case": case, "model": label, "nodes": nodes,
                     "torchao_s": round(theirs, 3), "qrules_s": round(ours, 3),
                     "first_qrules_s": round(times["qrules"][0], 3),
                     "speedup": round(theirs / ours, 2)})
        print(f"{case:<13} {label:<32} {nodes:>6} nodes  torchao {theirs:8.3f}s  "
              f"qrules {ours:7.3f}s (first {times['qrules'][0]:.3f}s)  "
              f"{theirs / ours:6.2f}x", flush=True)
    for case in [case for case in FRESH if case in args.cases.split(",")]:
        row = _fresh(case, args.fresh_repeat)
        rows.append(row)
        print(f"{case:<19} {row['model']:<14} {row['nodes']:>4} nodes  new process each run: "
              f"torchao {row['torchao_s']:7.3f}s  qrules {row['qrules_s']:6.3f}s  "
              f"{row['speedup']:6.2f}x  (torch.export calls: {row['exports']})", flush=True)
    if args.json:
        write_json(args.json, "pipeline_time", vars(args), {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
