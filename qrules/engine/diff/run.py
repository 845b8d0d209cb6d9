"""Run a diff: ``diff(a, b, model, example_inputs)``.

torchao's real ``prepare_pt2e`` (or ``prepare_qat_pt2e``) runs once per side, each on a
deep copy of the same exported graph, and the annotations are recorded *as they stand
inside prepare*: a recording quantizer wraps each side, delegates
``transform_for_annotation`` / ``annotate`` / ``validate`` (and the observer callback) to
it, and snapshots the annotations right after ``annotate``. So each side is judged on
the graph prepare gave it, after batch-norm folding and after its own transforms.

Then, unless ``numerics=False``, both prepared models are calibrated on the same seeded
inputs, converted, and compared: the count of every op in the converted graphs, and
``torch.equal`` on every output.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Iterable, Optional, Sequence

import torch
from torch.fx import GraphModule

from qrules.adapter import shared_passes
from qrules.adapter import torchao as adapter
from qrules.engine.compose import as_quantizer
from qrules.errors import QruleError
from qrules.engine.diff.anchors import anchor, is_anchor_spec
from qrules.engine.diff.compare import EquivalenceReport, Numerics, compare_records
from qrules.engine.diff.describe import NodeRecord, record_annotations, target_name
from qrules.engine.progress import stage

class _Recorder(adapter.Quantizer):
    """Delegates everything to ``inner``; snapshots the annotations after annotate."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.records: Optional[dict[str, NodeRecord]] = None

    def transform_for_annotation(self, model):
        return self.inner.transform_for_annotation(model)

    def annotate(self, model):
        result = self.inner.annotate(model)
        self.records = record_annotations(result if result is not None else model)
        return result if result is not None else model

    def validate(self, model):
        return self.inner.validate(model)

    def prepare_obs_or_fq_callback(self, model, edge_or_node_to_obs_or_fq):
        return self.inner.prepare_obs_or_fq_callback(model, edge_or_node_to_obs_or_fq)


def _label(side: Any) -> str:
    bound = getattr(side, "bound", None)
    if bound is not None:  # a LoadedRuleset
        params = ", ".join(f"{k}={v}" for k, v in sorted(side.params.items()))
        return f"ruleset {side.name}" + (f" ({params})" if params else "")
    if isinstance(side, adapter.Quantizer):
        # Module-qualified: torchao's testing copy and executorch's XNNPACKQuantizer
        # share a class name.
        return f"{type(side).__module__}.{type(side).__qualname__}"
    return repr(side)


def _as_quantizer(side: Any):
    if isinstance(side, str):
        if is_anchor_spec(side):
            return anchor(side)
        # Loading a ruleset by name is the API's job (qrules.diff does it): the engine
        # sits below the API and takes loaded rulesets.
        raise TypeError(f"cannot diff {side!r}: pass a loaded ruleset, a quantizer or a "
                        "LIBRARY:NAME anchor spec (qrules.diff also loads ruleset names)")
    return as_quantizer(side)


def _exported(model: Any, example_inputs: tuple, qat: bool,
              strict: bool = False) -> GraphModule:
    if isinstance(model, GraphModule) and adapter.model_is_exported(model):
        return model
    module = copy.deepcopy(model)
    module.train(qat)
    with stage("exporting"):
        return adapter.export_module(module, tuple(example_inputs), strict=strict)


def copy_graph(graph: GraphModule) -> GraphModule:
    """A deep copy that also keeps every node's users in the original order.

    ``copy.deepcopy`` re-registers users in graph order, which is not the order
    torch.export left them in (its ``_guards_fn`` node is created last but placed
    first). Annotators that pick "the first user" (XNNPACK's ``gru_io_only``) would
    then annotate a different node on the copy than on the graph prepare is given."""
    work = copy.deepcopy(graph)
    copies = {node.name: node for node in work.graph.nodes}
    for node in graph.graph.nodes:
        twin = copies[node.name]
        order = [copies[user.name] for user in node.users]
        if list(twin.users) != order:
            saved = dict(twin.users)
            twin.users.clear()
            twin.users.update((user, saved[user]) for user in order)
    return work


class SideFailed(RuntimeError):
    """One side's quantizer raised inside prepare: a bug or limit of that quantizer
    (torchao's X86InductorQuantizer on a non-strict export of a model that calls one
    module twice), not a difference between the two sides."""


def _prepare(graph: GraphModule, quantizer, qat: bool, label: str, side: str,
             engine: str = "torchao"):
    recorder = _Recorder(quantizer)
    work = copy_graph(graph)
    try:
        with adapter.quiet_torchao(), stage(f"annotating and preparing {side}"):
            if engine == "qrules":
                prepared = shared_passes.prepare(work, recorder, qat=qat)
            else:
                prepared = (adapter.prepare_qat_pt2e if qat else adapter.prepare_pt2e)(
                    work, recorder)
    except QruleError:
        raise
    except Exception as err:  # noqa: BLE001 (any failure of a third-party quantizer)
        hint = ""
        if "more than one output node" in str(err):
            hint = (" (torchao's source partitions group every call of one module after "
                    "a non-strict export; export strictly: --strict, or "
                    "qrules.diff(..., strict=True))")
        raise SideFailed(f"{label} failed in prepare: {type(err).__name__}: {err}{hint}") \
            from err
    return prepared, recorder.records or {}


def calibration_batches(example_inputs: Sequence, count: int = 4, seed: int = 0) -> list:
    """Seeded inputs shaped like the examples: normal noise for float tensors; integer
    tensors (indices) are shuffled copies of the example, so they stay in range."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        batch = []
        for x in example_inputs:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                batch.append(torch.randn(x.shape, generator=generator, dtype=x.dtype))
            elif isinstance(x, torch.Tensor) and x.numel() > 0:
                order = torch.randperm(x.numel(), generator=generator)
                batch.append(x.reshape(-1)[order].reshape(x.shape).clone())
            else:
                batch.append(x)
        batches.append(tuple(batch))
    return batches


def _op_counts(gm: GraphModule) -> dict:
    return dict(Counter(target_name(n) for n in gm.graph.nodes if n.op == "call_function"))


def _leaves(value: Any) -> list:
    return [v for v in torch.utils._pytree.tree_leaves(value) if isinstance(v, torch.Tensor)]


def _numerics(prepared_a, prepared_b, example_inputs, batches, seed: int,
              engine: str = "torchao") -> Numerics:
    try:
        with torch.no_grad():
            for prepared in (prepared_a, prepared_b):
                torch.manual_seed(seed)
                for batch in batches:
                    prepared(*batch)
        convert = shared_passes.convert if engine == "qrules" else adapter.convert_pt2e
        with adapter.quiet_torchao():
            converted_a = convert(prepared_a)
            converted_b = convert(prepared_b)
        outputs = []
        with torch.no_grad():
            for converted in (converted_a, converted_b):
                torch.manual_seed(seed)
                outputs.append(_leaves(converted(*example_inputs)))
    except Exception as err:  # a side that cannot calibrate or convert is a finding
        return Numerics(True, error=f"{type(err).__name__}: {err}")
    equal, worst = len(outputs[0]) == len(outputs[1]), 0.0
    for x, y in zip(*outputs):
        if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x, y):
            equal = False
            if x.shape == y.shape and x.is_floating_point() and y.is_floating_point():
                worst = max(worst, float((x.double() - y.double()).abs().max()))
            else:
                worst = float("inf")
    return Numerics(True, _op_counts(converted_a), _op_counts(converted_b), equal, worst)


def diff(a: Any, b: Any, model: Any, example_inputs: Optional[Iterable] = None, *,
         qat: bool = False, numerics: bool = True, calibration: Optional[Iterable] = None,
         seed: int = 0, model_label: Optional[str] = None, strict: bool = False,
         a_label: Optional[str] = None, b_label: Optional[str] = None,
         engine: str = "torchao") -> EquivalenceReport:
    """Compare quantizers ``a`` and ``b`` on ``model``.

    ``a``/``b``: loaded rulesets, qrules, torchao or executorch quantizers, or anchor specs
    (``"torchao:xnnpack[per_channel]"``); ``a_label``/``b_label`` name them in the report
    and in ``SideFailed`` (default: the anchor spec, or one derived from the object).
    ``model``: an ``nn.Module`` (exported here, in
    train mode with ``qat=True``) or an exported GraphModule; ``example_inputs`` are
    needed to export and for numerics; ``strict=True`` exports with
    ``torch.export.export(..., strict=True)`` (torchao's X86InductorQuantizer needs it
    for models that call one module twice). ``calibration``: input batches (default: four
    seeded batches shaped like the examples). ``engine="qrules"`` prepares and converts
    both sides with qrules' passes instead of torchao's (the same graphs, faster; see
    ``qrules.prepare``). Neither ``model`` nor the quantizers' state is changed.
    """
    if engine not in shared_passes.ENGINES:
        raise ValueError(f"engine must be one of {', '.join(shared_passes.ENGINES)}, "
                         f"not {engine!r}")
    inputs = tuple(example_inputs) if example_inputs is not None else None
    if inputs is None and not (isinstance(model, GraphModule) and not numerics):
        raise ValueError("diff needs example_inputs (to export the model and to compare "
                         "numerics)")
    graph = _exported(model, inputs or (), qat, strict)
    quantizer_a, quantizer_b = _as_quantizer(a), _as_quantizer(b)
    a_label = a_label or (a if isinstance(a, str) else _label(a))
    b_label = b_label or (b if isinstance(b, str) else _label(b))
    prepared_a, records_a = _prepare(graph, quantizer_a, qat, a_label, "A", engine)
    prepared_b, records_b = _prepare(graph, quantizer_b, qat, b_label, "B", engine)
    mismatches = compare_records(records_a, records_b)
    if numerics:
        batches = ([tuple(x) if isinstance(x, (list, tuple)) else (x,) for x in calibration]
                   if calibration is not None else calibration_batches(inputs, seed=seed))
        with stage("calibrating and converting both sides"):
            result = _numerics(prepared_a, prepared_b, inputs, batches, seed, engine)
    else:
        result = Numerics(False)
    del prepared_a, prepared_b
    adapter.forget_prepared_models()  # torchao would keep both copies alive for good
    label = model_label or (type(model).__name__ if not isinstance(model, GraphModule)
                            else "exported graph")
    return EquivalenceReport(a_label, b_label, label, len(set(records_a) | set(records_b)),
                             mismatches, result, records_a, records_b)
