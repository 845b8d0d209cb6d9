"""The helper modules of ``tests/models/arm.py`` reach every entry of the support dicts
of executorch's Arm quantizers, read at test time: a pattern a future executorch adds
fails here until a helper reaches it (or it is listed below with the reason no exported
graph can hold it).

"Reached" means the anchor's pattern matcher weighed the pattern on a helper's graph
(its check may then accept or refuse it), inside ``transform_for_annotation`` (which
annotates the graph before the backend's decompositions) or ``annotate``."""

from __future__ import annotations

import warnings

import pytest

from qrules.engine.diff import anchor

from tests import models
from tests.models.arm import ARM_HELPERS, CORTEX_M_HELPERS, arm_helper

#: Entries no torch.export graph holds, by their targets' names, with the reason.
UNREACHABLE = {
    ("aten.full",): "an OpOverloadPacket: graph nodes call an overload (aten.full.default)",
    ("aten.floor",): "an OpOverloadPacket: graph nodes call aten.floor.default",
    ("aten.div.Scalar",): "torch.export records a division by a Python number as div.Tensor",
    **{("aten.max_pool2d_with_indices.default", act): "max_pool2d_with_indices' user is "
       "the getitem of its values, so no activation follows it directly"
       for act in ("aten.relu.default", "aten.hardtanh.default", "aten.clamp.default")},
}

SUPPORT = {
    "executorch:arm": ("executorch.backends.arm.quantizer.quantizer_support",
                       "TOSA_QUANTIZER_SUPPORT_DICT", ARM_HELPERS),
    "executorch:cortex_m": ("executorch.backends.cortex_m.quantizer.quantizer_support",
                            "CORTEX_M_QUANTIZER_SUPPORT_DICT", CORTEX_M_HELPERS),
}


def _names(pattern) -> tuple:
    return tuple(str(target) for target in pattern)


@pytest.mark.parametrize("spec", sorted(SUPPORT))
def test_helpers_reach_every_supported_pattern(spec, monkeypatch):
    import importlib

    from executorch.backends.cortex_m.quantizer.pattern_matcher import PatternMatcher

    module_name, dict_name, helpers = SUPPORT[spec]
    support = getattr(importlib.import_module(module_name), dict_name)
    reached = set()
    validate = PatternMatcher._validate_match

    def recording(self, match, config):
        reached.add(_names(node.target for node in match))
        return validate(self, match, config)

    monkeypatch.setattr(PatternMatcher, "_validate_match", recording)
    for name in helpers:
        module, inputs = arm_helper(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = models.export(module, inputs, check_guards=False)
            quantizer = anchor(spec)
            quantizer.annotate(quantizer.transform_for_annotation(graph))
    entries = {_names(pattern) for pattern in support}
    missing = sorted(entries - reached - set(UNREACHABLE))
    assert not missing, f"{dict_name} entries no helper in tests/models/arm.py reaches: " \
                        f"{missing}"
    stale = sorted(key for key in UNREACHABLE if key in reached)
    assert not stale, f"listed as unreachable but reached: {stale}"


def test_unreachable_entries_are_still_in_a_support_dict():
    import importlib

    entries = set()
    for module_name, dict_name, _ in SUPPORT.values():
        support = getattr(importlib.import_module(module_name), dict_name)
        entries |= {_names(pattern) for pattern in support}
    assert set(UNREACHABLE) <= entries, sorted(set(UNREACHABLE) - entries)
