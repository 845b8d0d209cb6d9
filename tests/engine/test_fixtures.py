"""Annotation fixtures: a ruleset, a model, and the exact annotations it must produce.

Fixture format (``tests/engine/fixtures/*.qrule``)
--------------------------------------------------
* As ``tests/fixtures/diagnostics``: a case starts after a line beginning with
  ``# -----`` (the rest is its title); text before the first separator is the file's
  preamble. Each case is a complete .qrule source, loaded with
  ``qrules.load_text(text, "case.qrule", **params)``; its line 1 is the line after the
  separator.
* ``# model: NAME`` (required): a model of ``MODELS`` in ``tests/models/``, exported with
  ``torch.export.export(m, args).module()``.
* ``# params: k=v, ...``: parameters to bind (``true``/``false``/ints/strings).
* ``# expect: NODE RULE [SOURCE=SPEC ...] [out=SPEC]``: after
  ``transform_for_annotation`` and ``annotate``, node ``NODE`` carries an annotation made
  by rule ``RULE`` whose ``input_qspec_map`` is exactly the listed ``SOURCE=SPEC`` pairs
  (keyed by the source node's name) and whose ``output_qspec`` is ``SPEC`` (``none``
  when ``out=`` is left out). Every annotated node must be listed: a node not listed
  must carry no annotation.
* SPEC names a torchao spec: ``none``; a ``QuantizationSpec`` as its dtype plus
  ``.sym`` (symmetric), ``.pcN`` (per channel, axis N), ``.fq`` (float qparams),
  ``.dyn`` (dynamic), e.g. ``int8``, ``int8.sym.pc0``; ``shared(NODE)`` (shares a
  node's output) or ``shared(SRC>USER)`` (an input edge); ``derived(EDGE,EDGE,...)``;
  ``fixed(DTYPE,SCALE,ZERO_POINT)``.
* ``# error: CODE LINE:COL``: annotating raises ``qrules.ValidationError`` with exactly
  these diagnostics (codes at the rule's ``file:line:col``), and the graph is left
  exactly as it was: same code, and every node's meta holds the same objects.
* Every annotated node's ``node.meta["qrules"]`` must name its rule, the ruleset, and
  ``case.qrule:LINE:COL`` where the case text has that rule's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import qrules
from qrules.adapter.torchao import (
    DerivedQuantizationSpec, FixedQParamsQuantizationSpec, QuantizationSpec,
    SharedQuantizationSpec,
)

from .conftest import exported_copy

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASE_NAME = "case.qrule"

_SEPARATOR = re.compile(r"^# -----\s*(.*)$")
_MODEL = re.compile(r"^#\s*model:\s*(\w+)\s*$")
_PARAMS = re.compile(r"^#\s*params:\s*(.+)$")
_EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s+(\S+)((?:\s+\S+=\S+)*)\s*$")
_ERROR = re.compile(r"^#\s*error:\s*(QR\d{3})\s+(\d+):(\d+)\s*$")
_DIRECTIVE = re.compile(r"^#\s*(model|params|expect|error)\b")


@dataclass
class Case:
    id: str
    title: str
    text: str
    model: str = ""
    params: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)   # node -> (rule, {src: spec}, out)
    errors: set = field(default_factory=set)       # {(code, line, col)}


def _value(text: str):
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text.strip()


def _parse_case(case: Case) -> None:
    for number, line in enumerate(case.text.splitlines(), 1):
        if not _DIRECTIVE.match(line):
            continue
        if m := _MODEL.match(line):
            case.model = m.group(1)
        elif m := _PARAMS.match(line):
            for pair in m.group(1).split(","):
                key, _, value = pair.partition("=")
                case.params[key.strip()] = _value(value)
        elif m := _EXPECT.match(line):
            node, rule, rest = m.groups()
            pairs = dict(item.split("=", 1) for item in rest.split())
            out = pairs.pop("out", "none")
            assert node not in case.expected, f"{case.id}: node {node} expected twice"
            case.expected[node] = (rule, pairs, out)
        elif m := _ERROR.match(line):
            case.errors.add((m.group(1), int(m.group(2)), int(m.group(3))))
        else:
            raise AssertionError(f"{case.id}:{number}: malformed directive {line!r}")
    assert case.model, f"{case.id}: no `# model:` line"
    assert case.expected or case.errors or "no annotation" in case.title, \
        f"{case.id}: expects nothing (say 'no annotation' in the title if that is meant)"


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(FIXTURES.glob("*.qrule")):
        current = None
        for line in path.read_text().splitlines(keepends=True):
            if m := _SEPARATOR.match(line):
                current = Case(f"{path.stem}:{len(cases) + 1}", m.group(1).strip(), "")
                cases.append(current)
            elif current is not None:
                current.text += line
    for case in cases:
        _parse_case(case)
    return cases


ALL_CASES = load_cases()


# ------------------------------------------------------------------ spec tokens


def _edge(edge) -> str:
    if isinstance(edge, tuple):
        return f"{edge[0].name}>{edge[1].name}"
    return edge.name


def spec_token(spec) -> str:
    if spec is None:
        return "none"
    if isinstance(spec, SharedQuantizationSpec):
        return f"shared({_edge(spec.edge_or_node)})"
    if isinstance(spec, DerivedQuantizationSpec):
        return f"derived({','.join(_edge(e) for e in spec.derived_from)})"
    dtype = str(spec.dtype).replace("torch.", "")
    if isinstance(spec, FixedQParamsQuantizationSpec):
        return f"fixed({dtype},{spec.scale:g},{spec.zero_point})"
    assert isinstance(spec, QuantizationSpec), spec
    scheme = str(spec.qscheme)
    parts = [dtype]
    if "symmetric" in scheme:
        parts.append("sym")
    if "per_channel" in scheme:
        parts.append(f"pc{spec.ch_axis}")
    if "float_qparams" in scheme:
        parts.append("fq")
    if spec.is_dynamic:
        parts.append("dyn")
    return ".".join(parts)


def annotations(gm: torch.fx.GraphModule) -> dict:
    """node name -> (rule, {source name: spec token}, output token)."""
    out = {}
    for node in gm.graph.nodes:
        annotation = node.meta.get("quantization_annotation")
        if annotation is None:
            continue
        provenance = node.meta.get("qrules") or {}
        inputs = {src.name: spec_token(s) for src, s in annotation.input_qspec_map.items()}
        out[node.name] = (provenance.get("rule"), inputs, spec_token(annotation.output_qspec))
    return out


def snapshot(gm: torch.fx.GraphModule):
    """Everything annotating may touch: the code, and each node's meta (by identity)."""
    return gm.code, [(node, node.name, {k: id(v) for k, v in node.meta.items()})
                     for node in gm.graph.nodes]


def check_provenance(gm, text: str, ruleset_name: str, filename: str = CASE_NAME) -> int:
    """Every annotation's provenance names its rule at the rule's name in ``text``;
    returns how many annotated nodes there were."""
    lines = text.splitlines()
    count = 0
    for node in gm.graph.nodes:
        if "quantization_annotation" not in node.meta:
            continue
        count += 1
        provenance = node.meta["qrules"]
        assert provenance["ruleset"] == ruleset_name
        file, line, col = provenance["location"].rsplit(":", 2)
        assert file == filename
        source = lines[int(line) - 1]
        name = provenance["rule"]
        assert source[int(col) - 1:].startswith(name), (node.name, provenance, source)
        assert re.match(rf"\s*(override\s+)?rule\s+{name}\b", source), source
    return count


@pytest.mark.parametrize("case", ALL_CASES, ids=[f"{c.id} {c.title}" for c in ALL_CASES])
def test_case(case: Case):
    ruleset = qrules.load_text(case.text, CASE_NAME, **case.params)
    gm, _ = exported_copy(case.model)
    quantizer = ruleset.quantizer()
    gm = quantizer.transform_for_annotation(gm)
    if case.errors:
        before = snapshot(gm)
        with pytest.raises(qrules.ValidationError) as info:
            quantizer.annotate(gm)
        found = {(d.code, d.span.line, d.span.col) for d in info.value.diagnostics}
        assert found == case.errors
        message = str(info.value)
        for code, line, col in case.errors:
            assert f"{CASE_NAME}:{line}:{col}: {code}" in message
        assert snapshot(gm) == before, "a failed annotate changed the graph"
        return
    quantizer.annotate(gm)
    assert annotations(gm) == case.expected
    check_provenance(gm, case.text, ruleset.name)


def test_cases_are_well_formed():
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)
    assert len(ALL_CASES) >= 30


def test_provenance_of_the_builtin_xnnpack_ruleset(resnet18):
    import copy

    from qrules.resources import builtin_ruleset_path

    _, _, graph = resnet18
    ruleset = qrules.load("xnnpack", per_channel=True)
    quantizer = ruleset.quantizer()
    gm = quantizer.transform_for_annotation(copy.deepcopy(graph))
    quantizer.annotate(gm)
    text = builtin_ruleset_path("xnnpack").read_text()
    assert check_provenance(gm, text, "xnnpack", "rulesets/xnnpack.qrule") > 30
