"""``qrules report``: one self-contained HTML page about a ruleset on a model: the graph
drawn (nodes coloured by rule, quantize/dequantize edges marked, float islands
highlighted), both coverages, the explain text, and a rule's source on click.

The layout is computed in Python (``qrules.engine.report``) and written as inline SVG,
so the page needs no network and shows the graph even with scripts off; the inline
script only makes nodes clickable. torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qrules.cli.common import (
    add_model_args, add_ruleset_arg, exported, load_model, parse_params, parse_shape, usage_errors,
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 12px 20px; background: #263238; color: #fff; }
header h1 { font-size: 18px; margin: 0 0 4px; }
.stats span { margin-right: 18px; }
main { display: flex; gap: 0; height: calc(100vh - 70px); }
#graph { flex: 1; overflow: auto; background: #fff; border-right: 1px solid #ddd; }
aside { width: 420px; overflow: auto; padding: 12px 16px; }
pre { background: #f3f3f3; padding: 8px; overflow: auto; font-size: 12px; }
.legend div { margin: 2px 0; cursor: pointer; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          vertical-align: middle; border: 1px solid #555; }
g.node rect { stroke: #333; stroke-width: 1; }
g.node.float rect { fill: #fff; stroke: #c62828; stroke-width: 2; stroke-dasharray: 4 2; }
g.node.nonfloat rect { fill: #e0e0e0; }
g.node.io rect { fill: #cfd8dc; }
g.node.left-float rect { fill: #fff; stroke-width: 2; }
g.node text { font-size: 11px; pointer-events: none; }
g.node { cursor: pointer; }
g.node.selected rect { stroke: #000; stroke-width: 3; }
path.edge { stroke: #9e9e9e; stroke-width: 1; fill: none; }
path.edge.qdq { stroke: #e65100; stroke-width: 2; }
circle.qdq { fill: #e65100; }
rect.island { fill: rgba(198, 40, 40, 0.08); stroke: rgba(198, 40, 40, 0.5); }
"""

#: The page may load nothing: only its own inline style and script run.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

SCRIPT = """
const data = JSON.parse(document.getElementById('report-data').textContent);
const drawn = document.querySelectorAll('#graph g.node').length;
document.getElementById('drawn-count').textContent = drawn;
function show(name) {
  const node = data.nodes[name];
  document.querySelectorAll('g.node.selected').forEach(g => g.classList.remove('selected'));
  const g = document.querySelector('g.node[data-name="' + CSS.escape(name) + '"]');
  if (g) g.classList.add('selected');
  document.getElementById('node-title').textContent = name + '  (' + node.target + ')';
  document.getElementById('node-why').textContent = node.rule
    ? (node.quantized ? 'quantized' : 'left in float') + ' by rule ' + node.rule
      + ' (' + node.location + ')'
    : (node.reason || node.op);
  document.getElementById('rule-source').textContent =
    node.rule ? data.rules[node.rule] : '';
}
document.querySelectorAll('#graph g.node').forEach(
  g => g.addEventListener('click', () => show(g.dataset.name)));
// report.html#node=NAME opens with that node selected (a link to share).
const wanted = decodeURIComponent(location.hash.replace(/^#node=/, ''));
if (location.hash.startsWith('#node=') && data.nodes[wanted]) show(wanted);
"""


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML page: the graph coloured by rule, coverage, explain",
        description="Write one self-contained HTML page about a ruleset on a model: the "
                    "exported graph drawn with nodes coloured by the rule that annotated "
                    "them, the edges that get quantize/dequantize pairs, float islands, "
                    "both coverages, the explain text, and each rule's source on click.")
    add_ruleset_arg(parser, None)
    add_model_args(parser, None)
    parser.add_argument("--qat", action="store_true",
                        help="report on the graph prepare_qat_pt2e sees (batch norms kept)")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="where to write the page (default report.html)")
    parser.set_defaults(run=usage_errors(run))


def run(args: argparse.Namespace) -> int:
    import qrules
    from qrules.engine.report import build_report

    ruleset = qrules.load(args.ruleset, **parse_params(args.param))
    model, inputs = load_model(args.model, parse_shape(args.input_shape))
    sources = {}
    for rule in ruleset.rules:
        span = rule.entry.rule.span
        text = ruleset.checked.sources.get(span.file or "", "")
        sources[rule.name] = f"# {span}\n{text[span.start:span.end]}"
    page = build_report(exported(model, inputs), ruleset.quantizer(), rule_sources=sources,
                        title=f"{ruleset.name} on {args.model}", qat=args.qat)
    Path(args.output).write_text(render(page), encoding="utf-8")
    print(f"wrote {args.output}: {len(page.nodes)} nodes, {len(page.rules)} rules, "
          f"{page.coverage:.1f}% covered by a rule, {page.quantized_coverage:.1f}% quantized, "
          f"{len(page.islands)} float island(s)")
    return 0


def _node_class(node) -> str:
    if node.op != "call_function":
        return "io"
    if node.island is not None:
        return "float"
    if node.rule is not None:
        return "rule" if node.quantized else "rule left-float"
    return "nonfloat"


def _svg(page) -> str:
    from html import escape  # html.entities is large, and `qrules lint` imports this module

    from qrules.engine.report import NODE_HEIGHT, NODE_WIDTH

    colour = {rule.name: rule.colour for rule in page.rules}
    where = {node.name: node for node in page.nodes}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{page.width:.0f}" '
             f'height="{page.height:.0f}" viewBox="0 0 {page.width:.0f} {page.height:.0f}">']
    for index, group in enumerate(page.islands):
        members = [where[name] for name in group]
        x0, y0 = min(n.x for n in members) - 6, min(n.y for n in members) - 6
        x1 = max(n.x for n in members) + NODE_WIDTH + 6
        y1 = max(n.y for n in members) + NODE_HEIGHT + 6
        parts.append(f'<rect class="island" data-island="{index}" x="{x0:.0f}" y="{y0:.0f}" '
                     f'width="{x1 - x0:.0f}" height="{y1 - y0:.0f}" rx="8"/>')
    for edge in page.edges:
        a, b = where[edge.source], where[edge.target]
        x1, y1 = a.x + NODE_WIDTH / 2, a.y + NODE_HEIGHT
        x2, y2 = b.x + NODE_WIDTH / 2, b.y
        # An edge skipping rows (a residual) bends to the side, around the nodes between.
        bend = NODE_WIDTH * 0.75 if y2 - y1 > 2 * NODE_HEIGHT else 0
        parts.append(f'<path class="edge{" qdq" if edge.qdq else ""}" d="M{x1:.0f},{y1:.0f} '
                     f'C{x1 + bend:.0f},{y1 + 30:.0f} {x2 + bend:.0f},{y2 - 30:.0f} '
                     f'{x2:.0f},{y2:.0f}"/>')
        if edge.qdq:  # on the curve's midpoint
            parts.append(f'<circle class="qdq" cx="{(x1 + x2) / 2 + 0.75 * bend:.0f}" '
                         f'cy="{(y1 + y2) / 2:.0f}" r="4"><title>quantize/dequantize'
                         f'</title></circle>')
    for node in page.nodes:
        fill = colour.get(node.rule, "#ffffff") if node.quantized else None
        style = f' style="fill:{fill}"' if fill else (
            f' style="stroke:{colour[node.rule]}"' if node.rule else "")
        label = node.name if len(node.name) <= 22 else node.name[:21] + "…"
        parts.append(
            f'<g class="node {_node_class(node)}" data-name="{escape(node.name)}" '
            f'data-op="{node.op}" transform="translate({node.x:.0f},{node.y:.0f})">'
            f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="4"{style}/>'
            f'<text x="6" y="19">{escape(label)}</text>'
            f'<title>{escape(node.name)}: {escape(node.target)}</title></g>')
    parts.append("</svg>")
    return "".join(parts)


def _data(page) -> str:
    data = {"nodes": {n.name: {"op": n.op, "target": n.target, "rule": n.rule,
                               "location": n.location, "quantized": n.quantized,
                               "reason": n.reason} for n in page.nodes},
            "rules": {rule.name: rule.source for rule in page.rules}}
    # `</` would end the script element early; JSON allows `<\/` for it.
    return json.dumps(data).replace("</", "<\\/")


def render(page) -> str:
    """The whole page: inline CSS, SVG, data and script; nothing loaded from anywhere."""
    from html import escape

    legend = "".join(
        f'<div title="{escape(rule.location)}"><span class="swatch" '
        f'style="background:{rule.colour}"></span>{escape(rule.name)} ({rule.nodes})</div>'
        for rule in page.rules)
    islands = "".join(f"<li>{escape(', '.join(group))}</li>" for group in page.islands)
    qdq = sum(edge.qdq for edge in page.edges)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>qrules report: {escape(page.title)}</title><style>{STYLE}</style></head>
<body>
<header><h1>qrules report: {escape(page.title)}</h1>
<div class="stats"><span>ruleset <b>{escape(page.ruleset)}</b></span>
<span><b id="node-count">{len(page.nodes)}</b> nodes
(<b id="call-node-count">{page.call_nodes}</b> call nodes, <b id="drawn-count">?</b> drawn)</span>
<span><b id="coverage">{page.coverage:.1f}%</b> covered by a rule</span>
<span><b id="quantized-coverage">{page.quantized_coverage:.1f}%</b> quantized</span>
<span><b id="qdq-count">{qdq}</b> Q/DQ edges</span>
<span><b id="island-count">{len(page.islands)}</b> float islands</span></div></header>
<main><div id="graph">{_svg(page)}</div>
<aside><h2>Selected node</h2><p id="node-title">click a node</p><p id="node-why"></p>
<pre id="rule-source"></pre>
<h2>Rules</h2><div class="legend">{legend}</div>
<h2>Float islands</h2><ul id="islands">{islands}</ul>
<h2>Explain</h2><pre id="explain">{escape(page.explain_text)}</pre></aside></main>
<script type="application/json" id="report-data">{_data(page)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
