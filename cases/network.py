"""Network blocks: normalisations, attention, gated units, small MLPs, convolution and pooling.

Each case is one block on small shapes, checked against the `torch.nn.functional` call a model
would make (`F.layer_norm`, `F.scaled_dot_product_attention`, `F.conv1d` …). The SymPy side
writes the block out as sums, with torch's default ``eps`` where the op adds one. Points where a
normalisation divides by a vanishing spread, or a max-pool window ties, are excluded.
"""

from __future__ import annotations

import math

import sympy
import torch
import torch.nn.functional as F
from verijac_cases._blocks import (
    const,
    linear,
    matvec,
    mean,
    per_sample,
    rows,
    sigmoid,
    softmax,
    sq_norm,
    weights,
)

from verijac import Case, KnownPoint, array

_FAMILY = "network"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_ARRAY = frozenset({_FAMILY, "smooth"})
_R = sympy.Rational
#: torch's default ``eps`` of layer_norm, batch_norm and group_norm.
_EPS = _R(1, 10**5)

x4 = array("x", (4,))
X4 = list(x4)


def _normalise(xs: list[sympy.Expr], eps: sympy.Expr = _EPS) -> list[sympy.Expr]:
    """(x - mean) / sqrt(biased variance + eps), as every torch normalisation computes."""
    m = mean(xs)
    var = mean([(e - m) ** 2 for e in xs])
    return [(e - m) / sympy.sqrt(var + eps) for e in xs]


def _spread(xs: list[sympy.Expr]) -> sympy.Expr:
    m = mean(xs)
    return sympy.Add(*[(e - m) ** 2 for e in xs])


network_layer_norm = Case(
    "network_layer_norm",
    inputs={"x": x4},
    outputs=sympy.Array(_normalise(X4)),
    domain={"x": (-3, 3)},
    # the derivatives scale like 1/σ: keep the spread of x away from 0
    exclude=[_spread(X4)],
    margin=0.5,
    known=[
        KnownPoint(
            at={"x": [-1, 0, 1, 2]},
            value=[_R(k, 2) / sympy.sqrt(_R(5, 4) + _EPS) for k in (-3, -1, 1, 3)],
            note="mean 1/2, biased variance 5/4",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda x: F.layer_norm(x, (4,)),
    description="layer norm of a 4-vector, eps = 1e-5 (torch.nn.functional.layer_norm)",
)

w4, b4 = array("w", (4,)), array("b", (4,))
network_layer_norm_affine = Case(
    "network_layer_norm_affine",
    inputs={"x": x4, "w": w4, "b": b4},
    outputs=sympy.Array([n * w + b for n, w, b in zip(_normalise(X4), w4, b4, strict=True)]),
    domain={"x": (-3, 3), "w": (-2, 2), "b": (-2, 2)},
    exclude=[_spread(X4)],
    margin=0.5,
    known=[
        KnownPoint(
            at={"x": [-1, 0, 1, 2], "w": [0, 0, 0, 0], "b": [1, 2, -1, -2]},
            value=[1, 2, -1, -2],
            note="w = 0: the output is the bias",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda x, w, b: (
        F.layer_norm(x, (4,), w, b) if w.dim() == 1 else F.layer_norm(x, (4,)) * w + b
    ),
    description="layer norm with elementwise weight and bias (torch.nn.functional.layer_norm)",
)

_RMS_EPS = _R(1, 10**6)
network_rms_norm = Case(
    "network_rms_norm",
    inputs={"x": x4, "w": w4},
    outputs=sympy.Array(
        [e * w / sympy.sqrt(mean([t**2 for t in X4]) + _RMS_EPS) for e, w in zip(X4, w4)]
    ),
    domain={"x": (-3, 3), "w": (-2, 2)},
    exclude=[sq_norm(X4)],
    margin=0.5,
    known=[
        KnownPoint(
            at={"x": [1, -1, 1, -1], "w": [1, 1, 2, 2]},
            value=[k / sympy.sqrt(1 + _RMS_EPS) for k in (1, -1, 2, -2)],
        )
    ],
    tags=_ARRAY,
    # eps is given: its default is the dtype's machine epsilon, which no exact value shares
    torch_impl=lambda x, w: (
        F.rms_norm(x, (4,), w, eps=1e-6) if w.dim() == 1 else F.rms_norm(x, (4,), eps=1e-6) * w
    ),
    description="RMS norm of a 4-vector with a weight, eps = 1e-6 (torch.nn.functional.rms_norm)",
)

X32 = array("X", (3, 2))
_cols = [[X32[i, j] for i in range(3)] for j in range(2)]
_bn = [_normalise(c) for c in _cols]


def _batch_norm(X: torch.Tensor) -> torch.Tensor:
    # one (3, 2) batch per sample: fold extra leading dims into the channel dimension
    batch = X.shape[:-2]
    flat = X.movedim(-2, 0).reshape(3, -1)
    out = F.batch_norm(flat, None, None, training=True)
    return out.reshape(3, *batch, 2).movedim(0, -2)


network_batch_norm_train = Case(
    "network_batch_norm_train",
    inputs={"X": X32},
    outputs=sympy.Array([[_bn[j][i] for j in range(2)] for i in range(3)]),
    domain={"X": (-3, 3)},
    exclude=[_spread(c) for c in _cols],
    margin=0.5,
    known=[
        KnownPoint(
            at={"X": [[-1, -2], [0, 0], [1, 2]]},
            value=[
                [k / sympy.sqrt(_R(2, 3) + _EPS), 2 * k / sympy.sqrt(_R(8, 3) + _EPS)]
                for k in (-1, 0, 1)
            ],
            note="columns with mean 0 and biased variances 2/3 and 8/3",
        )
    ],
    tags=_ARRAY,
    torch_impl=_batch_norm,
    description="batch norm in training mode over a batch of 3 with 2 features "
    "(torch.nn.functional.batch_norm, training=True)",
)

# Head width 4, so that 1/√d = 1/2. (With width 2 the generated exact Jacobian raises a
# TypeError in torch.stack of a Python float: a code-generator defect reported to the core.)
Q, K, V = array("Q", (2, 4)), array("K", (2, 4)), array("V", (2, 4))


def _attention() -> sympy.Array:
    out = []
    for i in range(2):
        scores = [sympy.Add(*[Q[i, e] * K[j, e] for e in range(4)]) / 2 for j in range(2)]
        p = softmax(scores)
        out.append([p[0] * V[0, c] + p[1] * V[1, c] for c in range(4)])
    return sympy.Array(out)


_ATT_KNOWN = KnownPoint(
    at={
        "Q": [[0, 0, 0, 0], [0, 0, 0, 0]],
        "K": [[1, 0, -1, 1], [-1, 1, 0, 0]],
        "V": [[1, 2, 0, -2], [-1, 0, 2, 2]],
    },
    value=[[0, 1, 1, 0], [0, 1, 1, 0]],
    note="Q = 0: uniform weights, every row is the mean of V's rows",
)
network_attention = Case(
    "network_attention",
    inputs={"Q": Q, "K": K, "V": V},
    outputs=_attention(),
    domain={"Q": (-1, 1), "K": (-1, 1), "V": (-2, 2)},
    known=[_ATT_KNOWN],
    tags=_ARRAY,
    torch_impl=lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), -1) @ v,
    description="softmax(Q Kᵀ/√d) V for 2 queries and 2 keys of width 4 (torch.softmax, @)",
)

network_sdpa = Case(
    "network_sdpa",
    inputs={"Q": Q, "K": K, "V": V},
    outputs=_attention(),
    domain={"Q": (-1, 1), "K": (-1, 1), "V": (-2, 2)},
    known=[_ATT_KNOWN],
    tags=_ARRAY,
    torch_impl=F.scaled_dot_product_attention,
    description="softmax(Q Kᵀ/√d) V, 2 queries, 2 keys, width 4 "
    "(torch.nn.functional.scaled_dot_product_attention)",
)

network_glu = Case(
    "network_glu",
    inputs={"x": x4},
    outputs=sympy.Array([X4[0] * sigmoid(X4[2]), X4[1] * sigmoid(X4[3])]),
    domain={"x": (-5, 5)},
    known=[KnownPoint(at={"x": [1, 2, 0, 0]}, value=[_R(1, 2), 1])],
    tags=_ARRAY,
    torch_impl=lambda x: F.glu(x, dim=-1),
    description="the gated linear unit a·σ(b) of a 4-vector split in halves "
    "(torch.nn.functional.glu)",
)

x3 = array("x", (3,))
W23, V23 = array("W", (2, 3)), array("V", (2, 3))
_zw, _zv = matvec(rows(W23), list(x3)), matvec(rows(V23), list(x3))
network_swiglu = Case(
    "network_swiglu",
    inputs={"x": x3, "W": W23, "V": V23},
    outputs=sympy.Array([a * sigmoid(a) * b for a, b in zip(_zw, _zv, strict=True)]),
    domain={"x": (-2, 2), "W": (-1, 1), "V": (-2, 2)},
    known=[
        KnownPoint(
            at={"x": [1, 0, 0], "W": [[1, 0, 0], [0, 0, 0]], "V": [[2, 0, 0], [0, 0, 0]]},
            value=[2 / (1 + sympy.exp(-1)), 0],
            note="W x = [1, 0], V x = [2, 0]: silu(1)·2 and silu(0)·0",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda x, W, V: F.silu(linear(x, W)) * linear(x, V),
    description="SwiGLU silu(W x) ⊙ (V x) with a 3-vector input and 2×3 weights "
    "(torch.nn.functional.silu, linear)",
)

W33, b3, w3 = array("W", (3, 3)), array("b", (3,)), array("v", (3,))
c = sympy.Symbol("c", real=True)
_h = [sympy.tanh(z + b) for z, b in zip(matvec(rows(W33), list(x3)), b3, strict=True)]
network_mlp_tanh = Case(
    "network_mlp_tanh",
    inputs={"x": x3, "W": W33, "b": b3, "v": w3, "c": c},
    outputs=sympy.Add(*[v * h for v, h in zip(w3, _h, strict=True)]) + c,
    domain={"x": (-2, 2), "W": (-1, 1), "b": (-1, 1), "v": (-1, 1), "c": (-1, 1)},
    known=[
        KnownPoint(
            at={
                "x": [1, 2, -1],
                "W": [[0, 0, 0]] * 3,
                "b": [0, 0, 0],
                "v": [1, 1, 1],
                "c": _R(1, 2),
            },
            value=_R(1, 2),
            jacobian=([0, 0, 0], [[1, 2, -1]] * 3, [1, 1, 1], [0, 0, 0], 1),
            note="W = 0, b = 0: tanh(0) = 0 and tanh'(0) = 1",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, W, b, v, c: linear(torch.tanh(linear(x, W, b)), v, vector=True) + c,
    description="a 2-layer MLP v·tanh(W x + b) + c, 3 → 3 → 1 (torch.nn.functional.linear, tanh)",
)

x2 = array("x", (2,))

x6, k3 = array("x", (6,)), array("w", (3,))
network_conv1d = Case(
    "network_conv1d",
    inputs={"x": x6, "w": k3},
    outputs=sympy.Array([sympy.Add(*[x6[i + j] * k3[j] for j in range(3)]) for i in range(4)]),
    domain={"x": (-3, 3), "w": (-2, 2)},
    known=[
        KnownPoint(
            at={"x": [-2, -1, 0, 1, 2, 3], "w": [1, 0, -1]},
            value=[-2, -2, -2, -2],
            jacobian=(
                [
                    [1, 0, -1, 0, 0, 0],
                    [0, 1, 0, -1, 0, 0],
                    [0, 0, 1, 0, -1, 0],
                    [0, 0, 0, 1, 0, -1],
                ],
                [[-2, -1, 0], [-1, 0, 1], [0, 1, 2], [1, 2, 3]],
            ),
            note="valid cross-correlation: y_i = Σ_j x_{i+j} w_j",
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=lambda x, w: per_sample(
        lambda a, b: F.conv1d(a.reshape(1, 1, 6), b.reshape(1, 1, 3)).reshape(4), (x, w), (1, 1)
    ),
    description="a 1-D convolution (cross-correlation) of 6 samples with a 3-tap kernel "
    "(torch.nn.functional.conv1d)",
)

X44, k22 = array("X", (4, 4)), array("w", (2, 2))
network_conv2d = Case(
    "network_conv2d",
    inputs={"X": X44, "w": k22},
    outputs=sympy.Array(
        [
            [
                sympy.Add(*[X44[i + a, j + b] * k22[a, b] for a in range(2) for b in range(2)])
                for j in range(3)
            ]
            for i in range(3)
        ]
    ),
    domain={"X": (-8, 8), "w": (-2, 2)},
    known=[
        KnownPoint(
            at={"X": [[r * 4 + s - 8 for s in range(4)] for r in range(4)], "w": [[1, 0], [0, -1]]},
            value=[[-5] * 3] * 3,
            note="X_rs = 4r + s − 8, w = [[1, 0], [0, −1]]: X_ij − X_(i+1)(j+1) = −5",
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=lambda X, w: per_sample(
        lambda a, b: F.conv2d(a.reshape(1, 1, 4, 4), b.reshape(1, 1, 2, 2)).reshape(3, 3),
        (X, w),
        (2, 2),
    ),
    description="a 2-D convolution of a 4×4 image with a 2×2 kernel (torch.nn.functional.conv2d)",
)

network_avg_pool1d = Case(
    "network_avg_pool1d",
    inputs={"x": x6},
    outputs=sympy.Array([(x6[2 * i] + x6[2 * i + 1]) / 2 for i in range(3)]),
    domain={"x": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": [0, 1, 2, 3, 4, 5]},
            value=[_R(1, 2), _R(5, 2), _R(9, 2)],
            jacobian=[[_R(1, 2) if j // 2 == i else 0 for j in range(6)] for i in range(3)],
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=lambda x: F.avg_pool1d(x.reshape(-1, 1, 6), 2).reshape(*x.shape[:-1], 3),
    description="average pooling of 6 samples, window 2, stride 2 (torch.nn.functional.avg_pool1d)",
)

_windows = [(x6[2 * i], x6[2 * i + 1]) for i in range(3)]
network_lp_pool1d = Case(
    "network_lp_pool1d",
    inputs={"x": x6},
    outputs=sympy.Array([sympy.sqrt(a**2 + b**2) for a, b in _windows]),
    domain={"x": (-5, 5)},
    # the 2-norm of a window has a cone point where the window is 0
    exclude=[a**2 + b**2 for a, b in _windows],
    margin=0.1,
    known=[KnownPoint(at={"x": [3, 4, 0, 1, -3, -4]}, value=[5, 1, 5])],
    tags=_ARRAY,
    torch_impl=lambda x: F.lp_pool1d(x.reshape(-1, 1, 6), 2, 2).reshape(*x.shape[:-1], 3),
    description="power-2 pooling (the 2-norm of each window of 2) of 6 samples, window 0 excluded "
    "(torch.nn.functional.lp_pool1d)",
)

network_max_pool1d = Case(
    "network_max_pool1d",
    inputs={"x": x6},
    outputs=sympy.Array([sympy.Max(a, b) for a, b in _windows]),
    domain={"x": (-5, 5)},
    # the kink of max is where a window ties; torch then routes the gradient to one element
    exclude=[a - b for a, b in _windows],
    margin=0.01,
    known=[
        KnownPoint(
            at={"x": [1, 2, 4, 3, -1, -2]},
            value=[2, 4, -1],
            jacobian=[[0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0]],
        )
    ],
    tags=frozenset({_FAMILY, "piecewise"}),
    torch_impl=lambda x: F.max_pool1d(x.reshape(-1, 1, 6), 2).reshape(*x.shape[:-1], 3),
    description="max pooling of 6 samples, window 2, stride 2, ties excluded "
    "(torch.nn.functional.max_pool1d)",
)

X42 = array("X", (4, 2))
_groups = [[X42[ch, t] for ch in (2 * g, 2 * g + 1) for t in range(2)] for g in range(2)]
_gn = [_normalise(g) for g in _groups]
network_group_norm = Case(
    "network_group_norm",
    inputs={"X": X42},
    outputs=sympy.Array([[_gn[ch // 2][(ch % 2) * 2 + t] for t in range(2)] for ch in range(4)]),
    domain={"X": (-3, 3)},
    exclude=[_spread(g) for g in _groups],
    margin=0.5,
    known=[
        KnownPoint(
            at={"X": [[-2, -1], [0, 1], [-1, -1], [1, 1]]},
            value=[
                [k / sympy.sqrt(_R(5, 4) + _EPS) for k in (-_R(3, 2), -_R(1, 2))],
                [k / sympy.sqrt(_R(5, 4) + _EPS) for k in (_R(1, 2), _R(3, 2))],
                [-1 / sympy.sqrt(1 + _EPS)] * 2,
                [1 / sympy.sqrt(1 + _EPS)] * 2,
            ],
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda X: F.group_norm(X.reshape(-1, 4, 2), 2).reshape(X.shape),
    description="group norm of 4 channels × 2 positions in 2 groups "
    "(torch.nn.functional.group_norm)",
)

# -- recurrent cells with fixed weights: inputs are the sample and the state ------------------
_W_IH, _W_HH = weights(8, 2, salt=1), weights(8, 2, salt=4)
_B_IH = [_R((k % 3) - 1, 4) for k in range(8)]
_B_HH = [_R((k % 5) - 2, 8) for k in range(8)]
h2, c2 = array("h", (2,)), array("c", (2,))


def _gates(n: int) -> list[sympy.Expr]:
    xw = matvec(_W_IH[:n], list(x2))
    hw = matvec(_W_HH[:n], list(h2))
    return [a + b + p + q for a, b, p, q in zip(xw, hw, _B_IH, _B_HH, strict=True)]


_g8 = _gates(8)
_i, _f = [sigmoid(z) for z in _g8[0:2]], [sigmoid(z) for z in _g8[2:4]]
_gg, _o = [sympy.tanh(z) for z in _g8[4:6]], [sigmoid(z) for z in _g8[6:8]]
_c_new = [_f[k] * c2[k] + _i[k] * _gg[k] for k in range(2)]
_h_new = [_o[k] * sympy.tanh(_c_new[k]) for k in range(2)]


def _lstm(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = x.shape
    hx, cx = torch.lstm_cell(
        x.reshape(-1, 2),
        (h.reshape(-1, 2), c.reshape(-1, 2)),
        const(_W_IH, x),
        const(_W_HH, x),
        const(_B_IH, x),
        const(_B_HH, x),
    )
    return hx.reshape(shape), cx.reshape(shape)


#: the cell state and output gate at x = h = c = 0, where every gate sees its biases only
_c0 = [sigmoid(_B_IH[k] + _B_HH[k]) * sympy.tanh(_B_IH[4 + k] + _B_HH[4 + k]) for k in range(2)]
_o0 = [sigmoid(_B_IH[6 + k] + _B_HH[6 + k]) for k in range(2)]

network_lstm_cell = Case(
    "network_lstm_cell",
    inputs={"x": x2, "h": h2, "c": c2},
    outputs=(sympy.Array(_h_new), sympy.Array(_c_new)),
    domain={"x": (-2, 2), "h": (-1, 1), "c": (-2, 2)},
    known=[
        KnownPoint(
            at={"x": [0, 0], "h": [0, 0], "c": [0, 0]},
            value=([_o0[k] * sympy.tanh(_c0[k]) for k in range(2)], _c0),
            note="x = h = c = 0: every gate sees its biases only",
        )
    ],
    tags=_ARRAY,
    torch_impl=_lstm,
    description="one LSTM cell step, input 2, hidden 2, fixed weights (torch.lstm_cell, "
    "as nn.LSTMCell calls it)",
)

_g6x = [a + p for a, p in zip(matvec(_W_IH[:6], list(x2)), _B_IH[:6], strict=True)]
_g6h = [a + p for a, p in zip(matvec(_W_HH[:6], list(h2)), _B_HH[:6], strict=True)]
_r = [sigmoid(_g6x[k] + _g6h[k]) for k in range(2)]
_z = [sigmoid(_g6x[2 + k] + _g6h[2 + k]) for k in range(2)]
_n = [sympy.tanh(_g6x[4 + k] + _r[k] * _g6h[4 + k]) for k in range(2)]


def _gru(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    out = torch.gru_cell(
        x.reshape(-1, 2),
        h.reshape(-1, 2),
        const(_W_IH[:6], x),
        const(_W_HH[:6], x),
        const(_B_IH[:6], x),
        const(_B_HH[:6], x),
    )
    return out.reshape(h.shape)


network_gru_cell = Case(
    "network_gru_cell",
    inputs={"x": x2, "h": h2},
    outputs=sympy.Array([(1 - _z[k]) * _n[k] + _z[k] * h2[k] for k in range(2)]),
    domain={"x": (-2, 2), "h": (-1, 1)},
    known=[
        KnownPoint(
            at={"x": [0, 0], "h": [0, 0]},
            value=[
                (1 - sigmoid(_B_IH[2 + k] + _B_HH[2 + k]))
                * sympy.tanh(_B_IH[4 + k] + sigmoid(_B_IH[k] + _B_HH[k]) * _B_HH[4 + k])
                for k in range(2)
            ],
            note="x = h = 0: every gate sees its biases only",
        )
    ],
    tags=_ARRAY,
    torch_impl=_gru,
    description="one GRU cell step, input 2, hidden 2, fixed weights (torch.gru_cell, "
    "as nn.GRUCell calls it)",
)

CASES = [
    network_layer_norm,
    network_layer_norm_affine,
    network_rms_norm,
    network_batch_norm_train,
    network_attention,
    network_sdpa,
    network_glu,
    network_swiglu,
    network_mlp_tanh,
    network_conv1d,
    network_conv2d,
    network_avg_pool1d,
    network_lp_pool1d,
    network_max_pool1d,
    network_group_norm,
    network_lstm_cell,
    network_gru_cell,
]
