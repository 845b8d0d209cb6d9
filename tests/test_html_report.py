"""`qrules report` renders in a real browser: Debian's headless chromium loads the page
(no network), its script runs, the node count shown equals the graph's, every node is
drawn, and a screenshot is not blank. Chromium missing is a failure, not a skip
(.ci/run installs it)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import qrules
from qrules import cli

MODEL = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv1(x)))
        pooled = self.pool(y + self.conv2(y))
        return self.fc(torch.flatten(torch.tanh(pooled), 1))


def make():
    torch.manual_seed(0)
    return Net()
"""

RULESET = """
ruleset report_test version "1.0"
spec act = affine(int8, -128..127, observer=histogram)
spec w = symmetric(int8, -127..127, observer=minmax)
config static { input: act, weight: w, output: act }
rule conv_relu: conv2d -> relu? : static
rule add: add : { input: act, output: act }
rule pool: max_pool2d : { input: act, output: same_as(input) }
"""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed; `apt-get install chromium` (.ci/run does)")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "net.py").write_text(MODEL)
    (root / "rules.qrule").write_text(RULESET)
    page = root / "report.html"
    status = cli.main(["report", "--ruleset", str(root / "rules.qrule"),
                       "--model", f"{root / 'net.py'}:make", "--input-shape", "1,3,8,8",
                       "-o", str(page)])
    assert status == 0
    return root, page


def _graph_counts(root: Path) -> tuple[int, int]:
    """(all nodes, call nodes) of the graph the quantizer annotates, found without the
    report's code: the exported model with its batch norms folded, as prepare does."""
    import copy
    import importlib.util

    import torch

    from qrules.adapter.torchao import export_module, fold_batch_norms

    spec = importlib.util.spec_from_file_location("net", root / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = export_module(module.make().eval(), (torch.randn(1, 3, 8, 8),))
    explained = qrules.explain(graph, qrules.load(str(root / "rules.qrule")))
    folded = fold_batch_norms(copy.deepcopy(graph))
    return len(folded.graph.nodes), len(explained.nodes)


def _run(browser: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'profile'}",
                           *args], capture_output=True, text=True, timeout=180)


def test_page_is_self_contained(report):
    _, page = report
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "<link" not in html
    assert "rule conv_relu: conv2d -> relu? : static" in html  # a rule's source, for clicks


def test_chromium_renders_the_graph_with_the_right_node_count(report):
    root, page = report
    dom = _run(chromium(), root, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    shown = int(re.search(r'id="node-count">(\d+)<', html).group(1))
    calls = int(re.search(r'id="call-node-count">(\d+)<', html).group(1))
    drawn_by_script = re.search(r'id="drawn-count">(\d+)<', html)
    assert drawn_by_script is not None, "the page's script did not run"
    total, call_nodes = _graph_counts(root)
    assert (shown, calls) == (total, call_nodes)
    assert int(drawn_by_script.group(1)) == shown == len(re.findall(r'<g class="node ', html))
    assert len(re.findall(r'data-op="call_function"', html)) == call_nodes
    # tanh, flatten and the classifier have no rule: one float island, drawn
    assert int(re.search(r'id="island-count">(\d+)<', html).group(1)) == 1
    assert html.count('class="island"') == 1
    assert int(re.search(r'id="qdq-count">(\d+)<', html).group(1)) > 0


def test_a_node_link_shows_its_rule_source(report):
    """What a click shows, without clicking: report.html#node=NAME selects NAME."""
    root, page = report
    dom = _run(chromium(), root, "--dump-dom", page.as_uri() + "#node=relu")
    assert dom.returncode == 0, dom.stderr[-2000:]
    source = re.search(r'<pre id="rule-source">(.*?)</pre>', dom.stdout, re.S).group(1)
    assert "rule conv_relu: conv2d -&gt; relu? : static" in source
    assert "by rule conv_relu (" in dom.stdout  # the node's rule and its location
    assert '<g class="node rule selected" data-name="relu"' in dom.stdout


def test_chromium_screenshot_is_not_blank(report):
    from PIL import Image, ImageStat

    root, page = report
    shot = root / "shot.png"
    result = _run(chromium(), root, "--window-size=1200,800", f"--screenshot={shot}",
                  page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    assert image.size == (1200, 800)
    assert ImageStat.Stat(image).var[0] > 500  # a blank or one-colour page is ~0
    assert sum(1 for count in image.histogram() if count) > 20  # grey levels used
