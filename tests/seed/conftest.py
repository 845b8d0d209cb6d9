"""The seed suite (PyTorch's test_quantize_pt2e.py) ported to qrules rulesets."""

import copy
import importlib
import os
import types

# torchao's CPU-only install: skip loading its C++ extension .so files (noisy, unused).
# Must be set before anything imports torchao; the adapter sets it too.
os.environ["TORCHAO_FORCE_SKIP_LOADING_SO_FILES"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Deterministic weights and inputs; a clean dynamo cache per test, as the seed's
    helpers reset it."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    yield


# ----------------------------------------------------------- torchao pattern traces
#
# torchao re-traces a fixed set of small pattern functions with torch.export every time
# it needs them: 12 on each prepare_qat_pt2e of a graph with batch norm, 96 on each
# convert_pt2e of such a graph, 4 on each move_exported_model_to_eval/train. At ~0.7-1.4 s
# a trace on this 2-core machine, the three seed tests that do QAT on batch-norm graphs
# (disallow/allow train-eval, reentrant) spent about 4 minutes re-tracing the same
# patterns. A traced pattern depends only on the pattern function (its code and closure)
# and the shapes/dtypes of its example inputs, so while this package's tests run each is
# traced once and handed out as deep copies; torchao's function is restored afterwards.
# Nothing qrules does is cached: qrules never traces patterns (test_speed asserts it). A
# pattern the key cannot describe is traced as usual.

_PATTERN_MODULES = ("torchao.quantization.pt2e.utils", "torchao.quantization.pt2e.qat_utils",
                    "torchao.quantization.pt2e.reference_representation_rewrite")
_NAME = "_get_aten_graph_module_for_pattern"


class _Unkeyable(Exception):
    pass


def _key(obj, depth: int = 0):
    if depth > 20:
        raise _Unkeyable("too deep")
    depth += 1
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return (type(obj).__name__, obj)
    if isinstance(obj, torch.Tensor):
        return ("tensor", tuple(obj.shape), obj.dtype, obj.device.type, obj.requires_grad)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_key(item, depth) for item in obj))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((k, _key(v, depth)) for k, v in obj.items())))
    if isinstance(obj, types.FunctionType):
        try:
            cells = tuple(_key(cell.cell_contents, depth) for cell in obj.__closure__ or ())
        except ValueError:  # an empty cell
            raise _Unkeyable("empty closure cell") from None
        return ("function", obj.__code__, cells, _key(obj.__defaults__ or (), depth),
                _key(obj.__kwdefaults__ or {}, depth))
    if isinstance(obj, (types.BuiltinFunctionType, torch._ops.OpOverload,
                        torch._ops.OpOverloadPacket)):
        return ("builtin", obj)
    if isinstance(obj, torch.nn.Module) and hasattr(obj, "fn") and not any(
            True for _ in obj.parameters()) and not any(True for _ in obj.buffers()):
        return ("wrapper", type(obj), _key(obj.fn, depth))  # torchao's WrapperModule(fn)
    raise _Unkeyable(type(obj))


@pytest.fixture(scope="package", autouse=True)
def _trace_torchao_patterns_once():
    modules = [importlib.import_module(name) for name in _PATTERN_MODULES]
    original = getattr(modules[0], _NAME)
    cache = {}

    def traced_once(pattern, example_inputs, is_cuda=False, **kwargs):
        try:
            key = _key((pattern, example_inputs, is_cuda, kwargs))
        except _Unkeyable:
            return original(pattern, example_inputs, is_cuda, **kwargs)
        if key not in cache:
            cache[key] = original(pattern, example_inputs, is_cuda, **kwargs)
        return copy.deepcopy(cache[key])

    patched = [m for m in modules if getattr(m, _NAME, None) is original]
    for module in patched:
        setattr(module, _NAME, traced_once)
    yield
    for module in patched:
        setattr(module, _NAME, original)
