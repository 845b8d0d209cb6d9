"""Read a root .qrule file and everything it includes, in include order.

An ``include`` splices the included file's items in at that point. Paths are
relative to the including file and must stay inside an include root (the root
file's directory, the built-in rulesets directory, and any roots the caller adds);
a bare name (``include xnnpack``) names a built-in ruleset. Missing files, cycles
and escapes are diagnostics, never exceptions; so is every way the OS can refuse a
path (a NUL in it, a symlink loop, a name too long, a directory, a device or FIFO,
which are refused before they are opened, a file gone before it is read).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

from qrules.diagnostics import Diagnostic, diagnostic, note
from qrules.resources import builtin_ruleset_names, builtin_ruleset_path, rulesets_dir
from qrules.span import Span
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
    """One parsed file and where it came from."""

    file: ast.File
    path: Optional[Path]
    name: str  # the file's display name, used in every span


@dataclass(frozen=True)
class Loaded:
    units: tuple[Unit, ...]          # the prelude first, then files in splice order
    items: tuple[tuple[Unit, object], ...]  # every top-level item, includes expanded
    diagnostics: tuple[Diagnostic, ...]
    sources: dict
    unparsed: tuple[str, ...] = ()  # chunks that did not parse (ParseResult.unparsed)
    #: The file being loaded, whose header names the ruleset: the first unit after the
    #: prelude, not the last (included files come after it). The prelude stands in when
    #: it is the root or the root could not be read.
    root: Optional[Unit] = None


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _resolve(path: Path) -> Union[Path, str]:
    """The absolute, symlink-free path, or why the OS cannot name it (a NUL or an
    unencodable character in the name, a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: loops, Python < 3.13
        return _reason(err)


def _reason(err: BaseException) -> str:
    if isinstance(err, RuntimeError) or getattr(err, "errno", None) == errno.ELOOP:
        return "symlink loop"
    if isinstance(err, UnicodeError):
        return "the name is not valid Unicode"
    if isinstance(err, ValueError):
        return "the name contains a NUL character"
    return getattr(err, "strerror", None) or str(err)


def read_source(path: Path) -> bytes:
    """A file's bytes, read once through one descriptor.

    Anything but a regular file is refused before it is opened: a FIFO or a device
    would block or never end. The open does not block either (the file could be
    swapped for a FIFO after the check), and the descriptor is checked again.
    Raises OSError.
    """
    _refuse_unless_regular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        _refuse_unless_regular(os.fstat(handle.fileno()).st_mode)
        return handle.read()


def _refuse_unless_regular(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(mode):
        raise _NotRegular(errno.EINVAL, "not a regular file (a device, FIFO or socket)")


class _NotRegular(OSError):
    """A device, FIFO or socket where a .qrule file was expected."""


class _Loader:
    """Walks includes depth-first with an explicit stack, so a chain of thousands of
    files cannot exhaust Python's recursion limit."""

    def __init__(self, roots: Iterable[Path]):
        # A root the OS cannot name can hold no file; it is simply not a root.
        self.roots = [r for r in map(_resolve, map(Path, roots)) if isinstance(r, Path)]
        self.units: list[Unit] = []
        self.items: list[tuple[Unit, object]] = []
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.unparsed: list[str] = []
        self.stack: list[Path] = []  # the files being spliced, outermost first
        self.seen: set[Path] = set()

    def load_text(self, text, name: str, path: Optional[Path]) -> None:
        # Each entry: a file's unit, its items still to splice, its path (None for text).
        walk = [self._open(text, name, path)]
        while walk:
            unit, items, unit_path = walk[-1]
            item = next(items, None)
            if item is None:
                walk.pop()
                if unit_path is not None:
                    self.stack.pop()
            elif not isinstance(item, ast.Include):
                self.items.append((unit, item))
            else:
                found = self._include_target(unit, item)
                if found is not None:
                    target, data = found
                    walk.append(self._open(data, _display(target), target))

    def _open(self, text, name: str, path: Optional[Path]):
        result = _parse_once(text, name)
        self.sources[name] = result.text
        self.diagnostics.extend(result.diagnostics)
        self.unparsed.extend(result.unparsed)
        unit = Unit(result.file, path, name)
        self.units.append(unit)
        if path is not None:
            self.seen.add(path)
            self.stack.append(path)
        return unit, iter(result.file.items), path

    def load_path(self, path: Path) -> None:
        """Load a root file (the prelude, or the file being checked)."""
        name = _display(path)
        try:
            data = read_source(path)
        except OSError as err:
            self.diagnostics.append(diagnostic("QR109", f"cannot read {name}: {_reason(err)}",
                                               Span.point(name, 1, 1)))
            return
        self.load_text(data, name, path)

    def _include_target(self, unit: Unit, item: ast.Include) -> Optional[tuple[Path, bytes]]:
        """The file an include names and its bytes, or None after a diagnostic (or for a
        file already spliced in)."""
        if item.is_path:
            base = unit.path.parent if unit.path else Path.cwd()
            target = _resolve(base / item.target)
            if isinstance(target, str):
                self._not_found(item, base / item.target, target)
                return None
            if not any(target == r or r in target.parents for r in self.roots):
                roots = ", ".join(_display(r) for r in self.roots)
                self.diagnostics.append(diagnostic(
                    "QR215", f"`{item.target}` is outside the include roots ({roots})",
                    item.span))
                return None
        else:
            found = builtin_ruleset_path(item.target)
            if found is None or item.target == PRELUDE:
                names = ", ".join(n for n in builtin_ruleset_names())
                self.diagnostics.append(diagnostic(
                    "QR213", f"no built-in ruleset named `{item.target}` "
                    f"(built-in: {names or 'none'})", item.span))
                return None
            target = found.resolve()
        if target in self.stack:
            chain = " -> ".join(_display(p) for p in self.stack + [target])
            self.diagnostics.append(diagnostic("QR214", f"include cycle: {chain}", item.span))
            return None
        if target in self.seen:
            return None  # a diamond: the file's items are already in, once
        try:
            return target, read_source(target)
        except FileNotFoundError:
            self._not_found(item, target)
        except (IsADirectoryError, NotADirectoryError, _NotRegular) as err:
            self._not_found(item, target, _reason(err))
        except OSError as err:  # it is there, but cannot be read (permissions, I/O)
            self.diagnostics.append(diagnostic(
                "QR109", f"cannot read `{item.target}`: {_reason(err)}", item.span,
                [note(message=f"looked for {_display(target)}")]))
        return None

    def _not_found(self, item: ast.Include, target: Path, why: str = "") -> None:
        looked = f"looked for {_display(target)}" + (f" ({why})" if why else "")
        self.diagnostics.append(diagnostic(
            "QR213", f"included file `{item.target}` not found", item.span,
            [note(message=looked)]))


def is_prelude(path: Optional[Path]) -> bool:
    """Whether a root file is a prelude (then it is loaded once, as the root)."""
    resolved = _resolve(Path(path)) if path is not None else None
    return isinstance(resolved, Path) and resolved.stem == PRELUDE


def load(root: Optional[Path] = None, text=None, name: Optional[str] = None,
         include_roots: Iterable[Path] = ()) -> Loaded:
    """Load the prelude, then a root file (by path, or by text with a display name; by
    text and path for a file whose text is not yet saved: its includes resolve from the
    path)."""
    root_path = _resolve(Path(root)) if root is not None else None
    roots = list(include_roots) + [rulesets_dir()]
    roots.insert(0, root_path.parent if isinstance(root_path, Path) else Path.cwd())
    loader = _Loader(roots)
    prelude = builtin_ruleset_path(PRELUDE).resolve()
    # Linting a prelude (ours, or a checkout's copy of it) loads it once, as the root.
    if not is_prelude(root):
        loader.load_path(prelude)
    first = len(loader.units)
    if isinstance(root_path, str):  # the OS cannot name the file
        name = str(root)
        loader.diagnostics.append(diagnostic("QR109", f"cannot read {name!r}: {root_path}",
                                             Span.point(name, 1, 1)))
    elif root_path is not None and text is not None:  # an editor's unsaved buffer of a file
        loader.load_text(text, name or _display(root_path), root_path)
    elif root_path is not None:
        loader.load_path(root_path)
    else:
        loader.load_text(text if text is not None else "", name or "<string>", None)
    units = tuple(loader.units)
    root_unit = units[first] if len(units) > first else (units[-1] if units else None)
    return Loaded(units=units, items=tuple(loader.items),
                  diagnostics=tuple(loader.diagnostics), sources=loader.sources,
                  unparsed=tuple(loader.unparsed), root=root_unit)
