"""Helper modules that reach every annotator of executorch's XNNPACKQuantizer (and
each place where it differs from torchao's testing copy): the cat's choice of input,
the ops that share their input's qparams, every conv form, transposed convs with and
without groups, dynamic conv; and (``SCOPES``) models for its set_module_name /
set_module_type / set_operator_type / set_filter_function. Each factory returns
``(module, inputs)`` in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShareOps(nn.Module):
    """conv -> reshape -> transpose -> slice -> dropout -> contiguous -> view, and the
    share ops of torchao's list too: hardtanh, max_pool2d, mean, functional
    adaptive_avg_pool2d, permute, squeeze, flatten."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        a = self.conv(x)
        b = a.reshape(1, 8, -1).transpose(1, 2)[:, 1:5]
        c = F.dropout(b, 0.5, self.training).contiguous().view(1, -1)
        d = F.max_pool2d(F.hardtanh(self.conv2(x)), 2)
        e = F.adaptive_avg_pool2d(d, 1).permute(0, 2, 3, 1).squeeze(1).flatten(1)
        return c, e, d.mean((2, 3))


class CatSources(nn.Module):
    """Cats whose qparams come from input 0, from a later input (the first inputs are
    the model's input and a constant, never quantized), from an input reached through
    reshape/transpose, from none (all float), and a cat fed by a cat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.conv2 = nn.Conv2d(3, 3, 1)
        self.register_buffer("const", torch.ones(1, 3, 8, 8))

    def forward(self, x):
        a, b = self.conv(x), self.conv2(x)
        first = torch.cat([a, x, b], 1)
        later = torch.cat([x, self.const, b, a], 1)
        through = torch.cat([x.flatten(2), a.reshape(1, 3, -1).transpose(1, 2)
                             .transpose(1, 2)], 1)
        unquantized = torch.cat([x, self.const], 1)
        nested = torch.cat([first, later], 1)
        return first, later, through, unquantized, nested


class CatAfterCat(nn.Module):
    """A cat whose qparams come from another cat reached through a transpose: executorch
    traces back to the first cat (annotated before the second); the ruleset sees the
    transpose propagated because one `per node` phase does cats and propagation."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        a = self.conv(x)
        first = torch.cat([a, x], 1)
        return torch.cat([x, first.transpose(2, 3), a], 1)


class CatLateSource(nn.Module):
    """A cat of seven inputs whose only quantized one is input 5, a conv's output reached
    through a view (the others are the model's input, a constant and ops no annotator
    quantizes): the ruleset's one cat rule picks any position."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.register_buffer("const", torch.ones(1, 3, 8, 8))

    def forward(self, x):
        source = self.conv(x).view(1, 3, 8, 8)
        return torch.cat([x, self.const, x.abs(), x.exp(), x.neg(), source, x], 1)


class ConvForms(nn.Module):
    """conv1d/2d/3d in .default and .padding forms, conv + relu, a depthwise conv and a
    1-input-channel conv (dynamic skips both), conv_transpose1d/2d with groups 1 and 2,
    conv_transpose + relu."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 3)
        self.c1_same = nn.Conv1d(3, 4, 3, padding="same")
        self.c2 = nn.Conv2d(3, 4, 3)
        self.c2_same = nn.Conv2d(3, 4, 3, padding="same")
        self.c2_relu = nn.Conv2d(3, 4, 1)
        self.depthwise = nn.Conv2d(4, 4, 3, groups=4)
        self.c3 = nn.Conv3d(3, 4, 1)
        self.c3_same = nn.Conv3d(3, 4, 3, padding="same")
        self.t1 = nn.ConvTranspose1d(3, 4, 2)
        self.t2 = nn.ConvTranspose2d(3, 4, 2)
        self.t2_grouped = nn.ConvTranspose2d(4, 4, 2, groups=2)
        self.t2_relu = nn.ConvTranspose2d(3, 4, 2)

    def forward(self, x1, x2, x3):
        y2 = self.c2(x2)
        return (self.c1(x1), self.c1_same(x1), y2, self.c2_same(x2),
                F.relu(self.c2_relu(x2)), self.depthwise(y2), self.c3(x3), self.c3_same(x3),
                self.t1(x1), self.t2(x2), self.t2_grouped(y2), F.relu(self.t2_relu(x2)))


class LinearBinary(nn.Module):
    """linear, linear + relu, add/mul with tensors and with scalars, each with and
    without relu, an nn.AdaptiveAvgPool2d module."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.linear_relu = nn.Linear(8, 8)
        self.conv = nn.Conv2d(3, 3, 1)
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x, image):
        a = self.linear(x)
        b = F.relu(self.linear_relu(x))
        c = F.relu(a + b) * 2.0
        d = F.relu(c * 0.5) + 1.0
        e = F.relu(d * a)
        return e, self.pool(self.conv(image))


class Proj(nn.Module):
    """A standalone linear: one of the two module types the scope tests select."""

    def __init__(self, features=16):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return self.linear(x)


class Gate(nn.Module):
    """add -> relu, then mul: the other module type."""

    def forward(self, x, y):
        return torch.relu(x + y) * y


class TwoModuleTypes(nn.Module):
    """A conv and a flatten at the root, two ``Proj`` and one ``Gate`` instance, and a
    head linear: named submodules of two types for set_module_name / set_module_type,
    linears and adds for set_operator_type, nodes a filter function can exclude."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.proj_a = Proj()
        self.proj_b = Proj()
        self.gate = Gate()
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        y = self.conv(x).flatten(1)
        return self.head(self.gate(self.proj_a(y), self.proj_b(y)) + y)


class ScopedConv(nn.Module):
    """A conv inside a named submodule: executorch's module filters fail on its weight
    (see docs/equivalence.md, "Anchor bugs")."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 4, 3))

    def forward(self, x):
        return self.block(x)


class CatPair(nn.Module):
    """Two convs and a cat of their outputs."""

    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(3, 2, 1)
        self.right = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return torch.cat([self.left(x), self.right(x)], 1)


class LinearFlatten(nn.Module):
    """linear -> flatten -> linear: propagation after a linear."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(8, 8)
        self.second = nn.Linear(16, 4)

    def forward(self, x):
        return self.second(self.first(x).flatten(1))


EXECUTORCH_SMALL = {
    "share_ops": lambda: (ShareOps(), (torch.randn(1, 3, 8, 8),)),
    "cat_sources": lambda: (CatSources(), (torch.randn(1, 3, 8, 8),)),
    "cat_after_cat": lambda: (CatAfterCat(), (torch.randn(1, 3, 8, 8),)),
    "cat_late_source": lambda: (CatLateSource(), (torch.randn(1, 3, 8, 8),)),
    "conv_forms": lambda: (ConvForms(), (torch.randn(1, 3, 8), torch.randn(1, 3, 8, 8),
                                         torch.randn(1, 3, 4, 4, 4))),
    "linear_binary": lambda: (LinearBinary(), (torch.randn(2, 8), torch.randn(1, 3, 8, 8))),
}

# Models of tests/equivalence/test_executorch_scopes.py (not in the config matrix).
SCOPES = {
    "two_module_types": lambda: (TwoModuleTypes(), (torch.randn(2, 1, 4, 4),)),
    "scoped_conv": lambda: (ScopedConv(), (torch.randn(1, 3, 8, 8),)),
    "cat_pair": lambda: (CatPair(), (torch.randn(1, 3, 8, 8),)),
    "linear_flatten": lambda: (LinearFlatten(), (torch.randn(1, 2, 8),)),
}


def executorch_small(name: str):
    torch.manual_seed(0)
    module, inputs = (EXECUTORCH_SMALL.get(name) or SCOPES[name])()
    return module.eval(), inputs
