"""What is taken and annotated while a ruleset is planned.

``State`` answers the questions matching and predicates ask about annotations: is a
node taken (no later rule may match it), is it marked annotated, is its output
quantized. It sees both this quantizer's plan so far and the annotations other
quantizers wrote on the graph before it (``existing``, read once by the adapter).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

from torch.fx import Node

from qrules.compile.graph_meta import is_float_value
from qrules.compile.matchers import CompiledRuleset
from qrules.compile.targets import resolve_target
from qrules.semantics import registry


@functools.cache
def same_dtype_keys() -> frozenset:
    """The target keys of ``registry.SAME_DTYPE_OVERLOADS``: the ops whose role values
    are float when their output is (docs/semantics.md, "Float only")."""
    return frozenset(id(resolve_target(name)) for name in registry.SAME_DTYPE_OVERLOADS)


class State:
    """Annotations as they stand: the graph's own (from other quantizers) plus ours."""

    def __init__(self, compiled: Optional[CompiledRuleset] = None,
                 existing: Optional[Mapping[Node, Any]] = None):
        self.planned: dict[Node, Any] = {}   # node -> NodeAnnotation (qrules.passes.placing)
        # node -> the torchao annotation another quantizer wrote on it
        self.existing: Mapping[Node, Any] = existing if existing is not None else {}
        self.sources: dict[Node, tuple] = {}  # `source(...)` names per node, read once
        self.floats: dict[Node, bool] = {}    # is_float_value per node, read once
        # node -> (node,): the references of the placed specs that refer to its output,
        # one tuple however many refer to it (``Placed.refs``).
        self.output_refs: dict[Node, tuple] = {}
        # The ruleset in force: op name -> overloads, for `any_user(relu)`.
        self.op_targets: dict[str, frozenset] = compiled.op_targets if compiled else {}
        # The bound parameters, for expressions read per match (derive arguments).
        self.params: dict = compiled.params if compiled else {}
        # Ops some rule in force could quantize (heads of rules whose config is not
        # `none`), for `any_user_quantizable()`; `any` when a rule's head is open.
        self.quantizable, self.quantizable_any = (
            compiled.quantizable_heads if compiled is not None else (frozenset(), False))

    def is_float(self, node: Node) -> bool:
        """Is the node's value a floating-point tensor (``is_float_value``)? The graph
        does not change while it is planned: read once per node."""
        known = self.floats.get(node)
        if known is None:
            known = self.floats[node] = is_float_value(node)
        return known

    def is_float_input(self, source: Node, user: Node) -> bool:
        """Is the tensor ``source`` gives ``user`` a floating-point one? Read once per
        source (``is_float``), except into an op of ``same_dtype_keys`` whose output is
        float: then it is, unread."""
        known = self.floats.get(source)
        if known is None:
            known = self.floats[source] = (
                id(user.target) in same_dtype_keys() and self.is_float(user)
                or is_float_value(source))
        return known

    def could_quantize(self, node: Node) -> bool:
        """Is `node` quantized already, or the head op of a rule that quantizes?"""
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None or any(
                p is not None for p in planned.inputs.values())
        return node.op == "call_function" and (self.quantizable_any
                                               or id(node.target) in self.quantizable)

    def taken(self, node: Node) -> bool:
        if node in self.planned:
            return True
        if not self.existing:
            return False
        existing = self.existing.get(node)
        # Some torchao quantizers (EmbeddingQuantizer) write specs without setting
        # `_annotated`; such a node is taken too, or a later ruleset overwrote it.
        return existing is not None and bool(
            getattr(existing, "_annotated", False) or existing.output_qspec is not None
            or any(spec is not None for spec in existing.input_qspec_map.values()))

    def is_annotated(self, node: Node) -> bool:
        """`annotated(...)`: the node carries an annotation marked `_annotated`, as
        torchao's `_is_annotated` reads it. Taken nodes that an `unmarked` rule (or
        another quantizer, like EmbeddingQuantizer) annotated without the flag are not:
        XNNPACK's GRU guard annotates a GRU fed by such an embedding."""
        planned = self.planned.get(node)
        if planned is not None:
            return not planned.rule.unmarked
        existing = self.existing.get(node)
        return existing is not None and bool(getattr(existing, "_annotated", False))

    def output_shared(self, node: Node) -> bool:
        """`shared`: the node's output shares another edge's observer (a `same_as`
        spec here, torchao's SharedQuantizationSpec from another quantizer)."""
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None and planned.output.spec.shares
        existing = self.existing.get(node)
        return existing is not None and type(
            getattr(existing, "output_qspec", None)).__name__ == "SharedQuantizationSpec"

    def output_quantized(self, node: Node) -> bool:
        # As docs/language.md defines `quantized`: the output has a spec, or the node
        # ends a match that quantized its inputs (a fused int8 pattern whose output the
        # next op quantizes; X86's `_is_output_of_quantized_pattern`). Only the first
        # was checked, so X86-style propagation after `conv2d -> relu? : { input, weight }`
        # never fired.
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None or planned.ends_quantized_pattern
        existing = self.existing.get(node)
        return existing is not None and (
            getattr(existing, "output_qspec", None) is not None
            or bool(getattr(existing, "_is_output_of_quantized_pattern", False)))

    def has_output_spec(self, node: Node) -> bool:
        """`has_output_spec(...)`: the node's output itself has a spec, what executorch's
        propagate_annotation and cat read (`quantized` also holds after a dynamic
        linear, whose quantized pattern leaves its output without one)."""
        planned = self.planned.get(node)
        if planned is not None:
            return planned.output is not None
        existing = self.existing.get(node)
        return existing is not None and getattr(existing, "output_qspec", None) is not None
