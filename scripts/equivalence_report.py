"""Regenerate docs/equivalence.md from the equivalence suite's cases.

Runs every case of ``tests/equivalence/cases.py`` (the same models, anchors,
parameters and checks), classifies the mismatches by ``KNOWN_LANGUAGE_GAPS``, and writes
per built-in ruleset: its .qrule lines against the Python lines of the torchao
quantizer it replaces, the models and parameter combinations compared, the nodes
compared, the mismatches (by gap) and the numerics. Takes about as long as the suite
(~3.5 min on the 2-core machine).

    PYTHONPATH=. python scripts/equivalence_report.py [--output docs/equivalence.md]
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANCHOR_SOURCES = {
    "xnnpack": ("torchao.testing.pt2e._xnnpack_quantizer",
                "torchao.testing.pt2e._xnnpack_quantizer_utils"),
    "embedding": ("torchao.quantization.pt2e.quantizer.embedding_quantizer",),
    "x86_inductor": ("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer",),
}
ANCHOR_NAMES = {
    "xnnpack": "XNNPACKQuantizer + get_symmetric_quantization_config",
    "embedding": "EmbeddingQuantizer",
    "x86_inductor": "X86InductorQuantizer + get_default_x86_inductor_quantization_config",
}


def qrule_lines(path: Path) -> tuple[int, int]:
    """(all lines, lines with code: not blank, not only a comment)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    code = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    return len(lines), len(code)


def python_lines(path: Path) -> tuple[int, int]:
    """(all lines, code lines: not blank, not a comment, not a docstring)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    docstrings = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    code = [i for i, line in enumerate(lines, 1)
            if line.strip() and not line.strip().startswith("#") and i not in docstrings]
    return len(lines), len(code)


def module_path(name: str) -> Path:
    import importlib.util

    return Path(importlib.util.find_spec(name).origin)


def run_cases():
    from tests.equivalence import caches
    from tests.equivalence import cases as suite

    results = []
    with caches.patterns_traced_once(), caches.histogram_search_once(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in suite.CASES:
            start = time.perf_counter()
            report, (counts, unexplained) = suite.run_case(case)
            elapsed = time.perf_counter() - start
            results.append((case, report, counts, unexplained))
            print(f"{elapsed:6.1f}s {suite.case_id(case):48s} {len(report.mismatches):4d} "
                  f"mismatches {dict(counts)}", file=sys.stderr, flush=True)
    return suite, results


def _params(spec: str) -> str:
    flags = spec.partition("[")[2].rstrip("]")
    return ", ".join(flags.split(",")) if flags else "defaults"


def _numerics(report) -> str:
    n = report.numerics
    if not n.ran:
        return "not run"
    if n.error:
        return f"error: {n.error}"
    counts = "same op counts" if not n.op_count_diff else "op counts differ"
    outputs = "bit-identical" if n.outputs_equal else f"differ ({n.max_abs_diff:.3g})"
    return f"{counts}, {outputs}"


# Where an anchor has a genuine bug, the ruleset keeps the anchor's behaviour by default
# (so the suite can hold it to the anchor) and a parameter selects the right one.
ANCHOR_BUGS = [
    "## Anchor bugs kept by default", "",
    "Where the torchao quantizer has a genuine bug, the ruleset reproduces it by default "
    "(that is what it is compared with) and a parameter turns it off. Each has a minimal "
    "reproduction; `tests/engine/test_transform_ops.py` runs it.", "",
    "### Integer scalars become float constants (`keep_integer_arithmetic`)", "",
    "`XNNPACKQuantizer.transform_for_annotation` (`_convert_scalars_to_attrs`, "
    "`torchao/testing/pt2e/_xnnpack_quantizer_utils.py:1106-1134`) replaces every Python "
    "scalar operand of `aten.add.Tensor` and `aten.mul.Tensor` by a float32 constant, "
    "also in integer arithmetic. An int64 index plus `1` becomes a float tensor, and the "
    "embedding it feeds fails at the first calibration batch (GPT-2-style "
    "`arange(n) + offset` positions hit this):", "",
    "```python",
    "import torch, qrules",
    "from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e",
    "from torchao.testing.pt2e._xnnpack_quantizer import (",
    "    XNNPACKQuantizer, get_symmetric_quantization_config)",
    "",
    "class Shifted(torch.nn.Module):",
    "    def __init__(self):",
    "        super().__init__()",
    "        self.emb = torch.nn.Embedding(10, 4)",
    "",
    "    def forward(self, idx):",
    "        return self.emb(idx + 1)          # int64 + Python int",
    "",
    "idx = torch.tensor([1, 2, 3])",
    "def calibrate(quantizer):",
    "    gm = torch.export.export(Shifted().eval(), (idx,)).module()",
    "    prepare_pt2e(gm, quantizer)(idx)",
    "",
    "calibrate(XNNPACKQuantizer().set_global(get_symmetric_quantization_config()))",
    "# RuntimeError: Expected tensor for argument #1 'indices' to have one of the following",
    "# scalar types: Long, Int; but got torch.FloatTensor instead",
    "calibrate(qrules.load(\"xnnpack\").quantizer())           # the same RuntimeError",
    "calibrate(qrules.load(\"xnnpack\", keep_integer_arithmetic=True).quantizer())  # runs",
    "```", "",
    "With `keep_integer_arithmetic=True` the ruleset's transform is "
    "`scalars_to_attrs(float_only=true)`: only ops whose result is floating point get "
    "constants, so `idx + 1` stays an integer add. No model of the suite has such an op, "
    "so the suite's cases are the same either way.", "",
    "## Where the anchor fails and the ruleset does not", "",
    "`X86InductorQuantizer` finds its patterns with `get_source_partitions`. After a "
    "non-strict export (torch.export's default) a partition is a module *instance*, so "
    "a module called twice is one partition with two output nodes, and the quantizer "
    "raises `ValueError: Input partition has more than one output node` "
    "(`x86_inductor_quantizer.py:647`); a `padding=\"same\"` conv makes "
    "`_annotate_conv2d` raise `... is not an aten conv2d operator` (`:1220`). torchvision's "
    "resnet18 hits the first (each block calls its `nn.ReLU` twice):", "",
    "```python",
    "import torch, torchvision, qrules",
    "from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e",
    "from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (",
    "    X86InductorQuantizer, get_default_x86_inductor_quantization_config)",
    "",
    "model = torchvision.models.resnet18(weights=None).eval()",
    "x = (torch.randn(1, 3, 64, 64),)",
    "anchor = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())",
    "prepare_pt2e(torch.export.export(model, x).module(), anchor)",
    "# ValueError: Input partition has more than one output node",
    "prepare_pt2e(torch.export.export(model, x, strict=True).module(), anchor)  # works",
    "prepare_pt2e(torch.export.export(model, x).module(),",
    "             qrules.load(\"x86_inductor\").quantizer())                   # works",
    "```", "",
    "There is nothing to reproduce, so no parameter: `x86_inductor.qrule` matches per "
    "call (its `source(...)` predicates and `.partition` items read the same records "
    "per node) and annotates every call of a reused module the way a strict export "
    "makes torchao do (on resnet18: the ruleset after a non-strict export and torchao "
    "after a strict one annotate all 94 nodes alike). The suite compares X86 after "
    "strict exports, plus the models "
    "that call no module twice after non-strict ones (`qrules diff --strict`, "
    "`qrules.diff(..., strict=True)`).", ""]


def render(suite, results) -> str:
    by_ruleset = defaultdict(list)
    for item in results:
        case = item[0]
        by_ruleset[case[2].partition("[")[0]].append(item)

    out = ["# Equivalence with torchao's quantizers", "",
           "<!-- Generated by scripts/equivalence_report.py; do not edit by hand. -->", "",
           "The built-in rulesets are held to the hand-written torchao quantizers they "
           "replace by `tests/equivalence/`: for every case, `qrules.diff` runs torchao's "
           "own `prepare_pt2e` (or `prepare_qat_pt2e`) once with the torchao quantizer and "
           "once with the ruleset, on copies of one exported graph, records each side's "
           "annotations right after `annotate` (inside prepare), and compares them node by "
           "node: spec kind, dtype, quant range, qscheme, channel axis, dynamic flag, "
           "observer or fake-quantizer with its keyword arguments, shared and derived edges, "
           "`_annotated`, `allow_implicit_sharing`, and the graph structure itself. Then "
           "both prepared models are calibrated on the same seeded inputs and converted, "
           "and the converted models must have the same op counts and bit-identical "
           "outputs. See [api.md](api.md#diff) for `qrules.diff` and "
           "[cli.md](cli.md#qrules-diff) for `qrules diff`.", "",
           "A mismatch the `.qrule` language cannot close yet belongs to one of the "
           "[known language gaps](#known-language-gaps); the suite expects, per case, an "
           "exact count of mismatches per gap and nothing else, so it fails both when a gap "
           "closes and when a new mismatch appears.", "",
           "## Summary", "",
           "| ruleset | replaces | .qrule lines (code) | Python lines (code) | models | "
           "model × parameter cases | nodes compared | mismatches | outside known gaps | "
           "numerics compared / identical |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ruleset, items in by_ruleset.items():
        total_q = qrule_lines(ROOT / "rulesets" / f"{ruleset}.qrule")
        py = [python_lines(module_path(m)) for m in ANCHOR_SOURCES[ruleset]]
        total_py = (sum(p[0] for p in py), sum(p[1] for p in py))
        models = {case[1] for case, *_ in items}
        nodes = sum(report.nodes_compared for _, report, _, _ in items)
        mismatches = sum(len(report.mismatches) for _, report, _, _ in items)
        unexplained = sum(len(u) for *_, u in items)
        ran = [report for _, report, _, _ in items if report.numerics.ran]
        identical = sum(r.numerics.ok for r in ran)
        out.append(f"| `{ruleset}` | {ANCHOR_NAMES[ruleset]} | {total_q[0]} ({total_q[1]}) | "
                   f"{total_py[0]} ({total_py[1]}) | {len(models)} | {len(items)} | {nodes} | "
                   f"{mismatches} | {unexplained} | {len(ran)} / {identical} |")
    out += ["",
            "Python lines are those of the torchao modules the ruleset replaces, counted "
            "whole (" + "; ".join(
                f"`{ruleset}`: " + ", ".join(f"`{m}`" for m in mods)
                for ruleset, mods in ANCHOR_SOURCES.items()) + "); code lines leave out "
            "blank lines, comments and docstrings. Numerics that are not identical all "
            "come from gaps marked *changes numerics* below.", ""]

    for ruleset, items in by_ruleset.items():
        out += [f"## `{ruleset}`", "",
                "| model | torchao flags (= ruleset parameters) | mode | nodes | mismatches "
                "| by gap | numerics |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for case, report, counts, unexplained in items:
            kind, model, spec, qat, strict, _ = case
            mode = ("QAT" if qat else "PTQ") + (", strict export" if strict else "")
            gaps = ", ".join(f"{g}: {n}" for g, n in sorted(counts.items())) or "—"
            if unexplained:
                gaps += f", **unexplained: {len(unexplained)}**"
            out.append(f"| {model} | {_params(spec)} | {mode} | {report.nodes_compared} | "
                       f"{len(report.mismatches)} | {gaps} | {_numerics(report)} |")
        out.append("")

    totals = Counter()
    cases_with = defaultdict(list)
    for case, report, counts, _ in results:
        for gap, count in counts.items():
            totals[gap] += count
            cases_with[gap].append(suite.case_id(case))
    out += ["## Known language gaps", "",
            "What the torchao quantizers do that no `.qrule` file can say yet, with the "
            "syntax proposed to say it. `KNOWN_LANGUAGE_GAPS` in "
            "`tests/equivalence/cases.py` holds the same list.", ""]
    for gap_id, gap in suite.KNOWN_LANGUAGE_GAPS.items():
        numeric = " *Changes numerics.*" if gap.numeric else ""
        out += [f"### `{gap_id}`", "",
                f"- **torchao**: `{gap.anchor}`",
                f"- **what it does**: {gap.what}.{numeric}",
                f"- **proposed**: {gap.proposed}",
                f"- **mismatches**: {totals.get(gap_id, 0)} in {len(cases_with[gap_id])} "
                "cases", ""]
    out += ANCHOR_BUGS
    out += ["## Deliberate differences", "",
            "- `strict_export` (default false): torchao finds `adaptive_avg_pool2d`, GRU and "
            "`cat` partitions through `get_source_partitions`. After a non-strict "
            "`torch.export` (the default, and what `qrules.quantize` uses) that falls back "
            "to the innermost module class, so torchao never annotates `cat` (a function) "
            "and only annotates `adaptive_avg_pool2d` inside an `nn.AdaptiveAvgPool2d`; "
            "after `strict=True` it reads `source_fn_stack` and does both. The parameter "
            "says which export the graph came from; the suite compares both.",
            "- XNNPACK's `gru_io_only` annotates the *first user* of the GRU's inputs; an "
            "exported `nn.GRU` is one `aten.gru` node, so the ruleset quantizes its hidden "
            "state input (`input[1]`) and outputs. `qrules.diff` keeps every node's users in "
            "torch.export's order on its copies, since `copy.deepcopy` reorders them and "
            "would make torchao annotate the `_guards_fn` node instead.", "",
            "## Regenerating", "",
            "```", "PYTHONPATH=. python scripts/equivalence_report.py", "```", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "equivalence.md"))
    args = parser.parse_args(argv)
    suite, results = run_cases()
    Path(args.output).write_text(render(suite, results), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
