"""Rule tests (``.qtest`` files): parse them, check a case against an explanation,
and rewrite a file's expectations from the current annotations (``--update``).

The format (docs/cli.md, "qrules test") is one directive per line, ``#`` comments:

    ruleset xnnpack                    # a built-in name, or a .qrule path (from here)
    model models.py:conv_block 1,3,16,16   # starts a case: torchvision:NAME,
    param per_channel=true                 #   FILE.py:FACTORY SHAPE or FILE.pt2
    qat                                    # explain as prepare_qat_pt2e sees the graph
    coverage >= 90%                        # quantized; `covered >= N%`: by a rule
    conv2d: conv_relu                      # annotated by rule conv_relu
    conv2d: conv_relu weight=w_i8_pc       # ... and the edges of key `weight` get w_i8_pc
    linear: float because no rule for this op   # float, the reason as explain words it

Nothing here runs a model: the command (qrules.cli.test) and the pytest plugin load
the ruleset and model, run ``explain``, and hand the result to ``check``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

_NODE = re.compile(r"^(?P<node>[A-Za-z_][\w.]*)\s*:\s*(?P<rest>.*)$")
_COVERAGE = re.compile(r"^(?P<metric>coverage|covered)\s*>=\s*(?P<value>\d+(\.\d+)?)\s*%$")
_EDGE = re.compile(r"^(?P<edge>[A-Za-z_][\w.]*(\[\d+\])?)=(?P<spec>\S+)$")
_SHAPE = re.compile(r"^\d+([,x]\d+)*$")


class RuleTestError(ValueError):
    """A ``.qtest`` file that does not parse: ``file:line: message``."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeExpectation(_Frozen):
    """``NODE: RULE [EDGE=SPEC]...`` or ``NODE: float [because REASON]``."""

    line: int
    node: str
    rule: Optional[str] = None           # None: the node stays float
    reason: Optional[str] = None         # a prefix of explain's float reason
    specs: tuple[tuple[str, str], ...] = ()   # (config key, spec name)


class CoverageExpectation(_Frozen):
    line: int
    metric: Literal["coverage", "covered"]   # quantized / covered by a rule
    at_least: float


class Case(_Frozen):
    line: int                            # its `model` line
    model: str
    input_shape: Optional[str] = None
    params: tuple[str, ...] = ()         # NAME=VALUE, as --param takes them
    qat: bool = False
    nodes: tuple[NodeExpectation, ...] = ()
    coverage: tuple[CoverageExpectation, ...] = ()


class RuleTestFile(_Frozen):
    path: str
    ruleset: str
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class Failure:
    line: int
    message: str


def parse(text: str, path: str) -> RuleTestFile:
    """The file's cases; RuleTestError at the first line that does not parse."""
    ruleset: Optional[str] = None
    cases: list[dict] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()

        def error(message: str) -> RuleTestError:
            return RuleTestError(f"{path}:{number}: {message}")

        if word == "ruleset":
            if ruleset is not None or cases or not rest:
                raise error("`ruleset NAME` comes once, first")
            ruleset = rest
        elif ruleset is None:
            raise error("the file must start with `ruleset NAME` (a name or a .qrule path)")
        elif word == "model":
            parts = rest.split()
            if len(parts) not in (1, 2) or (len(parts) == 2 and not _SHAPE.match(parts[1])):
                raise error("`model SPEC [SHAPE]`, e.g. `model models.py:make 1,3,16,16`")
            cases.append({"line": number, "model": parts[0],
                          "input_shape": parts[1] if len(parts) == 2 else None,
                          "params": [], "nodes": [], "coverage": []})
        elif not cases:
            raise error(f"`{word}` before the first `model` line")
        elif word == "param":
            if "=" not in rest:
                raise error("`param NAME=VALUE`")
            cases[-1]["params"].append(rest.replace(" ", ""))
        elif line == "qat":
            cases[-1]["qat"] = True
        elif _COVERAGE.match(line):
            found = _COVERAGE.match(line)
            cases[-1]["coverage"].append(CoverageExpectation(
                line=number, metric=found["metric"], at_least=float(found["value"])))
        elif _NODE.match(line):
            cases[-1]["nodes"].append(_node_expectation(_NODE.match(line), number, error))
        else:
            raise error(f"cannot read {line!r}: expected model, param, qat, coverage >= N%, "
                        f"NODE: RULE or NODE: float because REASON")
    if ruleset is None:
        raise RuleTestError(f"{path}:1: the file must start with `ruleset NAME`")
    return RuleTestFile(path=path, ruleset=ruleset, cases=tuple(Case(**c) for c in cases))


def _node_expectation(found, number: int, error) -> NodeExpectation:
    words = found["rest"].split()
    if not words:
        raise error("`NODE: RULE` or `NODE: float`")
    if words[0] == "float":
        if len(words) > 1 and words[1] != "because" or len(words) == 2:
            raise error("`NODE: float because REASON`")
        reason = " ".join(words[2:]) or None
        return NodeExpectation(line=number, node=found["node"], reason=reason)
    specs = []
    for word in words[1:]:
        edge = _EDGE.match(word)
        if edge is None:
            raise error(f"`{word}`: an edge is KEY=SPEC, e.g. weight=w_i8 or input[1]=act")
        specs.append((edge["edge"], edge["spec"]))
    return NodeExpectation(line=number, node=found["node"], rule=words[0], specs=tuple(specs))


def check(case: Case, explanation) -> list[Failure]:
    """What of ``case`` the explanation does not bear out, one failure per line."""
    failures = []
    by_node = {n.node: n for n in explanation.nodes}
    for expected in case.nodes:
        found = by_node.get(expected.node)
        if found is None:
            failures.append(Failure(expected.line, f"no call node {expected.node!r} in the "
                                                   f"exported graph"))
            continue
        problem = _node_problem(expected, found)
        if problem:
            failures.append(Failure(expected.line, f"{expected.node}: {problem}"))
    for expected in case.coverage:
        value = (explanation.quantized_coverage if expected.metric == "coverage"
                 else explanation.coverage)
        if value + 1e-9 < expected.at_least:
            failures.append(Failure(expected.line, f"{expected.metric} is {value:.1f}%, "
                                                   f"expected >= {expected.at_least:g}%"))
    return sorted(failures, key=lambda failure: failure.line)


def _node_problem(expected: NodeExpectation, found) -> Optional[str]:
    got = (f"annotated by {found.rule} ({found.location})" if found.rule
           else f"float because {found.reason}")
    if expected.rule is None:
        if found.quantized:
            return f"expected float, got {got}"
        reason = found.reason or ""
        if expected.reason and not reason.startswith(expected.reason):
            return f"expected float because {expected.reason}, got float because {reason}"
        return None
    if found.rule != expected.rule:
        return f"expected rule {expected.rule}, got {got}"
    specs = _specs_by_key(found)
    for key, spec in expected.specs:
        have = specs.get(key)
        if have != {spec}:
            shown = ", ".join(sorted(have)) if have else "no spec"
            return f"expected {key}={spec}, got {key}={shown}"
    return None


def _specs_by_key(found) -> dict[str, set]:
    out: dict[str, set] = {}
    for key, _source, spec in found.specs:
        out.setdefault(key, set()).add(spec)
    return out


def expectation_lines(case: Case, explanation) -> list[str]:
    """The node lines ``--update`` writes: every float-valued call node in graph order;
    the edges a line named before are written again, with their current specs."""
    named = {e.node: [key for key, _ in e.specs] for e in case.nodes}
    lines = []
    for node in explanation.nodes:
        if node.reason == "non-float output":
            continue
        if node.rule is None:
            reason = re.sub(r" at \S+:\d+:\d+$", "", node.reason or "")
            lines.append(f"{node.node}: float because {reason}")
            continue
        specs = _specs_by_key(node)
        edges = "".join(f" {key}={sorted(specs[key])[0]}"
                        for key in named.get(node.node, ()) if key in specs)
        lines.append(f"{node.node}: {node.rule}{edges}")
    return lines


def updated(text: str, parsed: RuleTestFile, explanations: list) -> str:
    """``text`` with each case's node lines replaced by ``expectation_lines`` (at the
    place of its first node line, or at the end of the case) and each failing coverage
    bound lowered to the current value; every other line kept as it was."""
    lines = text.splitlines()
    replace: dict[int, list[str]] = {}    # 0-based line -> its new lines
    for index, (case, explanation) in enumerate(zip(parsed.cases, explanations)):
        fresh = expectation_lines(case, explanation)
        for expected in case.nodes:
            replace[expected.line - 1] = []
        for expected in case.coverage:
            value = (explanation.quantized_coverage if expected.metric == "coverage"
                     else explanation.coverage)
            if value + 1e-9 < expected.at_least:
                floor = math.floor(value * 10) / 10
                replace[expected.line - 1] = [f"{expected.metric} >= {floor:g}%"]
        if case.nodes:
            replace[case.nodes[0].line - 1] = fresh
        else:
            end = (parsed.cases[index + 1].line - 1 if index + 1 < len(parsed.cases)
                   else len(lines))
            # after the case's last directive: blank lines and the comments that
            # introduce the next case stay below the new lines
            while end > case.line and lines[end - 1].split("#", 1)[0].strip() == "":
                end -= 1
            replace[end - 1] = [*replace.get(end - 1, [lines[end - 1]]), *fresh]
    out = []
    for number, line in enumerate(lines):
        out.extend(replace.get(number, [line]))
    return "\n".join(out) + "\n"
