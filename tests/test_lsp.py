"""`qrules lsp` over its protocol: a real server process, spoken to in JSON-RPC with
Content-Length framing, as an editor does (initialize, didOpen, publishDiagnostics,
hover, definition, completion, didChange, shutdown, exit)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qrules.resources import rulesets_dir

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60

BASE = """\
ruleset npu_base version "1.0"
spec act_u8 = affine(uint8, 0..255, observer=histogram)
"""

NPU = """\
ruleset npu version "1.0"
include "base.qrule"

param per_channel: bool = true

spec w_i8 = symmetric(int8, -127..127, per_channel(axis=0)) if per_channel else none
spec w_i8 = symmetric(int8, -127..127)

config static_u8 {
  input: act_u8
  weight: w_i8
  output: act_u8
}

# QR401 is what a shadowed rule gets
rule conv_relu: conv2d -> relu? : static_u8
rule guarded_add: add[input[0].rank == 4] : { input: act_u8, output: missing_spec }
"""


class Client:
    """A minimal LSP client: framed JSON-RPC over the server's stdin/stdout."""

    def __init__(self, cwd: Path):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen([sys.executable, "-m", "qrules", "lsp"], cwd=cwd,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode().partition(":")
                if key.lower() == "content-length":
                    length = int(value)
            self.messages.put(json.loads(stream.read(length)))

    def send(self, method: str, params, id=None) -> None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if id is not None:
            message["id"] = id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method: str, params):
        self.next_id += 1
        self.send(method, params, self.next_id)
        response = self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)
        assert "error" not in response, response
        return response["result"]

    def wait(self, wanted):
        while True:
            try:
                message = self.messages.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no answer from the server; stderr: {self._stderr()}")
            if wanted(message):
                return message

    def diagnostics(self, uri: str) -> list[dict]:
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                         and m["params"]["uri"] == uri)["params"]["diagnostics"]

    def _stderr(self) -> str:
        self.process.kill()
        return self.process.stderr.read().decode(errors="replace")[-2000:]


def _at(text: str, needle: str, nth: int = 0, offset: int = 1) -> dict:
    """The LSP position ``offset`` characters into the ``nth`` occurrence of ``needle``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index)
    return {"line": line, "character": index - (text.rfind("\n", 0, index) + 1) + offset}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("lsp")
    (root / "base.qrule").write_text(BASE)
    path = root / "npu.qrule"
    path.write_text(NPU)
    client = Client(root)
    result = client.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(),
                                           "capabilities": {}})
    client.send("initialized", {})
    uri = path.as_uri()
    client.send("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "qrule", "version": 1, "text": NPU}})
    opened = client.diagnostics(uri)
    yield client, uri, result["capabilities"], opened
    client.request("shutdown", None)
    client.send("exit", None)
    assert client.process.wait(timeout=TIMEOUT) == 0
    client.process.stdout.close()
    client.process.stderr.close()
    client.process.stdin.close()


def _ask(client, method, uri, position):
    return client.request(method, {"textDocument": {"uri": uri}, "position": position})


def test_initialize_announces_the_features(session):
    _, _, capabilities, _ = session
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert "." in capabilities["completionProvider"]["triggerCharacters"]
    assert capabilities["textDocumentSync"]["change"] == 1  # full text


def test_diagnostics_on_open_have_codes_ranges_and_related_information(session):
    _, uri, _, found = session
    by_code = {d["code"]: d for d in found}
    assert set(by_code) >= {"QR202", "QR207"}, found
    unknown = by_code["QR202"]
    assert unknown["range"]["start"] == _at(NPU, "missing_spec", offset=0)
    assert unknown["range"]["end"]["character"] - unknown["range"]["start"]["character"] \
        == len("missing_spec")
    assert unknown["severity"] == 1 and unknown["source"] == "qrules"
    duplicate = by_code["QR207"]
    assert duplicate["range"]["start"] == _at(NPU, "w_i8", nth=1, offset=0)
    related = duplicate["relatedInformation"][0]
    assert related["location"]["uri"] == uri
    assert related["location"]["range"]["start"] == _at(NPU, "w_i8", offset=0)
    assert "first defined" in related["message"]


def test_hover_on_an_op_shows_its_aten_targets_and_roles(session):
    client, uri, _, _ = session
    text = _ask(client, "textDocument/hover", uri, _at(NPU, "conv2d"))["contents"]["value"]
    assert "aten.conv2d.default" in text and "weight: 1" in text and "bias: 2" in text


def test_hover_on_a_spec_a_param_a_config_and_a_code(session):
    client, uri, _, _ = session
    spec = _ask(client, "textDocument/hover", uri, _at(NPU, "act_u8", nth=0))
    assert "affine(uint8, 0..255, observer=histogram)" in spec["contents"]["value"]
    param = _ask(client, "textDocument/hover", uri, _at(NPU, "per_channel", nth=2))
    assert "`bool`" in param["contents"]["value"] and "default `true`" in \
        param["contents"]["value"]
    config = _ask(client, "textDocument/hover", uri, _at(NPU, "static_u8", nth=1))
    assert "weight: w_i8" in config["contents"]["value"]
    code = _ask(client, "textDocument/hover", uri, _at(NPU, "QR401"))
    assert "rule is shadowed" in code["contents"]["value"]
    fact = _ask(client, "textDocument/hover", uri, _at(NPU, "rank"))
    assert fact["contents"]["value"].startswith("fact `rank`")
    assert _ask(client, "textDocument/hover", uri, _at(NPU, "-> relu", offset=0)) is None


def test_definition_of_names_and_includes(session):
    client, uri, _, _ = session
    spec = _ask(client, "textDocument/definition", uri, _at(NPU, "act_u8"))
    assert spec[0]["uri"].endswith("/base.qrule")
    assert spec[0]["range"]["start"] == _at(BASE, "act_u8", offset=0)
    config = _ask(client, "textDocument/definition", uri, _at(NPU, "static_u8", nth=1))
    assert config == [{"uri": uri, "range": config[0]["range"]}]
    assert config[0]["range"]["start"] == _at(NPU, "static_u8", offset=0)
    param = _ask(client, "textDocument/definition", uri, _at(NPU, "per_channel", nth=2))
    assert param[0]["range"]["start"] == _at(NPU, "per_channel", offset=0)
    op = _ask(client, "textDocument/definition", uri, _at(NPU, "relu?"))
    prelude = (rulesets_dir() / "_prelude.qrule").resolve()
    assert op[0]["uri"] == prelude.as_uri()
    line = op[0]["range"]["start"]["line"]
    assert prelude.read_text().split("\n")[line].startswith("op relu:")
    twice = _ask(client, "textDocument/definition", uri, _at(NPU, "w_i8", nth=2))
    assert len(twice) == 1  # the duplicate was dropped with QR207: one definition in force
    include = _ask(client, "textDocument/definition", uri, _at(NPU, "base.qrule"))
    assert include[0]["uri"].endswith("/base.qrule")


def test_completion_offers_every_kind_of_name(session):
    client, uri, _, _ = session
    items = _ask(client, "textDocument/completion", uri, _at(NPU, "relu?", offset=2))
    labels = {item["label"]: item.get("detail") for item in items["items"]}
    assert labels["rule"] == "keyword" and labels["when"] == "keyword"
    assert labels["max_pool2d"] == "op" and labels["relu6"] == "op"  # prelude ops
    assert labels["act_u8"] == "spec" and labels["static_u8"] == "config"
    assert labels["per_channel"] == "param"
    assert labels["is_float"] == "predicate function" and labels["affine"] == "spec constructor"
    facts = _ask(client, "textDocument/completion", uri, _at(NPU, "rank", offset=0))
    assert {item["label"] for item in facts["items"]} >= {"rank", "dtype", "is_float"}
    assert all(item["detail"].startswith("fact") for item in facts["items"])


def test_did_change_rechecks(session):
    client, uri, _, _ = session
    fixed = NPU.replace("missing_spec", "act_u8").replace(
        "spec w_i8 = symmetric(int8, -127..127)\n", "")
    client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                           "contentChanges": [{"text": fixed}]})
    assert [d["code"] for d in client.diagnostics(uri)] == []
    client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                           "contentChanges": [{"text": NPU}]})
    assert {d["code"] for d in client.diagnostics(uri)} >= {"QR202", "QR207"}


def test_the_server_never_imports_torch(tmp_path):
    """Like lint: the server's whole analysis runs without torch."""
    path = tmp_path / "npu.qrule"
    path.write_text(NPU)
    script = (
        "import sys\n"
        "from lsprotocol import types\n"
        "from qrules.lsp import features, server\n"
        "from qrules.lsp.analysis import Document\n"
        f"doc = Document({path.as_uri()!r}, {NPU!r})\n"
        "features.diagnostics(doc)\n"
        "features.hover(doc, types.Position(line=14, character=18))\n"
        "features.completion(doc, types.Position(line=14, character=18))\n"
        "server.build_server('test')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_pygls_the_command_says_how_to_get_it():
    script = ("import sys\n"
              "sys.modules['pygls'] = None  # as if the lsp extra were not installed\n"
              "from qrules.cli import main\n"
              "sys.exit(main(['lsp']))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=TIMEOUT)
    assert out.returncode == 2
    assert "pip install qrules[lsp]" in out.stderr
