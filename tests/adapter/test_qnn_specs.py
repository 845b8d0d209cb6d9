"""The spec constructs executorch's Qualcomm quantizer needs, each checked against the
torchao spec executorch 1.5.1's ``qconfig.py`` builds: field by field, observer or
fake-quantizer class and keyword arguments included (``describe_spec``, what
``qrules diff`` compares). The spec text here is what QNNSPEC_STATUS.md gives
rulesets/qnn.qrule for each QuantDtype."""

from __future__ import annotations

import pytest

from qrules.adapter.torchao import SpecBuilder
from qrules.api import load_text
from qrules.engine.diff.describe import describe_spec
from qrules.semantics.evaluate import Evaluator
from qrules.span import Span
from qrules.syntax import ast
from executorch.backends.qualcomm.quantizer import qconfig


HEADER = 'ruleset qnn_specs version "1.0"\n'
_SPAN = Span(line=1, col=1, end_line=1, end_col=1)


def built(text: str, name: str, **params):
    """The torchao spec that ``spec NAME`` of ``text`` builds with ``params`` bound."""
    loaded = load_text(HEADER + text, "qnn_specs.qrule", **params)
    evaluator = Evaluator(loaded.checked.symbols, loaded.bound.params)
    [value] = evaluator.spec(ast.Name(id=name, span=_SPAN))
    assert not evaluator.diagnostics, evaluator.diagnostics
    return SpecBuilder().build(value)


def same(ours, theirs) -> None:
    assert describe_spec(ours) == describe_spec(theirs)
    for field in ("dtype", "quant_min", "quant_max", "qscheme", "ch_axis", "is_dynamic"):
        assert getattr(ours, field) == getattr(theirs, field), field


# ------------------------------------------------------------- stored-as dtypes

STORED_AS = """
spec act16 = affine(uint16 as int32, observer=moving_average_minmax(eps=0.0001/65535))
spec w4 = symmetric(int4 as int8, -7..7, ch_axis=0, observer=minmax(eps=0.0001/65535))
spec w2 = symmetric(int2 as int8, observer=minmax(eps=0.0001/65535))
spec act8_w4 = affine(uint8, observer=moving_average_minmax(eps=0.0001/255))
spec w4_8 = symmetric(int4 as int8, -7..7, ch_axis=0, observer=minmax(eps=0.0001/255))
rule linear: linear : { input: act16, weight: w4, output: act16 }
rule conv: conv2d : { input: act16, weight: w2, output: act16 }
rule linear8: linear : { input: act8_w4, weight: w4_8, output: act8_w4 }
"""


@pytest.mark.parametrize("name, anchor", [
    ("act16", lambda: qconfig.get_16a4w_qnn_ptq_config().input_activation),
    ("act16", lambda: qconfig.get_16a16w_qnn_ptq_config().output_activation),
    ("act16", lambda: qconfig.get_16a2w_qnn_ptq_config().input_activation),
    ("w4", lambda: qconfig.get_16a4w_qnn_ptq_config().weight),
    ("w2", lambda: qconfig.get_16a2w_qnn_ptq_config().weight),
    ("act8_w4", lambda: qconfig.get_8a4w_qnn_ptq_config().input_activation),
    ("w4_8", lambda: qconfig.get_8a4w_qnn_ptq_config().weight),
])
def test_stored_as_dtypes_build_qnn_specs(name, anchor):
    ours = built(STORED_AS, name)
    same(ours, anchor())
