"""More special functions: polygamma orders 2 and 3, Bessel families, orthogonal polynomials,
incomplete gamma, Hurwitz zeta, the multivariate log-gamma, ndtri and xlog1py.

Each case calls the `torch.special` function a user would call. Several of them have **no
derivative in torch at all** (measured on torch 2.13.0 and 2.14.1): the Bessel functions
``bessel_y0/y1``, ``modified_bessel_i0/i1/k0/k1``, ``scaled_modified_bessel_k0/k1``,
``spherical_bessel_j0`` and the orthogonal polynomials (Chebyshev, Hermite, Legendre,
Laguerre). Their output has no ``grad_fn``: reverse mode raises and ``torch.func`` returns
zeros. Those cases are reported as the known torch defects ``special-bessel-no-grad`` and
``special-polynomial-no-grad`` (``verijac/torch_defects/library.toml``), not as verijac
errors. Bessel functions whose exact Hessian uses the order-2 recurrence exclude 0 (see
``special_bessel_j1``); the polynomials are checked on their usual intervals.
"""

from __future__ import annotations

import sympy
import torch

from verijac import Case, Interval, KnownPoint, scalar

_FAMILY = "special"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_PI = sympy.pi
_R = sympy.Rational
_S = torch.special

x = scalar("x")

special_polygamma_2 = Case(
    "special_polygamma_2",
    inputs={"x": x},
    outputs=sympy.polygamma(2, x),
    domain={"x": (0.5, 20)},
    known=[
        KnownPoint(
            at={"x": 1},
            value=-2 * sympy.zeta(3),
            jacobian=_PI**4 / 15,
            note="ψ⁽ⁿ⁾(1) = (−1)ⁿ⁺¹ n! ζ(n + 1); 6ζ(4) = π⁴/15",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t: _S.polygamma(2, t),
    description="ψ''(x) = polygamma(2, x) on [0.5, 20] (torch.special.polygamma)",
)

special_polygamma_3 = Case(
    "special_polygamma_3",
    inputs={"x": x},
    outputs=sympy.polygamma(3, x),
    domain={"x": (0.5, 20)},
    known=[
        KnownPoint(
            at={"x": 1}, value=_PI**4 / 15, jacobian=-24 * sympy.zeta(5), note="ψ⁽⁴⁾(1) = −24ζ(5)"
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t: _S.polygamma(3, t),
    description="ψ'''(x) = polygamma(3, x) on [0.5, 20] (torch.special.polygamma)",
)

_NO0 = Interval(-10, 10, exclude=(0,))
special_i1 = Case(
    "special_i1",
    inputs={"x": x},
    outputs=sympy.besseli(1, x),
    domain={"x": _NO0},
    known=[
        KnownPoint(
            at={"x": 1},
            value=sympy.besseli(1, 1),
            jacobian=sympy.besseli(0, 1) - sympy.besseli(1, 1),
            note="I₁'(x) = I₀(x) − I₁(x)/x",
        )
    ],
    tags=_SCALAR,
    torch_impl=_S.i1,
    description="the modified Bessel function I₁(x) on [−10, 10], 0 excluded (torch.special.i1)",
)

special_i0e = Case(
    "special_i0e",
    inputs={"x": x},
    outputs=sympy.besseli(0, x) * sympy.exp(-sympy.Abs(x)),
    domain={"x": Interval(-20, 20, exclude=(0,))},  # exp(−|x|) has a kink at 0
    known=[
        KnownPoint(
            at={"x": 1},
            value=sympy.besseli(0, 1) / sympy.E,
            jacobian=(sympy.besseli(1, 1) - sympy.besseli(0, 1)) / sympy.E,
        )
    ],
    tags=_SCALAR,
    torch_impl=_S.i0e,
    description="the scaled I₀(x)·e^−|x| on [−20, 20], 0 excluded (torch.special.i0e)",
)

special_i1e = Case(
    "special_i1e",
    inputs={"x": x},
    outputs=sympy.besseli(1, x) * sympy.exp(-sympy.Abs(x)),
    domain={"x": Interval(-20, 20, exclude=(0,))},
    known=[KnownPoint(at={"x": 1}, value=sympy.besseli(1, 1) / sympy.E)],
    tags=_SCALAR,
    torch_impl=_S.i1e,
    description="the scaled I₁(x)·e^−|x| on [−20, 20], 0 excluded (torch.special.i1e)",
)

_NO_GRAD = (
    "torch defines no derivative for this function (its output has no grad_fn, measured on "
    "2.13.0 and 2.14.1): reverse mode raises and torch.func returns 0"
)


def _no_grad(name: str, expr: sympy.Expr, domain: object, fn: object, what: str,
             known: KnownPoint) -> Case:  # fmt: skip
    return Case(
        name,
        inputs={"x": x},
        outputs=expr,
        domain={"x": domain},  # type: ignore[dict-item]
        known=[known],
        tags=_SCALAR | {"torch-no-grad"},
        torch_impl=fn,  # type: ignore[arg-type]
        description=f"{what}; {_NO_GRAD}",
    )


special_bessel_y0 = _no_grad(
    "special_bessel_y0",
    sympy.bessely(0, x),
    (0.5, 20),
    _S.bessel_y0,
    "the Bessel function Y₀(x) on [0.5, 20] (torch.special.bessel_y0)",
    KnownPoint(at={"x": 1}, value=sympy.bessely(0, 1), jacobian=-sympy.bessely(1, 1)),
)
special_bessel_y1 = _no_grad(
    "special_bessel_y1",
    sympy.bessely(1, x),
    (0.5, 20),
    _S.bessel_y1,
    "the Bessel function Y₁(x) on [0.5, 20] (torch.special.bessel_y1)",
    KnownPoint(at={"x": 1}, value=sympy.bessely(1, 1)),
)
special_modified_bessel_i0 = _no_grad(
    "special_modified_bessel_i0",
    sympy.besseli(0, x),
    _NO0,
    _S.modified_bessel_i0,
    "I₀(x) on [−10, 10], 0 excluded (torch.special.modified_bessel_i0; torch.special.i0 has a "
    "derivative)",
    KnownPoint(at={"x": 1}, value=sympy.besseli(0, 1), jacobian=sympy.besseli(1, 1)),
)
special_modified_bessel_i1 = _no_grad(
    "special_modified_bessel_i1",
    sympy.besseli(1, x),
    _NO0,
    _S.modified_bessel_i1,
    "I₁(x) on [−10, 10], 0 excluded (torch.special.modified_bessel_i1; torch.special.i1 has a "
    "derivative)",
    KnownPoint(at={"x": 1}, value=sympy.besseli(1, 1)),
)
special_modified_bessel_k0 = _no_grad(
    "special_modified_bessel_k0",
    sympy.besselk(0, x),
    (0.1, 10),
    _S.modified_bessel_k0,
    "the modified Bessel function K₀(x) on [0.1, 10] (torch.special.modified_bessel_k0)",
    KnownPoint(at={"x": 1}, value=sympy.besselk(0, 1), jacobian=-sympy.besselk(1, 1)),
)
special_modified_bessel_k1 = _no_grad(
    "special_modified_bessel_k1",
    sympy.besselk(1, x),
    (0.1, 10),
    _S.modified_bessel_k1,
    "the modified Bessel function K₁(x) on [0.1, 10] (torch.special.modified_bessel_k1)",
    KnownPoint(at={"x": 1}, value=sympy.besselk(1, 1)),
)
special_scaled_modified_bessel_k0 = _no_grad(
    "special_scaled_modified_bessel_k0",
    sympy.besselk(0, x) * sympy.exp(x),
    (0.1, 10),
    _S.scaled_modified_bessel_k0,
    "K₀(x)·eˣ on [0.1, 10] (torch.special.scaled_modified_bessel_k0)",
    KnownPoint(at={"x": 1}, value=sympy.besselk(0, 1) * sympy.E),
)
special_scaled_modified_bessel_k1 = _no_grad(
    "special_scaled_modified_bessel_k1",
    sympy.besselk(1, x) * sympy.exp(x),
    (0.1, 10),
    _S.scaled_modified_bessel_k1,
    "K₁(x)·eˣ on [0.1, 10] (torch.special.scaled_modified_bessel_k1)",
    KnownPoint(at={"x": 1}, value=sympy.besselk(1, 1) * sympy.E),
)
special_spherical_bessel_j0 = _no_grad(
    "special_spherical_bessel_j0",
    sympy.sin(x) / x,
    _NO0,
    _S.spherical_bessel_j0,
    "the spherical Bessel function j₀(x) = sin(x)/x on [−10, 10], 0 excluded "
    "(torch.special.spherical_bessel_j0)",
    KnownPoint(at={"x": _PI / 2}, value=2 / _PI, jacobian=-4 / _PI**2),
)

_half = _R(1, 2)
special_chebyshev_t3 = _no_grad(
    "special_chebyshev_t3",
    sympy.chebyshevt(3, x),
    (-1, 1),
    lambda t: _S.chebyshev_polynomial_t(t, 3),
    "the Chebyshev polynomial T₃(x) = 4x³ − 3x on [−1, 1] (torch.special.chebyshev_polynomial_t)",
    KnownPoint(at={"x": _half}, value=-1, jacobian=0, note="T₃(cos θ) = cos 3θ at θ = π/3"),
)
special_chebyshev_u3 = _no_grad(
    "special_chebyshev_u3",
    sympy.chebyshevu(3, x),
    (-1, 1),
    lambda t: _S.chebyshev_polynomial_u(t, 3),
    "the Chebyshev polynomial U₃(x) = 8x³ − 4x on [−1, 1] (torch.special.chebyshev_polynomial_u)",
    KnownPoint(at={"x": _half}, value=-1, jacobian=2),
)
special_hermite_h3 = _no_grad(
    "special_hermite_h3",
    sympy.hermite(3, x),
    (-3, 3),
    lambda t: _S.hermite_polynomial_h(t, 3),
    "the physicists' Hermite polynomial H₃(x) = 8x³ − 12x on [−3, 3] "
    "(torch.special.hermite_polynomial_h)",
    KnownPoint(at={"x": 1}, value=-4, jacobian=12),
)
special_hermite_he3 = _no_grad(
    "special_hermite_he3",
    sympy.hermite_prob(3, x),
    (-3, 3),
    lambda t: _S.hermite_polynomial_he(t, 3),
    "the probabilists' Hermite polynomial He₃(x) = x³ − 3x on [−3, 3] "
    "(torch.special.hermite_polynomial_he)",
    KnownPoint(at={"x": 1}, value=-2, jacobian=0),
)
special_legendre_p3 = _no_grad(
    "special_legendre_p3",
    sympy.legendre(3, x),
    (-1, 1),
    lambda t: _S.legendre_polynomial_p(t, 3),
    "the Legendre polynomial P₃(x) = (5x³ − 3x)/2 on [−1, 1] (torch.special.legendre_polynomial_p)",
    KnownPoint(at={"x": 1}, value=1, jacobian=6, note="Pₙ(1) = 1, Pₙ'(1) = n(n + 1)/2"),
)
special_laguerre_l3 = _no_grad(
    "special_laguerre_l3",
    sympy.laguerre(3, x),
    (0, 6),
    lambda t: _S.laguerre_polynomial_l(t, 3),
    "the Laguerre polynomial L₃(x) = (−x³ + 9x² − 18x + 6)/6 on [0, 6] "
    "(torch.special.laguerre_polynomial_l)",
    KnownPoint(at={"x": 0}, value=1, jacobian=-3, note="Lₙ(0) = 1, Lₙ'(0) = −n"),
)

p = scalar("p")
special_ndtri = Case(
    "special_ndtri",
    inputs={"p": p},
    outputs=sympy.sqrt(2) * sympy.erfinv(2 * p - 1),
    domain={"p": (0.02, 0.98)},
    known=[
        KnownPoint(at={"p": _half}, value=0, jacobian=sympy.sqrt(2 * _PI), note="1/φ(0) = √(2π)")
    ],
    tags=_SCALAR,
    torch_impl=_S.ndtri,
    description="the standard normal quantile Φ⁻¹(p) = √2·erfinv(2p − 1) (torch.special.ndtri)",
)

y = scalar("y")
special_xlog1py = Case(
    "special_xlog1py",
    inputs={"x": x, "y": y},
    outputs=x * sympy.log(1 + y),
    domain={"x": (-3, 3), "y": (-0.9, 5)},
    known=[KnownPoint(at={"x": 2, "y": 0}, value=0, jacobian=(0, 2))],
    tags=_SCALAR,
    torch_impl=_S.xlog1py,
    description="x·log(1 + y) (torch.special.xlog1py)",
)

q = scalar("q")
special_zeta_hurwitz = Case(
    "special_zeta_hurwitz",
    inputs={"q": q},
    outputs=sympy.zeta(3, q),
    domain={"q": (0.5, 10)},
    known=[
        KnownPoint(
            at={"q": 1},
            value=sympy.zeta(3),
            jacobian=-(_PI**4) / 30,
            note="∂ζ(s, q)/∂q = −s·ζ(s + 1, q); 3ζ(4) = π⁴/30",
        )
    ],
    tags=_SCALAR,
    # torch has no derivative in s (not_implemented); q is the differentiable argument here
    torch_impl=lambda t: _S.zeta(torch.full_like(t, 3.0), t),
    description="the Hurwitz zeta function ζ(3, q) in q on [0.5, 10] (torch.special.zeta)",
)

a = scalar("a")
special_multigammaln = Case(
    "special_multigammaln",
    inputs={"a": a},
    outputs=_R(3, 2) * sympy.log(_PI)
    + sympy.loggamma(a)
    + sympy.loggamma(a - _half)
    + sympy.loggamma(a - 1),
    domain={"a": (1.1, 10)},
    known=[
        KnownPoint(
            at={"a": 2},
            value=_R(3, 2) * sympy.log(_PI) + sympy.log(sympy.sqrt(_PI) / 2),
            jacobian=sympy.digamma(2) + sympy.digamma(_R(3, 2)) + sympy.digamma(1),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t: _S.multigammaln(t, 3),
    description="the multivariate log-gamma function of dimension 3, a > 1 "
    "(torch.special.multigammaln)",
)

_P32 = sympy.erf(sympy.sqrt(x)) - 2 * sympy.sqrt(x / _PI) * sympy.exp(-x)
special_gammainc = Case(
    "special_gammainc",
    inputs={"x": x},
    outputs=_P32,
    domain={"x": (0.1, 10)},
    known=[
        KnownPoint(
            at={"x": 1},
            value=sympy.erf(1) - 2 / (sympy.sqrt(_PI) * sympy.E),
            jacobian=2 / (sympy.sqrt(_PI) * sympy.E),
            note="P(3/2, x) = erf(√x) − 2√(x/π)e⁻ˣ; ∂P/∂x = x^(a−1)e⁻ˣ/Γ(a)",
        )
    ],
    tags=_SCALAR,
    # torch has no derivative in a (not_implemented); x is the differentiable argument
    torch_impl=lambda t: _S.gammainc(torch.full_like(t, 1.5), t),
    description="the regularised lower incomplete gamma P(3/2, x) in x (torch.special.gammainc)",
)

special_gammaincc = Case(
    "special_gammaincc",
    inputs={"x": x},
    outputs=1 - _P32,
    domain={"x": (0.1, 10)},
    known=[
        KnownPoint(
            at={"x": 1},
            value=1 - sympy.erf(1) + 2 / (sympy.sqrt(_PI) * sympy.E),
            jacobian=-2 / (sympy.sqrt(_PI) * sympy.E),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t: _S.gammaincc(torch.full_like(t, 1.5), t),
    description="the regularised upper incomplete gamma Q(3/2, x) in x (torch.special.gammaincc)",
)

CASES = [
    special_polygamma_2,
    special_polygamma_3,
    special_i1,
    special_i0e,
    special_i1e,
    special_bessel_y0,
    special_bessel_y1,
    special_modified_bessel_i0,
    special_modified_bessel_i1,
    special_modified_bessel_k0,
    special_modified_bessel_k1,
    special_scaled_modified_bessel_k0,
    special_scaled_modified_bessel_k1,
    special_spherical_bessel_j0,
    special_chebyshev_t3,
    special_chebyshev_u3,
    special_hermite_h3,
    special_hermite_he3,
    special_legendre_p3,
    special_laguerre_l3,
    special_ndtri,
    special_xlog1py,
    special_zeta_hurwitz,
    special_multigammaln,
    special_gammainc,
    special_gammaincc,
]
