"""Print, as JSON, digests of what each built-in ruleset does to resnet18: the
annotations (node name -> described annotation, as ``qrules diff`` compares them)
after two annotate runs in this process, and the converted graph's code.

tests/test_determinism.py runs this under different PYTHONHASHSEED values and
compares the output; the digests must match across processes and across runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import torch  # noqa: E402
import torchvision  # noqa: E402

import qrules  # noqa: E402
from qrules.engine.diff import record_annotations  # noqa: E402

RULESETS = ("xnnpack", "x86_inductor", "embedding")


def digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def annotations(graph, ruleset) -> str:
    quantizer = qrules.load(ruleset).quantizer()
    model = quantizer.transform_for_annotation(copy.deepcopy(graph))
    model = quantizer.annotate(model)
    records = record_annotations(model)
    assert any(r.annotation for r in records.values()) or ruleset == "embedding"
    return digest(list(records.items()))


def converted(graph, inputs, ruleset) -> str:
    prepared = qrules.prepare(copy.deepcopy(graph), inputs, qrules.load(ruleset))
    qrules.calibrate(prepared, [inputs], progress=False)
    return digest(qrules.convert(prepared).code)


def main() -> None:
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    inputs = (torch.randn(1, 3, 32, 32),)
    graph = torch.export.export(model, inputs).module()
    out = {}
    for ruleset in RULESETS:
        out[ruleset] = {"annotations": [annotations(graph, ruleset) for _ in range(2)],
                        "converted": converted(graph, inputs, ruleset)}
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
