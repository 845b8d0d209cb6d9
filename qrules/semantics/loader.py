"""Read a root .qrule file and everything it includes, in include order.

An ``include`` splices the included file's items in at that point. Paths are
relative to the including file and must stay inside an include root (the root
file's directory, the built-in rulesets directory, and any roots the caller adds);
a bare name (``include xnnpack``) names a built-in ruleset. Missing files, cycles
and escapes are diagnostics, never exceptions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from qrules.diagnostics import Diagnostic, Note, diagnostic
from qrules.resources import builtin_ruleset_names, builtin_ruleset_path, rulesets_dir
from qrules.syntax import ast
from qrules.syntax.parser import parse

PRELUDE = "_prelude"


_PARSED: dict[tuple, object] = {}


def _parse_once(text, name: str):
    """Parse results are immutable, so a file seen again in this process (the prelude,
    for every file lint checks; a file several others include) is parsed once."""
    key = (name, text)
    result = _PARSED.get(key)
    if result is None:
        if len(_PARSED) > 256:
            _PARSED.clear()
        result = _PARSED[key] = parse(text, name)
    return result


@dataclass(frozen=True)
class Unit:
    """One parsed file, where it came from, and the include that brought it in."""

    file: ast.File
    path: Optional[Path]
    name: str  # the file's display name, used in every span
    included_by: Optional[ast.Include] = None


@dataclass(frozen=True)
class Loaded:
    units: tuple[Unit, ...]          # the prelude first, then files in splice order
    items: tuple[tuple[Unit, object], ...]  # every top-level item, includes expanded
    diagnostics: tuple[Diagnostic, ...]
    sources: dict
    unparsed: tuple[str, ...] = ()  # chunks that did not parse (ParseResult.unparsed)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


class _Loader:
    def __init__(self, roots: Iterable[Path]):
        self.roots = [Path(r).resolve() for r in roots]
        self.units: list[Unit] = []
        self.items: list[tuple[Unit, object]] = []
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.unparsed: list[str] = []
        self.stack: list[Path] = []
        self.seen: set[Path] = set()

    def load_text(self, text, name: str, path: Optional[Path],
                  include: Optional[ast.Include] = None) -> None:
        result = _parse_once(text, name)
        self.sources[name] = result.text
        self.diagnostics.extend(result.diagnostics)
        self.unparsed.extend(result.unparsed)
        unit = Unit(result.file, path, name, include)
        self.units.append(unit)
        if path is not None:
            self.stack.append(path)
        for item in result.file.items:
            if isinstance(item, ast.Include):
                self.include(unit, item)
            else:
                self.items.append((unit, item))
        if path is not None:
            self.stack.pop()

    def load_path(self, path: Path, include: Optional[ast.Include] = None) -> None:
        name = _display(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            span = include.span if include else None
            if span is None:
                from qrules.span import Span
                span = Span.point(name, 1, 1)
            self.diagnostics.append(diagnostic("QR109", f"cannot read {name}: "
                                               f"{err.strerror or err}", span))
            return
        self.seen.add(path)
        self.load_text(data, name, path, include)

    def include(self, unit: Unit, item: ast.Include) -> None:
        if item.is_path:
            base = unit.path.parent if unit.path else Path.cwd()
            target = (base / item.target).resolve()
            if not any(target == r or r in target.parents for r in self.roots):
                roots = ", ".join(_display(r) for r in self.roots)
                self.diagnostics.append(diagnostic(
                    "QR215", f"`{item.target}` is outside the include roots ({roots})",
                    item.span))
                return
        else:
            found = builtin_ruleset_path(item.target)
            if found is None or item.target == PRELUDE:
                names = ", ".join(n for n in builtin_ruleset_names())
                self.diagnostics.append(diagnostic(
                    "QR213", f"no built-in ruleset named `{item.target}` "
                    f"(built-in: {names or 'none'})", item.span))
                return
            target = found.resolve()
        if target in self.stack:
            chain = " -> ".join(_display(p) for p in self.stack + [target])
            self.diagnostics.append(diagnostic("QR214", f"include cycle: {chain}", item.span))
            return
        if target in self.seen:
            return  # a diamond: the file's items are already in, once
        if not target.is_file():
            self.diagnostics.append(diagnostic(
                "QR213", f"included file `{item.target}` not found", item.span,
                [Note(message=f"looked for {_display(target)}")]))
            return
        self.load_path(target, item)


def load(root: Optional[Path] = None, text=None, name: Optional[str] = None,
         include_roots: Iterable[Path] = ()) -> Loaded:
    """Load the prelude, then a root file (by path, or by text with a display name)."""
    roots = list(include_roots) + [rulesets_dir()]
    if root is not None:
        roots.insert(0, Path(root).resolve().parent)
    else:
        roots.insert(0, Path.cwd())
    loader = _Loader(roots)
    prelude = builtin_ruleset_path(PRELUDE).resolve()
    root_path = Path(root).resolve() if root is not None else None
    # Linting a prelude (ours, or a checkout's copy of it) loads it once, as the root.
    if root_path is None or root_path.stem != PRELUDE:
        loader.load_path(prelude)
    if root_path is not None:
        loader.load_path(root_path)
    else:
        loader.load_text(text if text is not None else "", name or "<string>", None)
    return Loaded(units=tuple(loader.units), items=tuple(loader.items),
                  diagnostics=tuple(loader.diagnostics), sources=loader.sources,
                  unparsed=tuple(loader.unparsed))
