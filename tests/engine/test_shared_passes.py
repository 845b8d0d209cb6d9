"""qrules' prepare / convert passes make torchao's graphs (qrules/adapter/shared_passes.py).

Each case prepares copies of one export with ``engine="torchao"`` (torchao's
``prepare_pt2e`` / ``prepare_qat_pt2e`` / ``convert_pt2e``) and ``engine="qrules"``,
and requires, after prepare and again after convert: the same nodes in the same order
(op, name, target, arguments), the same module classes with the same constructor
arguments (their ``repr``), state_dict tensors bit-equal; outputs bit-identical after
calibration; for QAT, gradients, updated parameters and outputs bit-identical after one
SGD step. Every built-in ruleset on small modules and on a zoo model; QAT on resnet18
and on one small model that holds every conv kind QAT fuses, since each torchao QAT
convert costs ~20 s of pattern exports.
The device rulesets (``arm``, ``cortex_m``, ``qnn``) run on the helper modules their
equivalence suites use, exported as those do (``check_guards=False``), in widths and
dtypes whose observers differ (16-bit activations, 4-bit and blockwise weights, fp16
activations); where executorch's own config cannot convert, both engines must fail
alike.
"""

from __future__ import annotations

import copy

import pytest
import torch

import qrules
from qrules.engine import pipeline
from qrules.passes.histogram import search_bins
from tests.models import SMALL, export, zoo
from tests.models.arm import arm_helper
from tests.models.qnn import qnn_small

PTQ_CASES = [  # (ruleset, params, model)
    ("xnnpack", {}, "conv_bn_relu_linear"),
    ("xnnpack", {"per_channel": True}, "add_mul_cat"),
    ("xnnpack", {"per_channel": True}, "conv_transpose_bn_relu"),
    ("xnnpack", {"flavor": "torchao"}, "propagation"),
    ("xnnpack", {"flavor": "torchao", "per_channel": True}, "conv1d_bn_relu"),
    ("xnnpack", {"dynamic": True}, "linear_relu"),
    ("x86_inductor", {}, "x86_conv_fusions"),
    ("x86_inductor", {}, "x86_propagation"),
    ("x86_inductor", {"reduce_range": True}, "x86_linear_fusions"),
    ("embedding", {}, "embedding_linear"),
]
# (ruleset, params, zoo model, export keywords): every built-in ruleset once, exported
# as its equivalence suite exports (x86_inductor strictly, tests/equivalence/cases.py;
# the device rulesets without torch's guards node, which Arm's passes reject).
DEVICE_EXPORT = {"check_guards": False}
ZOO_CASES = [
    ("xnnpack", {"per_channel": True}, "resnet18", {}),
    ("xnnpack", {"flavor": "torchao"}, "efficientnet_b0", {}),
    ("x86_inductor", {}, "resnet18", {"strict": True}),
    ("embedding", {}, "resnet18", {}),
    ("arm", {}, "mobilenet_v2", DEVICE_EXPORT),
    ("cortex_m", {}, "resnet18", DEVICE_EXPORT),
    ("qnn", {"dtype": "8a8w", "per_channel": True}, "mobilenet_v3_large", DEVICE_EXPORT),
    ("qnn", {"dtype": "16a8w"}, "resnet18", DEVICE_EXPORT),
]
QAT_CASES = [("xnnpack", {"per_channel": True, "qat": True}, "conv_kinds_bn"),
             ("xnnpack", {"qat": True}, "conv_kinds_bn")]  # per-tensor weights
# The device rulesets: (ruleset, params, helper model).
DEVICE_PTQ_CASES = [
    ("arm", {}, "conv_fusions"),
    ("arm", {"act_bits": 16}, "transformer_block"),
    ("arm", {"weight_bits": 4, "per_channel": False}, "linear_fusions"),
    ("arm", {}, "unary_ops"),      # fixed qparams (asin, acos, atanh), shared specs
    ("cortex_m", {}, "cortex_m_chains"),
    ("cortex_m", {}, "cortex_m_binary"),
    ("qnn", {"dtype": "8a8w", "per_channel": True}, "conv_family"),
    ("qnn", {"dtype": "16a4w_block"}, "decoder_block"),
    ("qnn", {"dtype": "16a8w"}, "elementwise"),
    ("qnn", {"dtype": "fp16a8w"}, "reductions"),
]
DEVICE_QAT_CASES = [
    ("arm", {"act_bits": 16}, "transformer_block"),
    ("qnn", {"dtype": "8a8w", "per_channel": True}, "conv_family"),   # conv kinds + bn
]


def _structure(gm: torch.fx.GraphModule) -> list:
    modules = dict(gm.named_modules(remove_duplicate=False))
    rows = []
    for node in gm.graph.nodes:
        target = node.target
        if node.op == "call_module":
            target = (type(modules[target]).__name__, repr(modules[target]))
        rows.append((node.op, node.name, str(target), str(node.args), str(node.kwargs)))
    return rows


def _assert_same_graph(reference: torch.fx.GraphModule, ours: torch.fx.GraphModule) -> None:
    expected, got = _structure(reference), _structure(ours)
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), None)
    assert expected == got, f"first difference at node {first}: " + (
        f"{expected[first]} != {got[first]}" if first is not None
        else f"{len(expected)} != {len(got)} nodes")
    want, have = reference.state_dict(), ours.state_dict()
    assert list(want) == list(have)
    for key, tensor in want.items():
        other = have[key]
        assert tensor.dtype == other.dtype and tensor.shape == other.shape, key
        assert torch.equal(tensor, other), key


def _leaves(output) -> list:
    if isinstance(output, (tuple, list)):
        return [leaf for item in output for leaf in _leaves(item)]
    return [output]


def _assert_same_values(reference, ours) -> None:
    assert len(reference) == len(ours)
    for want, have in zip(reference, ours):
        assert (want is None) == (have is None)
        if want is not None:
            assert torch.equal(want, have)


def _prepare_both(graph, inputs, ruleset, qat):
    prepared = {engine: pipeline.prepare(copy.deepcopy(graph), inputs, ruleset, qat=qat,
                                         engine=engine)
                for engine in ("torchao", "qrules")}
    _assert_same_graph(prepared["torchao"], prepared["qrules"])
    return prepared


def _convert_both(prepared, inputs):
    converted = {engine: pipeline.convert(model, engine=engine)
                 for engine, model in prepared.items()}
    _assert_same_graph(converted["torchao"], converted["qrules"])
    with torch.no_grad():
        outputs = [_leaves(converted[engine](*inputs)) for engine in ("torchao", "qrules")]
    _assert_same_values(*outputs)
    assert outputs[0]
    return converted["qrules"]


def _targets(gm: torch.fx.GraphModule) -> list:
    return [node.target for node in gm.graph.nodes if node.op == "call_function"]


def _check_ptq(graph, inputs, ruleset):
    prepared = _prepare_both(graph, inputs, ruleset, qat=False)
    calibration = [inputs, tuple(x * 3 if x.is_floating_point() else x for x in inputs)]
    for model in prepared.values():
        pipeline.calibrate(model, calibration, progress=False)
    _convert_both(prepared, inputs)


def _same_training_step(prepared: dict, inputs) -> None:
    """One SGD step on each engine's prepared model: gradients, updated parameters and
    the outputs after it bit-identical."""
    steps = {}
    for engine, model in prepared.items():
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        sum(leaf.square().sum() for leaf in _leaves(model(*inputs))).backward()
        grads = [p.grad for p in model.parameters()]
        assert any(grad is not None for grad in grads)
        optimizer.step()
        steps[engine] = (grads, [p.detach().clone() for p in model.parameters()],
                         _leaves(model(*inputs)))
    for index in range(3):
        _assert_same_values(steps["torchao"][index], steps["qrules"][index])


def _train_and_convert(prepared: dict, inputs) -> torch.fx.GraphModule:
    """Both engines' QAT graphs the same after one training step and after convert;
    qrules' converted graph."""
    _same_training_step(prepared, inputs)
    for model in prepared.values():
        qrules.move_exported_model_to_eval(model)
    return _convert_both(prepared, inputs)


def _device_graph(name: str, model: str, train: bool = False):
    module, inputs = (qnn_small if name == "qnn" else arm_helper)(model)
    return export(module.train(train), inputs, **DEVICE_EXPORT), inputs


@pytest.mark.parametrize("name,params,model", PTQ_CASES,
                         ids=[f"{n}{sorted(p.items())}-{m}" for n, p, m in PTQ_CASES])
def test_ptq_small_models(name, params, model):
    torch.manual_seed(0)
    module, inputs = SMALL[model]()
    _check_ptq(export(module.eval(), inputs), inputs, qrules.load(name, **params))


@pytest.mark.parametrize("name,params,model,how", ZOO_CASES,
                         ids=[f"{n}{sorted(p.items())}-{m}" for n, p, m, _ in ZOO_CASES])
def test_ptq_zoo(name, params, model, how):
    module, inputs = zoo(model)
    _check_ptq(export(module, inputs, **how), inputs, qrules.load(name, **params))


def test_qat_zoo():
    """resnet18, the QAT bench's model: torchao's QAT passes export their conv-bn
    patterns on every call (~20 s here), so one zoo model."""
    module, inputs = zoo("resnet18")
    ruleset = qrules.load("xnnpack", per_channel=True, qat=True)
    _train_and_convert(_prepare_both(export(module.train(), inputs), inputs, ruleset,
                                     qat=True), inputs)


@pytest.mark.parametrize("name,params,model", QAT_CASES,
                         ids=[f"{n}{sorted(p.items())}-{m}" for n, p, m in QAT_CASES])
def test_qat_training_step_and_fold(name, params, model):
    torch.manual_seed(0)
    module, inputs = SMALL[model]()
    prepared = _prepare_both(export(module.train(), inputs), inputs,
                             qrules.load(name, **params), qat=True)
    fused = _targets(prepared["qrules"])  # each bn fused: its conv's weight scaled by 1/std
    batch_norms = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                      for m in module.modules())
    assert fused.count(torch.ops.aten.sqrt.default) == fused.count(
        torch.ops.aten.batch_norm.default) == batch_norms > 0
    folded = _targets(_train_and_convert(prepared, inputs))
    assert torch.ops.aten.batch_norm.default not in folded
    assert torch.ops.aten.sqrt.default not in folded


@pytest.mark.parametrize("name,params,model", DEVICE_PTQ_CASES,
                         ids=[f"{n}{sorted(p.items())}-{m}" for n, p, m in DEVICE_PTQ_CASES])
def test_ptq_device_rulesets(name, params, model):
    graph, inputs = _device_graph(name, model)
    _check_ptq(graph, inputs, qrules.load(name, **params))


def test_anchor_config_failure_is_the_same_in_both_engines():
    """executorch's dynamic Arm config prepares, but its convert asks a
    PlaceholderObserver for qparams (tests/equivalence/arm_cases.py, ANCHOR_FAILS):
    qrules' convert must refuse it just as torchao's does, not make something else."""
    graph, inputs = _device_graph("arm", "linear_fusions")
    prepared = _prepare_both(graph, inputs, qrules.load("arm", dynamic=True), qat=False)
    for engine, model in prepared.items():
        pipeline.calibrate(model, [inputs], progress=False)
        with pytest.raises(Exception, match="calculate_qparams should not be called for "
                                            "PlaceholderObserver"):
            pipeline.convert(model, engine=engine)


@pytest.mark.parametrize("name,params,model", DEVICE_QAT_CASES,
                         ids=[f"{n}{sorted(p.items())}-{m}" for n, p, m in DEVICE_QAT_CASES])
def test_qat_device_rulesets(name, params, model):
    torch.manual_seed(0)
    graph, inputs = _device_graph(name, model, train=True)
    prepared = _prepare_both(graph, inputs, qrules.load(name, qat=True, **params), qat=True)
    _train_and_convert(prepared, inputs)


def test_engine_switch_is_checked():
    with pytest.raises(ValueError, match="engine must be one of qrules, torchao"):
        pipeline.convert(None, engine="fx")


def test_histogram_search_matches_torchao():
    """search_bins on floats picks the bins torchao's tensor walk picks, histogram
    shapes a calibration does not reach included (spikes, ties at a float32 bound)."""
    from torchao.quantization.pt2e.observer import HistogramObserver

    generator = torch.Generator().manual_seed(0)
    samples = [torch.randn(4000, generator=generator),
               torch.randn(4000, generator=generator).exp(),
               torch.cat([torch.zeros(3000), torch.full((5,), 40.0)]),
               torch.rand(999, generator=generator) * 7 - 1]
    for sample in samples:
        observer = HistogramObserver()
        observer(sample)
        observer(sample * 1.5 + 0.25)
        want = observer._non_linear_param_search()
        cumulative = torch.cumsum(observer.histogram, dim=0).tolist()
        total = torch.sum(observer.histogram).item()
        start, end = search_bins(cumulative, total, observer._compute_quantization_error)
        width = (observer.max_val - observer.min_val) / observer.bins
        assert torch.equal(want[0], observer.min_val + width * start)
        assert torch.equal(want[1], observer.min_val + width * (end + 1))
