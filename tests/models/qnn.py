"""Models for executorch's QnnQuantizer (``executorch:qnn[...]``): a small decoder-only
transformer block and helper modules that together reach every annotator of the
anchor's HTP rules (``executorch/backends/qualcomm/quantizer/annotators/htp_rules.py``),
each named after what it reaches. ``tests/equivalence/test_qnn_harness.py`` reads the
anchor's registry at test time and fails when an annotator is reached by none of them.
Each factory returns ``(module, inputs)`` in eval mode; widths are multiples of 16 so
``16a4w_block``'s (1, 16) blocks divide every linear weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DecoderBlock(nn.Module):
    """One pre-norm decoder layer: token embedding, rms norm, q/k/v projections split
    into heads, rotary embedding (split halves, neg, cat, mul by cos/sin, add), causal
    mask by masked_fill, matmul, softmax, SiLU-gated MLP, layer norm at the end."""

    def __init__(self, vocab=64, dim=32, heads=2, seq=8):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.embed = nn.Embedding(vocab, dim)
        self.attn_norm = nn.RMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.mlp_norm = nn.RMSNorm(dim)
        self.gate = nn.Linear(dim, 2 * dim, bias=False)
        self.up = nn.Linear(dim, 2 * dim, bias=False)
        self.down = nn.Linear(2 * dim, dim, bias=False)
        self.final_norm = nn.LayerNorm(dim)
        angles = torch.arange(seq)[:, None] * 10000 ** (-torch.arange(self.head_dim // 2)
                                                         / (self.head_dim // 2))
        angles = torch.cat([angles, angles], -1)
        self.register_buffer("cos", angles.cos())
        self.register_buffer("sin", angles.sin())
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))

    def _rotate(self, x):
        first, second = x.split(self.head_dim // 2, dim=-1)
        return x * self.cos + torch.cat([-second, first], -1) * self.sin

    def forward(self, tokens):
        x = self.embed(tokens)
        batch, seq, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(dim, dim=-1)
        q, k, v = (t.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
                   for t in (q, k, v))
        scores = self._rotate(q) @ self._rotate(k).transpose(-2, -1) / self.head_dim ** 0.5
        attention = scores.masked_fill(self.mask, float("-inf")).softmax(-1) @ v
        x = x + self.out(attention.transpose(1, 2).reshape(batch, seq, dim))
        h = self.mlp_norm(x)
        x = x + self.down(F.silu(self.gate(h)) * self.up(h))
        return self.final_norm(x)


class ConvFamily(nn.Module):
    """conv1d/2d/3d, conv_transpose1d/2d/3d, a batch norm not folded into a conv,
    instance and group norm, prelu, pixel (un)shuffle, channel shuffle, grid sample."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv1d(4, 8, 3), nn.Conv2d(4, 8, 3), nn.Conv3d(4, 8, 1)
        self.t1, self.t2 = nn.ConvTranspose1d(4, 8, 2), nn.ConvTranspose2d(4, 8, 2)
        self.t3 = nn.ConvTranspose3d(4, 8, 1)
        self.bn, self.instance = nn.BatchNorm2d(4), nn.InstanceNorm2d(4, affine=True)
        self.group, self.prelu = nn.GroupNorm(2, 4), nn.PReLU(4)
        self.shuffle, self.channels = nn.PixelShuffle(2), nn.ChannelShuffle(2)

    def forward(self, x):
        image = F.relu(x)
        line, volume = image.flatten(2), image.unsqueeze(2)
        grid = torch.tanh(self.c2(x)[:, :2].permute(0, 2, 3, 1))
        return (self.c1(line), self.t1(line), self.c3(volume), self.t3(volume),
                self.t2(image), self.bn(image), self.instance(image), self.group(image),
                self.prelu(image), self.shuffle(self.c2(x)),
                F.pixel_unshuffle(image, 2), self.channels(image),
                F.grid_sample(image, grid, align_corners=False))


class Elementwise(nn.Module):
    """The binary annotators (add, sub, rsub, mul, div, floor_divide, maximum, minimum),
    where, comparisons feeding logical and/or/xor, the fixed-qparams activations
    (sigmoid, tanh, hardsigmoid) and single-input ops of the general annotator."""

    def forward(self, x, y):
        a, b, c = x + y, x - y, 1.0 - x
        d, e = x * y, x / (y.abs() + 1)
        f = torch.floor_divide(x, y.abs() + 1)
        g, h = torch.maximum(x, y), torch.minimum(x, y)
        smaller, bigger, same = x < y, x > y, x == y
        logic = ((smaller & (x <= y)) | (bigger & (x >= y))) ^ (same | (x != y))
        chosen = torch.where(logic, x, y)
        return (a, b, c, d, e, f, g, h, chosen, torch.sigmoid(x), torch.tanh(y),
                F.hardsigmoid(x), F.gelu(x).exp().mean(-1), F.hardswish(y).neg())


class Reductions(nn.Module):
    """argmax, argmin, max/min over a dim, sum over dims, topk, sort, cdist, amax."""

    def forward(self, x, y):
        values, _ = x.max(-1)
        low, _ = x.min(-1)
        top, _ = x.topk(2, -1)
        ordered, _ = y.sort(-1)
        return (x.argmax(-1), x.argmin(-1), values, low, x.sum((1, 2)), top, ordered,
                torch.cdist(x, y), x.amax(-1))


class Indexing(nn.Module):
    """gather, index, index_select, index_copy, index_put, scatter (src, value, add,
    reduce), slice_scatter, stack, unbind, chunk, expand_as, expand, repeat, permute,
    reshape/squeeze/unsqueeze, cat, getitem of several outputs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("index", torch.tensor([[0, 2, 1, 3]] * 4))
        self.register_buffer("rows", torch.tensor([3, 0]))

    def forward(self, x, y):
        gathered = x.gather(1, self.index)
        picked, selected = x[self.rows], x.index_select(0, self.rows)
        copied = x.index_copy(0, self.rows, y[:2])
        put = x.index_put((self.rows,), y[:2])
        scattered = (x.scatter(1, self.index, y), x.scatter(1, self.index, 0.5),
                     x.scatter_add(1, self.index, y),
                     x.scatter_reduce(1, self.index, y, "amax"))
        sliced = x.slice_scatter(y[:, :2], 1, 0, 2)
        first, *_ = x.unbind(0)
        left, right = y.chunk(2, -1)
        stacked = torch.stack([left, right])
        grown = first.unsqueeze(0).expand_as(x) + left.repeat(1, 2)
        moved = x.permute(1, 0).reshape(2, 8).unsqueeze(0).squeeze(0)
        return (gathered, picked, selected, copied, put, *scattered, sliced, stacked, grown,
                moved, torch.cat([x, y], 0), first.expand(2, 4))


class Constants(nn.Module):
    """Graph-built constants (arange, full, zeros, ones, *_like) combined with a
    float input, so the constant ops' outputs reach a quantized consumer."""

    def forward(self, x):
        steps = torch.arange(x.shape[-1], dtype=torch.float32)
        return (x + steps, x * torch.full_like(x, 2.0) + torch.ones_like(x),
                x - torch.zeros(x.shape), torch.ones(x.shape) * x)


class EmbeddingLookup(nn.Module):
    """embedding alone, its output feeding a linear."""

    def __init__(self):
        super().__init__()
        self.embed, self.linear = nn.Embedding(32, 16), nn.Linear(16, 16)

    def forward(self, tokens):
        return self.linear(self.embed(tokens))


QNN_MODELS = {
    "decoder_block": lambda: (DecoderBlock(), (torch.randint(0, 64, (1, 8)),)),
    "conv_family": lambda: (ConvFamily(), (torch.randn(1, 4, 8, 8),)),
    "elementwise": lambda: (Elementwise(), (torch.randn(2, 16), torch.randn(2, 16))),
    "reductions": lambda: (Reductions(), (torch.randn(2, 4, 16), torch.randn(2, 4, 16))),
    "indexing": lambda: (Indexing(), (torch.randn(4, 4), torch.randn(4, 4))),
    "constants": lambda: (Constants(), (torch.randn(2, 16),)),
    "embedding_lookup": lambda: (EmbeddingLookup(), (torch.randint(0, 32, (2, 4)),)),
}


def qnn_small(name: str):
    torch.manual_seed(0)
    module, inputs = QNN_MODELS[name]()
    return module.eval(), inputs
