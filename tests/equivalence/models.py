"""Models for the equivalence suite: the torchvision zoo and small helper modules.

``ZOO`` entries are built with ``weights=None``; inputs are as small as each model
allows (vit_b_16 needs 224x224). ``SMALL`` entries are the seed's helper modules
(``tests/seed/models.py``) plus graphs that exercise one annotator each: add/mul/cat,
propagation chains, GRU, conv variants. Every factory returns ``(module, inputs)``;
the module is in eval mode (the QAT tests export a train-mode copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.engine.models import GRUModel as GRUAfterLinear  # linear -> GRU -> linear
from tests.seed import models as seed

ZOO_SHAPES = {
    "resnet18": (1, 3, 64, 64),
    "mobilenet_v2": (1, 3, 64, 64),
    "mobilenet_v3_large": (1, 3, 64, 64),
    "efficientnet_b0": (1, 3, 64, 64),
    "vit_b_16": (1, 3, 224, 224),
    "convnext_tiny": (1, 3, 64, 64),
}


def zoo(name: str):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    return model, (torch.randn(*ZOO_SHAPES[name]),)


class AddMulCat(nn.Module):
    """Every binary annotator: add -> relu, add alone, mul -> relu, mul alone, a float
    scalar operand (converted to a graph constant), in-place add/mul with a tensor and
    with a Python number (left as it is), and a cat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.other = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.conv(x)
        z = self.other(x)
        a = torch.relu(y + z)
        b = a * z
        c = torch.relu(b * x)
        d = c + 1.5
        e = d * 0.5
        e += y
        e.add_(2.0)
        e.mul_(3.0)
        return torch.cat([e, a, x], 1)


class AddIntTensor(nn.Module):
    """An add whose second operand is an int tensor: neither side quantizes it."""

    def forward(self, x, i):
        return torch.relu(x) + i


class Propagation(nn.Module):
    """conv -> max_pool2d -> relu -> flatten/view/permute/squeeze/mean chains, so the
    output-sharing pass runs through every op it knows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        y = F.max_pool2d(self.conv(x), 2)
        y = torch.relu(y)
        y = F.hardtanh(self.conv2(y))
        m = y.mean(dim=(2, 3), keepdim=True)
        s = m.squeeze(-1).squeeze(-1)
        v = y.view(y.shape[0], -1)
        p = y.permute(0, 2, 3, 1)
        f = torch.flatten(y, 1)
        return self.linear(s), v, p, f


class AdaptivePools(nn.Module):
    """adaptive_avg_pool2d as a module (after a conv, so its input is quantized), as a
    module on an unquantized input, and as a function after a conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool2 = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        a = self.pool(self.conv(x))
        b = self.pool2(torch.sigmoid(x))
        c = F.adaptive_avg_pool2d(self.conv2(x), 1)
        return a, b, c


class TiedWeights(nn.Module):
    """One conv module applied twice: both convs read the same weight node."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(torch.relu(self.conv(x)))


class LargeScalar(nn.Module):
    """An add with a constant beyond what torch.histc (HistogramObserver) handles."""

    def forward(self, x):
        return torch.relu(x) + 1e16


class DivScalar(nn.Module):
    """A div and a sub by Python numbers, after an add with one."""

    def forward(self, x):
        return (x + 1.0) / 2.0 - 0.5


class ConvVariants(nn.Module):
    """conv1d, conv3d -> relu, a conv2d with padding='same' alone and with relu (also
    without bias), a conv_transpose2d alone and with relu, a conv whose output has two
    users."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 3, 3)
        self.c3 = nn.Conv3d(3, 3, 1)
        self.same = nn.Conv2d(3, 3, 3, padding="same")
        self.same_relu = nn.Conv2d(3, 3, 3, padding="same")
        self.t = nn.ConvTranspose2d(3, 3, 3)
        self.t_relu = nn.ConvTranspose2d(3, 3, 3)
        self.two = nn.Conv2d(3, 3, 1)
        self.no_bias = nn.Conv2d(3, 3, 3, padding="same", bias=False)

    def forward(self, x):
        a = self.c1(x.flatten(2))
        b = torch.relu(self.c3(x.unsqueeze(2)))
        c = self.same(x)
        d = torch.relu(self.same_relu(x))
        e = self.t(x)
        f = torch.relu(self.t_relu(x))
        g = self.two(x)
        h = torch.relu(self.no_bias(x))
        return a, b, c, d, e, f, torch.relu(g) + g, h


class LinearReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(4, 4)
        self.l2 = nn.Linear(4, 4, bias=False)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


class GRUInput(nn.Module):
    """An nn.GRU fed straight from the model inputs."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 4, batch_first=True)

    def forward(self, x, h):
        y, h2 = self.gru(x, h)
        return y, h2


class EmbeddingLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 2)

    def forward(self, idx):
        return self.lin(self.emb(idx))


# ------------------------------------------------------------ X86 recipe modules


class X86ConvFusions(nn.Module):
    """Every conv2d recipe of X86InductorQuantizer: conv + add + relu (module and
    functional relu), conv + add, conv + each unary module, a functional conv, a
    conv whose output has two users, and conv1d + relu."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(9))
        self.relu = nn.ReLU()
        self.unary = nn.ModuleList([nn.Hardtanh(), nn.Hardswish(), nn.ReLU6(), nn.SiLU()])
        self.conv1d = nn.Conv1d(4, 4, 1)

    def forward(self, x):
        c = self.convs
        y = self.relu(c[0](x) + x)             # conv + add + relu
        y = F.relu(y + c[1](y))                # add with the conv second, functional relu
        y = c[2](y)
        y += x                                 # conv + add_ (+=)
        for conv, unary in zip(c[3:7], self.unary):
            y = unary(conv(y))                 # conv + unary module
        z = F.conv2d(y, c[7].weight, c[7].bias, padding=1)   # functional conv
        shared = c[8](z)
        w = self.relu(shared) + shared         # conv with two users
        v = self.relu(self.conv1d(w.flatten(2)))
        return v


class X86LinearFusions(nn.Module):
    """linear + add + relu, linear + add, linear + each unary module, functional linear,
    and the same-shape / broadcast / scalar muls."""

    def __init__(self):
        super().__init__()
        self.lins = nn.ModuleList(nn.Linear(8, 8) for _ in range(7))
        self.relu = nn.ReLU()
        self.unary = nn.ModuleList([nn.ReLU(), nn.LeakyReLU(), nn.Tanh(), nn.GELU()])

    def forward(self, x):
        f = self.lins
        y = self.relu(f[0](x) + x)
        y = f[1](y) + y
        for lin, unary in zip(f[2:6], self.unary):
            y = unary(lin(y))
        z = F.linear(y, f[6].weight, f[6].bias)
        return z * y, z * y[:1], z * 2.0


class X86Propagation(nn.Module):
    """Pooling, cat and flatten after quantized convs, and where they are not: max pool
    of a float input, flatten feeding a quantizable op and one that does not, cat with
    one unquantized input."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.pool, self.avg = nn.MaxPool2d(2), nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.lin = nn.Linear(8, 4)

    def forward(self, x):
        a, b = self.pool(self.a(x)), self.avg(self.b(x))
        both = torch.cat([a, b], 1)
        mixed = torch.cat([a, torch.sigmoid(b)], 1)
        pooled = self.gap(both)
        head = self.lin(torch.flatten(pooled, 1))
        tail = torch.flatten(self.gap(mixed), 1).sum()
        floaty = self.pool(torch.sigmoid(x))
        return head, tail, floaty


class X86ConvBnAddRelu(nn.Module):
    """The QAT recipes: conv + bn + add + relu, conv + bn + add, conv + bn + unary."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3, 3, 3, padding=1) for _ in range(4))
        self.bns = nn.ModuleList(nn.BatchNorm2d(3) for _ in range(4))
        self.relu, self.hswish = nn.ReLU(), nn.Hardswish()

    def forward(self, x):
        c, b = self.convs, self.bns
        y = self.relu(b[0](c[0](x)) + x)
        y = b[1](c[1](y)) + y
        y = self.hswish(b[2](c[2](y)))
        return b[3](c[3](y))


def _image(n=1, c=3, size=8):
    return (torch.randn(n, c, size, size),)


SMALL = {
    "conv_bn_relu": lambda: (seed.ConvWithBNRelu(relu=True), _image()),
    "conv_bn": lambda: (seed.ConvWithBNRelu(relu=False), _image()),
    "conv1d_bn_relu": lambda: (seed.ConvWithBNRelu(relu=True, dim=1), (torch.randn(1, 3, 8),)),
    "conv_bn_relu_nobias": lambda: (seed.ConvWithBNRelu(relu=True, bias=False), _image()),
    "conv_transpose_bn_relu": lambda: (seed.ConvTWithBNRelu(relu=True), _image()),
    "conv_transpose_bn": lambda: (seed.ConvTWithBNRelu(relu=False), _image()),
    "conv_bn_relu_linear": lambda: (seed.ConvBnReLU2dAndLinearReLU(), _image()),
    "conv_linear_permute": lambda: (seed.ConvLinearWPermute(), _image()),
    "groupwise_conv": lambda: (seed.GroupwiseConv2d(), (torch.randn(2, 4, 10, 10),)),
    "linear": lambda: (seed.LinearModule(4), (torch.randn(2, 4),)),
    "linear_relu": lambda: (LinearReLU(), (torch.randn(2, 4),)),
    "embedding": lambda: (seed.EmbeddingModule(), (torch.tensor([1, 2, 3, 4, 5, 0]),)),
    "embedding_linear": lambda: (EmbeddingLinear(), (torch.tensor([1, 2, 3, 9]),)),
    "add_mul_cat": lambda: (AddMulCat(), _image()),
    "add_int_tensor": lambda: (AddIntTensor(),
                               (torch.randn(2, 3), torch.tensor([[1, 2, 3], [4, 5, 6]]))),
    "propagation": lambda: (Propagation(), _image()),
    "adaptive_pools": lambda: (AdaptivePools(), _image()),
    "conv_variants": lambda: (ConvVariants(), _image()),
    "tied_weights": lambda: (TiedWeights(), _image()),
    "large_scalar": lambda: (LargeScalar(), (torch.randn(2, 3),)),
    "div_scalar": lambda: (DivScalar(), (torch.randn(2, 3),)),
    "gru_input": lambda: (GRUInput(), (torch.randn(1, 3, 4), torch.randn(1, 1, 4))),
    "gru_after_linear": lambda: (GRUAfterLinear(), (torch.randn(1, 3, 4), torch.randn(1, 1, 4))),
    "x86_conv_fusions": lambda: (X86ConvFusions(), _image(c=4)),
    "x86_linear_fusions": lambda: (X86LinearFusions(), (torch.randn(2, 8),)),
    "x86_propagation": lambda: (X86Propagation(), _image()),
    "x86_conv_bn_add_relu": lambda: (X86ConvBnAddRelu(), _image()),
}


def small(name: str):
    torch.manual_seed(0)
    module, inputs = SMALL[name]()
    return module.eval(), inputs
