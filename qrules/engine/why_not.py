"""Why no rule took a float node: for every rule that could have, the first thing that
failed there (explain's "why not" entries).

A rule could have taken a node when one of its steps accepts the node's op (tried from
each head that many producers upstream), when its head is a wildcard (tried at the
node), or when its region holds the node (tried at the region's first member); also a
rule the parameters turned off (its `when`). The matcher itself records the failure
(``Matcher.why_not``): the same step, link and predicate functions annotating runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch.fx import Node

from qrules.compile.matchers import CompiledRule, CompiledRuleset
from qrules.compile.targets import target_key
from qrules.passes.match import Matcher, Miss
from qrules.passes.state import State
from qrules.span import Span

#: Heads tried per rule and node: a node deep in a fan-in has many ancestors.
_MAX_HEADS = 4


@dataclass(frozen=True)
class WhyNot:
    """One rule that could have taken the node, and the first thing that failed."""

    rule: str
    location: str            # file:line:col of the rule's name
    head: Optional[str]      # the node the rule was tried from (None: rule is off)
    kind: str                # step | link | predicate | phase | scope | region | order | when
    detail: str
    span: Optional[str] = None    # file:line:col of the failing predicate or condition
    source: Optional[str] = None  # that predicate's or condition's text
    values: str = ""              # what the failing predicate read

    def as_dict(self) -> dict:
        return {"rule": self.rule, "location": self.location, "head": self.head,
                "kind": self.kind, "detail": self.detail, "span": self.span,
                "source": self.source, "values": self.values}

    def format(self) -> str:
        where = f" at {self.head}" if self.head else ""
        text = f"{self.rule}{where}: {self.kind}: {self.detail}"
        if self.source:
            text += f": `{self.source}` ({self.span})"
        elif self.span:
            text += f" ({self.span})"
        return text + (f" [{self.values}]" if self.values else "")


class Turns:
    """The annotations as they stood when each rule's turn came: those of earlier
    passes (Python scopes, other quantizers) and of this ruleset's rules ranked before
    it (or equal: its own earlier matches). Judging a rule by the final annotations
    would blame a later rule for taking a node the rule had already passed over."""

    def __init__(self, compiled: CompiledRuleset, existing, earlier: dict, planned: dict):
        self.compiled = compiled
        self.existing = existing
        self.earlier = earlier
        self.planned = planned
        self._states: dict[tuple, State] = {}

    def state(self, rule: CompiledRule) -> State:
        found = self._states.get(rule.rank)
        if found is None:
            found = self._states[rule.rank] = State(self.compiled, self.existing)
            found.planned.update(self.earlier)
            found.planned.update({node: note for node, note in self.planned.items()
                                  if note.rule.rank <= rule.rank})
        return found


def why_not(node: Node, compiled: CompiledRuleset, matcher: Matcher, turns: Turns,
            sources: dict) -> tuple[WhyNot, ...]:
    """Every rule of ``compiled`` that could have taken ``node``, each with its failure."""
    found = []
    for rule in compiled.rules:
        heads, wanted = _heads(rule, node, matcher)
        if wanted:
            producers = ", ".join(f"{p.name} ({p.target})" for p in _producers(node))
            found.append(WhyNot(rule.name, rule.location, None, "link",
                                f"{node.name} is fed by {producers or 'no node'}; the step "
                                f"before it needs {' | '.join(sorted(wanted))}"))
        for head in heads:
            miss = matcher.why_not(rule, head, turns.state(rule)) or Miss(
                "order", "it matches here on the annotations made before its turn: a "
                "match of the same turn took a node first", 0, head.name)
            found.append(_entry(rule, head.name, miss, sources))
    for rule, reason, span in compiled.off:
        if any(step.op_for(target_key(node)) for steps in rule.expansions for step in steps):
            found.append(WhyNot(rule.name, rule.location, None, "when",
                                f"off with these parameters: {reason}", str(span)))
    return tuple(found)


def _entry(rule: CompiledRule, head: str, miss: Miss, sources: dict) -> WhyNot:
    return WhyNot(rule.name, rule.location, head, miss.kind, miss.detail,
                  str(miss.span) if miss.span else None, _text(miss.span, sources),
                  miss.values)


def _text(span: Optional[Span], sources: dict) -> Optional[str]:
    if span is None or span.file not in sources:
        return None
    return " ".join(sources[span.file][span.start:span.end].split())


def _heads(rule: CompiledRule, node: Node, matcher: Matcher) -> tuple[list[Node], set]:
    """The heads to try ``rule`` from, and which ops a later step of the rule needs
    right above ``node`` when no producer chain leads back to a head."""
    heads: dict[Node, None] = {}
    wanted: set = set()
    for steps in rule.expansions:
        first = steps[0]
        if first.region is not None:
            parts = matcher.region_of(first.region, node)
            if parts is not None:
                heads[parts[0][0]] = None
            continue
        if first.any_op:
            heads[node] = None
            continue
        for index, step in enumerate(steps):
            if step.op_for(target_key(node)) is None and not (index and step.any_op):
                continue
            found = _upstream(node, steps, index)
            heads.update(dict.fromkeys(found))
            # A wildcard step accepts every node: only a chain back to a head tells.
            if not found and not step.any_op:
                wanted.update(op.name for op in steps[index - 1].ops)
    ordered = sorted(heads, key=matcher.order.__getitem__)[:_MAX_HEADS]
    return ordered, (set() if ordered else wanted)


def _upstream(node: Node, steps, index: int) -> list[Node]:
    """The nodes from which steps[:index] lead, producer by producer, to ``node``."""
    frontier = [node]
    for step in reversed(steps[:index]):
        frontier = list(dict.fromkeys(
            source for current in frontier for source in _producers(current)
            if step.any_op or step.op_for(target_key(source)) is not None))
    return frontier


def _producers(node: Node) -> list[Node]:
    # A tuple op's getitem sits between two steps without being one.
    return [source.all_input_nodes[0] if _is_getitem(source) and source.all_input_nodes
            else source for source in node.all_input_nodes]


def _is_getitem(node: Node) -> bool:
    return getattr(node.target, "__name__", "") == "getitem"
