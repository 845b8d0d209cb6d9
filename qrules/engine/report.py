"""The model of ``qrules report``'s page: the graph the quantizer annotates, laid out in
layers, each node with the rule that annotated it (or why it stays float), the edges
that get a quantize/dequantize pair, the float islands, the coverage and the explain
text. Plain data; ``qrules.cli.report`` turns it into one self-contained HTML page.

The graph is prepared as ``prepare_pt2e`` prepares it before annotating (batch norms
folded unless QAT, the ruleset's transforms run) and annotated by the quantizer on a
copy; ``explain`` reads the same graph, so node names agree.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

from torch.fx import GraphModule

from qrules.adapter.quantizer import RulesetQuantizer
from qrules.adapter.torchao import ANNOTATION_KEY, fold_batch_norms
from qrules.engine.explain import explain

#: Box size and gaps of the drawing, in SVG units.
NODE_WIDTH, NODE_HEIGHT, H_GAP, V_GAP, MARGIN = 150, 30, 24, 46, 20
#: Rule colours, in the order rules first annotate a node: distinct hues, readable text.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#ff9da7", "#8cd17d", "#a0cbe8", "#d4a6c8", "#86bcb6", "#f1ce63", "#b6992d")
NON_FLOAT = "non-float output"


@dataclass(frozen=True)
class PageNode:
    name: str
    op: str                      # placeholder, get_attr, call_function, output
    target: str
    rule: Optional[str]
    location: Optional[str]
    quantized: bool
    reason: Optional[str]        # why a call node stays float
    island: Optional[int]        # index into ReportPage.islands
    x: float
    y: float


@dataclass(frozen=True)
class PageEdge:
    source: str
    target: str
    qdq: bool                    # torchao inserts a quantize/dequantize pair here


@dataclass(frozen=True)
class PageRule:
    name: str
    location: str
    colour: str
    nodes: int
    source: str                  # the rule's text in its .qrule file


@dataclass(frozen=True)
class ReportPage:
    title: str
    ruleset: str
    nodes: tuple[PageNode, ...]
    edges: tuple[PageEdge, ...]
    rules: tuple[PageRule, ...]
    islands: tuple[tuple[str, ...], ...]   # connected float call nodes
    coverage: float
    quantized_coverage: float
    explain_text: str
    width: float
    height: float

    @property
    def call_nodes(self) -> int:
        return sum(node.op == "call_function" for node in self.nodes)


def prepared_graph(graph_module: GraphModule, quantizer: RulesetQuantizer,
                   qat: bool) -> GraphModule:
    """A copy of the graph as the quantizer annotates it inside prepare, annotated."""
    work = copy.deepcopy(graph_module)
    if not qat:
        fold_batch_norms(work)
    work = quantizer.transform_for_annotation(work)
    quantizer.annotate(work)
    return work


def _layers(graph_module: GraphModule) -> dict:
    """Longest path from the inputs; a node without inputs (a weight, a constant) sits
    just above its first user, so the weights do not all crowd the first row."""
    layer = {}
    for node in graph_module.graph.nodes:
        layer[node] = 1 + max((layer[p] for p in node.all_input_nodes), default=-1)
    for node in graph_module.graph.nodes:
        if not node.all_input_nodes and node.users:
            layer[node] = max(0, min(layer[user] for user in node.users) - 1)
    return layer


def _positions(graph_module: GraphModule) -> tuple[dict, float, float]:
    layer = _layers(graph_module)
    rows: dict[int, list] = {}
    for node in graph_module.graph.nodes:  # graph order: a stable first order per row
        rows.setdefault(layer[node], []).append(node)
    step = NODE_WIDTH + H_GAP
    # Two spare columns, so a node can sit under its input rather than be packed left.
    widest = max((len(row) for row in rows.values()), default=1) + 2
    width = 2 * MARGIN + widest * step - H_GAP
    x: dict = {}

    def place(row: list, wanted) -> None:
        """Each node at its wanted x (None: right after the previous one), pushed right
        to clear the previous node, then back left to stay inside the drawing."""
        right = MARGIN
        for node in row:
            goal = wanted(node)
            x[node] = max(right, MARGIN if goal is None else goal)
            right = x[node] + step
        limit = width - MARGIN - NODE_WIDTH
        for node in reversed(row):
            x[node] = min(x[node], limit)
            limit = x[node] - step

    def mean_x(nodes):
        placed = [x[n] for n in nodes if n in x]
        return sum(placed) / len(placed) if placed else None

    # Barycenter sweeps: down, each node under the mean of its inputs; then up, the
    # nodes without inputs (weights, constants) over the mean of their users.
    for index in sorted(rows):
        wanted = {n: mean_x(n.all_input_nodes) for n in rows[index]}
        rows[index].sort(key=lambda n: float("inf") if wanted[n] is None else wanted[n])
        place(rows[index], wanted.get)
    for index in sorted(rows, reverse=True):
        wanted = {n: x[n] if n.all_input_nodes else mean_x(n.users) for n in rows[index]}
        rows[index].sort(key=lambda n: x[n] if wanted[n] is None else wanted[n])
        place(rows[index], wanted.get)
    out = {node: (x[node], MARGIN + layer[node] * (NODE_HEIGHT + V_GAP)) for node in x}
    height = 2 * MARGIN + (max(rows, default=0) + 1) * (NODE_HEIGHT + V_GAP) - V_GAP
    return out, width, height


def _islands(graph_module: GraphModule, floating: set) -> list[tuple[str, ...]]:
    """Connected groups of float call nodes (an edge between two of them joins them)."""
    parent = {name: name for name in floating}

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for node in graph_module.graph.nodes:
        for producer in node.all_input_nodes:
            if node.name in floating and producer.name in floating:
                parent[root(node.name)] = root(producer.name)
    groups: dict[str, list[str]] = {}
    for node in graph_module.graph.nodes:  # graph order inside and between islands
        if node.name in floating:
            groups.setdefault(root(node.name), []).append(node.name)
    return [tuple(group) for group in groups.values()]


def _qdq_edges(graph_module: GraphModule) -> set[tuple[str, str]]:
    """Edges with a spec: on the consumer's input, or on the producer's output."""
    out = set()
    for node in graph_module.graph.nodes:
        annotation = node.meta.get(ANNOTATION_KEY)
        if annotation is None:
            continue
        for producer, spec in (annotation.input_qspec_map or {}).items():
            if spec is not None:
                out.add((producer.name, node.name))
        if annotation.output_qspec is not None:
            out.update((node.name, user.name) for user in node.users)
    return out


def build_report(graph_module: GraphModule, quantizer: RulesetQuantizer, *,
                 rule_sources: dict[str, str], title: str, qat: bool = False) -> ReportPage:
    """The page for one model and one quantizer. ``rule_sources``: each rule's text."""
    explanation = explain(graph_module, quantizer, qat=qat)
    work = prepared_graph(graph_module, quantizer, qat)
    explained = {n.node: n for n in explanation.nodes}
    floating = {n.node for n in explanation.nodes
                if not n.quantized and n.reason != NON_FLOAT}
    islands = _islands(work, floating)
    island_of = {name: i for i, group in enumerate(islands) for name in group}
    positions, width, height = _positions(work)
    rules: dict[str, PageRule] = {}
    nodes = []
    for node in work.graph.nodes:
        info = explained.get(node.name)
        rule = info.rule if info else None
        if rule is not None:
            known = rules.get(rule)
            rules[rule] = PageRule(rule, info.location, known.colour if known else
                                   PALETTE[len(rules) % len(PALETTE)],
                                   (known.nodes if known else 0) + 1,
                                   rule_sources.get(rule, ""))
        x, y = positions[node]
        nodes.append(PageNode(node.name, node.op, str(node.target), rule,
                              info.location if info else None,
                              bool(info and info.quantized), info.reason if info else None,
                              island_of.get(node.name), x, y))
    qdq = _qdq_edges(work)
    edges = tuple(PageEdge(p.name, n.name, (p.name, n.name) in qdq)
                  for n in work.graph.nodes for p in n.all_input_nodes)
    return ReportPage(title, explanation.ruleset, tuple(nodes), edges, tuple(rules.values()),
                      tuple(islands), explanation.coverage, explanation.quantized_coverage,
                      explanation.format(), width, height)
