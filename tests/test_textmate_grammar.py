"""editors/textmate/qrule.tmLanguage.json: current with the grammar and registries, and
right on every built-in ruleset.

``tokenize`` below applies the grammar as TextMate does (line by line; at each position
the leftmost match of the top-level patterns, the earlier pattern on a tie; a match's
``name`` or its ``captures``), with the regex subset Oniguruma and ``re`` share. The
expected scope of each token comes from the parser's own lexer and the vocabulary, not
from the JSON file, so a wrong or missing pattern fails here. A real engine
(textmate-grammar-python, in the ``dev`` extra) must then give exactly the same tokens.
"""

import importlib.util
import json
import logging
import re
from pathlib import Path

import pytest

from qrules.resources import rulesets_dir
from qrules.syntax.grammar import parser

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("textmate_grammar",
                                               ROOT / "scripts" / "textmate_grammar.py")
textmate_grammar = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(textmate_grammar)

GRAMMAR = json.loads(textmate_grammar.OUTPUT.read_text(encoding="utf-8"))
VOCAB = textmate_grammar.vocabulary()
RULESETS = sorted(rulesets_dir().glob("*.qrule"))


def test_committed_grammar_is_current():
    assert textmate_grammar.OUTPUT.read_text(encoding="utf-8") == textmate_grammar.render(), (
        "editors/textmate/qrule.tmLanguage.json is stale; run "
        "`PYTHONPATH=. python scripts/textmate_grammar.py` and review the diff")


def test_every_grammar_keyword_is_in_a_pattern():
    words = set()
    for pattern in GRAMMAR["patterns"]:
        if pattern.get("name", "").startswith(("keyword", "constant.language")) or \
                "captures" in pattern:
            words.update(re.findall(r"[a-z_]+", pattern["match"].replace("\\b", " ")))
    assert set(textmate_grammar.grammar_keywords()) <= words


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, scope) of every scoped token, offsets into ``text``."""
    compiled = [(re.compile(p["match"]), p) for p in GRAMMAR["patterns"]]
    tokens, offset = [], 0
    for line in text.split("\n"):
        pos = 0
        while pos <= len(line):
            best = None
            for regex, pattern in compiled:
                found = regex.search(line, pos)
                if found and (best is None or found.start() < best[0].start()):
                    best = (found, pattern)
            if best is None:
                break
            found, pattern = best
            if "name" in pattern:
                tokens.append((offset + found.start(), offset + found.end(), pattern["name"]))
            for group, capture in pattern.get("captures", {}).items():
                if found.group(int(group)) is not None:
                    tokens.append((offset + found.start(int(group)),
                                   offset + found.end(int(group)), capture["name"]))
            pos = found.end() if found.end() > pos else pos + 1
        offset += len(line) + 1
    return tokens


KEYWORD_SCOPES = {word: ("constant.language" if word in textmate_grammar.CONSTANT_WORDS
                         else "keyword.operator.logical"
                         if word in textmate_grammar.LOGICAL_WORDS else "keyword.control")
                  for word in textmate_grammar.grammar_keywords()}


def expected_name_scope(tokens, i) -> str | None:
    """What a NAME token should be coloured as, in the grammar's pattern order; None
    for a name the editor cannot know (the file's own definitions)."""
    name = tokens[i].value
    before = tokens[i - 1] if i else None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    if before is not None and before.value in textmate_grammar.DEFINING_WORDS:
        return "entity.name.definition"
    if after is not None and after.type == "LPAR":
        if name in VOCAB["constructors"]:
            return "support.function.constructor"
        if name in VOCAB["functions"]:
            return "support.function.predicate"
    if before is not None and before.type == "DOT" and name in VOCAB["facts"]:
        return "variable.other.property.fact"
    for kind, scope in (("ops", "support.function.op"), ("roles", "variable.language.role"),
                        ("dtypes", "support.type.dtype"),
                        ("registry", "support.constant.registry")):
        if name in VOCAB[kind]:
            return scope
    return None


def _in_target(tokens, i) -> bool:
    """Whether NAME token ``i`` is part of an aten target (`aten.conv2d.default`)."""
    j = i
    while j >= 2 and tokens[j - 1].type == "DOT" and tokens[j - 2].type == "NAME":
        j -= 2
    return tokens[j].value in VOCAB["namespaces"] and j + 1 < len(tokens) \
        and tokens[j + 1].type == "DOT"


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_builtin_ruleset_tokens_get_their_scopes(path):
    text = path.read_text(encoding="utf-8")
    scoped = tokenize(text)
    at = {(start, end): scope for start, end, scope in scoped}
    lexed = [t for t in parser().lex(text, dont_ignore=True) if t.type != "WS"]
    code = [t for t in lexed if t.type != "COMMENT"]
    index = {id(token): i for i, token in enumerate(code)}  # Tokens compare as strings
    failures, checked = [], 0
    for token in lexed:
        span = (token.start_pos, token.end_pos)
        if token.type == "COMMENT":
            want = "comment.line.number-sign"
        elif token.type == "STRING":
            want = "string.quoted.double"
        elif token.type in ("INT", "FLOAT"):
            want = "constant.numeric"
        elif token.value in KEYWORD_SCOPES:
            want = KEYWORD_SCOPES[token.value]
        elif token.type == "NAME":
            i = index[id(token)]
            if _in_target(code, i):
                covering = [s for a, b, s in scoped if a <= span[0] and span[1] <= b]
                if covering != ["support.other.aten-target.qrule"]:
                    failures.append((token.line, token.value, covering))
                checked += 1
                continue
            want = expected_name_scope(code, i)
            if want is None:  # a name of this file: scoped only where it is defined
                if span in at and not at[span].startswith("entity.name"):
                    failures.append((token.line, token.value, at[span]))
                continue
        else:
            continue
        checked += 1
        if not at.get(span, "").startswith(want + "."):
            failures.append((token.line, token.value, want, at.get(span)))
    assert not failures, failures[:20]
    assert checked > 10


def _merged(tokens):
    """Adjacent tokens of one scope as one (`**` then `-`), as TextMate engines give them."""
    out = []
    for start, end, scope in sorted(tokens):
        if out and out[-1][1] == start and out[-1][2] == scope:
            out[-1] = (out[-1][0], end, scope)
        else:
            out.append((start, end, scope))
    return out


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_a_real_textmate_engine_agrees(path):
    """textmate-grammar-python (vscode-textmate's engine on Oniguruma; the `dev` extra)
    gives every built-in ruleset exactly the scopes ``tokenize`` gives: the grammar is
    valid Oniguruma and the checks above hold in a real editor."""
    try:
        from textmate_grammar.parsers.base import LanguageParser
    except ImportError:
        pytest.fail("textmate-grammar-python is missing: pip install -e '.[dev]'")
    logging.disable(logging.WARNING)  # the engine logs every position it skips
    try:
        text = path.read_text(encoding="utf-8")
        line_starts = [0]
        for line in text.split("\n"):
            line_starts.append(line_starts[-1] + len(line) + 1)
        real = []
        for (line, col), chunk, scopes in LanguageParser(GRAMMAR).parse_string(text).flatten():
            if len(scopes) > 1:  # scopes[0] is source.qrule
                start = line_starts[line] + col
                real.append((start, start + len(chunk), scopes[-1]))
    finally:
        logging.disable(logging.NOTSET)
    assert sorted(real) == _merged(tokenize(text))


def test_tokenizer_scopes_a_small_example():
    text = ('rule conv_relu when per_channel: conv2d[input.rank == 4] -> relu? : '
            '{ weight: symmetric(int8, -127..127) }  # fused\n')
    names = {text[a:b]: scope for a, b, scope in tokenize(text)}
    assert names["rule"] == "keyword.control.qrule"
    assert names["conv_relu"] == "entity.name.definition.qrule"
    assert names["when"] == "keyword.control.qrule"
    assert names["conv2d"] == "support.function.op.qrule"
    assert names["rank"] == "variable.other.property.fact.qrule"
    assert names["symmetric"] == "support.function.constructor.qrule"
    assert names["int8"] == "support.type.dtype.qrule"
    assert names["127"] == "constant.numeric.integer.qrule"
    assert names["->"] == "keyword.operator.link.qrule"
    assert names["# fused"] == "comment.line.number-sign.qrule"
    assert "per_channel" not in names  # a parameter of this file
