"""Losses: regression, classification, divergences and likelihoods, similarity and margins.

Each case is one sample's loss over a few elements, checked against the
`torch.nn.functional` loss a training loop calls, with ``reduction="none"`` and the sample's
mean or sum taken explicitly (a loss's own ``"mean"`` would also average over the batch).
Where the loss has a kink (smooth-L1 and L1, the hinge of a margin loss) the domain excludes
it; where torch adds an ``eps`` inside the formula (``pairwise_distance``) the exact expression
carries the same ``eps``.
"""

from __future__ import annotations

import sympy
import torch
import torch.nn.functional as F
from verijac_cases._blocks import const, log_softmax, mean, sigmoid, sq_norm

from verijac import Case, KnownPoint, array

_FAMILY = "loss"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_PIECEWISE = frozenset({_FAMILY, "piecewise", "scalar-output"})
_R = sympy.Rational

x3, y3 = array("x", (3,)), array("y", (3,))
x4, y4 = array("x", (4,)), array("y", (4,))
X3, Y3, X4, Y4 = list(x3), list(y3), list(x4), list(y4)


def _batch(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape[:-1])


loss_mse = Case(
    "loss_mse",
    inputs={"x": x4, "y": y4},
    outputs=mean([(a - b) ** 2 for a, b in zip(X4, Y4, strict=True)]),
    domain={"x": (-5, 5), "y": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": [1, 2, 3, 4], "y": [0, 0, 0, 0]},
            value=_R(15, 2),
            jacobian=([_R(1, 2), 1, _R(3, 2), 2], [-_R(1, 2), -1, -_R(3, 2), -2]),
            note="∂/∂x = 2(x − y)/n",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x, y: F.mse_loss(x, y, reduction="none").mean(-1),
    description="mean squared error of 4 predictions (torch.nn.functional.mse_loss)",
)

_BETA = _R(1, 2)
_d3 = [a - b for a, b in zip(X3, Y3, strict=True)]


def _smooth_l1(d: sympy.Expr) -> sympy.Expr:
    return sympy.Piecewise(
        (d**2 / (2 * _BETA), sympy.Abs(d) < _BETA), (sympy.Abs(d) - _BETA / 2, True)
    )


loss_smooth_l1 = Case(
    "loss_smooth_l1",
    inputs={"x": x3, "y": y3},
    outputs=mean([_smooth_l1(d) for d in _d3]),
    domain={"x": (-3, 3), "y": (-3, 3)},
    # the quadratic and linear pieces meet at |x − y| = beta, where the second derivative jumps;
    # the linear piece's |x − y| is never near 0
    exclude=[d - _BETA for d in _d3] + [d + _BETA for d in _d3],
    margin=0.01,
    known=[
        KnownPoint(
            at={"x": [0, 2, -1], "y": [_R(1, 4), 0, 1]},
            value=(_R(1, 16) + _R(7, 4) + _R(7, 4)) / 3,
            jacobian=([-_R(1, 6), _R(1, 3), -_R(1, 3)], [_R(1, 6), -_R(1, 3), _R(1, 3)]),
            note="|d| < 1/2: d²/(2β), else |d| − β/2; ∂/∂x = d/(nβ) or sign(d)/n",
        )
    ],
    tags=_PIECEWISE,
    torch_impl=lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=0.5).mean(-1),
    description="smooth-L1 loss with beta = 1/2 over 3 predictions, |x − y| = beta excluded "
    "(torch.nn.functional.smooth_l1_loss)",
)

loss_l1 = Case(
    "loss_l1",
    inputs={"x": x3, "y": y3},
    outputs=mean([sympy.Abs(d) for d in _d3]),
    domain={"x": (-3, 3), "y": (-3, 3)},
    exclude=_d3,  # the kink of |x − y|; torch's subgradient there is 0
    margin=0.01,
    known=[
        KnownPoint(
            at={"x": [1, 2, -1], "y": [0, 3, 1]},
            value=_R(4, 3),
            jacobian=([_R(1, 3), -_R(1, 3), -_R(1, 3)], [-_R(1, 3), _R(1, 3), _R(1, 3)]),
        )
    ],
    tags=_PIECEWISE,
    torch_impl=lambda x, y: F.l1_loss(x, y, reduction="none").mean(-1),
    description="mean absolute error of 3 predictions, x = y excluded (torch.nn.functional.l1_loss)",
)

_TARGET = 2


def _ce_index(x: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    flat = x.reshape(-1, 4)
    target = torch.full(flat.shape[:1], _TARGET, dtype=torch.long, device=x.device)
    loss = F.cross_entropy(flat, target, reduction="none", label_smoothing=label_smoothing)
    return loss.reshape(_batch(x))


_ls4 = log_softmax(X4)
_UNIFORM = [-sympy.log(4)] * 4  # log-softmax of equal logits
loss_cross_entropy = Case(
    "loss_cross_entropy",
    inputs={"x": x4},
    outputs=-_ls4[_TARGET],
    domain={"x": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0, 0]},
            value=sympy.log(4),
            jacobian=[_R(1, 4), _R(1, 4), -_R(3, 4), _R(1, 4)],
            note="∂/∂x = softmax(x) − onehot(target)",
        )
    ],
    tags=_SCALAR,
    torch_impl=_ce_index,
    description="cross-entropy of 4 logits with target class 2 (torch.nn.functional.cross_entropy)",
)

_EPS_LS = _R(1, 10)
loss_cross_entropy_smoothing = Case(
    "loss_cross_entropy_smoothing",
    inputs={"x": x4},
    outputs=-(1 - _EPS_LS) * _ls4[_TARGET] - _EPS_LS / 4 * sympy.Add(*_ls4),
    domain={"x": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0, 0]},
            value=sympy.log(4),
            jacobian=[_R(1, 4) - _R(1, 40)] * 2 + [_R(1, 4) - _R(1, 40) - _R(9, 10), _R(9, 40)],
            note="∂/∂x = softmax(x) − ((1 − ε)·onehot + ε/C)",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x: _ce_index(x, label_smoothing=0.1),
    description="cross-entropy of 4 logits, target class 2, label smoothing 0.1 "
    "(torch.nn.functional.cross_entropy)",
)

loss_cross_entropy_soft = Case(
    "loss_cross_entropy_soft",
    inputs={"x": x4, "p": y4},
    outputs=-sympy.Add(*[p * lp for p, lp in zip(Y4, _ls4, strict=True)]),
    domain={"x": (-5, 5), "p": (0, 1)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0, 0], "p": [1, 0, 0, 0]},
            value=sympy.log(4),
            jacobian=([-_R(3, 4), _R(1, 4), _R(1, 4), _R(1, 4)], [sympy.log(4)] * 4),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, p: F.cross_entropy(
        x.reshape(-1, 4), p.reshape(-1, 4), reduction="none"
    ).reshape(_batch(x)),
    description="cross-entropy of 4 logits against class probabilities, differentiable in both "
    "(torch.nn.functional.cross_entropy)",
)


def _softplus(z: sympy.Expr) -> sympy.Expr:
    return sympy.log(1 + sympy.exp(z))


loss_bce_with_logits = Case(
    "loss_bce_with_logits",
    inputs={"x": x3, "y": y3},
    outputs=mean([_softplus(a) - a * b for a, b in zip(X3, Y3, strict=True)]),
    domain={"x": (-8, 8), "y": (0, 1)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0], "y": [1, 0, _R(1, 2)]},
            value=sympy.log(2),
            jacobian=([-_R(1, 6), _R(1, 6), 0], [0, 0, 0]),
            note="∂/∂x = (σ(x) − y)/n, ∂/∂y = −x/n",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none").mean(-1),
    description="binary cross-entropy with logits over 3 labels, soft targets "
    "(torch.nn.functional.binary_cross_entropy_with_logits)",
)

_POS = 3
loss_bce_with_logits_pos_weight = Case(
    "loss_bce_with_logits_pos_weight",
    inputs={"x": x3, "y": y3},
    outputs=mean(
        [
            _POS * b * _softplus(-a) + (1 - b) * (a + _softplus(-a))
            for a, b in zip(X3, Y3, strict=True)
        ]
    ),
    domain={"x": (-8, 8), "y": (0, 1)},
    known=[KnownPoint(at={"x": [0, 0, 0], "y": [1, 0, 1]}, value=_R(7, 3) * sympy.log(2))],
    tags=_SCALAR,
    torch_impl=lambda x, y: F.binary_cross_entropy_with_logits(
        x, y, reduction="none", pos_weight=const([_POS] * 3, x)
    ).mean(-1),
    description="binary cross-entropy with logits and pos_weight = 3 over 3 labels "
    "(torch.nn.functional.binary_cross_entropy_with_logits)",
)

p3 = array("p", (3,))
loss_bce = Case(
    "loss_bce",
    inputs={"p": p3, "y": y3},
    outputs=mean(
        [-(b * sympy.log(a) + (1 - b) * sympy.log(1 - a)) for a, b in zip(p3, Y3, strict=True)]
    ),
    # torch clamps each log at −100, far outside this range
    domain={"p": (0.02, 0.98), "y": (0, 1)},
    known=[
        KnownPoint(
            at={"p": [_R(1, 2)] * 3, "y": [1, 0, _R(1, 4)]},
            value=sympy.log(2),
            jacobian=([-_R(2, 3), _R(2, 3), _R(1, 3)], [0, 0, 0]),
            note="∂/∂p = (p − y)/(p(1 − p) n)",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda p, y: F.binary_cross_entropy(p, y, reduction="none").mean(-1),
    description="binary cross-entropy of 3 probabilities against soft targets "
    "(torch.nn.functional.binary_cross_entropy)",
)

loss_kl_div = Case(
    "loss_kl_div",
    inputs={"x": x3, "p": p3},
    outputs=sympy.Add(*[b * (sympy.log(b) - a) for a, b in zip(X3, p3, strict=True)]),
    domain={"x": (-4, -0.1), "p": (0.05, 1)},
    known=[
        KnownPoint(
            at={"x": [-sympy.log(2)] * 3, "p": [_R(1, 2), _R(1, 4), _R(1, 4)]},
            value=-sympy.log(2) / 2,
            jacobian=([-_R(1, 2), -_R(1, 4), -_R(1, 4)], [1, 1 - sympy.log(2), 1 - sympy.log(2)]),
            note="Σ p (log p − x); ∂/∂p = log p − x + 1",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, p: F.kl_div(x, p, reduction="none").sum(-1),
    description="KL divergence Σ p (log p − x) with x log-probabilities "
    "(torch.nn.functional.kl_div)",
)

t3 = array("t", (3,))
loss_kl_div_log_target = Case(
    "loss_kl_div_log_target",
    inputs={"x": x3, "t": t3},
    outputs=sympy.Add(*[sympy.exp(b) * (b - a) for a, b in zip(X3, t3, strict=True)]),
    domain={"x": (-4, 0), "t": (-4, 0)},
    known=[
        KnownPoint(
            at={"x": [-1, -1, -1], "t": [0, -1, -2]},
            value=1 - sympy.exp(-2),
            jacobian=([-1, -sympy.exp(-1), -sympy.exp(-2)], [2, sympy.exp(-1), 0]),
            note="Σ e^t (t − x); ∂/∂t = e^t (t − x + 1)",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, t: F.kl_div(x, t, reduction="none", log_target=True).sum(-1),
    description="KL divergence with log-probability targets, Σ eᵗ (t − x) "
    "(torch.nn.functional.kl_div, log_target=True)",
)

m3, v3 = array("mu", (3,)), array("var", (3,))
loss_gaussian_nll = Case(
    "loss_gaussian_nll",
    inputs={"mu": m3, "y": y3, "var": v3},
    outputs=mean(
        [(sympy.log(v) + (m - y) ** 2 / v) / 2 for m, y, v in zip(m3, Y3, v3, strict=True)]
    ),
    domain={"mu": (-3, 3), "y": (-3, 3), "var": (0.1, 4)},
    known=[
        KnownPoint(
            at={"mu": [1, 0, 0], "y": [0, 0, 0], "var": [1, 1, 1]},
            value=_R(1, 6),
            jacobian=([_R(1, 3), 0, 0], [-_R(1, 3), 0, 0], [0, _R(1, 6), _R(1, 6)]),
            note="½(log v + (μ − y)²/v); ∂/∂v = (1/v − (μ − y)²/v²)/2",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda mu, y, var: F.gaussian_nll_loss(mu, y, var, reduction="none").mean(-1),
    description="the negative log-likelihood of 3 Gaussian predictions with their variances "
    "(torch.nn.functional.gaussian_nll_loss)",
)

loss_poisson_nll = Case(
    "loss_poisson_nll",
    inputs={"x": x3, "y": y3},
    outputs=mean([sympy.exp(a) - b * a for a, b in zip(X3, Y3, strict=True)]),
    domain={"x": (-3, 3), "y": (0, 5)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0], "y": [1, 2, 3]},
            value=1,
            jacobian=([0, -_R(1, 3), -_R(2, 3)], [0, 0, 0]),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, y: F.poisson_nll_loss(x, y, reduction="none").mean(-1),
    description="Poisson negative log-likelihood with log rates, exp(x) − y·x "
    "(torch.nn.functional.poisson_nll_loss)",
)

a3, b3 = array("a", (3,)), array("b", (3,))
_dot = sympy.Add(*[a * b for a, b in zip(a3, b3, strict=True)])
loss_cosine_similarity = Case(
    "loss_cosine_similarity",
    inputs={"a": a3, "b": b3},
    outputs=_dot / sympy.sqrt(sq_norm(list(a3)) * sq_norm(list(b3))),
    domain={"a": (-3, 3), "b": (-3, 3)},
    # the direction of a zero vector is undefined; torch clamps the norms at eps = 1e-8
    exclude=[sq_norm(list(a3)), sq_norm(list(b3))],
    margin=0.1,
    known=[
        KnownPoint(
            at={"a": [1, 0, 0], "b": [1, 1, 0]},
            value=1 / sympy.sqrt(2),
            jacobian=(
                [0, 1 / sympy.sqrt(2), 0],
                [1 / (2 * sympy.sqrt(2)), -1 / (2 * sympy.sqrt(2)), 0],
            ),
            note="∂cos/∂a = b/(|a||b|) − cos·a/|a|²",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda a, b: F.cosine_similarity(a, b, dim=-1),
    description="cosine similarity of two 3-vectors, zero vectors excluded "
    "(torch.nn.functional.cosine_similarity)",
)

a2, p2, n2 = array("a", (2,)), array("p", (2,)), array("n", (2,))
#: pairwise_distance adds eps to the difference before the norm
_PD_EPS = _R(1, 10**6)


def _pdist(u: sympy.Array, v: sympy.Array) -> sympy.Expr:
    return sympy.sqrt(sq_norm([s - t + _PD_EPS for s, t in zip(u, v, strict=True)]))


_d_ap, _d_an = _pdist(a2, p2), _pdist(a2, n2)
loss_triplet_margin = Case(
    "loss_triplet_margin",
    inputs={"a": a2, "p": p2, "n": n2},
    outputs=sympy.Max(_d_ap - _d_an + 1, 0),
    domain={"a": (-2, 2), "p": (-2, 2), "n": (-2, 2)},
    # the hinge, and the cone points of the two distances
    exclude=[_d_ap - _d_an + 1, _d_ap**2, _d_an**2],
    margin=0.05,
    # a − p + eps and a − n + eps are chosen exact: p = a + eps − u for a difference u
    known=[
        KnownPoint(
            at={
                "a": [0, 0],
                "p": [_PD_EPS, 1 + _PD_EPS],
                "n": [_R(3, 2) + _PD_EPS, _R(3, 2) + _PD_EPS],
            },
            value=0,
            note="d(a, p) = 1, d(a, n) = 3/√2: on the flat side of the hinge",
        ),
        KnownPoint(
            at={"a": [0, 0], "p": [1 + _PD_EPS, _PD_EPS], "n": [_PD_EPS, 1 + _PD_EPS]},
            value=1,
            jacobian=([-1, 1], [1, 0], [0, -1]),
            note="d(a, p) = d(a, n) = 1: the loss is the margin; ∂d/∂a = (a − p + eps)/d",
        ),
    ],
    tags=_PIECEWISE,
    torch_impl=lambda a, p, n: F.triplet_margin_loss(
        a.reshape(-1, 2), p.reshape(-1, 2), n.reshape(-1, 2), reduction="none"
    ).reshape(_batch(a)),
    description="triplet margin loss (margin 1, eps 1e-6) of 2-D embeddings, away from the hinge "
    "(torch.nn.functional.triplet_margin_loss)",
)

_RANK_MARGIN = _R(1, 2)
loss_margin_ranking = Case(
    "loss_margin_ranking",
    inputs={"x": x3, "y": y3},
    outputs=mean([sympy.Max(b - a + _RANK_MARGIN, 0) for a, b in zip(X3, Y3, strict=True)]),
    domain={"x": (-3, 3), "y": (-3, 3)},
    exclude=[b - a + _RANK_MARGIN for a, b in zip(X3, Y3, strict=True)],
    margin=0.01,
    known=[
        KnownPoint(
            at={"x": [0, 1, 2], "y": [0, 0, 0]},
            value=_R(1, 6),
            jacobian=([-_R(1, 3), 0, 0], [_R(1, 3), 0, 0]),
        )
    ],
    tags=_PIECEWISE,
    torch_impl=lambda x, y: F.margin_ranking_loss(
        x, y, torch.ones_like(x), margin=0.5, reduction="none"
    ).mean(-1),
    description="margin ranking loss, x ranked above y with margin 1/2, hinge excluded "
    "(torch.nn.functional.margin_ranking_loss)",
)

loss_multilabel_soft_margin = Case(
    "loss_multilabel_soft_margin",
    inputs={"x": x3, "y": y3},
    outputs=-mean(
        [
            b * sympy.log(sigmoid(a)) + (1 - b) * sympy.log(sigmoid(-a))
            for a, b in zip(X3, Y3, strict=True)
        ]
    ),
    domain={"x": (-6, 6), "y": (0, 1)},
    known=[KnownPoint(at={"x": [0, 0, 0], "y": [1, 0, 1]}, value=sympy.log(2))],
    tags=_SCALAR,
    torch_impl=lambda x, y: F.multilabel_soft_margin_loss(
        x.reshape(-1, 3), y.reshape(-1, 3), reduction="none"
    ).reshape(_batch(x)),
    description="multi-label soft-margin loss over 3 labels "
    "(torch.nn.functional.multilabel_soft_margin_loss)",
)

_ALPHA, _GAMMA = _R(1, 4), 2


def _focal(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    p = sigmoid(a)
    p_t = p * b + (1 - p) * (1 - b)
    alpha_t = _ALPHA * b + (1 - _ALPHA) * (1 - b)
    return alpha_t * (_softplus(a) - a * b) * (1 - p_t) ** _GAMMA


def _focal_torch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # torchvision.ops.sigmoid_focal_loss, written with torch alone
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    return (alpha_t * ce * (1 - p_t) ** 2).mean(-1)


loss_sigmoid_focal = Case(
    "loss_sigmoid_focal",
    inputs={"x": x3, "y": y3},
    outputs=mean([_focal(a, b) for a, b in zip(X3, Y3, strict=True)]),
    domain={"x": (-6, 6), "y": (0, 1)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0], "y": [1, 0, 1]},
            value=(_R(1, 4) * 2 + _R(3, 4)) * sympy.log(2) / 4 / 3,
            note="p = 1/2: each term is α_t·log 2·(1/2)²",
        )
    ],
    tags=_SCALAR,
    torch_impl=_focal_torch,
    description="sigmoid focal loss (α = 1/4, γ = 2) over 3 labels, as torchvision computes it "
    "(torch.nn.functional.binary_cross_entropy_with_logits, sigmoid)",
)

_SMOOTH = 1
p4 = array("p", (4,))
loss_soft_dice = Case(
    "loss_soft_dice",
    inputs={"p": p4, "y": y4},
    outputs=1
    - (2 * sympy.Add(*[a * b for a, b in zip(p4, Y4, strict=True)]) + _SMOOTH)
    / (sympy.Add(*p4) + sympy.Add(*Y4) + _SMOOTH),
    domain={"p": (0, 1), "y": (0, 1)},
    known=[
        KnownPoint(
            at={"p": [1, 1, 0, 0], "y": [1, 1, 0, 0]},
            value=0,
            jacobian=(
                [-_R(1, 5), -_R(1, 5), _R(1, 5), _R(1, 5)],
                [-_R(1, 5), -_R(1, 5), _R(1, 5), _R(1, 5)],
            ),
            note="2·2 + 1 over 2 + 2 + 1: a perfect match",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda p, y: 1 - (2 * (p * y).sum(-1) + 1) / (p.sum(-1) + y.sum(-1) + 1),
    description="soft Dice loss with smoothing 1 over 4 pixels (torch.sum)",
)

CASES = [
    loss_mse,
    loss_smooth_l1,
    loss_l1,
    loss_cross_entropy,
    loss_cross_entropy_smoothing,
    loss_cross_entropy_soft,
    loss_bce_with_logits,
    loss_bce_with_logits_pos_weight,
    loss_bce,
    loss_kl_div,
    loss_kl_div_log_target,
    loss_gaussian_nll,
    loss_poisson_nll,
    loss_cosine_similarity,
    loss_triplet_margin,
    loss_margin_ranking,
    loss_multilabel_soft_margin,
    loss_sigmoid_focal,
    loss_soft_dice,
]
