"""Compare two quantizers on one model: annotations node by node, then numerics.

``describe`` turns torchao's specs and annotations into comparable tuples, ``compare``
compares two sides' records node by node and holds the report types, ``anchors`` builds
the hand-written quantizers (torchao's, executorch's) from a fixed table, and ``run`` is
``diff()`` itself (prepare with a recording quantizer, calibrate, convert, compare
outputs).

``qrules.diff`` (the API's) also takes ruleset names and paths and loads them; this
package takes loaded rulesets, quantizers and anchor specs (``torchao:…``,
``executorch:…``).
"""

from qrules.engine.diff.anchors import ANCHORS, anchor, is_anchor_spec, parse_anchor
from qrules.engine.diff.compare import KINDS, EquivalenceReport, Mismatch, MismatchGroup, Numerics
from qrules.engine.diff.describe import (
    AnnotationRecord, describe_annotation, describe_ctor, describe_spec, format_spec,
    record_annotations,
)
from qrules.engine.diff.run import SideFailed, diff

__all__ = ["diff", "EquivalenceReport", "Mismatch", "Numerics", "AnnotationRecord", "anchor",
           "parse_anchor", "describe_annotation", "describe_spec", "record_annotations",
           "ANCHORS", "is_anchor_spec", "SideFailed", "describe_ctor", "format_spec", "KINDS",
           "MismatchGroup"]
