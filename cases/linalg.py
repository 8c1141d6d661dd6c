"""Small linear algebra: determinants, inverses, solves, products, traces and norms.

Matrices are 2×2, 2×3 or 3×3 with entries in ``[-2, 2]``; singular matrices are excluded
(``exclude=[det]``) wherever the function or torch's backward needs an inverse. The known
Jacobians come from the textbook formulas (∂det A/∂A = cof A, ∂A⁻¹ = -A⁻¹ dA A⁻¹ …),
independently of SymPy's differentiation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy
import torch
from verijac_cases._blocks import inverse

from verijac import Case, KnownPoint, array

_FAMILY = "linalg"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output", "matrix"})
_ARRAY = frozenset({_FAMILY, "smooth", "matrix"})
_R = sympy.Rational

A2 = array("A", (2, 2))
B2 = array("B", (2, 2))
A3 = array("A", (3, 3))
A23 = array("A", (2, 3))
B32 = array("B", (3, 2))
x3 = array("x", (3,))
b2 = array("b", (2,))
a3 = array("a", (3,))
c3 = array("c", (3,))

_M = [[1, 2], [3, 4]]
_M_INV = [[-2, 1], [_R(3, 2), -_R(1, 2)]]


def _grid(shape: tuple[int, ...], entry: Callable[..., Any]) -> list[Any]:
    """A nested list of the given shape whose element at ``idx`` is ``entry(*idx)``."""
    if len(shape) == 1:
        return [entry(i) for i in range(shape[0])]
    return [_grid(shape[1:], lambda *rest, i=i: entry(i, *rest)) for i in range(shape[0])]


def _det(m: sympy.Array) -> sympy.Expr:
    return sympy.Matrix(m.tolist()).det(method="berkowitz")


def _delta(i: int, j: int) -> int:
    return int(i == j)


linalg_det_2x2 = Case(
    "linalg_det_2x2",
    inputs={"A": A2},
    outputs=_det(A2),
    domain={"A": (-5, 5)},
    # det is smooth everywhere, but torch's backward returns 0 and its forward mode raises
    # on exactly singular matrices (reported); keep clear of them as for linalg_det_3x3.
    exclude=[_det(A2)],
    margin=0.1,
    known=[
        KnownPoint(
            at={"A": _M},
            value=-2,
            jacobian=[[4, -3], [-2, 1]],
            note="∂det A/∂A = cof A = [[d, -c], [-b, a]]",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=torch.linalg.det,
    description="det of a 2×2 matrix, singular matrices excluded (torch.linalg.det)",
)

linalg_det_3x3 = Case(
    "linalg_det_3x3",
    inputs={"A": A3},
    outputs=_det(A3),
    domain={"A": (-2, 2)},
    # torch's det backward solves with A; keep clear of singular matrices.
    exclude=[_det(A3)],
    margin=0.1,
    known=[
        KnownPoint(
            at={"A": [[2, 0, 0], [0, 1, 0], [0, 0, -1]]},
            value=-2,
            jacobian=[[-1, 0, 0], [0, -2, 0], [0, 0, 2]],
            note="the cofactors of a diagonal matrix: det/a_ii on the diagonal",
        ),
        KnownPoint(
            at={"A": [[1, 2, 0], [0, 1, 0], [0, 0, 1]]},
            value=1,
            jacobian=[[1, 0, 0], [-2, 1, 0], [0, 0, 1]],
            note="cof A = det(A)·A⁻ᵀ with A⁻¹ = [[1, -2, 0], [0, 1, 0], [0, 0, 1]]",
        ),
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=torch.linalg.det,
    description="det of a 3×3 matrix, singular matrices excluded (torch.linalg.det)",
)

_det2 = _det(A2)
#: det A / ‖A‖²_F: 1/κ up to a constant, scale-free (κ_F = ‖A‖²_F / |det A| for 2×2).
_well_conditioned = _det2 / sympy.Add(*[e**2 for e in sympy.flatten(A2.tolist())])
linalg_inv_2x2 = Case(
    "linalg_inv_2x2",
    inputs={"A": A2},
    outputs=sympy.Array(inverse(sympy.Matrix(A2.tolist())).tolist()),
    domain={"A": (-5, 5)},
    # Derivatives of A⁻¹ multiply A⁻¹ twice, so their float32 errors grow like κ(A)²·eps:
    # at κ ≈ 80 they pass the float32 bound by conditioning alone (seen with `verijac check`).
    # det A / ‖A‖²_F ≥ 0.1 keeps κ below about 20 (and det A away from 0) at every scale.
    exclude=[_det2, _well_conditioned],
    margin=0.1,
    known=[
        KnownPoint(
            at={"A": _M},
            value=_M_INV,
            jacobian=_grid((2, 2, 2, 2), lambda i, j, k, m: -_M_INV[i][k] * _M_INV[m][j]),
            note="∂(A⁻¹)_ij/∂A_kl = -(A⁻¹)_ik (A⁻¹)_lj",
        )
    ],
    tags=_ARRAY,
    torch_impl=torch.linalg.inv,
    description="the inverse of a 2×2 matrix, det A = 0 excluded (torch.linalg.inv)",
)

_solve = inverse(sympy.Matrix(A2.tolist())) * sympy.Matrix(list(b2))
_b0 = [1, 1]
_x0 = [-1, 1]  # [[1, 2], [3, 4]]⁻¹ [1, 1]
linalg_solve_2x2 = Case(
    "linalg_solve_2x2",
    inputs={"A": A2, "b": b2},
    outputs=sympy.Array(list(_solve)),
    domain={"A": (-5, 5), "b": (-5, 5)},
    exclude=[_det2, _well_conditioned],  # κ(A) below about 20, as for linalg_inv_2x2
    margin=0.1,
    known=[
        KnownPoint(
            at={"A": _M, "b": _b0},
            value=_x0,
            jacobian=(
                _grid((2, 2, 2), lambda i, k, m: -_M_INV[i][k] * _x0[m]),
                _M_INV,
            ),
            note="x = A⁻¹b: ∂x_i/∂A_kl = -(A⁻¹)_ik x_l, ∂x/∂b = A⁻¹",
        )
    ],
    tags=_ARRAY,
    torch_impl=torch.linalg.solve,
    description="the solution x of A x = b for a 2×2 A, det A = 0 excluded (torch.linalg.solve)",
)

_MB = [[0, 1], [-1, 2]]
linalg_matmul_2x2 = Case(
    "linalg_matmul_2x2",
    inputs={"A": A2, "B": B2},
    outputs=sympy.Array((sympy.Matrix(A2.tolist()) * sympy.Matrix(B2.tolist())).tolist()),
    domain={"A": (-5, 5), "B": (-5, 5)},
    known=[
        KnownPoint(
            at={"A": _M, "B": _MB},
            value=[[-2, 5], [-4, 11]],
            jacobian=(
                _grid((2, 2, 2, 2), lambda i, j, k, m: _delta(i, k) * _MB[m][j]),
                _grid((2, 2, 2, 2), lambda i, j, k, m: _M[i][k] * _delta(j, m)),
            ),
            note="∂(AB)_ij/∂A_kl = δ_ik B_lj, ∂(AB)_ij/∂B_kl = A_ik δ_jl",
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=torch.matmul,
    description="A @ B for two 2×2 matrices, a matrix output (torch.matmul)",
)

_x_q = [1, 2, 3]
_A_q = [[1, 0, 1], [0, 2, 0], [-1, 0, 1]]
linalg_quadratic_form = Case(
    "linalg_quadratic_form",
    inputs={"x": x3, "A": A3},
    outputs=sympy.Add(*[x3[i] * A3[i, j] * x3[j] for i in range(3) for j in range(3)]),
    domain={"x": (-5, 5), "A": (-2, 2)},
    known=[
        KnownPoint(
            at={"x": _x_q, "A": _A_q},
            value=18,
            jacobian=(
                [sum((_A_q[i][j] + _A_q[j][i]) * _x_q[j] for j in range(3)) for i in range(3)],
                _grid((3, 3), lambda k, m: _x_q[k] * _x_q[m]),
            ),
            note="∂(xᵀAx)/∂x = (A + Aᵀ)x, ∂(xᵀAx)/∂A = x xᵀ",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda x, A: torch.einsum("...i,...ij,...j->...", x, A, x),
    description="xᵀ A x with x a 3-vector and A a 3×3 matrix (torch.einsum)",
)

_A_t = [[1, 2, 0], [0, -1, 1]]
_B_t = [[1, 0], [2, 1], [0, 3]]
linalg_trace_product = Case(
    "linalg_trace_product",
    inputs={"A": A23, "B": B32},
    outputs=sympy.Add(*[A23[i, j] * B32[j, i] for i in range(2) for j in range(3)]),
    domain={"A": (-5, 5), "B": (-5, 5)},
    known=[
        KnownPoint(
            at={"A": _A_t, "B": _B_t},
            value=7,
            jacobian=(
                _grid((2, 3), lambda i, j: _B_t[j][i]),
                _grid((3, 2), lambda j, i: _A_t[i][j]),
            ),
            note="∂tr(AB)/∂A = Bᵀ, ∂tr(AB)/∂B = Aᵀ",
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda A, B: torch.diagonal(A @ B, dim1=-2, dim2=-1).sum(-1),
    description="tr(A B) for a 2×3 A and a 3×2 B (torch.diagonal(A @ B).sum)",
)

_fro_sq = sympy.Add(*[e**2 for e in sympy.flatten(A23.tolist())])
linalg_frobenius_norm = Case(
    "linalg_frobenius_norm",
    inputs={"A": A23},
    outputs=sympy.sqrt(_fro_sq),
    domain={"A": (-5, 5)},
    exclude=[_fro_sq],
    known=[
        KnownPoint(
            at={"A": [[1, 2, 2], [0, 0, 0]]},
            value=3,
            jacobian=[[_R(1, 3), _R(2, 3), _R(2, 3)], [0, 0, 0]],
            note="∂‖A‖_F/∂A = A/‖A‖_F",
        )
    ],
    tags=_SCALAR,
    torch_impl=torch.linalg.matrix_norm,
    description="the Frobenius norm of a 2×3 matrix, 0 excluded (torch.linalg.matrix_norm)",
)

linalg_logabsdet_2x2 = Case(
    "linalg_logabsdet_2x2",
    inputs={"A": A2},
    outputs=sympy.log(sympy.Abs(_det2)),
    domain={"A": (-5, 5)},
    # its derivatives go through A⁻¹ (twice for the Hessian): keep κ(A) below about 20, as
    # for linalg_inv_2x2 (κ ≈ 330 failed the float32 Hessian bound by conditioning alone)
    exclude=[_det2, _well_conditioned],
    margin=0.1,
    known=[
        KnownPoint(
            at={"A": _M},
            value=sympy.log(2),
            jacobian=[[-2, _R(3, 2)], [1, -_R(1, 2)]],
            note="∂log|det A|/∂A = A⁻ᵀ",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda A: torch.linalg.slogdet(A).logabsdet,
    description="log|det A| of a 2×2 matrix, det A = 0 excluded (torch.linalg.slogdet)",
)


def _skew(v: list[Any]) -> list[list[Any]]:
    """[v]×, the matrix with [v]× w = v × w."""
    return [[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]]


_a = [1, 2, 3]
_c = [0, 1, -1]
linalg_cross = Case(
    "linalg_cross",
    inputs={"a": a3, "c": c3},
    outputs=sympy.Array(list(sympy.Matrix(list(a3)).cross(sympy.Matrix(list(c3))))),
    domain={"a": (-5, 5), "c": (-5, 5)},
    known=[
        KnownPoint(
            at={"a": _a, "c": _c},
            value=[-5, 1, 1],
            jacobian=(
                [[-e for e in row] for row in _skew(_c)],
                _skew(_a),
            ),
            note="a × c = -[c]× a = [a]× c",
        )
    ],
    tags=frozenset({_FAMILY, "smooth", "polynomial"}),
    torch_impl=lambda a, c: torch.linalg.cross(a, c, dim=-1),
    description="the cross product of two 3-vectors (torch.linalg.cross)",
)

CASES = [
    linalg_det_2x2,
    linalg_det_3x3,
    linalg_inv_2x2,
    linalg_solve_2x2,
    linalg_matmul_2x2,
    linalg_quadratic_form,
    linalg_trace_product,
    linalg_frobenius_norm,
    linalg_logabsdet_2x2,
    linalg_cross,
]
