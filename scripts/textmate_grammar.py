"""Write editors/textmate/qrule.tmLanguage.json from the grammar and the registries.

The keywords are the word terminals of grammar/qrule.lark (the parser's own list), the
op names and roles come from rulesets/_prelude.qrule, and spec constructors, predicate
functions, facts, dtypes and registry names from their declarations, so the editor
grammar never keeps a second list of them. tests/test_textmate_grammar.py fails when
the committed file differs from what this writes, and tokenizes every built-in ruleset
with it.

    PYTHONPATH=. python scripts/textmate_grammar.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qrules.checking import check_ruleset_path  # noqa: E402
from qrules.resources import rulesets_dir  # noqa: E402
from qrules.semantics import registry  # noqa: E402
from qrules.semantics.ruleset import DEFINING_KEYWORDS  # noqa: E402
from qrules.semantics.specs import SPEC_KINDS  # noqa: E402
from qrules.syntax.grammar import keywords as grammar_keywords  # noqa: E402

OUTPUT = ROOT / "editors" / "textmate" / "qrule.tmLanguage.json"

#: Keywords that read as operators or constants rather than as statements.
LOGICAL_WORDS = frozenset({"and", "or", "not", "if", "else"})
CONSTANT_WORDS = frozenset({"true", "false", "none"})
#: Keywords followed by the name they define: the checker's defining keywords, and the
#: names a file gives itself, its patterns and its phases.
DEFINING_WORDS = DEFINING_KEYWORDS + ("ruleset", "pattern", "phase")


def vocabulary() -> dict[str, list[str]]:
    """The names an editor colours, by kind, from their one declaration each."""
    prelude = check_ruleset_path(rulesets_dir() / "_prelude.qrule").symbols
    roles = set(registry.CONFIG_ROLES)
    namespaces = set()
    for definitions in prelude.ops.values():
        node = definitions[0].node
        roles.update(binding.role for binding in getattr(node, "roles", ()))
        namespaces.update(target.split(".")[0] for target in getattr(node, "targets", ()))
    names = {entry for table in (registry.OBSERVERS, registry.DERIVE_FUNCTIONS,
                                 registry.TRANSFORMS, registry.ANNOTATION_KINDS)
             for entry in table}
    return {"ops": sorted(prelude.ops), "roles": sorted(roles),
            "namespaces": sorted(namespaces), "constructors": sorted(SPEC_KINDS),
            "functions": sorted(registry.PREDICATE_FUNCTIONS), "facts": sorted(registry.FACTS),
            "dtypes": sorted(registry.DTYPES), "registry": sorted(names)}


def _words(words) -> str:
    # Longest first: an alternation is tried left to right by both Oniguruma and `re`.
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


def _match(name: str, pattern: str) -> dict:
    return {"name": name, "match": pattern}


def grammar() -> dict:
    """The TextMate grammar. Patterns use the subset Oniguruma and Python's `re` share
    (``\\b``, classes, lookahead, fixed-width lookbehind), and are tried in this order:
    TextMate takes the leftmost match, the earlier pattern on a tie."""
    keywords = grammar_keywords()
    vocab = vocabulary()
    statements = [k for k in keywords if k not in LOGICAL_WORDS | CONSTANT_WORDS]
    name = r"[A-Za-z_][A-Za-z0-9_]*"
    patterns = [
        _match("comment.line.number-sign.qrule", r"#.*$"),
        _match("string.quoted.double.qrule", r'"(?:[^"\\]|\\.)*"'),
        {"match": rf"\b({_words(DEFINING_WORDS)})\s+({name})",
         "captures": {"1": {"name": "keyword.control.qrule"},
                      "2": {"name": "entity.name.definition.qrule"}}},
        _match("keyword.control.qrule", rf"\b(?:{_words(statements)})\b"),
        _match("keyword.operator.logical.qrule", rf"\b(?:{_words(LOGICAL_WORDS)})\b"),
        _match("constant.language.qrule", rf"\b(?:{_words(CONSTANT_WORDS)})\b"),
        _match("support.other.aten-target.qrule",
               rf"\b(?:{_words(vocab['namespaces'])})(?:\.{name})+"),
        _match("constant.numeric.float.qrule",
               r"\b[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?\b|\b[0-9]+[eE][+-]?[0-9]+\b"),
        _match("constant.numeric.integer.qrule", r"\b(?:0|[1-9][0-9]*)\b"),
        _match("support.function.constructor.qrule",
               rf"\b(?:{_words(vocab['constructors'])})\b(?=\s*\()"),
        _match("support.function.predicate.qrule",
               rf"\b(?:{_words(vocab['functions'])})\b(?=\s*\()"),
        _match("variable.other.property.fact.qrule", rf"(?<=\.)(?:{_words(vocab['facts'])})\b"),
        _match("support.function.op.qrule", rf"\b(?:{_words(vocab['ops'])})\b"),
        _match("variable.language.role.qrule", rf"\b(?:{_words(vocab['roles'])})\b"),
        _match("support.type.dtype.qrule", rf"\b(?:{_words(vocab['dtypes'])})\b"),
        _match("support.constant.registry.qrule", rf"\b(?:{_words(vocab['registry'])})\b"),
        _match("keyword.operator.link.qrule", r"->|~>"),
        _match("keyword.operator.qrule", r"\.\.|\*\*|==|!=|<=|>=|[-+*/%<>=|?]"),
    ]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/"
                   "tmlanguage.json",
        "name": "qrule",
        "scopeName": "source.qrule",
        "fileTypes": ["qrule"],
        "comment": "Generated by scripts/textmate_grammar.py from grammar/qrule.lark and "
                   "the registries; do not edit.",
        "patterns": patterns,
    }


def render() -> str:
    return json.dumps(grammar(), indent=2) + "\n"


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arguments.add_argument("--check", action="store_true",
                           help="exit 1 if the committed grammar is not current; write nothing")
    args = arguments.parse_args()
    text = render()
    if args.check:
        return int(not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
