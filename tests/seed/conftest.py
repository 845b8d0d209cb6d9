"""The seed suite (PyTorch's test_quantize_pt2e.py) ported to qrules rulesets."""

import os

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
