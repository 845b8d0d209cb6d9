"""Shared fixtures: exported small models (once per session, deep-copied per use) and
the torchvision models (exported once per session)."""

import copy
import os
import warnings

# torchao's CPU-only install: skip loading its C++ extension .so files (noisy, unused).
os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests import models  # noqa: E402

_CACHE: dict = {}


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


def exported_copy(name: str):
    """A fresh deep copy of the exported model ``name`` and its example inputs."""
    if name not in _CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _CACHE[name] = models.export_model(name)
    gm, inputs = _CACHE[name]
    return copy.deepcopy(gm), inputs


@pytest.fixture
def exported():
    return exported_copy


@pytest.fixture
def registered():
    """(registry table, name) pairs a test registers, removed afterwards."""
    added = []
    yield added
    for table, name in added:
        table.pop(name, None)


def _torchvision(name: str):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    inputs = (torch.randn(1, 3, 64, 64),)
    return model, inputs, models.export(model, inputs)


@pytest.fixture(scope="session")
def resnet18():
    """(eager model, inputs, exported GraphModule); never annotate the graph in place."""
    return _torchvision("resnet18")


@pytest.fixture(scope="session")
def mobilenet_v2():
    return _torchvision("mobilenet_v2")
