"""Linear algebra beyond products: determinants with structured points, factorisations, spectra.

Every case is one for which an exact closed form exists and stays small: 2×2 and 3×3
factorisations (Cholesky, eigenvalues of symmetric 2×2, singular values of 2×2), matrix
exponentials of structures with a known exponential, pseudo-inverses and least squares of
full rank, a 4×4 determinant, and rank-one updates of the 8×8 identity for scale. Symmetric
positive definite inputs are parametrised by their diagonal ``d`` and off-diagonal ``o``
entries on diagonally dominant ranges, so every sampled point is SPD; torch receives the
matrix the user would build from them.

Derivatives of inverses and determinants amplify rounding by κ(A) (and κ(A)² for second
derivatives, see ``cases/linalg.py``): exclusions keep det A and, scale-free, det A / ‖A‖ⁿ
away from 0. Eigenvalues and singular values are not differentiable where two of them tie;
those points are excluded.
"""

from __future__ import annotations

import sympy
import torch
from verijac_cases._blocks import grid, inverse, rows, sq_norm

from verijac import Case, KnownPoint, array, scalar

_FAMILY = "linalg"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output", "matrix"})
_ARRAY = frozenset({_FAMILY, "smooth", "matrix"})
_R = sympy.Rational
_S2 = sympy.sqrt(2)


def _mat(a: sympy.Array) -> sympy.Matrix:
    return sympy.Matrix(rows(a))


def _arr(m: sympy.Matrix) -> sympy.Array:
    return sympy.Array(m.tolist())


def _det(a: sympy.Array) -> sympy.Expr:
    return _mat(a).det(method="berkowitz")


def _cofactor(m: list[list[int]]) -> list[list[sympy.Expr]]:
    """∂det A/∂A = det(A)·A⁻ᵀ, from the inverse (not from differentiating)."""
    mm = sympy.Matrix(m)
    out: list[list[sympy.Expr]] = (mm.det() * mm.inv().T).tolist()
    return out


def _sym2(d: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """[[d0, o], [o, d1]] from a diagonal [..., 2] and an off-diagonal [...]."""
    top = torch.stack([d[..., 0], o], -1)
    bottom = torch.stack([o, d[..., 1]], -1)
    return torch.stack([top, bottom], -2)


def _sym3(d: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """The symmetric 3×3 with diagonal d and (A01, A02, A12) = o."""
    r0 = torch.stack([d[..., 0], o[..., 0], o[..., 1]], -1)
    r1 = torch.stack([o[..., 0], d[..., 1], o[..., 2]], -1)
    r2 = torch.stack([o[..., 1], o[..., 2], d[..., 2]], -1)
    return torch.stack([r0, r1, r2], -2)


A2, A4 = array("A", (2, 2)), array("A", (4, 4))
A3 = array("A", (3, 3))
d2, d3, o3 = array("d", (2,)), array("d", (3,)), array("o", (3,))
o = scalar("o")
b2 = array("b", (2,))
S2 = sympy.Matrix([[d2[0], o], [o, d2[1]]])
S3 = sympy.Matrix([[d3[0], o3[0], o3[1]], [o3[0], d3[1], o3[2]], [o3[1], o3[2], d3[2]]])

# -- determinants -------------------------------------------------------------------------
_PERM = [[0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
_ROT = [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, -1, 0]]
_SYM = [[2, 1, 0, 0], [1, 2, 1, 0], [0, 1, 2, 1], [0, 0, 1, 2]]
_DET4 = _det(A4)
linalg_det_4x4 = Case(
    "linalg_det_4x4",
    inputs={"A": A4},
    outputs=_DET4,
    domain={"A": (-2, 2)},
    # det's backward solves with A: keep det A and det A / ‖A‖⁴_F (κ(A) ≤ ~50) away from 0
    exclude=[_DET4, 16 * _DET4 / sq_norm(sympy.flatten(rows(A4))) ** 2],
    margin=0.3,
    known=[
        KnownPoint(
            at={"A": _PERM},
            value=-1,
            jacobian=_cofactor(_PERM),
            note="a 4-cycle permutation (odd): cof P = det(P)·P",
        ),
        KnownPoint(
            at={"A": _ROT},
            value=1,
            jacobian=_cofactor(_ROT),
            note="orthogonal: two quarter-turn blocks; cof Q = Q",
        ),
        KnownPoint(
            at={"A": _SYM},
            value=5,
            jacobian=_cofactor(_SYM),
            note="the symmetric tridiagonal [2, 1]: det = n + 1",
        ),
        KnownPoint(
            at={"A": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, _R(1, 1000)]]},
            value=_R(1, 1000),
            jacobian=grid((4, 4), lambda i, j: (_R(1, 1000) if i < 3 else 1) if i == j else 0),
            note="near-singular diag(1, 1, 1, 1/1000)",
        ),
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=torch.linalg.det,
    description="det of a 4×4 matrix, κ(A) kept below ~50; structured known points "
    "(permutation, orthogonal, symmetric, near-singular) (torch.linalg.det)",
)

_DET3 = _det(A3)
_FRO3 = sq_norm(sympy.flatten(rows(A3)))
linalg_slogdet_3x3 = Case(
    "linalg_slogdet_3x3",
    inputs={"A": A3},
    outputs=(sympy.sign(_DET3), sympy.log(sympy.Abs(_DET3))),
    domain={"A": (-2, 2)},
    # sign is constant and log|det| smooth off det A = 0; κ(A) kept below ~30
    exclude=[_DET3, 5 * _DET3 / _FRO3 ** _R(3, 2)],
    margin=0.15,
    known=[
        KnownPoint(
            at={"A": [[0, 1, 0], [1, 0, 0], [0, 0, 2]]},
            value=(-1, sympy.log(2)),
            jacobian=([[0] * 3] * 3, [[0, 1, 0], [1, 0, 0], [0, 0, _R(1, 2)]]),
            note="a swap times diag(1, 1, 2): ∂log|det A|/∂A = A⁻ᵀ",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda A: tuple(torch.linalg.slogdet(A)),
    description="(sign, log|det|) of a 3×3 matrix, det A = 0 excluded (torch.linalg.slogdet)",
)

# -- Cholesky and SPD solves --------------------------------------------------------------
_L2 = S2.cholesky(hermitian=False)
linalg_cholesky_2x2 = Case(
    "linalg_cholesky_2x2",
    inputs={"d": d2, "o": o},
    outputs=_arr(_L2),
    domain={"d": (1, 3), "o": (-0.9, 0.9)},
    known=[
        KnownPoint(
            at={"d": [1, 2], "o": _R(1, 2)},
            value=[[1, 0], [_R(1, 2), sympy.sqrt(7) / 2]],
            note="L₁₀ = o/√d₀, L₁₁ = √(d₁ − o²/d₀)",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda d, o: torch.linalg.cholesky(_sym2(d, o)),
    description="the Cholesky factor of the SPD [[d₀, o], [o, d₁]] (torch.linalg.cholesky)",
)

_L3 = S3.cholesky(hermitian=False)
linalg_cholesky_3x3 = Case(
    "linalg_cholesky_3x3",
    inputs={"d": d3, "o": o3},
    outputs=_arr(_L3),
    domain={"d": (2, 3), "o": (-0.5, 0.5)},
    known=[
        KnownPoint(
            at={"d": [2, 2, 2], "o": [_R(1, 2), 0, 0]},
            value=[[_S2, 0, 0], [1 / (2 * _S2), sympy.sqrt(_R(15, 8)), 0], [0, 0, _S2]],
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda d, o: torch.linalg.cholesky(_sym3(d, o)),
    description="the Cholesky factor of a diagonally dominant SPD 3×3 (torch.linalg.cholesky)",
)

linalg_logdet_spd_3x3 = Case(
    "linalg_logdet_spd_3x3",
    inputs={"d": d3, "o": o3},
    outputs=sympy.log(S3.det(method="berkowitz")),
    domain={"d": (2, 3), "o": (-0.5, 0.5)},
    known=[
        KnownPoint(
            at={"d": [2, 2, 2], "o": [0, 0, 0]},
            value=3 * sympy.log(2),
            jacobian=([_R(1, 2)] * 3, [0, 0, 0]),
            note="∂log det/∂A = A⁻¹; an off-diagonal o enters twice",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda d, o: torch.logdet(_sym3(d, o)),
    description="log det of a diagonally dominant SPD 3×3 (torch.logdet)",
)

linalg_cholesky_logdet_3x3 = Case(
    "linalg_cholesky_logdet_3x3",
    inputs={"d": d3, "o": o3},
    outputs=sympy.log(S3.det(method="berkowitz")),
    domain={"d": (2, 3), "o": (-0.5, 0.5)},
    known=[KnownPoint(at={"d": [2, 2, 2], "o": [0, 0, 0]}, value=3 * sympy.log(2))],
    tags=_SCALAR,
    torch_impl=lambda d, o: (
        2 * torch.log(torch.diagonal(torch.linalg.cholesky(_sym3(d, o)), dim1=-2, dim2=-1)).sum(-1)
    ),
    description="log det of an SPD 3×3 as 2·Σ log diag(cholesky(A)), as Gaussian-process code "
    "computes it (torch.linalg.cholesky)",
)

_X_SPD = inverse(S2) * sympy.Matrix(list(b2))
linalg_cholesky_solve_2x2 = Case(
    "linalg_cholesky_solve_2x2",
    inputs={"d": d2, "o": o, "b": b2},
    outputs=sympy.Array(list(_X_SPD)),
    domain={"d": (1, 3), "o": (-0.9, 0.9), "b": (-3, 3)},
    known=[KnownPoint(at={"d": [2, 2], "o": 0, "b": [1, 2]}, value=[_R(1, 2), 1])],
    tags=_ARRAY,
    torch_impl=lambda d, o, b: torch.cholesky_solve(
        b.unsqueeze(-1), torch.linalg.cholesky(_sym2(d, o))
    ).squeeze(-1),
    description="x = A⁻¹ b for an SPD 2×2 through its Cholesky factor "
    "(torch.linalg.cholesky, torch.cholesky_solve)",
)

l2, m = array("l", (2,)), scalar("m")
_LT = sympy.Matrix([[l2[0], 0], [m, l2[1]]])
linalg_solve_triangular_2x2 = Case(
    "linalg_solve_triangular_2x2",
    inputs={"l": l2, "m": m, "b": b2},
    outputs=sympy.Array(list(inverse(_LT) * sympy.Matrix(list(b2)))),
    domain={"l": (0.5, 2), "m": (-1, 1), "b": (-3, 3)},
    known=[
        KnownPoint(
            at={"l": [1, 2], "m": 1, "b": [1, 3]},
            value=[1, 1],
            jacobian=(
                [[-1, 0], [_R(1, 2), -_R(1, 2)]],
                [0, -_R(1, 2)],
                [[1, 0], [-_R(1, 2), _R(1, 2)]],
            ),
            note="forward substitution: x₀ = b₀/l₀, x₁ = (b₁ − m x₀)/l₁",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda diag, m, b: torch.linalg.solve_triangular(
        torch.stack(
            [
                torch.stack([diag[..., 0], torch.zeros_like(m)], -1),
                torch.stack([m, diag[..., 1]], -1),
            ],
            -2,
        ),
        b.unsqueeze(-1),
        upper=False,
    ).squeeze(-1),
    description="x = L⁻¹ b for a lower-triangular 2×2 L (torch.linalg.solve_triangular)",
)

# -- symmetric eigenproblems --------------------------------------------------------------
_mid = (d2[0] + d2[1]) / 2
_gap2 = (d2[0] - d2[1]) ** 2 + 4 * o**2  # (λ₊ − λ₋)²
_half = sympy.sqrt(_gap2) / 2
linalg_eigvalsh_2x2 = Case(
    "linalg_eigvalsh_2x2",
    inputs={"d": d2, "o": o},
    outputs=sympy.Array([_mid - _half, _mid + _half]),
    domain={"d": (-2, 2), "o": (-2, 2)},
    # eigenvalues are not differentiable where they tie
    exclude=[_gap2],
    margin=0.1,
    known=[
        KnownPoint(
            at={"d": [1, 1], "o": 1},
            value=[0, 2],
            jacobian=([[_R(1, 2), _R(1, 2)], [_R(1, 2), _R(1, 2)]], [-1, 1]),
            note="∂λ/∂A = v vᵀ with v = (1, ∓1)/√2; o sits in two entries",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda d, o: torch.linalg.eigvalsh(_sym2(d, o)),
    description="the eigenvalues (ascending) of a symmetric 2×2, ties excluded "
    "(torch.linalg.eigvalsh)",
)

_P_TOP = (S2 - (_mid - _half) * sympy.eye(2)) / (2 * _half)


def _top_projector(d: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    v = torch.linalg.eigh(_sym2(d, o)).eigenvectors[..., :, 1]
    return v.unsqueeze(-1) * v.unsqueeze(-2)  # v vᵀ does not depend on v's sign


linalg_eigh_projector_2x2 = Case(
    "linalg_eigh_projector_2x2",
    inputs={"d": d2, "o": o},
    outputs=_arr(_P_TOP),
    domain={"d": (-2, 2), "o": (-2, 2)},
    exclude=[_gap2],
    margin=0.1,
    known=[
        KnownPoint(
            at={"d": [1, 1], "o": 1},
            value=[[_R(1, 2), _R(1, 2)], [_R(1, 2), _R(1, 2)]],
            note="top eigenvector (1, 1)/√2",
        ),
        KnownPoint(at={"d": [2, -1], "o": 0}, value=[[1, 0], [0, 0]]),
    ],
    tags=_ARRAY,
    torch_impl=_top_projector,
    description="v vᵀ for the top eigenvector v of a symmetric 2×2, ties excluded "
    "(torch.linalg.eigh)",
)

# -- singular values and matrix norms of a 2×2 ----------------------------------------------
_F = sq_norm(sympy.flatten(rows(A2)))
_D = _det(A2)
_tie = _F**2 - 4 * _D**2  # (σ₁² − σ₂²)²
_s1 = sympy.sqrt((_F + sympy.sqrt(_tie)) / 2)
_s2 = sympy.sqrt((_F - sympy.sqrt(_tie)) / 2)
_SV_KNOWN = {"A": [[3, 0], [0, 1]]}
linalg_svdvals_2x2 = Case(
    "linalg_svdvals_2x2",
    inputs={"A": A2},
    outputs=sympy.Array([_s1, _s2]),
    domain={"A": (-3, 3)},
    # σ₂ = |det A|/σ₁ has a kink at det A = 0; σ₁, σ₂ are not differentiable where they tie
    exclude=[_D, _tie],
    margin=0.1,
    known=[
        KnownPoint(
            at=_SV_KNOWN,
            value=[3, 1],
            jacobian=[[[1, 0], [0, 0]], [[0, 0], [0, 1]]],
            note="∂σᵢ/∂A = uᵢ vᵢᵀ",
        )
    ],
    tags=_ARRAY,
    torch_impl=torch.linalg.svdvals,
    description="the singular values of a 2×2, det A = 0 and ties excluded (torch.linalg.svdvals)",
)

linalg_norm_spectral_2x2 = Case(
    "linalg_norm_spectral_2x2",
    inputs={"A": A2},
    outputs=_s1,
    domain={"A": (-3, 3)},
    exclude=[_tie],
    margin=0.1,
    known=[KnownPoint(at=_SV_KNOWN, value=3, jacobian=[[1, 0], [0, 0]])],
    tags=_SCALAR,
    torch_impl=lambda A: torch.linalg.matrix_norm(A, ord=2),
    description="the spectral norm σ₁ of a 2×2, ties σ₁ = σ₂ excluded "
    "(torch.linalg.matrix_norm, ord=2)",
)

linalg_norm_nuclear_2x2 = Case(
    "linalg_norm_nuclear_2x2",
    inputs={"A": A2},
    # σ₁ + σ₂ = √(‖A‖²_F + 2|det A|): smooth where det A ≠ 0, ties included
    outputs=sympy.sqrt(_F + 2 * sympy.Abs(_D)),
    domain={"A": (-3, 3)},
    exclude=[_D],
    margin=0.1,
    known=[
        KnownPoint(
            at=_SV_KNOWN,
            value=4,
            jacobian=[[1, 0], [0, 1]],
            note="∂‖A‖_*/∂A = U Vᵀ",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda A: torch.linalg.matrix_norm(A, ord="nuc"),
    description="the nuclear norm σ₁ + σ₂ of a 2×2, det A = 0 excluded "
    "(torch.linalg.matrix_norm, ord='nuc')",
)

linalg_cond_2x2 = Case(
    "linalg_cond_2x2",
    inputs={"A": A2},
    outputs=(_F + sympy.sqrt(_tie)) / (2 * sympy.Abs(_D)),
    domain={"A": (-3, 3)},
    # κ's own derivatives grow like κ²: |det A|/‖A‖²_F ≥ 0.1 keeps κ below about 20 (at κ ≈ 500
    # float32 rounding of A alone moved the gradient by 100 ULP)
    exclude=[_D, _tie, _D / _F],
    margin=0.1,
    known=[KnownPoint(at=_SV_KNOWN, value=3, jacobian=[[1, 0], [0, -3]], note="σ₁/σ₂")],
    tags=_SCALAR,
    torch_impl=torch.linalg.cond,
    description="the 2-norm condition number σ₁/σ₂ of a 2×2, det A = 0 and ties excluded "
    "(torch.linalg.cond)",
)

# -- matrix exponentials --------------------------------------------------------------------
theta = scalar("theta")
_J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
linalg_matrix_exp_rotation = Case(
    "linalg_matrix_exp_rotation",
    inputs={"theta": theta},
    outputs=sympy.Array(
        [[sympy.cos(theta), -sympy.sin(theta)], [sympy.sin(theta), sympy.cos(theta)]]
    ),
    domain={"theta": (-3, 3)},
    known=[
        KnownPoint(
            at={"theta": sympy.pi / 2},
            value=[[0, -1], [1, 0]],
            jacobian=[[-1, 0], [0, -1]],
            note="exp(θJ) is the rotation by θ; its derivative is J·exp(θJ)",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda t: torch.linalg.matrix_exp(
        t[..., None, None] * _J.to(dtype=t.dtype, device=t.device)
    ),
    description="exp(θ [[0, −1], [1, 0]]), the rotation by θ (torch.linalg.matrix_exp)",
)

_EXP_SYM = sympy.exp(_mid) * (
    sympy.cosh(_half) * sympy.eye(2) + sympy.sinh(_half) / _half * (S2 - _mid * sympy.eye(2))
)
linalg_matrix_exp_symmetric_2x2 = Case(
    "linalg_matrix_exp_symmetric_2x2",
    inputs={"d": d2, "o": o},
    outputs=_arr(_EXP_SYM),
    domain={"d": (-2, 2), "o": (-2, 2)},
    # the closed form divides sinh(r) by r (r half the eigenvalue gap), 0/0 at r = 0, where
    # exp is smooth: only the expression needs the exclusion
    exclude=[_gap2],
    margin=0.1,
    known=[
        KnownPoint(
            at={"d": [0, 0], "o": 1},
            value=[[sympy.cosh(1), sympy.sinh(1)], [sympy.sinh(1), sympy.cosh(1)]],
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda d, o: torch.linalg.matrix_exp(_sym2(d, o)),
    description="exp(A) of a symmetric 2×2 in closed form e^m(cosh r·I + sinh r/r·(A − mI)) "
    "(torch.linalg.matrix_exp)",
)

a, bb, c = scalar("a"), scalar("b"), scalar("c")
linalg_matrix_exp_triangular_2x2 = Case(
    "linalg_matrix_exp_triangular_2x2",
    inputs={"a": a, "b": bb, "c": c},
    outputs=sympy.Array(
        [[sympy.exp(a), bb * (sympy.exp(a) - sympy.exp(c)) / (a - c)], [0, sympy.exp(c)]]
    ),
    domain={"a": (-2, 2), "b": (-2, 2), "c": (-2, 2)},
    exclude=[a - c],  # the divided difference is 0/0 at a = c (exp is smooth there)
    margin=0.05,
    known=[
        KnownPoint(
            at={"a": 1, "b": 1, "c": 0},
            value=[[sympy.E, sympy.E - 1], [0, 1]],
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda a, b, c: torch.linalg.matrix_exp(
        torch.stack([torch.stack([a, b], -1), torch.stack([torch.zeros_like(c), c], -1)], -2)
    ),
    description="exp of the upper-triangular [[a, b], [0, c]], a = c excluded "
    "(torch.linalg.matrix_exp)",
)

# -- pseudo-inverse, least squares ----------------------------------------------------------
A23, A32, b3 = array("A", (2, 3)), array("A", (3, 2)), array("b", (3,))
_AAt = _mat(A23) * _mat(A23).T
_gram_det = _AAt.det()
linalg_pinv_2x3 = Case(
    "linalg_pinv_2x3",
    inputs={"A": A23},
    outputs=_arr(_mat(A23).T * inverse(_AAt)),
    domain={"A": (-2, 2)},
    # full row rank, κ(A)² = κ(A Aᵀ) kept modest: det(A Aᵀ)/‖A‖⁴_F away from 0
    # Conditioning and scale (‖A‖²_F ≥ 1), as for linalg_lstsq_3x2.
    exclude=[
        4 * _gram_det / sq_norm(sympy.flatten(rows(A23))) ** 2,
        sq_norm(sympy.flatten(rows(A23))) / 5,
    ],
    margin=0.2,
    known=[
        KnownPoint(
            at={"A": [[1, 0, 0], [0, 1, 0]]},
            value=[[1, 0], [0, 1], [0, 0]],
        ),
        KnownPoint(
            at={"A": [[1, 1, 0], [0, 0, 2]]},
            value=[[_R(1, 2), 0], [_R(1, 2), 0], [0, _R(1, 2)]],
        ),
    ],
    tags=_ARRAY,
    torch_impl=torch.linalg.pinv,
    description="the pseudo-inverse Aᵀ(A Aᵀ)⁻¹ of a full-rank 2×3 (torch.linalg.pinv)",
)

_AtA = _mat(A32).T * _mat(A32)
linalg_lstsq_3x2 = Case(
    "linalg_lstsq_3x2",
    inputs={"A": A32, "b": b3},
    outputs=sympy.Array(list(inverse(_AtA) * _mat(A32).T * sympy.Matrix(list(b3)))),
    domain={"A": (-2, 2), "b": (-3, 3)},
    # Scale-free conditioning (κ ≤ ~4.5) and scale (‖A‖²_F ≥ 1): at ‖A‖ ~ 0.1 the Jacobian's
    # entries span 0.01 to 100, and float32's normwise rounding (~1e-5 there) exceeds the
    # entrywise tolerance on the small ones though torch is as accurate as float32 allows.
    exclude=[
        4 * _AtA.det() / sq_norm(sympy.flatten(rows(A32))) ** 2,
        sq_norm(sympy.flatten(rows(A32))) / 5,
    ],
    margin=0.2,
    known=[
        KnownPoint(
            at={"A": [[1, 0], [0, 1], [0, 0]], "b": [1, 2, 3]},
            value=[1, 2],
            note="the residual (0, 0, 3) is orthogonal to A's columns",
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda A, b: torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1),
    description="the least-squares solution of a full-rank 3×2 system (torch.linalg.lstsq)",
)

# -- distances, Kronecker, powers -----------------------------------------------------------
P, Qp = array("x", (2, 2)), array("y", (3, 2))
_sq = [[(P[i, 0] - Qp[j, 0]) ** 2 + (P[i, 1] - Qp[j, 1]) ** 2 for j in range(3)] for i in range(2)]
linalg_cdist = Case(
    "linalg_cdist",
    inputs={"x": P, "y": Qp},
    outputs=sympy.Array([[sympy.sqrt(e) for e in row] for row in _sq]),
    domain={"x": (-2, 2), "y": (-2, 2)},
    exclude=[e for row in _sq for e in row],  # coincident points: the cone of the norm
    margin=0.05,
    known=[
        KnownPoint(
            at={"x": [[0, 0], [1, 1]], "y": [[0, 1], [1, 0], [-1, -1]]},
            value=[[1, 1, _S2], [1, 1, 2 * _S2]],
        )
    ],
    tags=_ARRAY,
    torch_impl=torch.cdist,
    description="Euclidean distances between 2 and 3 points in the plane, coincident points "
    "excluded (torch.cdist)",
)

B2 = array("B", (2, 2))


def _kron(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    if A.dim() == 2:
        return torch.kron(A, B)
    # torch.kron takes the product over batch dimensions too; batch it as einsum does
    return torch.einsum("...ij,...kl->...ikjl", A, B).reshape(*A.shape[:-2], 4, 4)


linalg_kron_2x2 = Case(
    "linalg_kron_2x2",
    inputs={"A": A2, "B": B2},
    outputs=sympy.Array(
        [[A2[i // 2, j // 2] * B2[i % 2, j % 2] for j in range(4)] for i in range(4)]
    ),
    domain={"A": (-3, 3), "B": (-3, 3)},
    known=[
        KnownPoint(
            at={"A": [[1, 0], [0, 2]], "B": [[1, 2], [3, 0]]},
            value=[[1, 2, 0, 0], [3, 0, 0, 0], [0, 0, 2, 4], [0, 0, 6, 0]],
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=_kron,
    description="the Kronecker product of two 2×2 matrices (torch.kron)",
)

linalg_matrix_power_3 = Case(
    "linalg_matrix_power_3",
    inputs={"A": A2},
    outputs=_arr(_mat(A2) ** 3),
    domain={"A": (-2, 2)},
    known=[
        KnownPoint(
            at={"A": [[1, 1], [0, 1]]},
            value=[[1, 3], [0, 1]],
            note="a shear cubed",
        )
    ],
    tags=_ARRAY | {"polynomial"},
    torch_impl=lambda A: torch.linalg.matrix_power(A, 3),
    description="A³ for a 2×2 (torch.linalg.matrix_power)",
)

# -- 8×8 for scale: rank-one updates of the identity -----------------------------------------
u8, v8 = array("u", (8,)), array("v", (8,))
_vu = sympy.Add(*[p * q for p, q in zip(u8, v8, strict=True)])
# The inverse is 6×6: at 8×8 the code generator raises KeyError (a core defect, reported).
u6, v6 = array("u", (6,)), array("v", (6,))
_vu6 = sympy.Add(*[p * q for p, q in zip(u6, v6, strict=True)])
linalg_inv_6x6_rank_one = Case(
    "linalg_inv_6x6_rank_one",
    inputs={"u": u6, "v": v6},
    # Sherman–Morrison: (I + u vᵀ)⁻¹ = I − u vᵀ/(1 + vᵀu); |u|, |v| ≤ 0.3 keeps 1 + vᵀu ≥ 0.46
    outputs=sympy.Array(
        [[int(i == j) - u6[i] * v6[j] / (1 + _vu6) for j in range(6)] for i in range(6)]
    ),
    domain={"u": (-0.3, 0.3), "v": (-0.3, 0.3)},
    known=[
        KnownPoint(
            at={"u": [_R(1, 4)] + [0] * 5, "v": [_R(1, 4)] + [0] * 5},
            value=grid((6, 6), lambda i, j: (_R(16, 17) if i == 0 else 1) if i == j else 0),
        )
    ],
    tags=_ARRAY,
    torch_impl=lambda u, v: torch.linalg.inv(
        torch.eye(6, dtype=u.dtype, device=u.device) + u.unsqueeze(-1) * v.unsqueeze(-2)
    ),
    description="the inverse of the 6×6 I + u vᵀ (Sherman–Morrison) (torch.linalg.inv)",
)

linalg_det_8x8_rank_one = Case(
    "linalg_det_8x8_rank_one",
    inputs={"u": u8, "v": v8},
    outputs=1 + _vu,  # the matrix determinant lemma
    domain={"u": (-0.3, 0.3), "v": (-0.3, 0.3)},
    known=[
        KnownPoint(
            at={"u": [_R(1, 4)] + [0] * 7, "v": [_R(1, 4)] + [0] * 7},
            value=_R(17, 16),
            jacobian=([_R(1, 4)] + [0] * 7, [_R(1, 4)] + [0] * 7),
        )
    ],
    tags=_SCALAR | {"polynomial"},
    torch_impl=lambda u, v: torch.linalg.det(
        torch.eye(8, dtype=u.dtype, device=u.device) + u.unsqueeze(-1) * v.unsqueeze(-2)
    ),
    description="det(I + u vᵀ) = 1 + vᵀu for 8-vectors (torch.linalg.det)",
)

CASES = [
    linalg_det_4x4,
    linalg_slogdet_3x3,
    linalg_cholesky_2x2,
    linalg_cholesky_3x3,
    linalg_logdet_spd_3x3,
    linalg_cholesky_logdet_3x3,
    linalg_cholesky_solve_2x2,
    linalg_solve_triangular_2x2,
    linalg_eigvalsh_2x2,
    linalg_eigh_projector_2x2,
    linalg_svdvals_2x2,
    linalg_norm_spectral_2x2,
    linalg_norm_nuclear_2x2,
    linalg_cond_2x2,
    linalg_matrix_exp_rotation,
    linalg_matrix_exp_symmetric_2x2,
    linalg_matrix_exp_triangular_2x2,
    linalg_pinv_2x3,
    linalg_lstsq_3x2,
    linalg_cdist,
    linalg_kron_2x2,
    linalg_matrix_power_3,
    linalg_inv_6x6_rank_one,
    linalg_det_8x8_rank_one,
]
