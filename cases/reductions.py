"""Reductions over a vector: sums, products, log-sum-exp, norms, softmax, moments.

Each case reduces the last dimension of one vector input, like the torch call it is checked
against (``torch.logsumexp(x, -1)``, ``torch.softmax(x, -1)`` …). Points where a norm or a
standard deviation vanishes are excluded.
"""

from __future__ import annotations

import sympy
import torch
import torch.nn.functional as F

from verijac import Case, KnownPoint, array

_FAMILY = "reduction"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_VECTOR = frozenset({_FAMILY, "smooth"})

x4 = array("x", (4,))
x3 = array("x", (3,))
X4, X3 = list(x4), list(x3)
_N4 = sympy.Integer(4)


def _mean(xs: list[sympy.Expr]) -> sympy.Expr:
    return sympy.Add(*xs) / len(xs)


def _sq_dev(xs: list[sympy.Expr]) -> sympy.Expr:
    m = _mean(xs)
    return sympy.Add(*[(e - m) ** 2 for e in xs])


reduction_sum = Case(
    "reduction_sum",
    inputs={"x": x4},
    outputs=sympy.Add(*X4),
    domain={"x": (-10, 10)},
    known=[KnownPoint(at={"x": [1, 2, 3, 4]}, value=10, jacobian=[1, 1, 1, 1])],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x: torch.sum(x, dim=-1),
    description="Σ x_i over a 4-vector (torch.sum(x, -1))",
)

reduction_prod = Case(
    "reduction_prod",
    inputs={"x": x4},
    outputs=sympy.Mul(*X4),
    domain={"x": (-4, 4)},
    known=[KnownPoint(at={"x": [1, 2, 3, 4]}, value=24, jacobian=[24, 12, 8, 6])],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x: torch.prod(x, dim=-1),
    description="Π x_i over a 4-vector (torch.prod(x, -1))",
)

reduction_mean = Case(
    "reduction_mean",
    inputs={"x": x4},
    outputs=_mean(X4),
    domain={"x": (-10, 10)},
    known=[KnownPoint(at={"x": [1, 2, 3, 4]}, value=sympy.Rational(5, 2), jacobian=[1 / _N4] * 4)],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x: torch.mean(x, dim=-1),
    description="the mean of a 4-vector (torch.mean(x, -1))",
)

reduction_var = Case(
    "reduction_var",
    inputs={"x": x4},
    outputs=_sq_dev(X4) / 3,
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [1, 2, 3, 4]},
            value=sympy.Rational(5, 3),
            jacobian=[-1, -sympy.Rational(1, 3), sympy.Rational(1, 3), 1],
            note="2(x_i - mean)/(n - 1)",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x: torch.var(x, dim=-1, correction=1),
    description="the unbiased variance of a 4-vector (torch.var(x, -1, correction=1))",
)

reduction_var_biased = Case(
    "reduction_var_biased",
    inputs={"x": x4},
    outputs=_sq_dev(X4) / 4,
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [1, 2, 3, 4]},
            value=sympy.Rational(5, 4),
            jacobian=[
                -sympy.Rational(3, 4),
                -sympy.Rational(1, 4),
                sympy.Rational(1, 4),
                sympy.Rational(3, 4),
            ],
            note="2(x_i - mean)/n",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x: torch.var(x, dim=-1, correction=0),
    description="the biased variance of a 4-vector (torch.var(x, -1, correction=0))",
)

reduction_std = Case(
    "reduction_std",
    inputs={"x": x4},
    outputs=sympy.sqrt(_sq_dev(X4) / 3),
    domain={"x": (-10, 10)},
    # the square root has a kink where all elements are equal
    exclude=[_sq_dev(X4)],
    known=[
        KnownPoint(
            at={"x": [1, 1, 3, 3]},
            value=2 / sympy.sqrt(3),
            jacobian=[-1 / (2 * sympy.sqrt(3))] * 2 + [1 / (2 * sympy.sqrt(3))] * 2,
            note="(x_i - mean) / ((n - 1)·std)",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x: torch.std(x, dim=-1, correction=1),
    description="the unbiased standard deviation of a 4-vector, constant vectors excluded (torch.std)",
)

reduction_logsumexp = Case(
    "reduction_logsumexp",
    inputs={"x": x4},
    outputs=sympy.log(sympy.Add(*[sympy.exp(e) for e in X4])),
    domain={"x": (-10, 10)},
    known=[KnownPoint(at={"x": [0, 0, 0, 0]}, value=sympy.log(4), jacobian=[1 / _N4] * 4)],
    tags=_SCALAR,
    torch_impl=lambda x: torch.logsumexp(x, dim=-1),
    description="log Σ exp(x_i) over a 4-vector (torch.logsumexp(x, -1))",
)

reduction_l2_norm = Case(
    "reduction_l2_norm",
    inputs={"x": x3},
    outputs=sympy.sqrt(sympy.Add(*[e**2 for e in X3])),
    domain={"x": (-10, 10)},
    exclude=[sympy.Add(*[e**2 for e in X3])],
    known=[
        KnownPoint(
            at={"x": [1, 2, 2]},
            value=3,
            jacobian=[sympy.Rational(1, 3), sympy.Rational(2, 3), sympy.Rational(2, 3)],
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x: torch.linalg.vector_norm(x, dim=-1),
    description="‖x‖₂ of a 3-vector, 0 excluded (torch.linalg.vector_norm(x, dim=-1))",
)

_exps = [sympy.exp(e) for e in X3]
_softmax = [t / sympy.Add(*_exps) for t in _exps]
_third, _ninth = sympy.Rational(1, 3), sympy.Rational(1, 9)
# at 0 the softmax is uniform, s = 1/3, and ∂s_i/∂x_j = s_i(δ_ij - s_j)
_softmax_jac0 = [[2 * _ninth if i == j else -_ninth for j in range(3)] for i in range(3)]

reduction_softmax = Case(
    "reduction_softmax",
    inputs={"x": x3},
    outputs=sympy.Array(_softmax),
    domain={"x": (-10, 10)},
    known=[KnownPoint(at={"x": [0, 0, 0]}, value=[_third] * 3, jacobian=_softmax_jac0)],
    tags=_VECTOR,
    torch_impl=lambda x: torch.softmax(x, dim=-1),
    description="softmax of a 3-vector, an array output (torch.softmax(x, -1))",
)

_lse3 = sympy.log(sympy.Add(*_exps))
reduction_log_softmax = Case(
    "reduction_log_softmax",
    inputs={"x": x3},
    outputs=sympy.Array([e - _lse3 for e in X3]),
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [0, 0, 0]},
            value=[-sympy.log(3)] * 3,
            jacobian=[[1 - _third if i == j else -_third for j in range(3)] for i in range(3)],
        )
    ],
    tags=_VECTOR,
    torch_impl=lambda x: torch.log_softmax(x, dim=-1),
    description="log-softmax of a 3-vector (torch.log_softmax(x, -1))",
)

_norm3 = sympy.sqrt(sympy.Add(*[e**2 for e in X3]))
reduction_normalize = Case(
    "reduction_normalize",
    inputs={"x": x3},
    outputs=sympy.Array([e / _norm3 for e in X3]),
    domain={"x": (-10, 10)},
    exclude=[_norm3**2],
    # Its Hessian scales like 1/‖x‖²: near 0, entries of ~200 sit beside entries of ~1e-4 that
    # carry their neighbours' float32 roundoff. Keeping ‖x‖² ≥ 1 checks the function where
    # each entry's float32 error is its own.
    margin=1.0,
    known=[
        KnownPoint(
            at={"x": [0, 3, 4]},
            value=[0, sympy.Rational(3, 5), sympy.Rational(4, 5)],
            # (I - u uᵀ)/‖x‖ with u = x/‖x‖
            jacobian=[
                [sympy.Rational(1, 5), 0, 0],
                [0, sympy.Rational(16, 125), -sympy.Rational(12, 125)],
                [0, -sympy.Rational(12, 125), sympy.Rational(9, 125)],
            ],
        )
    ],
    tags=_VECTOR,
    # F.normalize divides by max(‖x‖, eps); the excluded neighbourhood of 0 keeps ‖x‖ > eps.
    torch_impl=lambda x: F.normalize(x, dim=-1),
    description="x/‖x‖ of a 3-vector, 0 excluded (torch.nn.functional.normalize)",
)

reduction_cumsum = Case(
    "reduction_cumsum",
    inputs={"x": x4},
    outputs=sympy.Array([sympy.Add(*X4[: k + 1]) for k in range(4)]),
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [1, 2, 3, 4]},
            value=[1, 3, 6, 10],
            jacobian=[[1 if j <= i else 0 for j in range(4)] for i in range(4)],
        )
    ],
    tags=_VECTOR | {"polynomial"},
    torch_impl=lambda x: torch.cumsum(x, dim=-1),
    description="running sums of a 4-vector (torch.cumsum(x, -1))",
)

y3 = array("y", (3,))
reduction_dot = Case(
    "reduction_dot",
    inputs={"x": x3, "y": y3},
    outputs=sympy.Add(*[a * b for a, b in zip(X3, list(y3), strict=True)]),
    domain={"x": (-10, 10), "y": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [1, 2, 3], "y": [4, 5, 6]},
            value=32,
            jacobian=([4, 5, 6], [1, 2, 3]),
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x, y: torch.linalg.vecdot(x, y, dim=-1),
    description="x·y of two 3-vectors (torch.linalg.vecdot)",
)

CASES = [
    reduction_sum,
    reduction_prod,
    reduction_mean,
    reduction_var,
    reduction_var_biased,
    reduction_std,
    reduction_logsumexp,
    reduction_l2_norm,
    reduction_softmax,
    reduction_log_softmax,
    reduction_normalize,
    reduction_cumsum,
    reduction_dot,
]
