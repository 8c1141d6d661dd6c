"""Special functions: gamma and its logarithm, digamma, trigamma, sinc, Bessel, erf relatives.

Where torch's function is not literally SymPy's, the two agree mathematically on the domain:
``torch.sinc`` is normalised, so SymPy's ``sinc(x) = sin(x)/x`` is ``torch.sinc(x / π)``;
torch has no gamma, so Γ(x) for x > 0 is ``exp(gammaln(x))``. Domains stay clear of poles
(positive arguments for the gamma family).
"""

from __future__ import annotations

import math

import sympy
import torch

from verijac import Case, Interval, KnownPoint, scalar

_FAMILY = "special"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_EG = sympy.EulerGamma
_PI = sympy.pi
_S2 = sympy.sqrt(2)

x = scalar("x")

special_gamma = Case(
    "special_gamma",
    inputs={"x": x},
    outputs=sympy.gamma(x),
    domain={"x": (0.1, 6)},
    known=[
        KnownPoint(at={"x": 1}, value=1, jacobian=-_EG, note="Γ'(1) = -γ"),
        KnownPoint(
            at={"x": 3}, value=2, jacobian=3 - 2 * _EG, note="Γ'(3) = Γ(3)ψ(3) = 2(3/2 - γ)"
        ),
    ],
    tags=_SCALAR,
    torch_impl=lambda t: torch.exp(torch.special.gammaln(t)),
    description="Γ(x) on [0.1, 6] as exp(gammaln(x)) (torch.special.gammaln)",
)

special_lgamma = Case(
    "special_lgamma",
    inputs={"x": x},
    outputs=sympy.loggamma(x),
    domain={"x": (0.1, 20)},
    known=[
        KnownPoint(at={"x": 1}, value=0, jacobian=-_EG),
        KnownPoint(at={"x": 2}, value=0, jacobian=1 - _EG),
        KnownPoint(
            at={"x": sympy.Rational(1, 2)},
            value=sympy.log(sympy.sqrt(_PI)),
            jacobian=-_EG - 2 * sympy.log(2),
        ),
    ],
    tags=_SCALAR,
    torch_impl=torch.special.gammaln,
    description="log Γ(x) on [0.1, 20] (torch.special.gammaln)",
)

special_lgamma_torch = Case(
    "special_lgamma_torch",
    inputs={"x": x},
    outputs=sympy.loggamma(x),
    domain={"x": "positive"},
    known=[KnownPoint(at={"x": 3}, value=sympy.log(2), jacobian=sympy.Rational(3, 2) - _EG)],
    tags=_SCALAR,
    torch_impl=torch.lgamma,
    description="log Γ(x) on x > 0, sampled up to 100 (torch.lgamma)",
)

special_digamma = Case(
    "special_digamma",
    inputs={"x": x},
    outputs=sympy.digamma(x),
    domain={"x": (0.1, 20)},
    known=[KnownPoint(at={"x": 1}, value=-_EG, jacobian=_PI**2 / 6, note="ψ'(1) = ζ(2)")],
    tags=_SCALAR,
    torch_impl=torch.special.digamma,
    description="ψ(x) on [0.1, 20] (torch.special.digamma)",
)

special_trigamma = Case(
    "special_trigamma",
    inputs={"x": x},
    outputs=sympy.polygamma(1, x),
    domain={"x": (0.1, 20)},
    known=[
        KnownPoint(
            at={"x": 1}, value=_PI**2 / 6, jacobian=-2 * sympy.zeta(3), note="ψ''(1) = -2ζ(3)"
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t: torch.special.polygamma(1, t),
    description="ψ'(x) = polygamma(1, x) on [0.1, 20] (torch.special.polygamma)",
)

special_sinc = Case(
    "special_sinc",
    inputs={"x": x},
    outputs=sympy.sinc(x),
    # 0 is a removable singularity of the expressions, not of the function: the reference
    # evaluates it (and the cancelling region around it) as a limit with mpmath.
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(at={"x": _PI / 2}, value=2 / _PI, jacobian=-4 / _PI**2),
        KnownPoint(at={"x": _PI}, value=0, jacobian=-1 / _PI),
    ],
    tags=_SCALAR,
    # torch.sinc(t) = sin(πt)/(πt), so SymPy's sin(x)/x is torch.sinc(x/π).
    torch_impl=lambda t: torch.sinc(t / math.pi),
    description="sin(x)/x, 0 included (torch.sinc(x / π))",
)

special_bessel_j0 = Case(
    "special_bessel_j0",
    inputs={"x": x},
    outputs=sympy.besselj(0, x),
    # the Hessian needs besselj(2, x): NaN at 0 (see special_bessel_j1)
    domain={"x": Interval(-20, 20, exclude=(0,))},
    tags=_SCALAR,
    torch_impl=torch.special.bessel_j0,
    description="the Bessel function J0(x) on [-20, 20], 0 excluded (torch.special.bessel_j0)",
)

special_bessel_i0 = Case(
    "special_bessel_i0",
    inputs={"x": x},
    outputs=sympy.besseli(0, x),
    # the Hessian needs besseli(2, x): NaN at 0 (see special_bessel_j1)
    domain={"x": Interval(-10, 10, exclude=(0,))},
    tags=_SCALAR,
    torch_impl=torch.special.i0,
    description="the modified Bessel function I0(x) on [-10, 10], 0 excluded (torch.special.i0)",
)

special_erfinv = Case(
    "special_erfinv",
    inputs={"x": x},
    outputs=sympy.erfinv(x),
    domain={"x": (-0.9, 0.9)},
    known=[KnownPoint(at={"x": 0}, value=0, jacobian=sympy.sqrt(_PI) / 2)],
    tags=_SCALAR,
    torch_impl=torch.special.erfinv,
    description="the inverse of erf on [-0.9, 0.9] (torch.special.erfinv)",
)

special_erfcx = Case(
    "special_erfcx",
    inputs={"x": x},
    outputs=sympy.exp(x**2) * sympy.erfc(x),
    # the product form loses accuracy for large x; torch.special.erfcx does not
    domain={"x": (-3, 4)},
    known=[KnownPoint(at={"x": 0}, value=1, jacobian=-2 / sympy.sqrt(_PI))],
    tags=_SCALAR,
    torch_impl=torch.special.erfcx,
    description="the scaled complementary error function exp(x²)·erfc(x) (torch.special.erfcx)",
)

_ndtr = (1 + sympy.erf(x / _S2)) / 2
special_ndtr = Case(
    "special_ndtr",
    inputs={"x": x},
    outputs=_ndtr,
    domain={"x": (-8, 8)},
    known=[KnownPoint(at={"x": 0}, value=sympy.Rational(1, 2), jacobian=1 / sympy.sqrt(2 * _PI))],
    tags=_SCALAR,
    torch_impl=torch.special.ndtr,
    description="the standard normal CDF Φ(x) = (1 + erf(x/√2))/2 (torch.special.ndtr)",
)

special_log_ndtr = Case(
    "special_log_ndtr",
    inputs={"x": x},
    outputs=sympy.log(sympy.erfc(-x / _S2) / 2),
    domain={"x": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": 0}, value=-sympy.log(2), jacobian=2 / sympy.sqrt(2 * _PI), note="φ(0)/Φ(0)"
        )
    ],
    tags=_SCALAR,
    torch_impl=torch.special.log_ndtr,
    description="log Φ(x) written as log(erfc(-x/√2)/2) (torch.special.log_ndtr)",
)

special_entr = Case(
    "special_entr",
    inputs={"x": x},
    outputs=-x * sympy.log(x),
    domain={"x": (0.01, 10)},
    known=[KnownPoint(at={"x": 1}, value=0, jacobian=-1)],
    tags=_SCALAR,
    torch_impl=torch.special.entr,
    description="-x·log(x) on [0.01, 10] (torch.special.entr)",
)

# The function map builds besselj(2, x), which SymPy's derivative of besselj(1, x) needs, by the
# upward recurrence J2 = (2/x)·J1 - J0; at x = 0 that is 0·∞ = NaN although J1'(0) = 1/2, so 0
# is excluded until the core evaluates the recurrence safely there.
special_bessel_j1 = Case(
    "special_bessel_j1",
    inputs={"x": x},
    outputs=sympy.besselj(1, x),
    domain={"x": Interval(-20, 20, exclude=(0,))},
    tags=_SCALAR,
    torch_impl=torch.special.bessel_j1,
    description="the Bessel function J1(x) on [-20, 20], 0 excluded (torch.special.bessel_j1)",
)

CASES = [
    special_gamma,
    special_lgamma,
    special_lgamma_torch,
    special_digamma,
    special_trigamma,
    special_sinc,
    special_bessel_j0,
    special_bessel_j1,
    special_bessel_i0,
    special_erfinv,
    special_erfcx,
    special_ndtr,
    special_log_ndtr,
    special_entr,
]
