"""Small models for the engine tests, by name: ``MODELS[name]() -> (module, inputs)``.

Every model is exported once per session (``exported`` fixture in conftest.py); a
test gets a deep copy, so annotating it never leaks into another test. Node names of
the exported graphs are what the fixture files' ``# expect:`` lines refer to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


class ConvTwoUsers(nn.Module):
    """The conv's output has two users: a relu and an add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(y) + y


class ConvBnReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class ConvLinear(nn.Module):
    """conv -> relu -> max_pool -> flatten -> linear -> hardtanh, plus a conv1d."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv1d = nn.Conv1d(3, 3, 1)
        self.linear = nn.Linear(36, 5)

    def forward(self, x):
        y = F.max_pool2d(torch.relu(self.conv(x)), 2)
        z = F.hardtanh(self.linear(torch.flatten(y, 1)))
        return z, self.conv1d(x.flatten(2))


class ConvPool(nn.Module):
    """conv (no relu) -> max_pool2d -> relu: for phases and quantized(input)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(F.max_pool2d(self.conv(x), 2))


class Depthwise(nn.Module):
    """A depthwise conv (groups == channels) and a regular one."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, groups=4)
        self.pw = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


class AddScalar(nn.Module):
    def forward(self, x):
        return torch.relu(x + 6) * x


class ConvAdd(nn.Module):
    """conv -> add (other operand from outside) -> relu, and a cat of two branches."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.other = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = torch.relu(self.conv(x) + x)
        return torch.cat([y, self.other(x)], 1)


class Indices(nn.Module):
    """Integer tensors: an embedding index and ``arange(n) + 0``."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, idx):
        positions = torch.arange(idx.shape[0]) + 0
        return self.emb(idx) + self.emb(positions)


class EmbeddingLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 2)

    def forward(self, idx):
        return self.lin(self.emb(idx))


class Masked(nn.Module):
    """A bool tensor input: the mask of masked_fill."""

    def forward(self, x, mask):
        return torch.relu(x.masked_fill(mask, 0.0))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.proj(x))


class Nested(nn.Module):
    """encoder.layers.{0,1}.proj (nn.Linear), a functional linear, classifier."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([Block(), Block()])
        self.w = nn.Parameter(torch.randn(4, 4))
        self.classifier = nn.Linear(4, 2)

    def forward(self, x):
        for layer in self.encoder.layers:
            x = layer(x)
        x = F.linear(x, self.w)
        return self.classifier(x)


class GRUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.gru = nn.GRU(4, 4, batch_first=True)
        self.out = nn.Linear(4, 2)

    def forward(self, x, h):
        y, h2 = self.gru(self.lin(x), h)
        return self.out(y), h2


class TupleOutputs(nn.Module):
    """Ops returning tuples: max_pool2d_with_indices and the explicit
    _native_batch_norm_legit_no_training, both read through getitem."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("var", torch.ones(4))
        self.scale = nn.Parameter(torch.ones(4))
        self.shift = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        y = torch.ops.aten._native_batch_norm_legit_no_training.default(
            self.conv(x), self.scale, self.shift, self.mean, self.var, 0.1, 1e-5)[0]
        pooled, _ = F.max_pool2d(torch.relu(y), 2, return_indices=True)
        return pooled


class Linear2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(3, 3)

    def forward(self, x):
        return torch.relu(self.l(x))


def _image(n=1, c=3, size=8):
    return (torch.randn(n, c, size, size),)


MODELS = {
    "conv_relu": lambda: (ConvReLU().eval(), _image()),
    "conv_two_users": lambda: (ConvTwoUsers().eval(), _image()),
    "conv_bn_relu": lambda: (ConvBnReLU().eval(), _image()),
    # QAT: exported in train mode, batch norm stays in the graph
    "conv_bn_relu_train": lambda: (ConvBnReLU().train(), _image(2)),
    "conv_linear": lambda: (ConvLinear().eval(), _image(1, 3, 8)),
    "conv_pool": lambda: (ConvPool().eval(), _image()),
    "depthwise": lambda: (Depthwise().eval(), _image(1, 4)),
    "add_scalar": lambda: (AddScalar().eval(), (torch.randn(2, 3),)),
    "conv_add": lambda: (ConvAdd().eval(), _image()),
    "indices": lambda: (Indices().eval(), (torch.tensor([1, 2, 3]),)),
    "embedding_linear": lambda: (EmbeddingLinear().eval(), (torch.tensor([1, 2, 3]),)),
    "masked": lambda: (Masked().eval(), (torch.randn(2, 3), torch.rand(2, 3) > 0.5)),
    "nested": lambda: (Nested().eval(), (torch.randn(2, 4),)),
    "gru": lambda: (GRUModel().eval(), (torch.randn(1, 3, 4), torch.randn(1, 1, 4))),
    "tuple_outputs": lambda: (TupleOutputs().eval(), _image()),
    "linear_2d": lambda: (Linear2d().eval(), (torch.randn(2, 3),)),
}


def export(name: str):
    """(exported GraphModule, example inputs) of a model of ``MODELS``."""
    torch.manual_seed(0)
    module, inputs = MODELS[name]()
    return torch.export.export(module, inputs).module(), inputs
