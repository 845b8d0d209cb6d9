"""The answers the language server gives, as plain functions of a ``Document``:
diagnostics, hover, go-to-definition and completion. Everything comes from the
checker's symbol tables and the registries; nothing here imports torch."""

from __future__ import annotations

import re
from typing import Optional

from lsprotocol import types

from qrules.diagnostics import CODES, Diagnostic, Severity
from qrules.lsp.analysis import Document, Word, to_range, word_at
from qrules.semantics import registry
from qrules.semantics.patterns import OpResolver
from qrules.semantics.specs import SPEC_KINDS
from qrules.syntax.grammar import keywords

SOURCE = "qrules"
_SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error,
             Severity.WARNING: types.DiagnosticSeverity.Warning,
             Severity.INFO: types.DiagnosticSeverity.Information}
_CODE = re.compile(r"QR\d{3}")


def diagnostics(document: Document) -> list[types.Diagnostic]:
    """The document's own findings (an included file's are reported in that file), each
    with its code, its span's range, and its notes: a note with a span becomes related
    information, one without is appended to the message."""
    out = []
    for found in document.ruleset.diagnostics:
        if (found.span.file or "") != document.name:
            continue
        out.append(_diagnostic(document, found))
    return out


def _diagnostic(document: Document, found: Diagnostic) -> types.Diagnostic:
    related = [types.DiagnosticRelatedInformation(location=document.location(note.span),
                                                  message=note.message)
               for note in found.notes if note.span is not None]
    loose = [note.message for note in found.notes if note.span is None]
    return types.Diagnostic(
        range=to_range(found.span), severity=_SEVERITY[found.severity], code=found.code,
        source=SOURCE, message="\n".join([found.message, *loose]),
        related_information=related or None)


# ------------------------------------------------------------------------ hover
def hover(document: Document, position: types.Position) -> Optional[types.Hover]:
    word = word_at(document.text, position)
    if word is None:
        return None
    text = _describe(document, word)
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                       range=word.range)


def _code_block(text: str) -> str:
    return f"```qrule\n{text.strip()}\n```"


def _describe(document: Document, word: Word) -> Optional[str]:
    name = word.text
    if _CODE.fullmatch(name) and name in CODES:
        code = CODES[name]
        return f"**{code.code}** ({code.severity.value}): {code.title}"
    if word.after_dot and name in registry.FACTS:
        fact = registry.FACTS[name]
        return f"fact `{name}`: {fact.type}\n\n{fact.doc}"
    found = document.definitions(name)
    if found:
        kind = found[0][0]  # a param before a spec before a config, an op, a pattern, a rule
        definition = [d for k, d in found if k == kind][-1]  # the override in force
        return _DESCRIBE[kind](document, name, definition)
    if name in SPEC_KINDS:
        kind = SPEC_KINDS[name]
        return f"spec constructor `{name}({kind.arguments})`\n\n{kind.doc}"
    if name in registry.PREDICATE_FUNCTIONS:
        function = registry.PREDICATE_FUNCTIONS[name]
        args = ", ".join(function.arg_kinds)
        return f"predicate function `{name}({args})` -> {function.result}\n\n{function.doc}"
    for table, what in ((registry.OBSERVERS, "observer"),
                        (registry.DERIVE_FUNCTIONS, "derive function"),
                        (registry.TRANSFORMS, "transform"),
                        (registry.ANNOTATION_KINDS, "annotation kind")):
        if name in table:
            return f"{what} `{name}`\n\n{table[name].doc}"
    if name in registry.DTYPES:
        dtype = registry.DTYPES[name]
        return f"dtype `{name}`: {dtype.qmin}..{dtype.qmax}"
    return None


def _describe_op(document: Document, name: str, definition) -> str:
    ops = OpResolver(document.ruleset.symbols.ops).resolve(name) or ()
    lines = [_code_block(document.source_of(definition.node.span))]
    for op in ops:
        roles = ", ".join(str(binding) for binding in op.roles) or "no roles"
        lines.append(f"- `{op.name}`: {', '.join(f'`{t}`' for t in op.targets)} ({roles})")
    return "\n".join(lines)


def _describe_param(document: Document, name: str, definition) -> str:
    info = document.ruleset.params.get(name)
    text = _code_block(document.source_of(definition.node.span))
    if info is None:
        return text
    kind = f"enum({', '.join(info.choices)})" if info.choices else info.type
    return f"{text}\nparameter of type `{kind}`, default `{_literal(info.default)}`"


def _literal(value) -> str:
    return {True: "true", False: "false", None: "none"}.get(value, str(value)) \
        if isinstance(value, (bool, type(None))) else str(value)


def _describe_source(document: Document, name: str, definition) -> str:
    return _code_block(document.source_of(definition.node.span))


_DESCRIBE = {"op": _describe_op, "param": _describe_param, "spec": _describe_source,
             "config": _describe_source, "pattern": _describe_source, "rule": _describe_source}


# ------------------------------------------------------------------- definition
def definition(document: Document, position: types.Position) -> list[types.Location]:
    """Where the name under the cursor is defined (every override too), or the file an
    ``include`` names."""
    include = document.include_at(position)
    if include is not None:
        path = document.include_path(include)
        if path is None:
            return []
        start = types.Position(line=0, character=0)
        return [types.Location(uri=path.resolve().as_uri(),
                               range=types.Range(start=start, end=start))]
    word = word_at(document.text, position)
    if word is None or word.after_dot:
        return []
    return [document.location(getattr(d.node, "name_span", None) or d.node.span)
            for _, d in document.definitions(word.text)]


# ------------------------------------------------------------------- completion
_KIND = types.CompletionItemKind


def completion(document: Document, position: types.Position) -> types.CompletionList:
    """Every name that may be written here; after a dot, the facts. The client filters
    by the prefix typed."""
    word = word_at(document.text, position)
    line = document.text.split("\n")[position.line] if position.line < len(
        document.text.split("\n")) else ""
    start = word.range.start.character if word else position.character
    if (word and word.after_dot) or line[:start].endswith("."):
        return types.CompletionList(is_incomplete=False, items=[
            types.CompletionItem(label=f.name, kind=_KIND.Property, detail=f"fact: {f.type}",
                                 documentation=f.doc) for f in registry.FACTS.values()])
    symbols = document.ruleset.symbols
    groups = [
        (keywords(), _KIND.Keyword, "keyword"),
        (sorted(symbols.ops), _KIND.Function, "op"),
        (sorted(symbols.specs), _KIND.Constant, "spec"),
        (sorted(symbols.configs), _KIND.Struct, "config"),
        (sorted(symbols.params), _KIND.Variable, "param"),
        (sorted(symbols.patterns), _KIND.Function, "pattern"),
        (sorted(SPEC_KINDS), _KIND.Constructor, "spec constructor"),
        (sorted(registry.PREDICATE_FUNCTIONS), _KIND.Function, "predicate function"),
        (sorted(registry.FACTS), _KIND.Property, "fact"),
        (sorted(registry.DTYPES), _KIND.TypeParameter, "dtype"),
        (sorted(registry.OBSERVERS), _KIND.Value, "observer"),
    ]
    items, seen = [], set()
    for names, kind, detail in groups:
        for name in names:
            if name not in seen:
                seen.add(name)
                items.append(types.CompletionItem(label=name, kind=kind, detail=detail))
    return types.CompletionList(is_incomplete=False, items=items)
