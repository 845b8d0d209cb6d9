"""Every built-in registry entry resolves to its implementation, and a registered fact
or predicate function is usable from lint to the interpreter; an undeclared one is an
error when the ruleset is compiled, never a silently false predicate."""

import pytest

import qrules
from qrules.adapter.torchao import resolve_entry
from qrules.compile.predicates import compile_predicates
from qrules.errors import QruleError
from qrules.semantics import registry
from qrules.syntax.parser import parse

ENTRIES = [*registry.OBSERVERS.values(), *registry.DERIVE_FUNCTIONS.values(),
           *registry.TRANSFORMS.values(), *registry.ANNOTATION_KINDS.values()]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.kind}:{e.name}")
def test_builtin_entry_resolves(entry):
    assert callable(resolve_entry(entry))


def _predicates(text: str):
    rule = parse(f'ruleset t version "1.0"\nrule r: relu[{text}] : none\n',
                 "t.qrule").file.items[-1]
    return rule.pattern.predicates


def test_an_undeclared_fact_is_an_error_when_compiling():
    with pytest.raises(QruleError, match="unknown fact `.no_such_fact`"):
        compile_predicates(_predicates("input.no_such_fact == 1"), {})


def test_an_undeclared_function_is_an_error_when_compiling():
    with pytest.raises(QruleError, match="unknown predicate function `no_such_function`"):
        compile_predicates(_predicates("is_float(input) and no_such_function()"), {})


def test_a_registered_fact_and_function_reach_the_interpreter(registered, exported):
    gm, inputs = exported("conv_relu")
    registry.register_fact("producer_op", "str",
                           lambda role: str(role.node.target) if role.node is not None else "",
                           doc="the target of the node producing the argument")
    registered.append((registry.FACTS, "producer_op"))
    registry.register_predicate_function(
        "name_is", ("str",), "bool", lambda ctx, name: ctx.node.name == name, node_only=True,
        doc="the node's name is NAME")
    registered.append((registry.PREDICATE_FUNCTIONS, "name_is"))
    ruleset = qrules.load_text("""ruleset t version "1.0"
spec act = affine(int8)
rule r: relu[input.producer_op == "aten.conv2d.default", name_is("relu")] : { input: act }
""", "t.qrule")
    compiled = compile_predicates(_predicates('name_is("relu")'), {})
    assert compiled.static
    prepared = qrules.prepare(gm, inputs, ruleset)
    assert [n.name for n in prepared.graph.nodes if "qrules" in n.meta] == ["relu"]


def test_a_registered_annotation_kind_marks_the_nodes_it_annotates(registered, exported):
    """The node marker sees every node the ruleset annotated, with whether its rule
    quantizes (a `none` rule does not), once the annotations are written."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    gm, inputs = exported("conv_relu")
    seen = []

    def mark(model, quantized):
        assert all("quantization_annotation" in node.meta for node in quantized)
        seen.append({node.name: flag for node, flag in quantized.items()})
        for node, flag in quantized.items():
            node.meta["my_backend_quantized"] = flag

    registry.register_annotation_kind("tagged", QuantizationAnnotation, node_marker=mark)
    registered.append((registry.ANNOTATION_KINDS, "tagged"))
    ruleset = qrules.load_text("""ruleset t version "1.0"
annotation tagged
spec act = affine(int8)
rule conv: conv2d : { input: act, output: act }
rule relu: relu : none
""", "t.qrule")
    quantizer = ruleset.quantizer()
    quantizer.annotate(gm)
    assert seen == [{"conv2d": True, "relu": False}]
    assert {n.name: n.meta["my_backend_quantized"] for n in gm.graph.nodes
            if "my_backend_quantized" in n.meta} == {"conv2d": True, "relu": False}
