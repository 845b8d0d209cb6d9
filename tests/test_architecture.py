"""The package's shape: imports flow one way, no cycles, no private names across
modules, modules stay small. docs/architecture.md describes the layers checked here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qrules"

#: Layers, lowest first: a module may import only from its own layer or lower ones.
LAYERS = ("base", "syntax", "semantics", "compile", "passes", "adapter", "engine", "api",
          "cli")
#: Top-level modules outside a stage package, and the layer each belongs to.
TOP_LEVEL = {
    "span": "base", "diagnostics": "base", "report": "base", "errors": "base",
    "resources": "base",
    "checking": "semantics", "api": "api", "__init__": "api", "__main__": "cli",
    "lsp": "cli",  # the language server: a front end like the CLI
}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"  # the package itself: qrules/__init__.py
    if parts[1] in LAYERS:
        return parts[1]
    return TOP_LEVEL[parts[1]]


def _imports(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(module imported, names imported from it, line) for every qrules import, lazy
    ones (inside functions) included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else \
        _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, (), node.lineno) for a in node.names if a.name.startswith("qrules")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            if module.startswith("qrules"):
                out.append((module, tuple(a.name for a in node.names), node.lineno))
    return out


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, names: tuple[str, ...]) -> list[str]:
    """`from qrules.x import y`: y may be a submodule; count the edge to it."""
    targets = []
    for name in names or ("",):
        sub = f"{module}.{name}" if name else module
        targets.append(sub if sub in MODULES else module)
    return targets


def test_imports_flow_one_way():
    upward = []
    for module, path in MODULES.items():
        if module == "qrules":
            continue  # the package's lazy attribute table reaches every layer on purpose
        mine = LAYERS.index(_layer(module))
        for imported, names, line in _imports(path):
            for target in _resolve(imported, names):
                if target == "qrules":
                    continue
                theirs = LAYERS.index(_layer(target))
                if theirs > mine:
                    upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: "
                                  f"{_layer(module)} imports {target} ({_layer(target)})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for imported, names, _ in _imports(path):
            graph[module].update(t for t in _resolve(imported, names) if t in MODULES)
    # A package imports its own submodules; that is not a cycle of stages.
    for module in graph:
        graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_private_names_across_modules():
    found = []
    for module, path in MODULES.items():
        for imported, names, line in _imports(path):
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: "
                                 f"{name} from {imported}")
    assert not found, "private names imported from another module:\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (limit {MAX_LINES}): split it"
