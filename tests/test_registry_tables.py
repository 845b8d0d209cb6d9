"""Every extension point is declared once, and the declarations are complete: the
registry tables of docs/language.md are exactly what scripts/registry_tables.py writes
from them, and every declaration has doc text and a callable implementation (built-in
observers, transforms, ... resolve in tests/engine/test_registry_entries.py)."""

import importlib.util
from pathlib import Path

import pytest

from qrules.semantics import registry
from qrules.semantics.specs import SPEC_KINDS
from qrules.semantics.values import SpecValue

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("registry_tables",
                                               ROOT / "scripts" / "registry_tables.py")
registry_tables = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(registry_tables)

DECLARED = [*registry.FACTS.values(), *registry.PREDICATE_FUNCTIONS.values(),
            *registry.OBSERVERS.values(), *registry.DERIVE_FUNCTIONS.values(),
            *registry.TRANSFORMS.values(), *registry.ANNOTATION_KINDS.values()]


def test_language_doc_tables_match_the_declarations():
    text = registry_tables.LANGUAGE_DOC.read_text(encoding="utf-8")
    assert registry_tables.render(text) == text, (
        "docs/language.md's registry tables differ from the declarations; run "
        "`PYTHONPATH=. python scripts/registry_tables.py` and review the diff")


def test_every_table_is_in_the_doc():
    text = registry_tables.LANGUAGE_DOC.read_text(encoding="utf-8")
    for kind in registry_tables.tables():
        assert text.count(f"<!-- registry-table: {kind} -->") == 1, kind


@pytest.mark.parametrize("declared", DECLARED, ids=lambda d: f"{d.kind}:{d.name}")
def test_declaration_has_doc_text(declared):
    assert declared.doc.strip(), f"{declared.kind} {declared.name} has no doc text"


@pytest.mark.parametrize("declared", [*registry.FACTS.values(),
                                      *registry.PREDICATE_FUNCTIONS.values()],
                         ids=lambda d: d.name)
def test_fact_and_function_have_an_implementation(declared):
    assert callable(declared.implementation)
    types = registry.RESULT_TYPES
    assert (declared.type if isinstance(declared, registry.Fact) else declared.result) in types


def test_reads_annotations_is_declared_not_listed():
    reading = {d.name for d in [*registry.FACTS.values(), *registry.PREDICATE_FUNCTIONS.values()]
               if d.reads_annotations}
    assert reading == {"annotated", "quantized", "shared", "has_output_spec",
                       "any_user_quantizable"}


def test_registration_validates():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_fact("rank", "int", lambda role: 0)
    with pytest.raises(ValueError, match="not a valid"):
        registry.register_fact("two words", "int", lambda role: 0)
    with pytest.raises(ValueError, match="not callable"):
        registry.register_fact("fresh", "int", 3)
    with pytest.raises(ValueError, match="type"):
        registry.register_fact("fresh", "tensor", lambda role: 0)
    with pytest.raises(ValueError, match="argument kinds"):
        registry.register_predicate_function("fresh", ("tensor",), "bool", lambda ctx, t: 0)
    with pytest.raises(ValueError, match="argument kinds"):
        registry.register_predicate_function("fresh", ("str...", "int"), "bool",
                                             lambda ctx, *a: 0)
    assert "fresh" not in registry.FACTS and "fresh" not in registry.PREDICATE_FUNCTIONS


@pytest.mark.parametrize("kind", list(SPEC_KINDS.values()), ids=lambda k: k.name)
def test_spec_kind_is_declared_completely(kind):
    """A spec kind's one declaration: its doc row, its constructor, and a value class
    that says how it becomes a torchao spec."""
    assert kind.doc.strip() and kind.arguments.strip(), f"{kind.name} has no doc row"
    assert callable(kind.construct)
    assert issubclass(kind.value, SpecValue)
    assert kind.value.to_torchao is not SpecValue.to_torchao, (
        f"{kind.value.__name__} does not say how it becomes a torchao spec")
