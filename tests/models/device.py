"""Helper modules for the device harness: each exercises one op family the XNNPACK
runtime checks when it builds its graph (a cat or reshape whose input and output
qparams differ is refused), or one annotator of executorch's XNNPACKQuantizer that
torchao's copy lacks. Every factory returns ``(module in eval mode, inputs)``."""

from __future__ import annotations

import torch
from torch import nn


class ConvAddCat(nn.Module):
    """The issue's small model: two convs, an add, a cat of the sum and one conv."""

    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(3, 4, 3)
        self.right = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        a, b = self.left(x), self.right(x)
        return torch.cat([a + b, b], 1)


class CatInputs(nn.Module):
    """A cat whose first input is a graph input and whose others come from convs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.after = nn.Conv2d(9, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return self.after(torch.cat([x, y, torch.relu(y)], 1))


class ReshapeView(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.linear = nn.Linear(144, 8)

    def forward(self, x):
        y = self.conv(x).reshape(1, 4, 36)
        return self.linear(y.view(1, 144))


class Transpose(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(8, 6)
        self.second = nn.Linear(4, 5)

    def forward(self, x):
        return self.second(torch.transpose(self.first(x), 1, 2))


class Slice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.after = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.after(self.conv(x)[:, 1:4])


class ConvTranspose(nn.Module):
    """A transposed conv (weights per channel on axis 1) and a grouped one (skipped)."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 3, stride=2)
        self.grouped = nn.ConvTranspose2d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.grouped(torch.relu(self.up(x)))


class ConvPaddings(nn.Module):
    """conv1d and conv2d in their ``.padding`` forms ("same", "valid") and a
    ``.default`` one."""

    def __init__(self):
        super().__init__()
        self.same1d = nn.Conv1d(3, 4, 3, padding="same")
        self.same2d = nn.Conv2d(3, 4, 3, padding="same")
        self.valid2d = nn.Conv2d(4, 4, 3, padding="valid")
        self.plain = nn.Conv2d(4, 4, 1)

    def forward(self, x, seq):
        return self.plain(self.valid2d(self.same2d(x))), self.same1d(seq)


class LinearStack(nn.Module):
    """Dynamic quantization's main case: linear -> relu -> linear."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(16, 32)
        self.second = nn.Linear(32, 8)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


class ConvStack(nn.Module):
    """Convs for dynamic mode: one alone, one whose only user is relu (skipped), a
    depthwise one (skipped)."""

    def __init__(self):
        super().__init__()
        self.alone = nn.Conv2d(3, 4, 3)
        self.relu_fed = nn.Conv2d(4, 4, 1)
        self.depthwise = nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x):
        return self.depthwise(torch.relu(self.relu_fed(self.alone(x))))


def _image(c=3, size=8):
    return torch.randn(1, c, size, size)


# name -> (class, input factory, the configs it runs in: (per_channel, dynamic))
STATIC = [(True, False), (False, False)]
DYNAMIC = [(True, True)]
HELPERS = {
    "conv_add_cat": (ConvAddCat, lambda: (_image(),), STATIC),
    "cat_inputs": (CatInputs, lambda: (_image(),), STATIC),
    "reshape_view": (ReshapeView, lambda: (_image(),), STATIC),
    "transpose": (Transpose, lambda: (torch.randn(1, 4, 8),), STATIC),
    "slice": (Slice, lambda: (_image(),), STATIC),
    "conv_transpose": (ConvTranspose, lambda: (_image(),), STATIC),
    "conv_paddings": (ConvPaddings, lambda: (_image(), torch.randn(1, 3, 10)), STATIC),
    "linear_stack": (LinearStack, lambda: (torch.randn(2, 16),), STATIC + DYNAMIC),
    "conv_stack": (ConvStack, lambda: (_image(),), DYNAMIC),
}


def helper(name: str):
    torch.manual_seed(0)
    cls, inputs, _ = HELPERS[name]
    return cls().eval(), inputs()
