"""The Python API: parse, check and load rulesets.

``load`` returns a ``LoadedRuleset``; the engine (compile/annotate/quantize) builds
on it. Nothing here imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Union

from qrules.checking import check_ruleset_path, check_ruleset_text
from qrules.diagnostics import Diagnostic, Severity
from qrules.errors import QruleError
from qrules.resources import builtin_ruleset_names, builtin_ruleset_path
from qrules.semantics.ruleset import BoundRuleset, Ruleset
from qrules.syntax import ast
from qrules.syntax.parser import parse as _parse

Source = Union[str, bytes, os.PathLike]


def parse(text: Union[str, bytes], filename: Optional[str] = None) -> ast.File:
    """Parse one .qrule source into its AST. Raises QruleError on syntax errors."""
    result = _parse(text, filename)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if errors:
        raise QruleError(errors, {filename or "<string>": result.text})
    return result.file


def check(source: Source, filename: Optional[str] = None,
          include_roots: Iterable[Union[str, os.PathLike]] = ()) -> list[Diagnostic]:
    """Every diagnostic for a ruleset: text (str/bytes) or a file (a ``Path``)."""
    return list(_checked(source, filename, include_roots).diagnostics)


def _checked(source: Source, filename: Optional[str], include_roots) -> Ruleset:
    if isinstance(source, os.PathLike):
        return check_ruleset_path(Path(source), include_roots)
    return check_ruleset_text(source, filename, include_roots)


def resolve_ruleset(name_or_path: Union[str, os.PathLike]) -> Path:
    """A built-in ruleset name, or a path to a .qrule file."""
    if isinstance(name_or_path, str) and not name_or_path.endswith(".qrule") and \
            os.sep not in name_or_path and "/" not in name_or_path:
        found = builtin_ruleset_path(name_or_path)
        if found is None or name_or_path.startswith("_"):
            known = ", ".join(builtin_ruleset_names())
            raise FileNotFoundError(f"no built-in ruleset named {name_or_path!r} "
                                    f"(built-in: {known}); pass a path to load a file")
        return found
    path = Path(name_or_path)
    try:
        found = path.is_file()
    except OSError as err:  # e.g. a name too long for the file system
        raise FileNotFoundError(f"ruleset file not found: {path} ({err.strerror})") from None
    if not found:
        raise FileNotFoundError(f"ruleset file not found: {path}")
    return path


class LoadedRuleset:
    """A checked ruleset with its parameters bound: what you quantize with.

    ``quantizer()`` gives a torchao Quantizer; ``set_module_name`` / ``set_module_type``
    / ``set_operator_type`` give one with XNNPACK-style scoping (``None`` = float).
    """

    def __init__(self, bound: BoundRuleset, ruleset: Ruleset):
        self.bound = bound
        self.checked = ruleset
        self._compiled = None

    # the bound ruleset's fields, for reading
    name = property(lambda self: self.bound.name)
    version = property(lambda self: self.bound.version)
    params = property(lambda self: self.bound.params)
    rules = property(lambda self: self.bound.rules)
    transforms = property(lambda self: self.bound.transforms)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<qrules ruleset {self.name} ({params}), {len(self.rules)} rules>"

    def compiled(self):
        """The ``CompiledRuleset`` (aten overloads resolved; imports torch), built once."""
        if self._compiled is None:
            from qrules.compile.matchers import compile_ruleset

            self._compiled = compile_ruleset(self.bound)
        return self._compiled

    def quantizer(self, precedence: str = "ranked"):
        """A new ``RulesetQuantizer`` with this ruleset as its global one; how scopes
        set from Python take precedence: ``RulesetQuantizer.set_precedence``."""
        from qrules.adapter.quantizer import RulesetQuantizer

        return RulesetQuantizer(self.compiled(), sources=self.checked.sources,
                                precedence=precedence)

    def set_global(self, ruleset):
        return self.quantizer().set_global(ruleset)

    def set_module_name(self, name: str, ruleset):
        return self.quantizer().set_module_name(name, ruleset)

    def set_module_type(self, module_type, ruleset):
        return self.quantizer().set_module_type(module_type, ruleset)

    def set_operator_type(self, op, ruleset):
        return self.quantizer().set_operator_type(op, ruleset)

    def set_filter_function(self, filter_fn):
        return self.quantizer().set_filter_function(filter_fn)


def load(name_or_path: Union[str, os.PathLike], *, include_roots: Iterable = (),
         **params) -> LoadedRuleset:
    """Load a built-in ruleset by name or a file by path, with parameters bound.

    Raises QruleError (with every diagnostic) when the ruleset has errors, or when
    a parameter is unknown, of the wrong type, or not among an enum's choices.
    """
    ruleset = check_ruleset_path(resolve_ruleset(name_or_path), include_roots)
    return LoadedRuleset(ruleset.bind(**params), ruleset)


def load_text(text: Union[str, bytes], filename: Optional[str] = None, *,
              include_roots: Iterable = (), **params) -> LoadedRuleset:
    """Like ``load``, for .qrule source text (tests, notebooks, generated rules)."""
    ruleset = check_ruleset_text(text, filename, include_roots)
    return LoadedRuleset(ruleset.bind(**params), ruleset)


def diff(a, b, model, example_inputs=None, *, qat: bool = False, numerics: bool = True,
         calibration=None, seed: int = 0, model_label: Optional[str] = None,
         strict: bool = False, engine: str = "torchao"):
    """Compare quantizers ``a`` and ``b`` on ``model``: ``qrules.engine.diff.diff``, where
    a side may also be a built-in ruleset name or a ``.qrule`` path (loaded here with
    its default parameters, and named in the report as given). See docs/api.md.
    """
    from qrules.engine.diff import diff as engine_diff

    labels = {f"{key}_label": side for key, side in (("a", a), ("b", b))
              if _is_ruleset_name(side)}
    return engine_diff(_loaded(a), _loaded(b), model, example_inputs, qat=qat,
                       numerics=numerics, calibration=calibration, seed=seed,
                       model_label=model_label, strict=strict, engine=engine, **labels)


def _is_ruleset_name(side) -> bool:
    from qrules.engine.diff import is_anchor_spec

    return isinstance(side, str) and not is_anchor_spec(side)


def _loaded(side):
    return load(side).quantizer() if _is_ruleset_name(side) else side
