"""Distributions: log-densities and a KL divergence that variational inference differentiates.

Each case calls ``torch.distributions`` as a model would, with ``validate_args=False``
(argument validation is data-dependent Python control flow, which ``torch.func`` transforms
refuse). Parameters stay inside their supports; the Laplace density's kink at x = μ is
excluded; the Dirichlet value is parametrised by two free coordinates so that it stays on the
simplex.
"""

from __future__ import annotations

import sympy
import torch
import torch.distributions as D

from verijac import Case, KnownPoint, array, scalar

_FAMILY = "distribution"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_R = sympy.Rational
_PI = sympy.pi
_LG = sympy.loggamma

x, mu, sigma = scalar("x"), scalar("mu"), scalar("sigma")
_half_log_2pi = sympy.log(2 * _PI) / 2

distribution_normal_log_prob = Case(
    "distribution_normal_log_prob",
    inputs={"x": x, "mu": mu, "sigma": sigma},
    outputs=-((x - mu) ** 2) / (2 * sigma**2) - sympy.log(sigma) - _half_log_2pi,
    domain={"x": (-5, 5), "mu": (-2, 2), "sigma": (0.3, 3)},
    known=[
        KnownPoint(
            at={"x": 1, "mu": 0, "sigma": 1},
            value=-_R(1, 2) - _half_log_2pi,
            jacobian=(-1, 1, 0),
            note="∂/∂σ = (x − μ)²/σ³ − 1/σ",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, mu, s: D.Normal(mu, s, validate_args=False).log_prob(x),
    description="the Normal log-density (torch.distributions.Normal.log_prob)",
)

distribution_lognormal_log_prob = Case(
    "distribution_lognormal_log_prob",
    inputs={"x": x, "mu": mu, "sigma": sigma},
    outputs=-((sympy.log(x) - mu) ** 2) / (2 * sigma**2)
    - sympy.log(sigma)
    - sympy.log(x)
    - _half_log_2pi,
    domain={"x": (0.1, 10), "mu": (-2, 2), "sigma": (0.3, 3)},
    known=[KnownPoint(at={"x": 1, "mu": 0, "sigma": 1}, value=-_half_log_2pi)],
    tags=_SCALAR,
    torch_impl=lambda x, mu, s: D.LogNormal(mu, s, validate_args=False).log_prob(x),
    description="the log-normal log-density (torch.distributions.LogNormal.log_prob)",
)

alpha, beta = scalar("alpha"), scalar("beta")
distribution_gamma_log_prob = Case(
    "distribution_gamma_log_prob",
    inputs={"x": x, "alpha": alpha, "beta": beta},
    outputs=alpha * sympy.log(beta) + (alpha - 1) * sympy.log(x) - beta * x - _LG(alpha),
    domain={"x": (0.1, 10), "alpha": (0.5, 5), "beta": (0.5, 5)},
    known=[
        KnownPoint(
            at={"x": 1, "alpha": 1, "beta": 1},
            value=-1,
            jacobian=(-1, sympy.EulerGamma, 0),
            note="Exponential(1) at 1; ∂/∂α = log β + log x − ψ(α) = γ",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, a, b: D.Gamma(a, b, validate_args=False).log_prob(x),
    description="the Gamma(α, β) log-density in x and both parameters "
    "(torch.distributions.Gamma.log_prob)",
)

a, b = scalar("a"), scalar("b")
distribution_beta_log_prob = Case(
    "distribution_beta_log_prob",
    inputs={"x": x, "a": a, "b": b},
    outputs=(a - 1) * sympy.log(x) + (b - 1) * sympy.log(1 - x) - _LG(a) - _LG(b) + _LG(a + b),
    domain={"x": (0.05, 0.95), "a": (0.5, 5), "b": (0.5, 5)},
    known=[
        KnownPoint(
            at={"x": _R(1, 2), "a": 2, "b": 2},
            value=sympy.log(_R(3, 2)),
            note="Beta(2, 2) has density 6x(1 − x)",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, a, b: D.Beta(a, b, validate_args=False).log_prob(x),
    description="the Beta(a, b) log-density in x and both parameters "
    "(torch.distributions.Beta.log_prob)",
)

nu = scalar("nu")
distribution_student_t_log_prob = Case(
    "distribution_student_t_log_prob",
    inputs={"x": x, "nu": nu, "mu": mu, "sigma": sigma},
    outputs=_LG((nu + 1) / 2)
    - _LG(nu / 2)
    - sympy.log(nu * _PI) / 2
    - sympy.log(sigma)
    - (nu + 1) / 2 * sympy.log(1 + ((x - mu) / sigma) ** 2 / nu),
    domain={"x": (-5, 5), "nu": (1, 10), "mu": (-2, 2), "sigma": (0.3, 3)},
    known=[
        KnownPoint(
            at={"x": 0, "nu": 1, "mu": 0, "sigma": 1},
            value=-sympy.log(_PI),
            note="Student-t with 1 degree of freedom is Cauchy: 1/π at 0",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, nu, mu, s: D.StudentT(nu, mu, s, validate_args=False).log_prob(x),
    description="the Student-t log-density in x, degrees of freedom, location and scale "
    "(torch.distributions.StudentT.log_prob)",
)

distribution_laplace_log_prob = Case(
    "distribution_laplace_log_prob",
    inputs={"x": x, "mu": mu, "sigma": sigma},
    outputs=-sympy.log(2 * sigma) - sympy.Abs(x - mu) / sigma,
    domain={"x": (-5, 5), "mu": (-2, 2), "sigma": (0.3, 3)},
    exclude=[x - mu],  # the kink of |x − μ|; torch's subgradient there is 0
    margin=0.01,
    known=[
        KnownPoint(
            at={"x": 2, "mu": 0, "sigma": 1},
            value=-sympy.log(2) - 2,
            jacobian=(-1, 1, 1),
        )
    ],
    tags=frozenset({_FAMILY, "piecewise", "scalar-output"}),
    torch_impl=lambda x, mu, s: D.Laplace(mu, s, validate_args=False).log_prob(x),
    description="the Laplace log-density, x = μ excluded (torch.distributions.Laplace.log_prob)",
)

rate = scalar("rate")
_K = 3
distribution_poisson_log_prob = Case(
    "distribution_poisson_log_prob",
    inputs={"rate": rate},
    outputs=_K * sympy.log(rate) - rate - sympy.log(sympy.factorial(_K)),
    domain={"rate": (0.1, 10)},
    known=[KnownPoint(at={"rate": 3}, value=3 * sympy.log(3) - 3 - sympy.log(6), jacobian=0)],
    tags=_SCALAR,
    torch_impl=lambda r: D.Poisson(r, validate_args=False).log_prob(torch.full_like(r, 3.0)),
    description="the Poisson log-probability of k = 3 in the rate "
    "(torch.distributions.Poisson.log_prob)",
)

u2, al3 = array("u", (2,)), array("alpha", (3,))
_simplex = [u2[0], u2[1], 1 - u2[0] - u2[1]]


def _dirichlet(u: torch.Tensor, al: torch.Tensor) -> torch.Tensor:
    value = torch.cat([u, 1 - u.sum(-1, keepdim=True)], -1)
    return D.Dirichlet(al, validate_args=False).log_prob(value)


distribution_dirichlet_log_prob = Case(
    "distribution_dirichlet_log_prob",
    inputs={"u": u2, "alpha": al3},
    outputs=sympy.Add(*[(c - 1) * sympy.log(v) for c, v in zip(al3, _simplex, strict=True)])
    + _LG(sympy.Add(*al3))
    - sympy.Add(*[_LG(c) for c in al3]),
    domain={"u": (0.05, 0.45), "alpha": (0.5, 5)},  # u₀ + u₁ ≤ 0.9: the third coordinate ≥ 0.1
    known=[
        KnownPoint(
            at={"u": [_R(1, 4), _R(1, 4)], "alpha": [1, 1, 1]},
            value=sympy.log(2),
            jacobian=(
                [0, 0],
                [sympy.log(_R(1, 4)) + _R(3, 2)] * 2 + [sympy.log(_R(1, 2)) + _R(3, 2)],
            ),
            note="Dirichlet(1, 1, 1) is uniform with density Γ(3) = 2; ∂/∂αᵢ = log xᵢ + ψ(3) − ψ(1)",
        )
    ],
    tags=_SCALAR,
    torch_impl=_dirichlet,
    description="the Dirichlet log-density of (u₀, u₁, 1 − u₀ − u₁) in the point and the "
    "concentrations (torch.distributions.Dirichlet.log_prob)",
)

m1, s1, m2, s2 = scalar("m1"), scalar("s1"), scalar("m2"), scalar("s2")
distribution_kl_normal = Case(
    "distribution_kl_normal",
    inputs={"m1": m1, "s1": s1, "m2": m2, "s2": s2},
    outputs=sympy.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - _R(1, 2),
    domain={"m1": (-2, 2), "s1": (0.3, 3), "m2": (-2, 2), "s2": (0.3, 3)},
    known=[
        KnownPoint(
            at={"m1": 1, "s1": 1, "m2": 0, "s2": 1},
            value=_R(1, 2),
            jacobian=(1, 0, -1, -1),
            note="∂/∂σ₂ = 1/σ₂ − (σ₁² + Δμ²)/σ₂³",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda m1, s1, m2, s2: D.kl_divergence(
        D.Normal(m1, s1, validate_args=False), D.Normal(m2, s2, validate_args=False)
    ),
    description="KL(N(μ₁, σ₁) ‖ N(μ₂, σ₂)), the VAE regulariser "
    "(torch.distributions.kl_divergence)",
)

x2, m2v, dg, off = array("x", (2,)), array("mu", (2,)), array("d", (2,)), scalar("o")


def _mvn(x: torch.Tensor, mu: torch.Tensor, d: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(o)
    tril = torch.stack([torch.stack([d[..., 0], zero], -1), torch.stack([o, d[..., 1]], -1)], -2)
    return D.MultivariateNormal(mu, scale_tril=tril, validate_args=False).log_prob(x)


_z0 = (x2[0] - m2v[0]) / dg[0]
_z1 = (x2[1] - m2v[1] - off * _z0) / dg[1]
distribution_mvn_log_prob = Case(
    "distribution_mvn_log_prob",
    inputs={"x": x2, "mu": m2v, "d": dg, "o": off},
    outputs=-(_z0**2 + _z1**2) / 2 - sympy.log(dg[0]) - sympy.log(dg[1]) - sympy.log(2 * _PI),
    domain={"x": (-3, 3), "mu": (-1, 1), "d": (0.5, 2), "o": (-1, 1)},
    known=[
        KnownPoint(
            at={"x": [1, 0], "mu": [0, 0], "d": [1, 1], "o": 1},
            value=-1 - sympy.log(2 * _PI),
            note="L = [[1, 0], [1, 1]]: z = L⁻¹(x − μ) = (1, −1)",
        )
    ],
    tags=_SCALAR,
    torch_impl=_mvn,
    description="the 2-D Gaussian log-density with a Cholesky scale [[d₀, 0], [o, d₁]] "
    "(torch.distributions.MultivariateNormal.log_prob)",
)

CASES = [
    distribution_normal_log_prob,
    distribution_lognormal_log_prob,
    distribution_gamma_log_prob,
    distribution_beta_log_prob,
    distribution_student_t_log_prob,
    distribution_laplace_log_prob,
    distribution_poisson_log_prob,
    distribution_dirichlet_log_prob,
    distribution_kl_normal,
    distribution_mvn_log_prob,
]
