"""PyTorch's ``test/quantization/pt2e/test_quantize_pt2e.py`` (the seed suite), ported
to qrules: every hand-written ``Quantizer`` of the seed is a ``.qrule`` source here,
every ``XNNPACKQuantizer`` / ``EmbeddingQuantizer`` is the built-in ``xnnpack`` /
``embedding`` ruleset. Method names are the seed's; ``tests/seed/__init__.py`` maps
them. Node counts and orders are the seed's unless a comment says why not.
"""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch

from torchao.quantization.pt2e.quantizer import ComposableQuantizer, Quantizer

from torchao.testing.pt2e._xnnpack_quantizer import (
    XNNPACKQuantizer, get_symmetric_quantization_config,
)

import qrules
from qrules.semantics import registry

from tests import models
from .helpers import (
    DEQUANT, DEQUANT_PC, DEQUANT_T, QUANT, QUANT_PC, QUANT_T, call_targets, check_nodes,
    check_quantizer,
    convert, export, get_node, prepare, pt2e_quantized_linear, quantize, rules,
)

aten = torch.ops.aten


# ----------------------------------------------------------------------- rule files

# The seed's ``_test_fixed_qparams_qspec`` BackendAQuantizer: sigmoid's input and
# output get FixedQParamsQuantizationSpec(uint8, 0..255, scale=1/256, zero_point=0).
FIXED_QPARAMS = """
ruleset backend_a version "1.0"

spec sigmoid_fixed = fixed(uint8, 0..255, scale=1/256, zero_point=0)

rule sigmoid: sigmoid : { input: sigmoid_fixed, output: sigmoid_fixed }
"""

# ``test_quantization_dtype``'s DtypeActQuantizer: OP_TO_ANNOTATOR["conv"] with
# activations of the parametrized dtype over its full range (per-tensor affine,
# MinMax observer: the seed's torch.ao ``default_observer``, which torchao's prepare
# rejects, so the torchao MinMaxObserver by its qrules name) and int8 symmetric
# per-tensor weights (the seed's ``default_weight_observer``), bias in float.
DTYPE_ACT = """
ruleset dtype_act version "1.0"

param act_dtype: enum(int16, float8_e5m2, float8_e4m3fn) = int16

spec act_int16 = affine(int16, observer=minmax)
spec act_e5m2 = affine(float8_e5m2, observer=minmax)
spec act_e4m3fn = affine(float8_e4m3fn, observer=minmax)
spec act = act_int16 if act_dtype == int16
      else act_e5m2 if act_dtype == float8_e5m2 else act_e4m3fn
spec weight = symmetric(int8, -128..127, observer=minmax)

rule conv: conv : { input: act, weight: weight, bias: none, output: act }
"""

# ``test_input_edge_sanity_check``'s BackendAQuantizer: both inputs of every add and
# its output, uint8 affine; on ``x + 6`` the second input is the Python number 6.
ADD_BOTH_INPUTS = """
ruleset backend_a version "1.0"

spec act = affine(uint8, 0..255, observer=minmax)

rule add: add : { input: act, output: act }
"""

# ``test_conv_transpose_bn_relu``'s BackendAQuantizer (OP_TO_ANNOTATOR
# ["conv_transpose_relu"]): int8 symmetric per-tensor everywhere, bias in float. In PTQ
# prepare folds the batch norm into the conv_transpose before annotating, so the
# optional ``bn?`` is what lets one rule cover the graph before and after folding.
CONV_TRANSPOSE_BN_RELU = """
ruleset backend_a version "1.0"

spec int8_qspec = symmetric(int8, -128..127, observer=minmax)

config int8_sym { input: int8_qspec, weight: int8_qspec, bias: none, output: int8_qspec }

rule conv_t: conv_transpose -> bn? -> relu : int8_sym
"""


# ------------------------------------------------------------------ transforms


def _retarget(source, target):
    def transform(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in gm.graph.nodes:
            if node.target == source:
                node.target = target
        gm.recompile()
        return gm
    return transform


@pytest.fixture
def seed_transforms():
    """The seed's ``transform_for_annotation`` bodies, registered from Python as qrules
    transforms (a .qrule file can only name registered code, never define it)."""
    registry.register_transform("add_to_mul", _retarget(aten.add.Tensor, aten.mul.Tensor))
    registry.register_transform("sub_to_div", _retarget(aten.sub.Tensor, aten.div.Tensor))
    yield
    for name in ("add_to_mul", "sub_to_div"):
        registry.TRANSFORMS.pop(name, None)


# ---------------------------------------------------------------------- the tests


class TestQuantizePT2E:
    # -------------------------------------------------------------- fixed qparams
    def _test_fixed_qparams_qspec(self, is_qat: bool):
        class M(torch.nn.Module):
            def forward(self, x):
                return torch.sigmoid(x)

        example_inputs = (torch.randn(1, 3, 5, 5),)
        m = quantize(M().eval(), rules(FIXED_QPARAMS, "backend_a.qrule"), example_inputs,
                     is_qat)
        fixed_scale, fixed_zero_point = 1.0 / 256.0, 0
        quants = [n for n in m.graph.nodes if n.target == QUANT]
        dequants = [n for n in m.graph.nodes if n.target == DEQUANT]
        assert quants and dequants
        for node in quants + dequants:
            assert node.args[1] == fixed_scale
            assert node.args[2] == fixed_zero_point
            assert node.args[3:6] == (0, 255, torch.uint8)
        check_nodes(m, {QUANT: 2, DEQUANT: 2}, [DEQUANT, aten.sigmoid.default, QUANT])

    def test_fixed_qparams_qspec_ptq(self):
        self._test_fixed_qparams_qspec(is_qat=False)

    def test_fixed_qparams_qspec_qat(self):
        self._test_fixed_qparams_qspec(is_qat=True)

    # -------------------------------------------------------------- activation dtypes
    @pytest.mark.parametrize("dtype", (torch.int16, torch.float8_e5m2, torch.float8_e4m3fn))
    def test_quantization_dtype(self, dtype):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 3, 3)

            def forward(self, x):
                return self.conv(x)

        name = str(dtype).replace("torch.", "")
        ruleset = rules(DTYPE_ACT, "dtype_act.qrule", act_dtype=name)
        m = check_quantizer(
            M().eval(), (torch.randn(1, 3, 3, 3),), ruleset,
            {QUANT: 2, DEQUANT: 3},
            [DEQUANT, DEQUANT, aten.conv2d.default, QUANT])
        info = torch.iinfo(dtype) if dtype == torch.int16 else torch.finfo(dtype)
        activation_qdq = [n for n in m.graph.nodes if n.target in (QUANT, DEQUANT)
                          and n.args[-1] == dtype]
        # input q/dq, output q/dq: the spec's dtype and its full range
        assert len(activation_qdq) == 4
        for node in activation_qdq:
            assert node.args[3:5] == (int(info.min), int(info.max))

    # -------------------------------------------------------------- input edges
    def test_input_edge_sanity_check(self):
        class M(torch.nn.Module):
            def forward(self, x):
                return x + 6

        m = export(M().eval(), (torch.randn(1, 2, 3, 3),))
        before = [(n, n.op, n.target, n.args, dict(n.meta)) for n in m.graph.nodes]
        code_before = m.code
        quantizer = rules(ADD_BOTH_INPUTS, "backend_a.qrule").quantizer()
        with pytest.raises(qrules.ValidationError) as info:
            prepare(m, quantizer)
        error = info.value
        # qrules catches the bad edge itself, naming the rule and where it is written;
        # torchao would fail later with a bare "Expected input_edge to have type ...".
        assert [d.code for d in error.diagnostics] == ["QR601"]
        text = str(error)
        assert "backend_a.qrule:5:6" in text          # `rule add` is line 5, col 6
        assert "rule `add`" in text and "node `add`" in text
        assert " 6" in error.diagnostics[0].message    # the Python constant it hit
        assert "rule add: add : { input: act, output: act }" in text  # the source line
        # ... and leaves the graph exactly as it was: same nodes, same metadata objects,
        # no annotation written.
        after = [(n, n.op, n.target, n.args, dict(n.meta)) for n in m.graph.nodes]
        assert len(after) == len(before)
        for (n0, op0, t0, a0, meta0), (n1, op1, t1, a1, meta1) in zip(before, after):
            assert (n0, op0, t0, a0) == (n1, op1, t1, a1)
            assert meta0.keys() == meta1.keys()
            assert all(meta0[k] is meta1[k] for k in meta0)
            assert "quantization_annotation" not in meta1
        assert m.code == code_before

    # -------------------------------------------------------------- folding
    def test_fold_quantize(self):
        m = pt2e_quantized_linear()
        check_nodes(m, {QUANT: 2, DEQUANT: 3})

    def test_fold_quantize_per_channel(self):
        m = pt2e_quantized_linear(is_per_channel=True)
        check_nodes(m, {QUANT: 2, DEQUANT_PC: 1, DEQUANT: 2})

    def test_dont_fold_other_constant(self):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(2, 2)
                self.dont_fold_me = torch.nn.Parameter(torch.randn(2, 2))

            def forward(self, x):
                t = self.dont_fold_me.t()
                return self.linear(x) + t

        # XNNPACKQuantizer().set_module_type(nn.Linear, symmetric per-tensor config)
        quantizer = qrules.RulesetQuantizer().set_module_type(
            torch.nn.Linear, qrules.load("xnnpack", per_channel=False))
        m = quantize(M().eval(), quantizer, (torch.randn(2, 2),))
        check_nodes(m, {QUANT: 2, DEQUANT: 3, aten.t.default: 1})

    def test_fold_all_ops_before_quantize(self):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = torch.randn(2, 2)

            def forward(self, x):
                t = self.weight.t()
                return torch.nn.functional.linear(x, t)

        m = quantize(M().eval(), qrules.load("xnnpack", per_channel=False),
                     (torch.randn(2, 2),))
        check_nodes(m, {QUANT: 2, DEQUANT: 3})

    def test_constant_prop_preserve_metadata(self):
        example_inputs = (torch.randn(2, 2),)
        m = export(models.LinearModule().eval(), example_inputs)
        weight_meta = None
        for n in m.graph.nodes:
            if n.op == "get_attr" and next(iter(n.users)).target == aten.linear.default:
                weight_meta = n.meta
                break
        assert weight_meta is not None, "Expect to find metadata for weight node"

        def folded_params(quantizer):
            gm = prepare(copy.deepcopy(m), quantizer)
            gm(*example_inputs)
            gm = convert(gm)
            return gm, [n for n in gm.graph.nodes
                        if n.op == "get_attr" and "frozen_param" in n.target]

        q, frozen = folded_params(qrules.load("xnnpack"))
        assert len(frozen) == 1
        n = frozen[0]
        # torch 2.13+: export gives the weight's get_attr no `stack_trace` (its meta is
        # val, tensor_meta, from_node), and after convert_pt2e the folded `_frozen_param`
        # keeps only `from_node` (the provenance of the folded observer), so the seed's
        # assertIn("stack_trace", ...) cannot hold. torchao's own port of this test
        # checks every key but `from_node` against the weight's, as here.
        assert "stack_trace" not in weight_meta
        for key in n.meta:
            if key != "from_node":
                assert n.meta[key] == weight_meta[key]
        # torchao's XNNPACKQuantizer leaves the very same metadata keys
        reference = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
        _, reference_frozen = folded_params(reference)
        assert [sorted(r.meta) for r in reference_frozen] == [sorted(n.meta)]
        # and the folded constant is the weight, quantized with the dequantize's qparams
        dequant = next(iter(n.users))
        assert dequant.target == DEQUANT
        scale, zero_point, qmin, qmax = dequant.args[1:5]
        weight = m.get_parameter("linear.weight").detach()
        expected = torch.clamp(torch.round(weight / scale) + zero_point, qmin, qmax)
        assert torch.equal(getattr(q, n.target), expected.to(torch.int8))

    # -------------------------------------------------------------- save / load
    def test_save_load(self, tmp_path):
        m = pt2e_quantized_linear()
        example_inputs = (torch.randn(2, 2),)
        ref_res = m(*example_inputs)
        path = tmp_path / "quantized.pt2"
        torch.export.save(torch.export.export(m, example_inputs), path)
        loaded = torch.export.load(path).module()
        torch.testing.assert_close(loaded(*example_inputs), ref_res)
        # the loaded program still carries the quantize/dequantize ops
        check_nodes(loaded, {QUANT: 2, DEQUANT: 3})

    # -------------------------------------------------------------- composition
    def test_composable_quantizer_throw(self):
        class BadQuantizer(Quantizer):
            """Kept in Python on purpose: it overwrites annotations another quantizer
            made, which a .qrule file cannot do (a rule never takes an annotated node)."""

            def annotate(self, gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
                for n in gm.graph.nodes:
                    n.meta["quantization_annotation"] = None

            def validate(self, model: torch.fx.GraphModule) -> None:
                pass

        xnnpack = qrules.load("xnnpack", per_channel=True)
        example_inputs = (torch.randn(2, 3, 4, 4),)
        m_eager = models.ConvLinearWPermute().eval()
        # torchao's ComposableQuantizer, as the seed composes it
        with pytest.raises(RuntimeError, match="has removed annotations|has changed"):
            check_quantizer(m_eager, example_inputs,
                            ComposableQuantizer([xnnpack.quantizer(), BadQuantizer()]), {})
        # qrules.compose raises a RuntimeError subclass naming the rule overwritten
        with pytest.raises(RuntimeError) as info:
            check_quantizer(m_eager, example_inputs, qrules.compose(xnnpack, BadQuantizer()),
                            {})
        assert isinstance(info.value, qrules.ComposeConflictError)
        assert "xnnpack.qrule:" in str(info.value)

        # The .qrule version of the BadQuantizer (leave everything in float) cannot
        # clobber xnnpack's annotations: composed after it, it takes only what is left.
        leave_in_float = rules("""
            ruleset bad version "1.0"
            rule bad: any : none
            """, "bad.qrule")
        m = check_quantizer(m_eager, example_inputs, qrules.compose(xnnpack, leave_in_float),
                            {QUANT: 4, DEQUANT: 4, DEQUANT_PC: 2})
        alone = check_quantizer(m_eager, example_inputs, xnnpack,
                                {QUANT: 4, DEQUANT: 4, DEQUANT_PC: 2})
        assert call_targets(m) == call_targets(alone)

    def test_transform_for_annotation(self, seed_transforms):
        class M(torch.nn.Module):
            def forward(self, x):
                return x + 3

        # The seed's TestQuantizer annotates nothing; this one also quantizes every mul,
        # which exists only once the transform has run: observers around the mul show
        # the transform ran before annotation.
        ruleset = rules("""
            ruleset test_quantizer version "1.0"
            transform add_to_mul
            spec act = affine(int8, -128..127, observer=minmax)
            rule mul: mul : { input[0]: act, output: act }
            """, "test_quantizer.qrule")
        example_inputs = (torch.randn(1, 2, 3, 3),)
        m = prepare(export(M().eval(), example_inputs), ruleset)
        m(*example_inputs)
        check_nodes(m, {aten.add.Tensor: 0, aten.mul.Tensor: 1})
        mul = get_node(m, aten.mul.Tensor)
        assert mul.args[0].op == "call_module" and mul.args[1] == 3
        assert [u.op for u in mul.users] == ["call_module"]

    def test_composable_quantizer_transform_for_annotation(self, seed_transforms):
        class M(torch.nn.Module):
            def forward(self, x, y, z):
                return x + y - z

        first = rules("""
            ruleset test_quantizer1 version "1.0"
            transform add_to_mul
            """, "test_quantizer1.qrule")
        second = rules("""
            ruleset test_quantizer2 version "1.0"
            transform sub_to_div
            """, "test_quantizer2.qrule")
        example_inputs = tuple(torch.randn(1, 2, 3, 3) for _ in range(3))
        m = prepare(export(M().eval(), example_inputs), qrules.compose(first, second))
        m(*example_inputs)
        check_nodes(m, {aten.add.Tensor: 0, aten.sub.Tensor: 0, aten.mul.Tensor: 1,
                        aten.div.Tensor: 1})

    def test_embedding_quantizer(self):
        m_eager = models.EmbeddingModule().eval()
        indices = torch.tensor([9, 6, 5, 7, 8, 8, 9, 2, 8, 6, 6, 9, 1, 6, 8, 8,
                                3, 2, 3, 6, 3, 6, 5, 7, 0, 8, 4, 6, 5, 8, 2, 3])
        example_inputs = (indices,)
        m = check_quantizer(
            m_eager, example_inputs, qrules.load("embedding"),
            # the weight's quantize op is constant-folded
            {QUANT_PC: 0, DEQUANT_PC: 1},
            [DEQUANT_PC, aten.embedding.default])
        # The seed also compares with FX quantization (float_qparams_weight_only_qconfig),
        # which torch.ao no longer offers on torch 2.13+; compare with torchao's own
        # EmbeddingQuantizer instead: the same graph and the same numbers.
        from torchao.quantization.pt2e.quantizer.embedding_quantizer import EmbeddingQuantizer

        reference = check_quantizer(m_eager, example_inputs, EmbeddingQuantizer(),
                                    {QUANT_PC: 0, DEQUANT_PC: 1},
                                    [DEQUANT_PC, aten.embedding.default])
        torch.testing.assert_close(m(*example_inputs), reference(*example_inputs),
                                   rtol=0, atol=0)

    def test_composable_quantizer_linear_conv(self):
        # Dynamic first: the static ruleset would otherwise take the linear.
        composed = qrules.compose(qrules.load("xnnpack", dynamic=True),
                                  qrules.load("xnnpack", per_channel=True))
        check_quantizer(
            models.ConvLinearWPermute().eval(), (torch.randn(2, 3, 4, 4),), composed,
            {QUANT_T: 1, DEQUANT_T: 1,
             # the weights' quantize ops are constant-folded
             QUANT: 3, DEQUANT: 4, QUANT_PC: 0, DEQUANT_PC: 1})

    # -------------------------------------------------------------- train / eval
    def _test_move_exported_model_dropout(self, inplace: bool):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.dropout = torch.nn.Dropout(0.5, inplace=inplace)

            def forward(self, x):
                return self.dropout(x)

        m = export(M().train(), (torch.randn(1),))
        target = aten.dropout_.default if inplace else aten.dropout.default
        assert get_node(m, target).args[2]
        qrules.move_exported_model_to_eval(m)
        assert not get_node(m, target).args[2]
        qrules.move_exported_model_to_train(m)
        assert get_node(m, target).args[2]

    def test_move_exported_model_dropout(self):
        self._test_move_exported_model_dropout(inplace=False)

    def test_move_exported_model_dropout_inplace(self):
        self._test_move_exported_model_dropout(inplace=True)

    def _get_bn_train_eval_ops(self):
        # torch 2.13+ (CPU): export calls aten.batch_norm.default in both modes, with the
        # training flag as args[5]; _native_batch_norm_legit(_no_training) are gone.
        return aten.batch_norm.default, aten.batch_norm.default

    def test_move_exported_model_bn(self):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = torch.nn.BatchNorm2d(3)

            def forward(self, x):
                return self.bn(x)

        bn_train_op, bn_eval_op = self._get_bn_train_eval_ops()
        m = export(M().train(), (torch.randn(1, 3, 3, 3),))
        assert get_node(m, bn_train_op).args[5]
        qrules.move_exported_model_to_eval(m)
        assert not get_node(m, bn_eval_op).args[5]
        qrules.move_exported_model_to_train(m)
        assert get_node(m, bn_train_op).args[5]

    def test_disallow_eval_train(self):
        m = models.ConvWithBNRelu(relu=True)
        example_inputs = (torch.rand(3, 3, 5, 5),)
        # before export: fine
        m.eval()
        m.train()
        # after export: not allowed
        m = export(m, example_inputs)
        with pytest.raises(NotImplementedError):
            m.eval()
        with pytest.raises(NotImplementedError):
            m.train()
        # after prepare (QAT, as the seed): still not allowed
        m = prepare(m, qrules.load("xnnpack", per_channel=True, qat=True).quantizer(),
                    is_qat=True)
        with pytest.raises(NotImplementedError):
            m.eval()
        with pytest.raises(NotImplementedError):
            m.train()
        # after convert: still not allowed
        m(*example_inputs)
        m = convert(m)
        with pytest.raises(NotImplementedError):
            m.eval()
        with pytest.raises(NotImplementedError):
            m.train()

    def test_allow_exported_model_train_eval(self):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = torch.nn.BatchNorm2d(3)
                self.dropout = torch.nn.Dropout(0.5)

            def forward(self, x):
                return self.dropout(self.bn(x))

        example_inputs = (torch.randn(1, 3, 3, 3),)
        bn_train_op, bn_eval_op = self._get_bn_train_eval_ops()
        m = export(M().train(), example_inputs)

        def assert_ops_are_correct(m: torch.fx.GraphModule, train: bool):
            bn_node = get_node(m, bn_train_op if train else bn_eval_op)
            # the seed checks the flag on CUDA only, where the op did not change with
            # the mode; on torch 2.13+ the flag is the mode on CPU too
            assert bn_node.args[5] == train
            assert get_node(m, aten.dropout.default).args[2] == train

        def assert_disallowed(m):
            with pytest.raises(NotImplementedError):
                m.eval()
            with pytest.raises(NotImplementedError):
                m.train()

        def assert_allowed(m):
            qrules.allow_exported_model_train_eval(m)
            m.eval()
            assert_ops_are_correct(m, train=False)
            m.train()
            assert_ops_are_correct(m, train=True)

        assert_disallowed(m)
        assert_allowed(m)
        # after prepare (QAT), before wrapping: not allowed; then wrapped
        m = prepare(m, qrules.load("xnnpack", qat=True).quantizer(), is_qat=True)
        assert_disallowed(m)
        assert_allowed(m)
        # after convert
        m(*example_inputs)
        m = convert(m, fold_quantize=True)
        assert_disallowed(m)
        assert_allowed(m)

    def test_model_is_exported(self):
        m = models.ConvWithBNRelu(relu=True)
        example_inputs = (torch.rand(3, 3, 5, 5),)
        exported_gm = export(m, example_inputs)
        fx_traced_gm = torch.fx.symbolic_trace(m, example_inputs)
        assert qrules.model_is_exported(exported_gm)
        assert not qrules.model_is_exported(fx_traced_gm)
        assert not qrules.model_is_exported(m)

    # -------------------------------------------------------------- reentrancy
    def test_reentrant(self):
        m = models.ConvBnReLU2dAndLinearReLU()
        example_inputs = (torch.randn(3, 3, 10, 10),)

        qat = qrules.load("xnnpack", per_channel=True, qat=True)
        m.conv_bn_relu = export(m.conv_bn_relu, example_inputs)
        m.conv_bn_relu = prepare(m.conv_bn_relu, qat.quantizer(), is_qat=True)
        m(*example_inputs)
        m.conv_bn_relu = convert(m.conv_bn_relu)

        # XNNPACKQuantizer().set_module_type(nn.Linear, per-tensor config)
        linear_only = qrules.RulesetQuantizer().set_module_type(
            torch.nn.Linear, qrules.load("xnnpack", per_channel=False))
        m = export(m, example_inputs)
        m = prepare(m, linear_only)
        m(*example_inputs)
        m = convert(m)

        check_nodes(m, {QUANT: 4, DEQUANT: 5, DEQUANT_PC: 1},
                    [DEQUANT, aten.conv2d.default, aten.relu.default, QUANT, DEQUANT,
                     aten.linear.default, QUANT])

    def test_groupwise_per_channel_quant(self):
        m = models.GroupwiseConv2d()
        example_inputs = m.example_inputs()
        m = quantize(m, qrules.load("xnnpack", per_channel=True), example_inputs)
        out = m(*example_inputs)
        assert out.shape == (2, 4, 8, 8)
        # (not in the seed, which only runs the model) the groupwise conv is quantized:
        # per-channel weight, per-tensor activations
        check_nodes(m, {QUANT: 2, DEQUANT: 2, DEQUANT_PC: 1},
                    [DEQUANT_PC, QUANT, DEQUANT, aten.conv2d.default, QUANT, DEQUANT])
        # per-channel weight scales along the 4 output channels
        weight_dq = get_node(m, DEQUANT_PC)
        assert weight_dq.args[1].target and getattr(m, weight_dq.args[1].target).shape == (4,)

    def test_speed(self):
        """The seed times prepare/convert of embedding + dynamic linear (QAT) and
        asserts nothing about the times. No timed unit test here: this checks the
        same path runs, and that qrules' annotation never traces a pattern (the
        reason it is fast: compiled matchers, no torch.export at annotate time)."""

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(5, 5)

            def forward(self, x):
                return self.linear(x)

        def traces_in_annotate(quantizer, gm) -> int:
            with mock.patch.object(torch.export, "export", wraps=torch.export.export) as t:
                quantizer.annotate(quantizer.transform_for_annotation(copy.deepcopy(gm)))
            return t.call_count

        example_inputs = (torch.randn(5, 5),)
        composed = qrules.compose(qrules.load("embedding"),
                                  qrules.load("xnnpack", per_channel=True, dynamic=True))
        model = export(M().eval(), example_inputs)
        assert traces_in_annotate(composed, model) == 0
        # also where torchao's XNNPACKQuantizer traces 12 patterns (QAT conv-bn-relu)
        conv_bn = export(models.ConvWithBNRelu(relu=True), (torch.rand(3, 3, 5, 5),))
        qat = qrules.load("xnnpack", per_channel=True, qat=True).quantizer()
        assert traces_in_annotate(qat, conv_bn) == 0

        model = prepare(model, composed, is_qat=True)
        model(*example_inputs)
        model = convert(model)
        model(*example_inputs)
        check_nodes(model, {QUANT_T: 1, DEQUANT_T: 1, DEQUANT_PC: 1, QUANT: 0, DEQUANT: 0},
                    [QUANT_T, DEQUANT_T, aten.linear.default])

    # -------------------------------------------------------------- patterns
    def test_conv_transpose_bn_relu(self):
        check_quantizer(
            models.ConvTWithBNRelu(relu=True, bn=True), (torch.randn(1, 3, 5, 5),),
            rules(CONV_TRANSPOSE_BN_RELU, "backend_a.qrule"),
            # two for the conv_transpose input (q, dq), one dq for its folded weight,
            # q/dq for the relu output
            {QUANT: 2, DEQUANT: 3},
            [DEQUANT, DEQUANT, aten.conv_transpose2d.input, aten.relu.default, QUANT])

    def test_multi_users_without_output_observer(self):
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 3, 3)

            def forward(self, x):
                x = self.conv(x)
                return x, x + 1

        example_inputs = (torch.randn(1, 3, 5, 5),)
        m = export(M(), example_inputs)
        m = prepare(m, qrules.load("xnnpack").quantizer())
        m(*example_inputs)

        # remove the output observer of the conv, which has two users
        observer_to_remove = None
        for n in m.graph.nodes:
            if n.op == "output":
                observer_to_remove = n.args[0][0]
                assert observer_to_remove.op == "call_module"
                assert observer_to_remove.target.startswith("activation_post_process_")
                break
        assert observer_to_remove is not None
        observer_to_remove.replace_all_uses_with(observer_to_remove.args[0])
        m.graph.erase_node(observer_to_remove)
        m.recompile()

        # convert must still succeed, and the model run
        m = convert(m)
        m(*example_inputs)
