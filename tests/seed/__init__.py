"""The seed suite: PyTorch's ``test/quantization/pt2e/test_quantize_pt2e.py``, ported.

Every hand-written ``Quantizer`` of the seed is ``.qrule`` text here, the seed's
``XNNPACKQuantizer`` + ``get_symmetric_quantization_config(...)`` is the built-in
``qrules.load("xnnpack", per_channel=..., qat=..., dynamic=...)``, its
``EmbeddingQuantizer`` is ``qrules.load("embedding")``, ``ComposableQuantizer`` is
``qrules.compose``. Node counts and orders are the seed's; where torch 2.13+ /
torchao 0.18 changed something, the test says why and, where useful, shows torchao's
own quantizer giving the same result.

Time: ~100 s for the directory on 2 cores. No test is timed (``test_speed`` checks the
path runs and that annotation traces nothing). The three QAT-on-batch-norm tests are
dominated by torchao re-tracing its fixed patterns; ``conftest.py`` traces each once per
package run.

Mapping (seed ``TestQuantizePT2E`` -> ``test_quantize_pt2e.py::TestQuantizePT2E``, same
method names)::

    seed                                              port: quantizer as
    ------------------------------------------------  ----------------------------------
    _test_fixed_qparams_qspec (called, not defined    _test_fixed_qparams_qspec, rebuilt
      in the seed; body from pytorch/ao)                from pytorch/ao: FIXED_QPARAMS
    test_fixed_qparams_qspec_ptq                      same: FIXED_QPARAMS .qrule
    test_fixed_qparams_qspec_qat                      same (QAT prepare, as the seed)
    test_quantization_dtype[int16|e5m2|e4m3fn]        same, parametrized: DTYPE_ACT .qrule
                                                        with an enum param (torchao MinMax
                                                        observers; torch.ao's are rejected)
    test_input_edge_sanity_check                      same: ADD_BOTH_INPUTS .qrule; asserts
                                                        qrules.ValidationError QR601 with
                                                        the rule's file:line:col and an
                                                        untouched graph
    test_fold_quantize                                same: xnnpack
    test_fold_quantize_per_channel                    same: xnnpack per_channel=True
    test_dont_fold_other_constant                     same: RulesetQuantizer()
                                                        .set_module_type(nn.Linear, xnnpack)
    test_fold_all_ops_before_quantize                 same: xnnpack
    test_constant_prop_preserve_metadata              same: xnnpack (+ torchao XNNPACK-
                                                        Quantizer for the new meta keys)
    test_save_load                                    same: torch.export.save / load
    test_composable_quantizer_throw                   same: qrules.compose and torchao's
                                                        ComposableQuantizer; BadQuantizer
                                                        stays Python (see the test)
    test_transform_for_annotation                     same: transform registered from
                                                        Python, named by a .qrule file
    test_composable_quantizer_transform_for_annotation  same: two .qrule files, compose
    test_embedding_quantizer                          same: embedding (+ torchao's
                                                        EmbeddingQuantizer instead of FX)
    test_composable_quantizer_linear_conv             same: compose(xnnpack dynamic,
                                                        xnnpack per_channel)
    _get_node                                         helpers.get_node
    _test_move_exported_model_dropout                 same
    test_move_exported_model_dropout                  same
    test_move_exported_model_dropout_inplace          same
    _get_bn_train_eval_ops                            same (aten.batch_norm.default twice)
    test_move_exported_model_bn                       same
    test_disallow_eval_train                          same: xnnpack qat=True
    test_allow_exported_model_train_eval              same: xnnpack qat=True
    test_model_is_exported                            same: qrules.model_is_exported
    test_reentrant                                    same: xnnpack qat, then Linear-only
    test_groupwise_per_channel_quant                  same: xnnpack per_channel=True
    test_speed                                        same, untimed: runs the path and
                                                        checks annotate traces nothing
    test_conv_transpose_bn_relu                       same: CONV_TRANSPOSE_BN_RELU .qrule
                                                        (conv_transpose -> bn? -> relu)
    test_multi_users_without_output_observer          same: xnnpack

Helpers (seed ``PT2EQuantizationTestCase`` / ``TestHelperModules`` -> here)::

    _test_quantizer                                   helpers.check_quantizer
    _quantize                                         helpers.quantize
    _get_pt2e_quantized_linear                        helpers.pt2e_quantized_linear
    checkGraphModuleNodes                             helpers.check_nodes
    TestHelperModules.ConvWithBNRelu, ConvTWithBNRelu, tests/models/ (same shapes)
      ConvBnReLU2dAndLinearReLU, ConvLinearWPermute,
      GroupwiseConv2d, EmbeddingModule
    capture_pre_autograd_graph                        helpers.export
                                                        (torch.export.export(...).module())
"""
