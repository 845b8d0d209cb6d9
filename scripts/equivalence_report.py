"""Regenerate docs/equivalence.md from the equivalence suite's cases.

Runs every case of ``tests/equivalence/cases.py`` (the torchao anchors) and of
``tests/equivalence/executorch_cases.py`` (executorch's XNNPACKQuantizer) and of
``tests/equivalence/test_qnn_anchor.py`` (executorch's QnnQuantizer), with the
same models, anchors, parameters and checks as the suite, classifies the mismatches by
the known language gaps, and writes per built-in ruleset (and flavour): its .qrule
lines against the Python lines of the quantizer it replaces, the models and parameter
combinations compared, the nodes compared, the mismatches (by gap) and the numerics.
Then the device check of ``tests/device`` (every zoo model in every PTQ config and
every helper module, lowered to XNNPACK and run in executorch's runtime). Takes about
as long as those tests (~15 min on the idle 2-core machine).

    PYTHONPATH=. python scripts/equivalence_report.py [--output docs/equivalence.md]
        [--results DIR] [--groups torchao,executorch,qnn,device]

``--results DIR`` keeps each group's rows as JSON, so groups can run in separate
processes (or again alone after a change) and the page is rendered from all of them;
``--groups ""`` only renders what DIR holds.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Rows of the summary: the ruleset's flavour when it has several (the anchor it holds).
ANCHOR_SOURCES = {
    "xnnpack (flavor=executorch)": (
        "executorch.backends.xnnpack.quantizer.xnnpack_quantizer",
        "executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils"),
    "xnnpack (flavor=torchao)": ("torchao.testing.pt2e._xnnpack_quantizer",
                                 "torchao.testing.pt2e._xnnpack_quantizer_utils"),
    "embedding": ("torchao.quantization.pt2e.quantizer.embedding_quantizer",),
    "x86_inductor": ("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer",),
    "cortex_m": tuple(f"executorch.backends.cortex_m.quantizer.{name}" for name in (
        "quantizer", "quantization_configs", "quantizer_support", "pattern_checkers",
        "pattern_matcher", "node_finders")),
    # The five modules of executorch/backends/arm/quantizer/ (docs/backends.md: the V2
    # path uses a part of them, plus Cortex-M's pattern matcher and node finders).
    "arm": tuple(f"executorch.backends.arm.quantizer.{name}" for name in (
        "arm_quantizer", "arm_quantizer_utils", "quantization_annotator",
        "quantization_config", "quantizer_support")),
    "qnn": tuple(f"executorch.backends.qualcomm.quantizer.{m}" for m in (
        "quantizer", "qconfig", "rules", "conv_bn", "annotators.htp_rules")),
}
ANCHOR_NAMES = {
    "xnnpack (flavor=executorch)": "executorch's XNNPACKQuantizer + "
                                   "get_symmetric_quantization_config",
    "xnnpack (flavor=torchao)": "torchao's testing XNNPACKQuantizer + "
                                "get_symmetric_quantization_config",
    "embedding": "EmbeddingQuantizer",
    "x86_inductor": "X86InductorQuantizer + get_default_x86_inductor_quantization_config",
    "cortex_m": "executorch's CortexMQuantizer()",
    "arm": "executorch's TOSAQuantizer + get_symmetric_quantization_config "
           "(a16w8, a8w4)",
    "qnn": "executorch's QnnQuantizer (HTP) + set_default_quant_config",
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


def _timed(label: str, run):
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    print(f"{time.perf_counter() - start:6.1f}s ({time.process_time() - cpu:6.1f}s cpu) "
          f"{label}", file=sys.stderr, flush=True)
    return result


def _torchao_row(case, report, counts, unexplained) -> dict:
    kind, model, spec, qat, strict, _ = case
    section = spec.partition("[")[0]
    return {"section": "xnnpack (flavor=torchao)" if section == "xnnpack" else section,
            "model": model, "flags": _params(spec),
            "mode": ("QAT" if qat else "PTQ") + (", strict export" if strict else "")}


def _executorch_row(case, report, counts, unexplained) -> dict:
    kind, model, flags, qat, _ = case
    return {"section": "xnnpack (flavor=executorch)", "model": model,
            "flags": _params(f"[{flags}]"), "mode": "QAT" if qat else "PTQ"}


def _arm_row(case, report, counts, unexplained) -> dict:
    kind, model, config = case
    flags = ", ".join(f"{key}={str(value).lower()}" for key, value in config.items()
                      if key != "qat")
    return {"section": "arm", "model": model, "flags": flags or "defaults",
            "mode": "QAT" if config.get("qat") else "PTQ"}
def _qnn_row(case, report, counts, unexplained) -> dict:
    kind, model, dtype, per_channel, qat, _ = case
    flags = ", ".join([dtype] + ["per_channel"] * per_channel)
    return {"section": "qnn", "model": model, "flags": flags, "mode": "QAT" if qat else "PTQ"}


def run_cases(suite, describe) -> list[dict]:
    """One row (plain data) per case of ``suite``: what the page shows of it."""
    from qrules.engine.diff.run import SideFailed

    rows = []
    for case in suite.CASES:
        try:
            report, (counts, unexplained) = _timed(suite.case_id(case),
                                                   lambda: suite.run_case(case))
        except SideFailed as failure:   # the anchor's own config cannot prepare
            row = describe(case, None, Counter(), [])
            row.update(id=suite.case_id(case), nodes=0, mismatches=0, counts={},
                       unexplained=0, numerics_ran=False, numerics_ok=False,
                       numerics=f"anchor fails: {str(failure).splitlines()[-1]}")
            rows.append(row)
            continue
        row = describe(case, report, counts, unexplained)
        row.update(id=suite.case_id(case), nodes=report.nodes_compared,
                   mismatches=len(report.mismatches), counts=dict(counts),
                   unexplained=len(unexplained), numerics=_numerics(report),
                   numerics_ran=report.numerics.ran, numerics_ok=report.numerics.ok)
        rows.append(row)
    return rows


def _cortex_m_row(case, report, counts, unexplained) -> dict:
    kind, model, qat = case
    return {"section": "cortex_m", "model": model, "flags": "defaults",
            "mode": "QAT" if qat else "PTQ"}


#: What cortex_m.qrule also stands for: the Arm quantizer code CortexMQuantizer runs
#: (PatternQuantizer, SharedQspecQuantizer, the int32 bias specs, the node marking).
CORTEX_M_ARM_SOURCES = ("executorch.backends.arm.quantizer.arm_quantizer_utils",
                        "executorch.backends.arm.quantizer.quantization_config")


def _cortex_m_note() -> list[str]:
    arm = [python_lines(module_path(m)) for m in CORTEX_M_ARM_SOURCES]
    shared = qrule_lines(ROOT / "rulesets" / "_executorch_shared.qrule")
    return [
        "`cortex_m` is held to `CortexMQuantizer()` by "
        "`tests/equivalence/test_cortex_m_anchor.py` (the zoo's CNNs, the transformer "
        "block and the Cortex-M helpers of `tests/models/arm.py`; QAT on the small "
        "modules). Its Python count is the Cortex-M quantizer package; that quantizer "
        "also runs Arm's " + ", ".join(f"`{m}`" for m in CORTEX_M_ARM_SOURCES) +
        f" ({sum(a for a, _ in arm)} lines, {sum(c for _, c in arm)} of code: the "
        "pattern and shared-qspec quantizers, the int32 bias specs, the node marking), "
        "shared with the Arm quantizer, which `cortex_m.qrule` says too (it includes "
        f"`_executorch_shared.qrule`, the shared-qspec op list: {shared[0]} lines, "
        f"{shared[1]} of code, not counted above). The ruleset's programs "
        "also lower like the anchor's through executorch's Cortex-M passes "
        "(`tests/device/test_cortex_m_lowering.py`).", ""]


QNN_NOTE = [
    "`qnn` is held to `QnnQuantizer()` by `tests/equivalence/test_qnn_anchor.py`: every "
    "QNN model of `tests/models/qnn.py` (a decoder block and helpers reaching every "
    "annotator) in every QuantDtype with and without per-channel weights; every zoo "
    "model in every QuantDtype with per-channel weights (the ruleset's default), "
    "resnet18 and mobilenet_v2 also with per-tensor weights; QAT on small modules. "
    "Where the anchor itself raises (fp16a8w on models with batch or layer norms, topk, "
    "embeddings or scatters) `tests/equivalence/test_qnn_harness.py` pins the error "
    "instead. Both sides run executorch's QNN annotation pipeline (~35 passes, ~3 s on "
    "vit_b_16) on the same graph in every case of a model; it reads nothing of the "
    "dtype or config, so the suite runs it once per input graph and hands out copies "
    "(`tests/equivalence/caches.py`, `qnn_annotation_passes_once`, keyed by a "
    "fingerprint of the graph's code, nodes, meta and tensor bytes; "
    "`test_annotation_pipeline_cache_gives_what_an_uncached_run_gives` holds a cached "
    "result to an uncached run).", ""]


def run_device(save=lambda rows: None) -> list[dict]:
    """One row per device check of tests/device: the ruleset's program against the
    anchor's. ``save(rows)`` after each (lowering takes minutes: keep what is done)."""
    from qrules.engine.device import device_mismatches
    from tests.device import conftest as device
    from tests.device import test_xnnpack_ruleset as checks

    cases = [("zoo", name, pc, dyn) for name in checks.ZOO for pc, dyn in checks.CONFIGS]
    cases += [("helper", name, pc, dyn) for name, pc, dyn in checks.HELPER_CASES]
    rows = []
    for kind, name, pc, dyn in cases:
        ours = _timed(f"device {name} per_channel={pc} dynamic={dyn}",
                      lambda: device.device_report("ruleset", kind, name, pc, dyn))
        anchor = device.device_report("anchor", kind, name, pc, dyn)
        problems = device_mismatches(ours, anchor)
        rows.append({
            "model": name, "per_channel": pc, "dynamic": dyn,
            "program": "loads and runs" if ours.loads else f"**fails**: {ours.error}",
            "delegated": f"{ours.delegated_nodes} / {anchor.delegated_nodes}",
            "qdq": f"{len(ours.qdq_outside)} / {len(anchor.qdq_outside)}",
            "verdict": ("**" + "; ".join(problems) + "**") if problems else
                       "one program" if ours is anchor else "bit-identical",
            "worst": "—" if ours.max_abs_diff is None else f"{ours.max_abs_diff:.3g}"})
        save(rows)
    return rows


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


INTRO = [
    "# Equivalence with the hand-written quantizers", "",
    "<!-- Generated by scripts/equivalence_report.py; do not edit by hand. -->", "",
    "The built-in rulesets are held to the hand-written quantizers they replace (torchao's, "
    "and executorch's XNNPACKQuantizer, which the `xnnpack` ruleset reproduces by default) "
    "by `tests/equivalence/`: for every case, `qrules.diff` runs torchao's "
    "own `prepare_pt2e` (or `prepare_qat_pt2e`) once with the anchor quantizer and "
    "once with the ruleset, on copies of one exported graph, records each side's "
    "annotations right after `annotate` (inside prepare), and compares them node by "
    "node: spec kind, dtype, quant range, qscheme, channel axis, dynamic flag, "
    "observer or fake-quantizer with its keyword arguments, shared and derived edges, "
    "`_annotated`, `allow_implicit_sharing`, and the graph structure itself. Then "
    "both prepared models are calibrated on the same seeded inputs and converted, "
    "and the converted models must have the same op counts and bit-identical "
    "outputs. See [api.md](api.md#diff) for `qrules.diff` and "
    "[cli.md](cli.md#qrules-diff) for `qrules diff`. The `xnnpack` programs are also "
    "run on device: [Device runtime](#device-runtime-executorch-xnnpack).", "",
    "A mismatch the `.qrule` language cannot close yet belongs to one of the "
    "[known language gaps](#known-language-gaps); the suite expects, per case, an "
    "exact count of mismatches per gap and nothing else, so it fails both when a gap "
    "closes and when a new mismatch appears.", "",
    "## Summary", ""]

MATRIX = [
    "## The executorch matrix and what it costs", "",
    "`tests/equivalence/executorch_cases.py` runs every zoo model in every PTQ config "
    "of `get_symmetric_quantization_config` (per_channel × dynamic), and every config, "
    "QAT included (per_channel × dynamic × qat), on the helper modules of "
    "`tests/models/executorch.py` and the seed's small conv/bn modules. QAT runs on "
    "every zoo model: resnet18 in its four QAT configs, the others in `per_channel, "
    "qat` (`test_qat_weight_granularity_changes_no_rule` shows that per-tensor weights "
    "change no rule on them, only the weight spec), and in `per_channel, dynamic, qat` "
    "(`test_dynamic_qat_on_the_zoo`: annotations exact on all five; outputs "
    "bit-identical on vit_b_16 and convnext_tiny; on mobilenet_v2, mobilenet_v3_large "
    "and efficientnet_b0 torchao's `convert_pt2e` fails in its PortNodeMetaForQDQ pass "
    "whichever quantizer annotated the graph, and the test pins that on both sides). "
    "Zoo QAT cases prepare and convert both sides with qrules' passes "
    "(`qrules.diff(..., engine=\"qrules\")`, the graphs torchao's make, about twice as "
    "fast). Zoo cases calibrate on one batch, their example input. `tests/device/` "
    "lowers every zoo model in every PTQ config where XNNPACK lowering applies: not "
    "dynamic quantization with per-tensor weights, which fails `to_executorch()` "
    "(no out variant for its dynamic q/dq) even from executorch's own quantizer "
    "(`test_per_tensor_dynamic_does_not_lower_even_for_the_anchor` pins it).", "",
    "Where the time goes (resnet18, one config, idle 2-core machine): export 0.2 s; "
    "executorch's prepare 1.1 s (its annotate re-traces four QAT patterns; the suite's "
    "pattern cache makes that one trace per session), the ruleset's 0.05-0.3 s; "
    "calibration on one batch and convert under 0.5 s each side; lowering the converted "
    "model with `XnnpackPartitioner` and `to_executorch()` 5-11 s (14 s for "
    "mobilenet_v2, 17 s for mobilenet_v3_large); loading and running the program "
    "0.01 s. Lowering is most of the device check, so the device harness lowers once "
    "where the ruleset's converted model is identical to the anchor's, and a zoo "
    "model's export, prepare, calibration and convert run once per (model, config) for "
    "both checks: the device check lowers the two converted models of the equivalence "
    "diff (`tests/equivalence/caches.py`, `shared_diff`): on resnet18 (three device "
    "checks and four PTQ cases in one session) 77 s of CPU before, 59 s after. "
    "The test session freezes what collection leaves alive (`tests/conftest.py`, "
    "`gc.freeze()`), so Python's full garbage collections, which every diff triggers, "
    "no longer walk the ~390,000 objects of torch, torchao, executorch and qrules: on "
    "`tests/equivalence/test_executorch_scopes.py` (same machine, back to back) 29 full "
    "collections took 2.9 s instead of 10.3 s, and the file 20 s instead of 31 s.", ""]

# Where an anchor has a genuine bug, the ruleset keeps the anchor's behaviour by default
# (so the suite can hold it to the anchor) and a parameter selects the right one.
ANCHOR_BUGS = [
    "## Anchor bugs kept by default", "",
    "Where the anchor quantizer has a genuine bug, the ruleset reproduces it by default "
    "(that is what it is compared with) and a parameter turns it off. Each has a minimal "
    "reproduction that a test runs.", "",
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
    "so the suite's cases are the same either way (`tests/engine/test_transform_ops.py` "
    "runs the reproduction).", "",
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


# executorch's scoping bugs, kept by default (an anchor bug section of their own).
EXECUTORCH_SCOPING_BUGS = [
    "### executorch's scoping bugs (`exact_scopes`)",
    "",
    "`RulesetQuantizer.set_module_name`, `set_module_type`, `set_operator_type` and "
    "`set_filter_function` on the xnnpack ruleset (flavor=executorch) scope it as "
    "executorch's XNNPACKQuantizer scopes its configs, because the ruleset says "
    "`scoping filters` ([language.md](language.md#scoping-modes)). That keeps three "
    "bugs of executorch's; `qrules.load(\"xnnpack\", exact_scopes=True)` turns them off"
    " (module scopes then take their nodes, and every rule reads its own nodes, "
    "[semantics.md](semantics.md#scoping-from-python)). "
    "`tests/equivalence/test_executorch_scopes.py` runs the reproduction below and "
    "holds each bug to executorch by default and, with `exact_scopes=True`, to "
    "exactly the nodes where the correct behaviour differs:",
    "",
    "- **A module scope never holds a conv.** The module filters read "
    "`nn_module_stack`, which the `get_attr` node of a weight or bias does not carry,"
    " and the conv, conv + relu, linear + relu and conv + bn annotators apply the "
    "filter to their whole partition (op, weight, bias): no pass annotates a conv "
    "inside `set_module_name`/`set_module_type` (the global pass skips it as inside "
    "the scope). A standalone linear checks only its own node, so it is annotated. "
    "The ruleset's rules say so with `scoped(conv, weight, bias)`.",
    "- **`cat` ignores filters.** `_annotate_cat` takes `filter_fn` and never calls "
    "it: the first scoped pass annotates every cat of the graph with the scope's "
    "config, and a filter function cannot exclude a cat; `propagate_annotation` runs "
    "once after every pass, ignoring filters and configs. Both rules are `scoped()`.",
    "- **`set_operator_type` with an `OpOverloadPacket`**, the type it declares, "
    "selects no pattern for linear, conv, add, mul or cat: the patterns list "
    "overloads (`aten.linear.default`), and `operator_target not in "
    "pattern.op_overloads` skips them all, so the global config annotates those ops.",
    "",
    "<!-- runs in tests/equivalence/test_executorch_scopes.py -->",
    "```python",
    "import torch, qrules",
    "from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (",
    "    XNNPACKQuantizer, get_symmetric_quantization_config)",
    "",
    "config = get_symmetric_quantization_config(is_per_channel=True)",
    "x = (torch.randn(1, 3, 8, 8),)",
    "",
    "# A module scope never holds a conv: it stays in float, as in executorch.",
    "model = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))).eval()",
    "anchor = XNNPACKQuantizer().set_module_name(\"0\", config)",
    "def in_module(**flags):",
    "    ruleset = qrules.load(\"xnnpack\", per_channel=True, **flags)",
    "    return qrules.RulesetQuantizer().set_module_name(\"0\", ruleset)",
    "assert qrules.diff(anchor, in_module(), model, x).equal",
    "report = qrules.diff(anchor, in_module(exact_scopes=True), model, x)",
    "assert {m.node for m in report.mismatches} == {\"conv2d\", \"_0_0_weight\", \"_0_0_bias\"}",
    "",
    "# cat ignores the filter function.",
    "class Cat(torch.nn.Module):",
    "    def __init__(self):",
    "        super().__init__()",
    "        self.left, self.right = torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(3, 2, 1)",
    "",
    "    def forward(self, x):",
    "        return torch.cat([self.left(x), self.right(x)], 1)",
    "",
    "def not_cat(node):",
    "    return node.target != torch.ops.aten.cat.default",
    "anchor = XNNPACKQuantizer().set_global(config).set_filter_function(not_cat)",
    "def filtered(**flags):",
    "    return qrules.load(\"xnnpack\", per_channel=True, "
    "**flags).set_filter_function(not_cat)",
    "assert qrules.diff(anchor, filtered(), Cat().eval(), x).equal",
    "report = qrules.diff(anchor, filtered(exact_scopes=True), Cat().eval(), x)",
    "assert {m.node for m in report.mismatches} == {\"cat\"}   # left in float",
    "",
    "# set_operator_type with a packet selects nothing: the global config annotates.",
    "model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)).eval()",
    "dynamic = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)",
    "anchor = XNNPACKQuantizer().set_global(config).set_operator_type(",
    "    torch.ops.aten.linear, dynamic)",
    "def by_op(**flags):",
    "    scoped = qrules.load(\"xnnpack\", per_channel=True, dynamic=True, **flags)",
    "    return qrules.load(\"xnnpack\", per_channel=True, **flags).set_operator_type(",
    "        torch.ops.aten.linear, scoped)",
    "x = (torch.randn(2, 4),)",
    "assert qrules.diff(anchor, by_op(), model, x).equal",
    "report = qrules.diff(anchor, by_op(exact_scopes=True), model, x)",
    "assert {m.node for m in report.mismatches} == {\"linear\", \"linear_1\"}  # dynamic",
    "```",
    "",
]


EXECUTORCH_SCOPING = [
    "## executorch's scoping", "",
    "`RulesetQuantizer.set_module_name`, `set_module_type`, `set_operator_type` and "
    "`set_filter_function` follow executorch's XNNPACKQuantizer "
    "(`xnnpack_quantizer.py:391-455`: module names first, then module types, then "
    "operator types, then the global config, which skips every module scope; the filter "
    "function limits every pass; `propagate_annotation` once at the end, whatever the "
    "configs). `tests/equivalence/test_executorch_scopes.py` holds them to it node by "
    "node and numerically on a model with named submodules of two types: module type, "
    "module name (also before a module type), a dynamic scope in a static model, "
    "operator types (`linear.default`, `add.Tensor`, also after a module scope), a "
    "filter function alone and with a scope, the three bugs above, a static operator "
    "type in a dynamic model (the flatten after its linear shares its qparams: the "
    "ruleset propagates in dynamic passes too) and a dynamic module scope feeding a "
    "flatten outside it (left in float: propagation reads `has_output_spec`, which a "
    "dynamically quantized linear's output lacks): all exact.", "",
    "Differences qrules makes on purpose: `None` for a scope "
    "(`set_module_type(Gate, None)`) marks the scope's nodes annotated with no spec, "
    "where executorch writes nothing (the converted models are the same; a quantizer "
    "composed after it leaves them alone too). Not reproduced: the ruleset propagates "
    "within the pass that quantized the producer, executorch after every pass, so an "
    "`nn.AdaptiveAvgPool2d` right after a module scope is annotated by propagation "
    "rather than by the global pass's own pool rule (same observers, other specs); and "
    "`set_operator_type` selects the matches whose head is the overload, where "
    "executorch runs every pattern listing it (`conv2d.default` also annotates conv1d "
    "nodes, and its transposed-conv patterns list packets too).", ""]


ORDER = ["embedding", "xnnpack (flavor=executorch)", "xnnpack (flavor=torchao)",
         "x86_inductor", "arm", "cortex_m", "qnn"]


def _sections(rows) -> dict:
    """Summary row / section name -> its case rows, in ``ORDER``."""
    out = defaultdict(list)
    for row in rows:
        out[row["section"]].append(row)
    return {key: out[key] for key in sorted(out, key=lambda k: (
        ORDER.index(k) if k in ORDER else len(ORDER), k))}


def _heading(name: str) -> str:
    ruleset, _, flavour = name.partition(" ")
    return f"`{ruleset}`" + (f" {flavour}" if flavour else "")


def _summary(sections) -> list[str]:
    out = ["| ruleset | replaces | .qrule lines (code) | Python lines (code) | models | "
           "model × parameter cases | nodes compared | mismatches | outside known gaps | "
           "numerics compared / identical |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rows in sections.items():
        total_q = qrule_lines(ROOT / "rulesets" / f"{name.split()[0]}.qrule")
        py = [python_lines(module_path(m)) for m in ANCHOR_SOURCES[name]]
        total_py = (sum(p[0] for p in py), sum(p[1] for p in py))
        ran = [row for row in rows if row["numerics_ran"]]
        out.append(f"| {_heading(name)} | {ANCHOR_NAMES[name]} | {total_q[0]} ({total_q[1]}) "
                   f"| {total_py[0]} ({total_py[1]}) | {len({r['model'] for r in rows})} | "
                   f"{len(rows)} | {sum(r['nodes'] for r in rows)} | "
                   f"{sum(r['mismatches'] for r in rows)} | "
                   f"{sum(r['unexplained'] for r in rows)} | {len(ran)} / "
                   f"{sum(r['numerics_ok'] for r in ran)} |")
    return out


def _device(rows) -> list[str]:
    out = ["## Device runtime (executorch XNNPACK)", "",
           "`tests/device/` lowers the ruleset's converted model and executorch's "
           "XNNPACKQuantizer's (same config) with `XnnpackPartitioner`, writes the `.pte` "
           "with `to_executorch()`, loads and runs it in `executorch.runtime`: every zoo "
           "model in every PTQ config that lowers (see above) and the helper modules of "
           "`tests/models/device.py`. "
           "The ruleset's program must load, delegate as many nodes as the anchor's, "
           "leave no q/dq outside a delegate where the anchor's leaves none, and give "
           "bit-identical runtime outputs. Lowering is a pure function of the converted "
           "model, so where the two converted models are identical (same code, same "
           "tensors) the two sides share one program (*one program* below). The last "
           "column is the runtime's difference from the converted PyTorch model: "
           "reported, not judged (XNNPACK's arithmetic is not PyTorch's).", "",
           "| model | per_channel | dynamic | ruleset's program | delegated nodes "
           "(ruleset / anchor) | q/dq outside (ruleset / anchor) | runtime vs anchor's "
           "program | max \\|runtime − converted\\| |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    out += [f"| {r['model']} | {r['per_channel']} | {r['dynamic']} | {r['program']} | "
            f"{r['delegated']} | {r['qdq']} | {r['verdict']} | {r['worst']} |" for r in rows]
    return out + [""]


#: How fair the `arm` row's ratio is (docs/backends.md says the same).
ARM_RATIO = [
    "", "The `arm` row counts the five modules of `executorch/backends/arm/quantizer/` "
    "whole. The default composable (V2) path uses a part of them (the support dict, "
    "the configs, the pattern and shared-qspec quantizers) plus Cortex-M's "
    "`pattern_matcher.py` and `node_finders.py`, and the legacy annotator it replaces "
    "is still there; the ratio overstates the Python the ruleset replaces by that "
    "much, and understates it by the Cortex-M modules it leaves out. The ruleset also "
    "names two Python extension points, the `arm_decompositions` transform (Arm's pass "
    "manager) and the `arm` annotation kind (the metadata its lowering reads), which "
    "call executorch rather than copy it. Cases whose anchor cannot prepare or convert "
    "its own config (dynamic: `FixedQParamsObserver`, `PlaceholderObserver`) compare "
    "the annotations only, or nothing (*anchor fails*)."]


def render(rows: list[dict], device: list[dict]) -> str:
    from tests.equivalence import cases, executorch_cases, test_qnn_anchor
    from tests.equivalence.gaps import ARM_GAPS

    sections = _sections(rows)
    out = INTRO + _summary(sections) + [
        "",
        "Python lines are those of the modules the ruleset replaces, counted whole (" +
        "; ".join(f"{_heading(name)}: " + ", ".join(f"`{m}`" for m in mods)
                  for name, mods in ANCHOR_SOURCES.items()) + "); code lines leave out "
        "blank lines, comments and docstrings. Numerics that are not identical all "
        "come from gaps marked *changes numerics* below."] + (ARM_RATIO if "arm" in sections
                                                             else []) + [""] \
        + _cortex_m_note() + QNN_NOTE + MATRIX
    for name, section in sections.items():
        anchor = "executorch" if ANCHOR_SOURCES[name][0].startswith("executorch") \
            else "torchao"
        out += [f"## {_heading(name)}", "",
                f"| model | {anchor} flags (= ruleset parameters) | mode | nodes | mismatches "
                "| by gap | numerics |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in section:
            gaps = ", ".join(f"{g}: {n}" for g, n in sorted(row["counts"].items())) or "—"
            if row["unexplained"]:
                gaps += f", **unexplained: {row['unexplained']}**"
            out.append(f"| {row['model']} | {row['flags']} | {row['mode']} | {row['nodes']} | "
                       f"{row['mismatches']} | {gaps} | {row['numerics']} |")
        out.append("")
    out += _device(device)

    totals, cases_with = Counter(), defaultdict(list)
    for row in rows:
        for gap, count in row["counts"].items():
            totals[gap] += count
            cases_with[gap].append(row["id"])
    out += ["## Known language gaps", "",
            "What the anchors do that no `.qrule` file can say yet, with the syntax "
            "proposed to say it. `KNOWN_LANGUAGE_GAPS` in `tests/equivalence/cases.py` "
            "(torchao), `EXECUTORCH_GAPS` in `tests/equivalence/executorch_cases.py`, "
            "`ARM_GAPS` and `CORTEX_M_GAPS` in `tests/equivalence/gaps.py` and "
            "`QNN_GAPS` in `tests/equivalence/test_qnn_anchor.py` hold the same list.",
            ""]
    for gap_id, gap in {**cases.KNOWN_LANGUAGE_GAPS, **executorch_cases.EXECUTORCH_GAPS,
                        **ARM_GAPS, **test_qnn_anchor.QNN_GAPS}.items():
        numeric = " *Changes numerics.*" if gap.numeric else ""
        out += [f"### `{gap_id}`", "",
                f"- **anchor**: `{gap.anchor}`",
                f"- **what it does**: {gap.what}.{numeric}",
                f"- **proposed**: {gap.proposed}",
                f"- **mismatches**: {totals.get(gap_id, 0)} in {len(cases_with[gap_id])} "
                "cases", ""]
    split = ANCHOR_BUGS.index("## Where the anchor fails and the ruleset does not")
    out += ANCHOR_BUGS[:split] + EXECUTORCH_SCOPING_BUGS + ANCHOR_BUGS[split:]
    out += EXECUTORCH_SCOPING
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


GROUPS = ("torchao", "executorch", "device", "arm", "cortex_m", "qnn")


def _run(group: str, save) -> list[dict]:
    from tests.equivalence import arm_cases, cases, executorch_cases, test_qnn_anchor

    if group == "arm":
        return run_cases(arm_cases, _arm_row)
    if group == "torchao":
        return run_cases(cases, _torchao_row)
    if group == "executorch":
        return run_cases(executorch_cases, _executorch_row)
    if group == "cortex_m":
        from tests.equivalence import test_cortex_m_anchor

        return run_cases(test_cortex_m_anchor, _cortex_m_row)
    if group == "qnn":
        return run_cases(test_qnn_anchor, _qnn_row)
    return run_device(save)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "equivalence.md"))
    parser.add_argument("--results", type=Path, help="a directory keeping each group's "
                        "rows as JSON (GROUP.json): groups not run are read from it")
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help="the groups to run (default: all): " + ", ".join(GROUPS))
    args = parser.parse_args(argv)
    groups = [group for group in args.groups.split(",") if group]
    if set(groups) - set(GROUPS):
        parser.error(f"unknown groups {sorted(set(groups) - set(GROUPS))}; known: {GROUPS}")
    from tests.equivalence import caches

    results = {}
    with caches.patterns_traced_once(), caches.histogram_search_once(), \
            caches.qnn_annotation_passes_once(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group in groups:
            def save(rows, group=group):
                if args.results is not None:
                    args.results.mkdir(parents=True, exist_ok=True)
                    (args.results / f"{group}.json").write_text(
                        json.dumps(rows, indent=1), encoding="utf-8")
            results[group] = _run(group, save)
            save(results[group])
    for group in set(GROUPS) - set(results):
        path = args.results / f"{group}.json" if args.results else None
        if path is None or not path.exists():
            print(f"group {group} was not run and {path} holds no rows: page not written",
                  file=sys.stderr)
            return 1
        results[group] = json.loads(path.read_text(encoding="utf-8"))
    text = render(results["torchao"] + results["executorch"] + results["arm"]
                  + results["cortex_m"] + results["qnn"], results["device"])
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
