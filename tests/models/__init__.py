"""Every model the engine, equivalence and seed tests run, and the one export helper.

* The engine's small graphs, by name: ``MODELS[name]() -> (module, inputs)``, exported
  by ``export_model(name)``. Every model is exported once per session (``exported``
  fixture in tests/engine/conftest.py); a test gets a deep copy, so annotating it never
  leaks into another test. Node names of the exported graphs are what the fixture
  files' ``# expect:`` lines refer to.
* The seed's helper modules: the small models the seed suite takes from
  ``torch.testing._internal``'s ``TestHelperModules``, copied here with the same shapes
  so that the seed's node counts apply unchanged (that module needs ``expecttest``,
  which is not installed, and pulls in torch.ao's FX quantization).
* The equivalence suite's models: the torchvision zoo (``zoo(name)``, built with
  ``weights=None``; 64x64 inputs, vit_b_16 built for that image size) and
  ``SMALL`` (``small(name)``): the seed's helper modules plus graphs that exercise one
  annotator each (add/mul/cat, propagation chains, GRU, conv variants, X86's recipes).
  Every factory returns ``(module, inputs)``; the module is in eval mode (the QAT
  tests export a train-mode copy).
* ``tests.models.executorch``: helper modules reaching every annotator of executorch's
  XNNPACKQuantizer (tests/equivalence/test_executorch_anchor.py);
  ``tests.models.arm``: those of its Arm and Cortex-M quantizers and a transformer
  block (tests/equivalence/test_arm_anchor.py, test_cortex_m_anchor.py);
  ``tests.models.device``: helper modules for the device harness (tests/device/).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def export(module: nn.Module, inputs: Iterable, *, strict: bool = False,
           check_guards: bool = True):
    """``torch.export.export(module, inputs).module()``: the exported GraphModule.
    ``check_guards=False`` leaves out torch 2.14's ``_guards_fn`` node, which Arm's
    preprocessing rejects: both sides of an Arm comparison export that way."""
    return torch.export.export(module, tuple(inputs), strict=strict).module(
        check_guards=check_guards)


def _image(n=1, c=3, size=8):
    return (torch.randn(n, c, size, size),)


# ------------------------------------------------------------ the engine's graphs


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


class ConvThenLinear(nn.Module):
    """conv2d -> linear, nothing between: input (1, 2, 4, 4). Tests delete the values
    export recorded for their arguments."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(self.conv(x))


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
    """linear -> GRU -> linear (the equivalence suite's gru_after_linear)."""

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


class AddAdd(nn.Module):
    """add -> add, the second add with an input of its own (step labels)."""

    def forward(self, x, y, z):
        return (x + y) + z


class ViewPermute(nn.Module):
    """x -> view -> permute: QNN's "share with the producer if annotated, else a fresh
    spec", decided node by node."""

    def forward(self, x):
        return x.view(2, 3, 4).permute(0, 2, 1)


class CatAfterConv(nn.Module):
    """A cat whose only quantizable input is its second, a conv's output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.cat([x, self.conv(x), x], 1)


class AddConstant(nn.Module):
    def forward(self, x):
        return x + 6


class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


class LinearPlusConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) + 6


class Linear2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(3, 3)

    def forward(self, x):
        return torch.relu(self.l(x))


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
    "add_constant": lambda: (AddConstant().eval(), (torch.randn(2, 3),)),
    "two_linear": lambda: (TwoLinear().eval(), (torch.randn(2, 4),)),
    "add_add": lambda: (AddAdd().eval(), tuple(torch.randn(2) for _ in range(3))),
    "view_permute": lambda: (ViewPermute().eval(), (torch.randn(2, 12),)),
    "cat_after_conv": lambda: (CatAfterConv().eval(), _image()),
}


def export_model(name: str):
    """(exported GraphModule, example inputs) of a model of ``MODELS``."""
    torch.manual_seed(0)
    module, inputs = MODELS[name]()
    return export(module, inputs), inputs


# ------------------------------------------------------------ the seed's helper modules


class ConvWithBNRelu(torch.nn.Module):
    def __init__(self, relu: bool, dim: int = 2, bn: bool = True, bias: bool = True):
        super().__init__()
        convs = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
        bns = {1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d, 3: torch.nn.BatchNorm3d}
        self.conv = convs[dim](3, 3, 3, bias=bias)
        self.bn = bns[dim](3) if bn else torch.nn.Identity()
        self.relu = torch.nn.ReLU() if relu else torch.nn.Identity()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class ConvTWithBNRelu(torch.nn.Module):
    def __init__(self, relu: bool, dim: int = 2, bn: bool = True, bias: bool = True):
        super().__init__()
        convts = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d}
        bns = {1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d}
        self.convt = convts[dim](3, 3, 3, bias=bias)
        self.bn = bns[dim](3) if bn else torch.nn.Identity()
        self.relu = torch.nn.ReLU() if relu else torch.nn.Identity()

    def forward(self, x):
        return self.relu(self.bn(self.convt(x)))


class ConvKindsBn(torch.nn.Module):
    """Every conv kind QAT fuses with batch norm, in one graph: conv2d (with and
    without bias), conv_transpose2d, conv1d, conv_transpose1d (without bias), each
    followed by bn (tests/engine/test_shared_passes.py: one torchao QAT convert covers
    all kinds)."""

    def __init__(self):
        super().__init__()
        self.conv = ConvWithBNRelu(relu=True)
        self.conv_nobias = ConvWithBNRelu(relu=False, bias=False)
        self.convt = ConvTWithBNRelu(relu=True)
        self.conv1d = ConvWithBNRelu(relu=True, dim=1)
        self.convt1d = ConvTWithBNRelu(relu=False, dim=1, bias=False)

    def forward(self, x):
        y = self.convt(self.conv_nobias(self.conv(x)))
        return self.convt1d(self.conv1d(y.flatten(2)))


class ConvBnReLU2dAndLinearReLU(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_bn_relu = ConvWithBNRelu(relu=True)
        self.linear = torch.nn.Linear(3, 8, bias=False)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        x = self.conv_bn_relu(x)
        permute_out = torch.permute(x, (0, 2, 3, 1))
        return self.linear(permute_out)


class ConvLinearWPermute(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.linear1 = torch.nn.Linear(8, 8)

    def forward(self, x):
        conv_out = self.conv(x)
        permute_out = torch.permute(conv_out, (0, 2, 3, 1))
        return self.linear1(permute_out)


class GroupwiseConv2d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.conv(x)

    def example_inputs(self):
        return (torch.randn(2, 4, 10, 10),)


class EmbeddingModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(num_embeddings=10, embedding_dim=12)

    def forward(self, indices):
        return self.emb(indices)


class LinearModule(torch.nn.Module):
    """The one-Linear model of the seed's ``_get_pt2e_quantized_linear``."""

    def __init__(self, features: int = 2):
        super().__init__()
        self.linear = torch.nn.Linear(features, features)

    def forward(self, x):
        return self.linear(x)


# ------------------------------------------------------------ the equivalence suite

ZOO_SHAPES = {
    "resnet18": (1, 3, 64, 64),
    "mobilenet_v2": (1, 3, 64, 64),
    "mobilenet_v3_large": (1, 3, 64, 64),
    "efficientnet_b0": (1, 3, 64, 64),
    "vit_b_16": (1, 3, 64, 64),
    "convnext_tiny": (1, 3, 64, 64),
}
#: The torchvision models of the equivalence and device suites.
ZOO = tuple(ZOO_SHAPES)


def zoo(name: str):
    import torchvision

    torch.manual_seed(0)
    shape = ZOO_SHAPES[name]
    # A ViT is built for one image size (its position embedding has a row per patch);
    # 64 px gives 17 tokens instead of 224 px's 197, the same graph at a tenth of the
    # cost of running it (calibration, numerics, the device runtime).
    size = {"image_size": shape[-1]} if name.startswith("vit_") else {}
    model = torchvision.models.get_model(name, weights=None, **size).eval()
    return model, (torch.randn(*shape),)


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


SMALL = {
    "conv_bn_relu": lambda: (ConvWithBNRelu(relu=True), _image()),
    "conv_bn": lambda: (ConvWithBNRelu(relu=False), _image()),
    "conv1d_bn_relu": lambda: (ConvWithBNRelu(relu=True, dim=1), (torch.randn(1, 3, 8),)),
    "conv_bn_relu_nobias": lambda: (ConvWithBNRelu(relu=True, bias=False), _image()),
    "conv_transpose_bn_relu": lambda: (ConvTWithBNRelu(relu=True), _image()),
    "conv_transpose_bn": lambda: (ConvTWithBNRelu(relu=False), _image()),
    "conv_bn_relu_linear": lambda: (ConvBnReLU2dAndLinearReLU(), _image()),
    "conv_kinds_bn": lambda: (ConvKindsBn(), _image(2)),
    "conv_linear_permute": lambda: (ConvLinearWPermute(), _image()),
    "groupwise_conv": lambda: (GroupwiseConv2d(), (torch.randn(2, 4, 10, 10),)),
    "linear": lambda: (LinearModule(4), (torch.randn(2, 4),)),
    "linear_relu": lambda: (LinearReLU(), (torch.randn(2, 4),)),
    "embedding": lambda: (EmbeddingModule(), (torch.tensor([1, 2, 3, 4, 5, 0]),)),
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
    "gru_after_linear": lambda: (GRUModel(), (torch.randn(1, 3, 4), torch.randn(1, 1, 4))),
    "x86_conv_fusions": lambda: (X86ConvFusions(), _image(c=4)),
    "x86_linear_fusions": lambda: (X86LinearFusions(), (torch.randn(2, 8),)),
    "x86_propagation": lambda: (X86Propagation(), _image()),
    "x86_conv_bn_add_relu": lambda: (X86ConvBnAddRelu(), _image()),
}


def small(name: str):
    torch.manual_seed(0)
    module, inputs = SMALL[name]()
    return module.eval(), inputs
