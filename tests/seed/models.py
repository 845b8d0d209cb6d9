"""Small models the seed suite takes from ``torch.testing._internal``'s
``TestHelperModules``, copied here with the same shapes so that the seed's node
counts apply unchanged (that module needs ``expecttest``, which is not installed,
and pulls in torch.ao's FX quantization)."""

from __future__ import annotations

import torch


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
