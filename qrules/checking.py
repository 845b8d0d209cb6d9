"""Check .qrule sources: the entry points lint and the Python API share."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, NamedTuple, Optional, Union

from qrules.diagnostics import Diagnostic
from qrules.semantics.loader import is_prelude
from qrules.semantics.loader import load as load_sources
from qrules.semantics.ruleset import Ruleset, check_loaded


class CheckResult(NamedTuple):
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str]


def check_ruleset_path(path: Union[str, Path], include_roots: Iterable = ()) -> Ruleset:
    path = Path(path)
    return check_loaded(load_sources(root=path, include_roots=[Path(r) for r in include_roots]),
                        keep_prelude=is_prelude(path))


def check_ruleset_text(text: Union[str, bytes], filename: Optional[str] = None,
                       include_roots: Iterable = (), path: Optional[Path] = None) -> Ruleset:
    """``path``: the file ``text`` is the unsaved content of (includes resolve from it)."""
    return check_loaded(load_sources(root=path, text=text, name=filename or "<string>",
                                     include_roots=[Path(r) for r in include_roots]))


def check_path(path: Union[str, Path], include_roots: Optional[Iterable] = None) -> CheckResult:
    """Everything lint reports for one file, with the sources to print lines from."""
    ruleset = check_ruleset_path(path, include_roots or ())
    return CheckResult(ruleset.diagnostics, ruleset.sources)
