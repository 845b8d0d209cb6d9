"""Small models for the rule tests of the built-in rulesets (``*.qtest`` here): each
factory returns an eval-mode module taking one float tensor, so `qrules test` (and
`--model models.py:NAME SHAPE`) can build its example input from a shape."""

import torch
from torch import nn


class ConvBlock(nn.Module):
    """A residual block as resnet has it: conv-bn-relu, conv-bn, add, relu, then
    max_pool, adaptive_avg_pool, flatten and a linear classifier. Input 1,3,16,16."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.bn(self.conv(x)) + x)
        x = nn.functional.adaptive_avg_pool2d(self.pool(x), 1)
        return self.head(torch.flatten(x, 1))


class Mlp(nn.Module):
    """linear -> relu -> linear -> sigmoid * input (a gate). Input 2,8."""

    def __init__(self):
        super().__init__()
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(16, 8)

    def forward(self, x):
        return torch.sigmoid(self.down(torch.relu(self.up(x)))) * x


class EmbeddingHead(nn.Module):
    """An embedding table read with indices made from the float input, then a linear.
    Input 2,5."""

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(10, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        indices = (x.abs() * 7).long() % 10
        return self.head(self.table(indices))


def _seeded(cls):
    def make():
        torch.manual_seed(0)
        return cls().eval()
    make.__doc__ = cls.__doc__
    return make


conv_block = _seeded(ConvBlock)
mlp = _seeded(Mlp)
embedding_head = _seeded(EmbeddingHead)
