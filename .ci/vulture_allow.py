"""Names vulture reports as unused that are used, each with the reason it cannot see.

.ci/run's "dead code (vulture)" section scans qrules/ together with this file, so a
name written here counts as used. vulture never runs it. Review every entry like code:
an entry for a name that is really dead hides that dead code. vulture matches by name
only, so an entry (`_.name`) covers every definition of that name in qrules/.
"""

_ = None  # every entry is an attribute of this, so ruff sees no undefined name

# pydantic reads a model's configuration from the class attribute `model_config`.
_.model_config  # AST nodes, Span, Diagnostic, Note

# A module-level __getattr__ (PEP 562) is called by Python for unknown attributes:
# qrules/__init__.py imports the engine (torch) only on first use.
_.__getattr__  # qrules/__init__.py

# Lark's Transformer calls the AstBuilder method named after each grammar rule or
# alias (grammar/qrule.lark); tests/test_one_copy.py checks that every public
# AstBuilder method still is one, so a callback for a removed rule cannot hide here.
_.name_list  # rule name_list
_.include  # rule include
_.arg_position  # alias arg_position
_.arg_every  # alias arg_every (`input: *`)
_.arg_through  # alias arg_through
_.role_binding  # rule role_binding
_.role_block  # rule role_block
_.op_def  # rule op_def
_.op_alias  # rule op_alias
_.spec_def  # rule spec_def
_.role_key  # rule role_key
_.config_entry  # rule config_entry
_.config_def  # rule config_def
_.signed_int  # rule signed_int
_.op_ref  # alias op_ref
_.predicate_block  # rule predicate_block
_.step_label  # rule step_label
_.alternation  # rule alternation
_.block  # rule block
_.when_block  # rule when_block
_.disable_rule  # alias disable_rule
_.extend_rule  # rule extend_rule
_.disable_transform  # alias disable_transform
_.disable  # rule disable
_.transform_decl  # rule transform_decl
_.transform_stage  # rule transform_stage
_.pattern_def  # rule pattern_def
_.annotation_decl  # rule annotation_decl
_.scoping_decl  # rule scoping_decl
_.phase_mode  # rule phase_mode
_.first_of  # rule first_of
_.first_index  # alias first_index
_.int_lit  # alias int_lit
_.float_lit  # alias float_lit
_.string_lit  # alias string_lit
_.true_lit  # alias true_lit
_.false_lit  # alias false_lit
_.none_lit  # alias none_lit
_.list_lit  # alias list_lit
_.attribute  # alias attribute
_.positional  # alias positional
_.negate  # alias negate
_.not_  # alias not_
_.binary  # alias binary
_.power  # alias power
_.compare  # alias compare
_.and_  # alias and_
_.or_  # alias or_
_.conditional  # alias conditional
_.selector_list  # rule selector_list

# The Evaluator types an expression with the method `_v_<node class>`, found by name.
_._v_IntLit  # semantics/evaluate.py
_._v_FloatLit  # semantics/evaluate.py
_._v_StringLit  # semantics/evaluate.py
_._v_BoolLit  # semantics/evaluate.py
_._v_NoneLit  # semantics/evaluate.py
_._v_Name  # semantics/evaluate.py
_._v_Unary  # semantics/evaluate.py
_._v_Binary  # semantics/evaluate.py
_._v_Conditional  # semantics/evaluate.py

# Built-in registry entries name their implementation as a "module:attribute" string
# (semantics/registry.py), imported when first used.
_.scale_product  # derive function, passes/derive.py
_.scale_div  # derive function, passes/derive.py
_.qnn_bias  # derive function, adapter/qualcomm.py (executorch QNN's bias)
_.scalars_to_attrs  # transform, passes/transforms.py
_.arm_decompositions  # transform, adapter/executorch.py (named by rulesets/arm.qrule)

# Public API: used by callers of the package, not inside it (documented in docs/).
_.quantize  # qrules.quantize, via the lazy table in qrules/__init__.py
_.load_program  # qrules.load_program, via the lazy table in qrules/__init__.py
_.annotation_of  # adapter/quantizer.py, docs/semantics.md
_.last_plan  # RulesetQuantizer.last_plan, docs/api.md
_.a_records  # EquivalenceReport.a_records, docs/api.md
_.b_records  # EquivalenceReport.b_records, docs/api.md
_.RUNTIME_FAMILIES  # diagnostics.py: QR6xx are graph-time codes; the tests read it
_.register_observer  # semantics/registry.py, the extension API
_.register_transform  # semantics/registry.py, the extension API
_.register_annotation_kind  # semantics/registry.py, the extension API
_.register_derive_function  # semantics/registry.py, the extension API
_.register_fact  # semantics/registry.py, the extension API (docs/api.md)
_.register_predicate_function  # semantics/registry.py, the extension API (docs/api.md)
_.set_node_name  # adapter/quantizer.py, RulesetQuantizer scoping API (docs/api.md)
_.set_node_target  # adapter/quantizer.py, RulesetQuantizer scoping API (docs/api.md)
_.set_io  # adapter/quantizer.py, RulesetQuantizer scoping API (docs/api.md)
_.set_node_filter  # adapter/quantizer.py, RulesetQuantizer scoping API (docs/api.md)
_.kwargs_doc  # semantics/registry.py Entry field, read by scripts/registry_tables.py
# pygls calls these: each is registered for an LSP message with @server.feature.
_.did_open  # lsp/server.py, textDocument/didOpen
_.did_change  # lsp/server.py, textDocument/didChange
_.did_close  # lsp/server.py, textDocument/didClose

# pytest calls the hooks and Item methods of qrules's plugin by name
# (qrules/cli/pytest_plugin.py, the pytest11 entry point).
_.pytest_collect_file  # hook: a .qtest file becomes a RuleTestFile
_.runtest  # RuleTestCase

# lark calls the `deserialize` of the LALR_Parser class given in its `_plugins` option
# (qrules/syntax/grammar.py, FastLoadingParser) when it loads the cached tables.
_.deserialize  # FastLoadingParser.deserialize

# dict's own method, overridden on the marks' shared empty input map to refuse changes.
_.popitem  # qrules/passes/placing.py (_NoInputs)
