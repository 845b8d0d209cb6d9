"""Equivalence suite fixtures: models exported once per session, and the caches of
``caches.py`` (torchao's pattern traces, HistogramObserver's range search, the QNN
annotation pipeline) for the duration of this package's tests."""

import os
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import pytest  # noqa: E402

from tests import models  # noqa: E402
from tests.models.executorch import executorch_small  # noqa: E402

from . import caches  # noqa: E402

_EXPORTED: dict = {}


@pytest.fixture(scope="package", autouse=True)
def _torchao_caches():
    with caches.patterns_traced_once(), caches.histogram_search_once(), \
            caches.qnn_annotation_passes_once():
        yield


def exported(kind: str, name: str, qat: bool = False, strict: bool = False):
    """(exported GraphModule, inputs) of a zoo, small or executorch helper model
    (``tests/models/executorch.py``), exported once per
    session (in train mode for QAT); callers never annotate it in place (diff copies)."""
    key = (kind, name, qat, strict)
    if key not in _EXPORTED:
        factory = {"zoo": models.zoo, "small": models.small,
                   "executorch": executorch_small}[kind]
        module, inputs = factory(name)
        module.train(qat)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = models.export(module, inputs, strict=strict)
        _EXPORTED[key] = (graph, inputs)
    return _EXPORTED[key]
