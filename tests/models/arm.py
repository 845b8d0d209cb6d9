"""Helper modules that reach every annotator of executorch's Arm quantizers: each entry
of ``TOSA_QUANTIZER_SUPPORT_DICT`` (TOSAQuantizer) and of
``CORTEX_M_QUANTIZER_SUPPORT_DICT`` (CortexMQuantizer), with their pattern checks
accepting and refusing (hardtanh with min != 0, integer inputs to arithmetic, NCHW
convs and grouped transposed convs on Cortex-M, broadcasting adds), the shared-qspec
ops, and a small transformer block. ``tests/equivalence/test_arm_coverage.py`` checks,
reading the dicts at test time, that these modules reach every entry.

Each branch of a module computes its chain (``conv -> batch_norm -> relu_``) in one
go, so the chain is contiguous in graph order, as the anchors' pattern matcher needs.
Inputs keep every op in its domain (asin's in [-1, 1], log's positive): a NaN would
make bit-identical outputs unequal. Every factory returns ``(module in eval mode,
inputs)``; the Cortex-M modules take channels-last images, which its conv checks need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The fused activations of both support dicts, by name: (function, in place).
ACTIVATIONS = {
    "none": lambda y: y,
    "relu": F.relu,
    "relu_": lambda y: F.relu(y, inplace=True),
    "hardtanh": lambda y: F.hardtanh(y, 0.0, 6.0),
    "hardtanh_": lambda y: F.hardtanh(y, 0.0, 6.0, inplace=True),
    "hardtanh_symmetric": F.hardtanh,              # min -1: Arm's relu check refuses it
    "hardsigmoid": F.hardsigmoid,
    "hardsigmoid_": lambda y: F.hardsigmoid(y, inplace=True),
    "clamp": lambda y: torch.clamp(y, 0.0, 6.0),
    "clamp_": lambda y: y.clamp_(0.0, 6.0),
}
ARM_ACTIVATIONS = ("none", "relu", "relu_", "hardtanh", "hardtanh_", "hardtanh_symmetric")
CORTEX_M_ACTIVATIONS = ("none", "relu", "relu_", "hardtanh", "hardtanh_", "hardsigmoid",
                        "hardsigmoid_", "clamp", "clamp_")


class TransformerBlock(nn.Module):
    """Pre-norm attention and MLP: layer_norm, linear, reshape/transpose, matmul,
    softmax, gelu, residual adds."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.up, self.down = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(dim, -1)
        q, k, v = (t.reshape(batch, tokens, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attention = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * 0.25, -1)
        y = torch.matmul(attention, v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + self.proj(y)
        return x + self.down(F.gelu(self.up(self.norm2(x))))


def _conv(kind: str, groups: int = 1) -> nn.Module:
    return {"conv1d": lambda: nn.Conv1d(4, 4, 3, groups=groups),
            "conv2d": lambda: nn.Conv2d(4, 4, 3, groups=groups),
            "conv2d_same": lambda: nn.Conv2d(4, 4, 3, padding="same", groups=groups),
            "conv3d": lambda: nn.Conv3d(4, 4, 1, groups=groups),
            "conv3d_same": lambda: nn.Conv3d(4, 4, 3, padding="same", groups=groups),
            "conv_transpose2d": lambda: nn.ConvTranspose2d(4, 4, 2, groups=groups)}[kind]()


_BN = {"conv1d": nn.BatchNorm1d, "conv2d": nn.BatchNorm2d, "conv2d_same": nn.BatchNorm2d,
       "conv3d": nn.BatchNorm3d, "conv3d_same": nn.BatchNorm3d,
       "conv_transpose2d": nn.BatchNorm2d, "linear": nn.BatchNorm1d}


class Chains(nn.Module):
    """One branch per (layer kind, batch norm or not, activation): ``layer -> bn? ->
    act``, each applied to the input of its layer's rank. ``kinds`` maps a kind to
    (layer factory, the input's index). Grouped kinds get no batch norm: prepare's
    conv-bn folding fails on them (a shape error in torchao), on both sides alike."""

    def __init__(self, kinds: dict, activations, with_bn=(False, True)):
        super().__init__()
        self.branches = []
        self.layers = nn.ModuleDict()
        for kind, (factory, source) in kinds.items():
            for bn in (with_bn if "grouped" not in kind else (False,)):
                for act in activations:
                    name = f"{kind.replace(':', '_')}_{'bn_' if bn else ''}{act}"
                    layers = [factory()] + ([_BN[kind.split(':')[0]](4)] if bn else [])
                    self.layers[name] = nn.Sequential(*layers)
                    self.branches.append((name, source, ACTIVATIONS[act]))

    def forward(self, *inputs):
        return tuple(act(self.layers[name](inputs[source]))
                     for name, source, act in self.branches)


_CONV_INPUT = {"conv1d": 0, "conv2d": 1, "conv2d_same": 1, "conv3d": 2, "conv3d_same": 2,
               "conv_transpose2d": 1}


def conv_fusions():
    """Every conv op of Arm's ``_conv_ops`` (conv1d/2d/3d, .padding, conv_transpose2d),
    with and without batch norm, with each fused activation; grouped ones too."""
    kinds = {kind: (lambda kind=kind: _conv(kind), source)
             for kind, source in _CONV_INPUT.items()}
    kinds["conv2d:grouped"] = (lambda: _conv("conv2d", 2), 1)
    kinds["conv_transpose2d:grouped"] = (lambda: _conv("conv_transpose2d", 2), 1)
    return Chains(kinds, ARM_ACTIVATIONS), (torch.randn(1, 4, 8), torch.randn(1, 4, 6, 6),
                                            torch.randn(1, 4, 3, 3, 3))


def linear_fusions():
    """linear, with and without batch norm, with each fused activation."""
    return (Chains({"linear": (lambda: nn.Linear(4, 4), 0)}, ARM_ACTIVATIONS),
            (torch.randn(3, 4),))


class Elementwise(nn.Module):
    """Applies each named function to the input mapped into its domain:
    ``"signed"`` (-0.9..0.9), ``"positive"`` (0.1..2.1), ``"above_one"`` or any real."""

    DOMAINS = {"real": lambda x: x, "signed": lambda x: torch.tanh(x) * 0.9,
               "positive": lambda x: torch.sigmoid(x) * 2 + 0.1,
               "above_one": lambda x: torch.sigmoid(x) + 1.1}

    def __init__(self, functions: dict):
        super().__init__()
        self.functions = functions
        self.prelu = nn.PReLU()

    def forward(self, x):
        outputs = []
        for domain, function in self.functions.values():
            outputs.append(function(self, self.DOMAINS[domain](x)))
        return tuple(outputs)


_UNARY = {  # name: (domain, function(module, x))
    **{op: ("real", lambda m, x, op=op: getattr(torch, op)(x))
       for op in ("abs", "ceil", "erf", "exp", "expm1", "floor", "round", "sigmoid", "cos",
                  "sin", "tanh", "sinh", "atan", "sign", "asinh", "cosh", "tan", "neg")},
    **{op: ("positive", lambda m, x, op=op: getattr(torch, op)(x))
       for op in ("log", "reciprocal", "rsqrt", "sqrt", "log1p", "log10")},
    "acosh": ("above_one", lambda m, x: torch.acosh(x)),
    "erfinv": ("signed", lambda m, x: torch.erfinv(x)),
    "logit": ("signed", lambda m, x: torch.logit(x.abs() + 0.05)),
    **{name: ("real", function) for name, function in {
        "elu": lambda m, x: F.elu(x), "selu": lambda m, x: F.selu(x),
        "celu": lambda m, x: F.celu(x), "hardsigmoid": lambda m, x: F.hardsigmoid(x),
        "hardswish": lambda m, x: F.hardswish(x),
        "hardswish_": lambda m, x: F.hardswish(x.clone(), inplace=True),
        "leaky_relu": lambda m, x: F.leaky_relu(x),
        "leaky_relu_": lambda m, x: F.leaky_relu(x.clone(), inplace=True),
        "gelu": lambda m, x: F.gelu(x), "silu": lambda m, x: F.silu(x),
        "silu_": lambda m, x: F.silu(x.clone(), inplace=True),
        "prelu": lambda m, x: m.prelu(x), "glu": lambda m, x: F.glu(x, -1),
        "sum_dim": lambda m, x: x.sum(-1), "sum": lambda m, x: x.sum(),
        "cumsum": lambda m, x: x.cumsum(-1), "pow": lambda m, x: x.pow(2),
        "remainder_scalar": lambda m, x: torch.remainder(x, 0.75),
        "full_like": lambda m, x: torch.full_like(x, 2.0) * x,
        "zeros_like": lambda m, x: torch.zeros_like(x) + x,
        "var_dim": lambda m, x: x.var(-1), "var": lambda m, x: torch.var(x, -1, correction=0),
        "vector_norm": lambda m, x: torch.linalg.vector_norm(x, dim=-1),
        "log_softmax": lambda m, x: F.log_softmax(x, -1),
        "softmax": lambda m, x: F.softmax(x, -1),
        "_softmax": lambda m, x: torch._softmax(x, -1, False),
        "mean_dim": lambda m, x: x.mean(-1), "mean": lambda m, x: x.mean(),
        "asin": lambda m, x: torch.asin(torch.tanh(x)),
        "acos": lambda m, x: torch.acos(torch.tanh(x)),
        "atanh": lambda m, x: torch.atanh(torch.tanh(x) * 0.9),
    }.items()},
}


def unary_ops():
    """Every one-to-one op of Arm's annotator and the other single-input entries:
    activations, reductions, softmaxes, norms, and asin/acos/atanh, whose inputs take
    fixed qparams chosen by the activation width."""
    return Elementwise(_UNARY), (torch.randn(2, 4, 6),)


class BinaryOps(nn.Module):
    """add/sub/mul/div and their in-place forms, with tensors and with scalars,
    floor division, remainder, minimum/maximum, matmul/mm/bmm/addmm, einsum, and an add
    of an integer tensor (Arm's float-inputs check refuses it)."""

    def forward(self, x, y, m):
        a, b = x + y, x - y
        c = x.clone().add_(y)
        d = x.clone().sub_(y)
        e = x.clone().mul_(y)
        f = x.clone().div_(y.abs() + 1)
        return (a, b, c, d, e, f, x * y, x / (y.abs() + 1), x / 4.0,
                torch.div(x, y.abs() + 1, rounding_mode="floor"),
                torch.floor_divide(x, y.abs() + 1), torch.remainder(x, y.abs() + 1),
                torch.minimum(x, y), torch.maximum(x, y), x + 2.0, x * 0.5,
                torch.matmul(x, y.transpose(-2, -1)), torch.mm(m, m),
                torch.bmm(x, y.transpose(1, 2)),
                torch.addmm(m, m, m), torch.einsum("bij,bkj->bik", x, y),
                x + torch.arange(x.shape[-1]), torch.cosine_similarity(x, y, -1))


def binary_ops():
    return BinaryOps(), (torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(4, 4))


class Comparisons(nn.Module):
    """lt/le/gt/ge/eq/ne with a tensor and with a scalar, each used by a where."""

    def forward(self, x, y):
        outputs = []
        for op in ("lt", "le", "gt", "ge", "eq", "ne"):
            for other in (y, 0.25):
                outputs.append(torch.where(getattr(torch, op)(x, other), x, y))
        return tuple(outputs)


def comparisons():
    x = torch.randn(2, 8)
    return Comparisons(), (x, torch.where(torch.rand(2, 8) > 0.5, x, torch.randn(2, 8)))


class Casts(nn.Module):
    """to.dtype int32/int16/int8 -> float32 (accepted: fixed qparams of scale 1 in the
    input's dtype), int32 -> int8 -> int32 (accepted, marked), float -> int (refused by
    the cast check), float -> float of another width (refused)."""

    def forward(self, x, i):
        small = i.to(torch.int16)
        return (i.to(torch.float32) * x, i.to(torch.int8).to(torch.int32) + i,
                (x * 4).to(torch.int32), x.to(torch.float16).to(torch.float32) + x,
                small.to(torch.float32) + x, small.to(torch.int8).to(torch.float32) - x)


def casts():
    return Casts(), (torch.randn(2, 8), torch.randint(-5, 5, (2, 8), dtype=torch.int32))


class Pooling(nn.Module):
    """avg/max/adaptive pooling and both upsamplings."""

    def forward(self, x):
        return (F.avg_pool2d(x, 2), F.max_pool2d(x, 2), F.adaptive_avg_pool2d(x, 2),
                F.interpolate(x, scale_factor=2, mode="bilinear"),
                F.interpolate(x, scale_factor=2, mode="nearest"))


def pooling():
    return Pooling(), (torch.randn(1, 4, 8, 8),)


class Shapes(nn.Module):
    """The shared-qspec ops: cat, stack, split, chunk, unbind, select, slice, permute,
    transpose, view, squeeze/unsqueeze, repeat, expand, flip, moveaxis/movedim, a
    clone, between two convs (their qparams come from an annotated neighbour)."""

    def __init__(self):
        super().__init__()
        self.conv, self.after = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        a = self.conv(x)
        parts = a.split(2, 1)
        left, right = a.chunk(2, 1)
        joined = torch.cat([parts[1], parts[0]], 1) + torch.cat([right, left], 1)
        stacked = torch.stack(a.unbind(1), 1).clone()
        moved = torch.movedim(torch.moveaxis(stacked, 1, 3), 3, 1)
        moved = torch.movedim(torch.moveaxis(moved, [1], [3]), [3], [1])
        shaped = moved.permute(0, 1, 3, 2).transpose(2, 3).reshape(1, 4, -1).view(1, 4, 8, 8)
        picked = shaped[:, :, 1:7].unsqueeze(0).squeeze(0).flip(-1)
        return (self.after(joined), self.after(picked.repeat(1, 1, 1, 1)),
                a.select(1, 0).expand(2, 8, 8), torch.amax(a, 1), a.max(1).values)


def shapes():
    return Shapes(), (torch.randn(1, 4, 8, 8),)


class Constants(nn.Module):
    """Tensors made in the graph: full, zeros, ones, fill_, scalar_tensor, arange,
    linspace, eye, each combined with the input."""

    def forward(self, x):
        grid = torch.zeros(4, 4).fill_(0.5)
        return (x + torch.full((4, 4), 2.0), x * torch.ones(4, 4), x - grid,
                x + torch.scalar_tensor(1.5), x * torch.linspace(0, 1, 4),
                x + torch.eye(4), x + torch.arange(0.0, 4.0, 1.0))


def constants():
    return Constants(), (torch.randn(4, 4),)


class Layers(nn.Module):
    """embedding, group_norm, layer_norm, scaled_dot_product_attention, grid_sample,
    and the recurrent layers Arm decomposes after selecting them: LSTM, LSTMCell, GRU,
    RNN with tanh and relu."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.group_norm, self.layer_norm = nn.GroupNorm(2, 4), nn.LayerNorm(4)
        self.lstm, self.gru = nn.LSTM(4, 4, batch_first=True), nn.GRU(4, 4, batch_first=True)
        self.rnn_tanh = nn.RNN(4, 4, batch_first=True)
        self.rnn_relu = nn.RNN(4, 4, nonlinearity="relu", batch_first=True)
        self.cell = nn.LSTMCell(4, 4)

    def forward(self, tokens, x, image, grid):
        e = self.embedding(tokens)
        return (e, self.group_norm(image), self.layer_norm(x),
                F.scaled_dot_product_attention(x, x, x),
                F.grid_sample(image, grid, align_corners=False),
                self.lstm(x)[0], self.gru(x)[0], self.rnn_tanh(x)[0], self.rnn_relu(x)[0],
                self.cell(x[:, 0])[0])


def layers():
    return Layers(), (torch.randint(0, 10, (2, 3)), torch.randn(2, 3, 4),
                      torch.randn(1, 4, 6, 6), torch.rand(1, 5, 5, 2) * 1.8 - 0.9)


# ------------------------------------------------------------------ Cortex-M


def _cortex_m_chains():
    """conv2d and conv_transpose2d (channels-last inputs) and linear with each of
    Cortex-M's fused activations; a grouped transposed conv, which its check refuses."""
    kinds = {"conv2d": (lambda: nn.Conv2d(4, 4, 3), 1),
             "conv_transpose2d": (lambda: nn.ConvTranspose2d(4, 4, 2), 1),
             "conv_transpose2d:grouped": (lambda: nn.ConvTranspose2d(4, 4, 2, groups=2), 1),
             "linear": (lambda: nn.Linear(4, 4), 0)}
    return (Chains(kinds, CORTEX_M_ACTIVATIONS, with_bn=(False,)),
            (torch.randn(3, 4), torch.randn(1, 4, 6, 6).to(memory_format=torch.channels_last)))


class CortexMBinary(nn.Module):
    """add/sub and their in-place forms with each fused activation, mul, mul_,
    hardswish(_), div(_), a channel-broadcast add on a channels-last tensor (accepted)
    and on a contiguous one (refused)."""

    def forward(self, x, y, image, channel):
        outputs = []
        for op in ("add", "sub", "add_", "sub_"):
            for act in ("none", "relu", "relu_", "hardtanh", "hardtanh_", "clamp", "clamp_"):
                base = x.clone() if op.endswith("_") else x
                outputs.append(ACTIVATIONS[act](getattr(base, op)(y)))
        return (*outputs, x * y, x.clone().mul_(y), F.hardswish(x),
                F.hardswish(x.clone(), inplace=True), x / (y.abs() + 1),
                x.clone().div_(y.abs() + 1), image + channel,
                image.contiguous() + channel)


def _cortex_m_binary():
    image = torch.randn(1, 4, 4, 4).to(memory_format=torch.channels_last)
    return CortexMBinary(), (torch.randn(2, 8), torch.randn(2, 8), image,
                             torch.randn(1, 4, 1, 1))


class CortexMOps(nn.Module):
    """Cortex-M's LUT activations and their in-place forms, softmax (last dim and a
    wrong dim), _softmax, avg pooling (and with divisor_override, refused), max pooling
    with and without indices, with each activation, bmm."""

    ACTIVATION_OPS = ("sigmoid", "tanh", "silu", "gelu", "log", "log2", "log10", "log1p",
                      "sqrt", "rsqrt")

    def forward(self, x, image, a, b):
        positive = torch.sigmoid(x) + 0.1
        outputs = []
        for op in self.ACTIVATION_OPS:
            function = getattr(F, op, None) if op in ("silu", "gelu") else getattr(torch, op)
            outputs.append(function(positive))
            if op != "gelu":
                inplace = getattr(torch, f"{op}_", None)
                outputs.append(F.silu(positive.clone(), inplace=True) if op == "silu"
                               else inplace(positive.clone()))
        outputs += [F.softmax(x, -1), F.softmax(x, 0), torch._softmax(x, -1, False),
                    F.avg_pool2d(image, 2), F.avg_pool2d(image, 2, divisor_override=3)]
        for act in ("none", "relu", "hardtanh", "clamp"):
            outputs.append(ACTIVATIONS[act](F.max_pool2d(image, 2)))
            outputs.append(ACTIVATIONS[act](F.max_pool2d(image, 2, return_indices=True)[0]))
        return (*outputs, torch.bmm(a, b))


def _cortex_m_ops():
    image = torch.randn(1, 4, 6, 6).to(memory_format=torch.channels_last)
    return CortexMOps(), (torch.randn(2, 8), image, torch.randn(2, 3, 4),
                          torch.randn(2, 4, 5))


class CortexMIo(nn.Module):
    """Shared-qspec clusters at the model's edges: a graph input reshaped and permuted
    straight to the output, split into returned items, flipped and concatenated with
    itself (each cluster's only neighbours are the graph input and the output), max
    pooling of a graph input with a fused relu, an integer comparison (no float
    value: marked, nothing quantized), and an add whose relu is not the next node (the
    pattern matcher does not fuse them)."""

    def forward(self, x, image, ids):
        left, right = x.split(4, 1)
        total = x + x
        product = x * x
        return (x.reshape(2, 4, 2).permute(0, 2, 1), left, right.clone(),
                torch.cat([x, x.flip(0)]), F.relu(F.max_pool2d(image, 2)), ids > 2,
                F.relu(total), product)


def _cortex_m_io():
    image = torch.randn(1, 4, 6, 6).to(memory_format=torch.channels_last)
    return CortexMIo(), (torch.randn(2, 8), image, torch.randint(0, 5, (2, 3)))
class ScopedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, y):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(y))))


class Scoped(nn.Module):
    """conv -> relu -> mean, a block of two linears (relu between, sigmoid after), a
    head linear and an add: the modules, module types, op targets and node names the
    scoping cases of tests/equivalence/test_arm_scopes.py select."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.block = ScopedBlock()
        self.head = nn.Linear(8, 8)

    def forward(self, x):
        y = F.relu(self.conv(x)).mean((2, 3))
        y = self.block(y)
        return self.head(y) + y


def scoped():
    return Scoped(), (torch.randn(1, 3, 6, 6),)


class IoClusters(nn.Module):
    """Shared-qspec clusters at the model's inputs and outputs: clone -> relu between
    a graph input and the output, split's getitems returned, and an index_select of a
    stored table by an integer model input whose only user is a cast to int32 (no
    neighbour has a spec: the cluster takes the global config's input spec because it
    touches an annotated model input)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(10, 4))

    def forward(self, x, index):
        first, second = x.split(2, -1)
        picked = self.table.index_select(0, index).to(torch.int32)
        return F.relu(x.clone()), first, second, picked


def io_clusters():
    return IoClusters(), (torch.randn(2, 4), torch.tensor([1, 3, 5], dtype=torch.int32))


#: name -> factory, for TOSAQuantizer (executorch:arm).
ARM_HELPERS = {
    "transformer_block": lambda: (TransformerBlock(), (torch.randn(2, 5, 16),)),
    "conv_fusions": conv_fusions,
    "linear_fusions": linear_fusions,
    "unary_ops": unary_ops,
    "binary_ops": binary_ops,
    "comparisons": comparisons,
    "casts": casts,
    "pooling": pooling,
    "shapes": shapes,
    "constants": constants,
    "layers": layers,
    "io_clusters": io_clusters,
}

#: name -> factory, for CortexMQuantizer (executorch:cortex_m).
CORTEX_M_HELPERS = {
    "transformer_block": ARM_HELPERS["transformer_block"],
    "cortex_m_chains": _cortex_m_chains,
    "cortex_m_binary": _cortex_m_binary,
    "cortex_m_ops": _cortex_m_ops,
    "cortex_m_io": _cortex_m_io,
    "pooling": pooling,
}


#: name -> factory, for the Python scoping cases (tests/equivalence/test_arm_scopes.py).
ARM_SCOPE_HELPERS = {"scoped": scoped}


def arm_helper(name: str):
    """``(module in eval mode, inputs)`` of a helper of any table."""
    torch.manual_seed(0)
    module, inputs = {**ARM_HELPERS, **CORTEX_M_HELPERS, **ARM_SCOPE_HELPERS}[name]()
    return module.eval(), inputs

