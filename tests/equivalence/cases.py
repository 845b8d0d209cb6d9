"""The equivalence suite's cases, read by ``test_equivalence.py``, ``test_report_doc.py``
and ``scripts/equivalence_report.py`` (which regenerates docs/equivalence.md from them).

``CASES``: every (kind, model, anchor spec, qat, strict export, compare numerics) the
suite runs; ``run_case`` runs one (``qrules.diff(anchor, ruleset, model)``) and
classifies its mismatches. A mismatch the .qrule language cannot close yet belongs to
one of ``KNOWN_LANGUAGE_GAPS``; ``EXPECTED`` says, per case, exactly how many mismatches
each gap accounts for.
"""

from __future__ import annotations

import gc

import qrules
from qrules import diff
from tests.models import ZOO

from .conftest import exported
from .gaps import Gap, classify

# Mismatches the .qrule language cannot close yet, each with the anchor's file:line,
# what it does, the syntax proposed, and a predicate recognising its mismatches (see
# gaps.py). Empty: every gap found so far is closed, so every case must be exact.
KNOWN_LANGUAGE_GAPS: dict[str, Gap] = {
}

# ----------------------------------------------------------------------- cases
# (kind, model, anchor spec, qat, strict export, compare numerics)

SMALL_PTQ = ("conv_bn_relu", "conv_bn", "conv1d_bn_relu", "conv_bn_relu_nobias",
             "conv_transpose_bn_relu", "conv_transpose_bn", "conv_bn_relu_linear",
             "conv_linear_permute", "groupwise_conv", "linear", "linear_relu",
             "embedding_linear", "add_mul_cat", "add_int_tensor", "propagation",
             "adaptive_pools", "conv_variants", "tied_weights", "large_scalar", "div_scalar",
             "gru_input", "gru_after_linear")
SMALL_QAT = ("conv_bn_relu", "conv_bn", "conv1d_bn_relu", "conv_bn_relu_nobias",
             "conv_transpose_bn_relu", "conv_transpose_bn", "conv_bn_relu_linear",
             "linear_relu", "add_mul_cat")
XNN_PTQ = ("xnnpack", "xnnpack[per_channel]", "xnnpack[dynamic]",
           "xnnpack[per_channel,dynamic]")
# X86InductorQuantizer finds patterns through source partitions, which after a
# non-strict export group every call of one module instance: it raises on resnet18,
# whose blocks call one nn.ReLU twice ("Input partition has more than one output
# node"). Its cases therefore export strictly (the seed's intent; torchao's numbers).
# conv_variants is left out: torchao raises on its padding="same" conv ("is not an
# aten conv2d operator"), and the GRU modules have nothing X86 quantizes.
X86_PTQ = ("x86_inductor", "x86_inductor[dynamic]", "x86_inductor[reduce_range]",
           "x86_inductor[dynamic,reduce_range]")
X86_SMALL = tuple(m for m in SMALL_PTQ if m not in ("conv_variants", "gru_input",
                                                    "gru_after_linear")) + (
    "x86_conv_fusions", "x86_linear_fusions", "x86_propagation", "x86_conv_bn_add_relu")
X86_QAT = ("conv_bn_relu", "conv_bn", "conv1d_bn_relu", "conv_bn_relu_nobias",
           "conv_bn_relu_linear", "linear_relu", "add_mul_cat", "x86_conv_fusions",
           "x86_conv_bn_add_relu")


def _grid(kind, models, specs, qat=False, strict=False):
    """Every model with every anchor spec, numerics compared."""
    for model in models:
        for spec in specs:
            yield (kind, model, spec, qat, strict, True)


def _cases():
    for model in ZOO:
        yield ("zoo", model, "embedding", False, False, False)
        yield from _grid("zoo", (model,), XNN_PTQ)
    yield from _grid("small", ("embedding", "embedding_linear"), ("embedding",))
    yield from _grid("small", SMALL_PTQ, XNN_PTQ)
    yield from _grid("small", SMALL_QAT, ("xnnpack[qat]", "xnnpack[per_channel,qat]"), qat=True)
    yield ("small", "linear_relu", "xnnpack[dynamic,qat]", True, False, True)
    yield from _grid("small", ("add_mul_cat", "adaptive_pools", "gru_input"),
                     ("xnnpack", "xnnpack[per_channel]"), strict=True)
    yield from _grid("zoo", ZOO, X86_PTQ, strict=True)
    yield from _grid("small", X86_SMALL, X86_PTQ, strict=True)
    yield from _grid("small", X86_QAT, ("x86_inductor[qat]", "x86_inductor[qat,reduce_range]"),
                     qat=True, strict=True)
    yield ("small", "x86_linear_fusions", "x86_inductor[qat,dynamic]", True, True, True)
    yield ("zoo", "resnet18", "x86_inductor[qat]", True, True, True)
    # After a non-strict export, on models that call no module twice (where torchao
    # does not raise), the ruleset is exact too: source() and `.partition` read the
    # fallbacks get_source_partitions uses there.
    yield ("zoo", "mobilenet_v2", "x86_inductor", False, False, True)
    yield from _grid("small", ("x86_linear_fusions", "x86_propagation", "add_mul_cat"),
                     ("x86_inductor",))
    yield ("small", "x86_conv_bn_add_relu", "x86_inductor[qat]", True, False, True)


CASES = list(_cases())


def case_id(case) -> str:
    kind, model, spec, qat, strict, numerics = case
    return f"{model}|{spec}" + ("|strict" if strict else "")


def ruleset_for(spec: str, strict: bool):
    """The built-in ruleset with the anchor's flags as parameters."""
    name, _, flags = spec.partition("[")
    params = {flag: True for flag in flags.rstrip("]").split(",") if flag}
    if name == "xnnpack":
        params["flavor"] = "torchao"   # these rows hold torchao's testing copy
    if strict and name == "xnnpack":
        params["strict_export"] = True
    return qrules.load(name, **params)


def run_case(case):
    kind, model, spec, qat, strict, numerics = case
    graph, inputs = exported(kind, model, qat=qat, strict=strict)
    try:
        report = _diff(case, graph, inputs)
    finally:
        if kind == "zoo":
            # A diff leaves prepared and converted copies of the model in reference
            # cycles (GraphModules); collect them now, or a zoo sweep holds gigabytes
            # until Python's next full collection (the report run was OOM-killed at
            # 13 GB with the suite running beside it).
            gc.collect()
    return report, classify(report, model, KNOWN_LANGUAGE_GAPS)


def _diff(case, graph, inputs):
    kind, model, spec, qat, strict, numerics = case
    return diff(f"torchao:{spec}", ruleset_for(spec, strict), graph, inputs, qat=qat,
                numerics=numerics, model_label=model,
                calibration=[inputs] if kind == "zoo" else None)


# Per case: mismatches each gap accounts for. Every other mismatch is a failure.
EXPECTED: dict[str, dict[str, int]] = {
}
