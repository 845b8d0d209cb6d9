"""Regenerate the registry tables of docs/language.md from the declarations.

Each table sits between ``<!-- registry-table: KIND -->`` and ``<!-- /registry-table -->``
and is written from ``qrules.semantics.registry`` (facts, predicate functions,
observers, derive functions, transforms, annotation kinds), so the docs list exactly
what is declared, with each declaration's own doc text. tests/test_registry_tables.py
fails when the file and the declarations differ.

    PYTHONPATH=. python scripts/registry_tables.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qrules.semantics import registry  # noqa: E402
from qrules.semantics.specs import SPEC_KINDS  # noqa: E402

LANGUAGE_DOC = ROOT / "docs" / "language.md"
_TABLE = re.compile(r"(<!-- registry-table: (\w+) -->\n)(.*?)(<!-- /registry-table -->)", re.S)

#: How a predicate function's signature shows each argument kind.
_PLACEHOLDERS = {"role": "ROLE", "any": "X", "int": "N", "op": "OP", "str": "NAME",
                 "list": "LIST"}


def _constructor(kind) -> str:
    """How a spec constructor is written: `neighbour()` takes nothing."""
    arguments = "" if kind.arguments == "no arguments" else kind.arguments
    return f"`{kind.name}({arguments})`"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


def _signature(function: registry.PredicateFunction) -> str:
    args = []
    for kind in function.arg_kinds:
        args.append(_PLACEHOLDERS[kind.removesuffix("...")])
        if kind.endswith("..."):
            args.append("…")
    return f"`{function.name}({', '.join(args)})`"


def _implementation_name(entry: registry.Entry) -> str:
    if isinstance(entry.target, str):
        return entry.target.rpartition(":")[2]
    return getattr(entry.target, "__name__", repr(entry.target))


def _kwargs(entry: registry.Entry, earlier: dict) -> str:
    """The keyword arguments, or "same as `X`" for those of an earlier row."""
    if entry.kwargs_doc:
        return entry.kwargs_doc
    if not entry.kwargs:
        return "none"
    if entry.kwargs in earlier:
        return f"same as `{earlier[entry.kwargs]}`"
    earlier[entry.kwargs] = entry.name
    return ", ".join(f"`{name}`" for name in sorted(entry.kwargs))


def tables() -> dict[str, str]:
    """Table kind -> its markdown, one row per declaration in declaration order."""
    observer_kwargs: dict = {}
    return {
        "spec_kinds": _table(("constructor (optional parts in `[ ]`)", "makes"), [
            (_constructor(k), k.doc) for k in SPEC_KINDS.values()]),
        "facts": _table(("fact", "type", "value"), [
            (f"`{f.name}`", f.type, f.doc) for f in registry.FACTS.values()]),
        "predicate_functions": _table(("function", "result", "meaning"), [
            (_signature(f), f.result, f.doc) for f in registry.PREDICATE_FUNCTIONS.values()]),
        "observers": _table(("name", "kind", "torchao class", "keyword arguments", "does"), [
            (f"`{e.name}`", "fake-quantizer" if e.kind == "fake_quant" else "observer",
             f"`{_implementation_name(e)}`", _kwargs(e, observer_kwargs), e.doc)
            for e in registry.OBSERVERS.values()]),
        "derive_functions": _table(("name", "computes"), [
            (f"`{e.name}`", e.doc) for e in registry.DERIVE_FUNCTIONS.values()]),
        "transforms": _table(("transform", "keyword arguments", "does"), [
            (f"`{e.name}`", _kwargs(e, {}), e.doc) for e in registry.TRANSFORMS.values()]),
        "annotation_kinds": _table(("kind", "class", "flag set on a pattern's last node"), [
            (f"`{e.name}`", ("torchao's " if str(e.target).startswith("torchao.") else "")
             + f"`{_implementation_name(e)}`",
             f"`{e.extra['pattern_output_field']}`" if e.extra.get("pattern_output_field")
             else "none")
            for e in registry.ANNOTATION_KINDS.values()]),
    }


def render(text: str) -> str:
    """``text`` (docs/language.md) with every registry table regenerated."""
    generated = tables()
    return _TABLE.sub(lambda m: m.group(1) + generated[m.group(2)] + "\n" + m.group(4), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/language.md is not up to date; write nothing")
    args = parser.parse_args()
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    updated = render(text)
    if args.check:
        return int(updated != text)
    LANGUAGE_DOC.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
