"""Whatever the input, the front end answers with diagnostics, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrules.checking import check_ruleset_text
from qrules.diagnostics import Diagnostic
from qrules.syntax.grammar import parser as lark_parser

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [p.read_text() for p in sorted((ROOT / "rulesets").glob("*.qrule"))]
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _tokens(text: str) -> list[str]:
    return [t.value for t in lark_parser().lex(text)]


TOKENS = sorted({t for seed in SEEDS for t in _tokens(seed)})


def _assert_diagnostics_only(source) -> None:
    ruleset = check_ruleset_text(source, "fuzz.qrule")
    assert all(isinstance(d, Diagnostic) for d in ruleset.diagnostics)
    for d in ruleset.diagnostics:
        assert d.span.line >= 1 and d.span.col >= 1


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text):
    _assert_diagnostics_only(text)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _assert_diagnostics_only(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_token_soup(tokens):
    _assert_diagnostics_only(" ".join(tokens))


@st.composite
def mutated_seed(draw):
    seed = draw(st.sampled_from(SEEDS))
    tokens = _tokens(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "truncate"]))
        if action == "delete":
            del tokens[i]
        elif action == "duplicate":
            tokens.insert(i, tokens[i])
        elif action == "swap" and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif action == "replace":
            tokens[i] = draw(st.sampled_from(TOKENS))
        elif action == "truncate":
            tokens = tokens[:i]
    # Keep line structure roughly: item keywords start new lines, as people write.
    return " ".join(tokens).replace(" rule ", "\nrule ").replace(" spec ", "\nspec ")


@FUZZ
@given(mutated_seed())
def test_mutated_rulesets(source):
    _assert_diagnostics_only(source)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_truncated_rulesets(seed, data):
    cut = data.draw(st.integers(0, len(seed)))
    _assert_diagnostics_only(seed[:cut])


def test_pathological_inputs():
    cases = [
        b"",
        b"\x00\x01\x02binary",
        b"rule a: relu : none\n\xff\xfe bad utf-8\n",
        ("rule a: " + "x" * 10_000_000 + " : none\n").encode(),
        ("rule a: " + "(" * 10_000 + "relu" + ")" * 10_000 + " : none\n").encode(),
        ("spec s = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n").encode(),
        ("spec s = " + "-" * 5000 + "1\n").encode(),
        ("spec s = " + "not " * 3000 + "true\n").encode(),
        ("spec s = " + "-\n" * 5000 + "1\n").encode(),
        ("spec s = " + "not\n" * 3000 + "true\n").encode(),
        ("spec s = 2" + "**2\n" * 3000).encode(),
        ("rule a: " + "(\n" * 10_000 + "relu" + ")\n" * 10_000 + " : none\n").encode(),
        ("rule a: relu" + "->relu\n" * 3000 + ": none").encode(),
        b"rule a: relu : none\r\nrule b: relu : none\r",
        "ruleset \u00e9t\u00e9 version \"1\"\n".encode(),
    ]
    for data in cases:
        _assert_diagnostics_only(data)


def _fuzz_script():
    """scripts/fuzz.py: the structure-aware fuzzer of the Python API (one copy of the
    mutations; the long run is `python scripts/fuzz.py --count 1000000`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("qrules_fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeded_api_fuzz(tmp_path):
    """A short, deterministic run of the long fuzzer: parse, check (text, bytes, file),
    load_text with random parameters and load, on mutated real rulesets with hostile
    include paths. Only diagnostics or QruleError may come out."""
    summary = _fuzz_script().run(count=250, seed=0, findings_dir=str(tmp_path))
    assert summary["inputs"] == 250
    assert not summary["findings"], "\n".join(
        f"input {i}: {last} (replay: python scripts/fuzz.py --seed 0 --only {i})"
        for i, last in summary["findings"])
    assert len(summary["codes"]) > 20  # the mutations reach well past the parser
