"""Physics: energies and potentials that simulations and physics-informed models differentiate.

Pendulums, springs, pair potentials (Lennard-Jones, gravity) over ``triu_indices`` pairs,
a Gaussian density, a damped oscillator, relativistic energy, Planck's law (``torch.expm1``), a
Morse potential, a free energy (``torch.logsumexp``), the reduced van der Waals equation, the
heat kernel and the Kepler energy. Units are reduced (g = 9.81, c = 1, k = 1). Pair potentials
exclude coincident particles, where they are singular.
"""

from __future__ import annotations

import math

import sympy
import torch
from verijac_cases._blocks import sq_norm

from verijac import Case, KnownPoint, array, scalar

_FAMILY = "physics"
_SCALAR = frozenset({_FAMILY, "smooth", "scalar-output"})
_R = sympy.Rational
_PI = sympy.pi
_G = _R(981, 100)

th, om, m, ln = scalar("theta"), scalar("omega"), scalar("m"), scalar("l")
physics_pendulum_energy = Case(
    "physics_pendulum_energy",
    inputs={"theta": th, "omega": om, "m": m, "l": ln},
    outputs=m * ln**2 * om**2 / 2 + m * _G * ln * (1 - sympy.cos(th)),
    domain={"theta": (-3, 3), "omega": (-5, 5), "m": (0.5, 2), "l": (0.5, 2)},
    known=[
        KnownPoint(
            at={"theta": 0, "omega": 1, "m": 1, "l": 1},
            value=_R(1, 2),
            jacobian=(0, 1, _R(1, 2), 1),
            note="at the bottom: kinetic energy only",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda t, w, m, ln: 0.5 * m * ln**2 * w**2 + m * 9.81 * ln * (1 - torch.cos(t)),
    description="the energy ½ m l² ω² + m g l (1 − cos θ) of a pendulum (torch.cos)",
)

q2, w2 = array("q", (2,)), array("w", (2,))


def _double_pendulum(q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    t = (
        w[..., 0] ** 2
        + w[..., 1] ** 2 / 2
        + w[..., 0] * w[..., 1] * torch.cos(q[..., 0] - q[..., 1])
    )
    v = -2 * 9.81 * torch.cos(q[..., 0]) - 9.81 * torch.cos(q[..., 1])
    return t - v


physics_double_pendulum_lagrangian = Case(
    "physics_double_pendulum_lagrangian",
    inputs={"q": q2, "w": w2},
    outputs=w2[0] ** 2
    + w2[1] ** 2 / 2
    + w2[0] * w2[1] * sympy.cos(q2[0] - q2[1])
    + 2 * _G * sympy.cos(q2[0])
    + _G * sympy.cos(q2[1]),
    domain={"q": (-3, 3), "w": (-4, 4)},
    known=[
        KnownPoint(
            at={"q": [0, 0], "w": [0, 0]},
            value=3 * _G,
            jacobian=([0, 0], [0, 0]),
            note="at rest hanging down: L = −V = 3g",
        )
    ],
    tags=_SCALAR,
    torch_impl=_double_pendulum,
    description="the Lagrangian T − V of a double pendulum with unit masses and lengths "
    "(torch.cos)",
)

x, mu, sigma = scalar("x"), scalar("mu"), scalar("sigma")
physics_gaussian_density = Case(
    "physics_gaussian_density",
    inputs={"x": x, "mu": mu, "sigma": sigma},
    outputs=sympy.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * sympy.sqrt(2 * _PI)),
    domain={"x": (-4, 4), "mu": (-2, 2), "sigma": (0.5, 3)},
    known=[
        KnownPoint(
            at={"x": 0, "mu": 0, "sigma": 1},
            value=1 / sympy.sqrt(2 * _PI),
            jacobian=(0, 0, -1 / sympy.sqrt(2 * _PI)),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda x, mu, s: (
        torch.distributions.Normal(mu, s, validate_args=False).log_prob(x).exp()
    ),
    description="the Gaussian density exp(log_prob) (torch.distributions.Normal)",
)

P3 = array("P", (3, 2))
_PAIRS = ((0, 1), (0, 2), (1, 2))
_d2 = [sq_norm([P3[i, k] - P3[j, k] for k in range(2)]) for i, j in _PAIRS]


def _pdist(P: torch.Tensor) -> torch.Tensor:
    """Pairwise distances (0,1), (0,2), (1,2), as molecular-dynamics code indexes them.

    (``F.pdist`` would be the one call, but it has no batching rule: under ``torch.func`` it
    warns and loops.)
    """
    i, j = torch.triu_indices(P.shape[-2], P.shape[-2], 1, device=P.device)
    return torch.linalg.vector_norm(P[..., i, :] - P[..., j, :], dim=-1)


_TRI = [[0, 0], [1, 0], [_R(1, 2), sympy.sqrt(3) / 2]]
physics_spring_mass_potential = Case(
    "physics_spring_mass_potential",
    inputs={"P": P3},
    outputs=sympy.Add(*[(sympy.sqrt(d) - 1) ** 2 for d in _d2]) / 2,
    domain={"P": (-2, 2)},
    exclude=_d2,  # coincident masses: the cone point of the distance
    margin=0.05,
    known=[
        KnownPoint(at={"P": _TRI}, value=0, note="an equilateral triangle at rest length 1"),
        KnownPoint(
            at={"P": [[0, 0], [2, 0], [0, 2]]},
            value=(1 + 1 + (2 * sympy.sqrt(2) - 1) ** 2) / 2,
        ),
    ],
    tags=_SCALAR,
    torch_impl=lambda P: ((_pdist(P) - 1) ** 2).sum(-1) / 2,
    description="the potential ½ Σ (|pᵢ − pⱼ| − 1)² of 3 masses joined by unit springs "
    "(torch.linalg.vector_norm over triu_indices pairs)",
)

physics_lennard_jones = Case(
    "physics_lennard_jones",
    inputs={"P": P3},
    outputs=sympy.Add(*[4 * (d**-6 - d**-3) for d in _d2]),
    domain={"P": (-2, 2)},
    exclude=_d2,
    margin=0.5,  # r ≥ 0.71: the r⁻¹² wall stays below ~70
    known=[KnownPoint(at={"P": _TRI}, value=0, note="every pair at r = σ")],
    tags=_SCALAR,
    torch_impl=lambda P: (4 * (_pdist(P) ** -12 - _pdist(P) ** -6)).sum(-1),
    description="the Lennard-Jones energy Σ 4(r⁻¹² − r⁻⁶) of 3 particles in the plane "
    "(torch.linalg.vector_norm over triu_indices pairs)",
)

P33, m3 = array("P", (3, 3)), array("m", (3,))
_r2 = [sq_norm([P33[i, k] - P33[j, k] for k in range(3)]) for i, j in _PAIRS]


def _gravity(P: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(3, 3, 1, device=P.device)
    return -(m[..., i] * m[..., j] / _pdist(P)).sum(-1)


physics_gravitational_potential = Case(
    "physics_gravitational_potential",
    inputs={"P": P33, "m": m3},
    outputs=-sympy.Add(*[m3[i] * m3[j] / sympy.sqrt(d) for (i, j), d in zip(_PAIRS, _r2)]),
    domain={"P": (-2, 2), "m": (0.5, 2)},
    exclude=_r2,
    margin=0.1,
    known=[
        KnownPoint(
            at={"P": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "m": [1, 1, 1]},
            value=-3 / sympy.sqrt(2),
        )
    ],
    tags=_SCALAR,
    torch_impl=_gravity,
    description="the gravitational energy −Σ mᵢmⱼ/rᵢⱼ of 3 bodies, G = 1 "
    "(torch.linalg.vector_norm over triu_indices pairs)",
)

A, gam, w, phi, t = (scalar(n) for n in ("A", "gamma", "omega", "phi", "t"))
physics_damped_oscillator = Case(
    "physics_damped_oscillator",
    inputs={"A": A, "gamma": gam, "omega": w, "phi": phi, "t": t},
    outputs=A * sympy.exp(-gam * t) * sympy.cos(w * t + phi),
    domain={"A": (-2, 2), "gamma": (0, 2), "omega": (0.5, 3), "phi": (-3, 3), "t": (0, 5)},
    known=[
        KnownPoint(
            at={"A": 2, "gamma": 1, "omega": 1, "phi": 0, "t": 0},
            value=2,
            jacobian=(1, 0, 0, 0, -2),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda A, g, w, p, t: A * torch.exp(-g * t) * torch.cos(w * t + p),
    description="the damped oscillation A e^(−γt) cos(ωt + φ) (torch.exp, cos)",
)

v3, ms = array("v", (3,)), scalar("m")
physics_relativistic_energy = Case(
    "physics_relativistic_energy",
    inputs={"m": ms, "v": v3},
    outputs=ms / sympy.sqrt(1 - sq_norm(list(v3))),
    domain={"m": (0.5, 2), "v": (-0.5, 0.5)},  # |v| ≤ √3/2 < c = 1
    known=[
        KnownPoint(
            at={"m": 1, "v": [_R(1, 2)] * 3},
            value=2,
            jacobian=(2, [4, 4, 4]),
            note="γ = 2; ∂E/∂v = m γ³ v",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda m, v: m * torch.rsqrt(1 - (v * v).sum(-1)),
    description="the relativistic energy γ m c² with c = 1 (torch.rsqrt)",
)

nu, T = scalar("nu"), scalar("T")
physics_planck = Case(
    "physics_planck",
    inputs={"nu": nu, "T": T},
    outputs=nu**3 / (sympy.exp(nu / T) - 1),
    domain={"nu": (0.1, 5), "T": (0.5, 3)},
    known=[
        KnownPoint(
            at={"nu": sympy.log(2), "T": 1},
            value=sympy.log(2) ** 3,
            note="e^(ν/T) − 1 = 1",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda nu, T: nu**3 / torch.expm1(nu / T),
    description="Planck's law in reduced units, ν³/(e^(ν/T) − 1) (torch.expm1)",
)

rr = scalar("r")
physics_morse_potential = Case(
    "physics_morse_potential",
    inputs={"r": rr},
    outputs=(1 - sympy.exp(-(rr - 1))) ** 2,
    domain={"r": (0.5, 4)},
    known=[KnownPoint(at={"r": 1}, value=0, jacobian=0, note="the minimum at r = rₑ")],
    tags=_SCALAR,
    torch_impl=lambda r: (-torch.expm1(-(r - 1))) ** 2,
    description="the Morse potential D(1 − e^(−a(r − rₑ)))² with D = a = rₑ = 1 (torch.expm1)",
)

E4, Tt = array("E", (4,)), scalar("T")
physics_free_energy = Case(
    "physics_free_energy",
    inputs={"E": E4, "T": Tt},
    outputs=-Tt * sympy.log(sympy.Add(*[sympy.exp(-e / Tt) for e in E4])),
    domain={"E": (-3, 3), "T": (0.5, 2)},
    known=[
        KnownPoint(
            at={"E": [0, 0, 0, 0], "T": 1},
            value=-sympy.log(4),
            jacobian=([_R(1, 4)] * 4, -sympy.log(4)),
            note="∂F/∂Eᵢ is the Boltzmann probability; ∂F/∂T = −S",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda E, T: -T * torch.logsumexp(-E / T.unsqueeze(-1), -1),
    description="the free energy −T log Σ e^(−Eᵢ/T) of 4 states (torch.logsumexp)",
)

Vm = scalar("V")
physics_van_der_waals = Case(
    "physics_van_der_waals",
    inputs={"T": Tt, "V": Vm},
    outputs=8 * Tt / (3 * Vm - 1) - 3 / Vm**2,
    domain={"T": (0.5, 2), "V": (1, 5)},
    known=[
        KnownPoint(
            at={"T": 1, "V": 1},
            value=1,
            jacobian=(4, 0),
            note="the critical point in reduced units: ∂P/∂V = 0",
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda T, V: 8 * T / (3 * V - 1) - 3 / V**2,
    description="the reduced van der Waals pressure 8T/(3V − 1) − 3/V²",
)

tt = scalar("t")
physics_heat_kernel = Case(
    "physics_heat_kernel",
    inputs={"x": x, "t": tt},
    outputs=sympy.exp(-(x**2) / (4 * tt)) / sympy.sqrt(4 * _PI * tt),
    domain={"x": (-3, 3), "t": (0.1, 2)},
    known=[KnownPoint(at={"x": 0, "t": 1}, value=1 / (2 * sympy.sqrt(_PI)))],
    tags=_SCALAR,
    torch_impl=lambda x, t: torch.exp(-(x**2) / (4 * t)) / torch.sqrt(4 * math.pi * t),
    description="the 1-D heat kernel e^(−x²/4t)/√(4πt) (torch.exp, sqrt)",
)

rv = array("r", (3,))
physics_kepler_energy = Case(
    "physics_kepler_energy",
    inputs={"r": rv, "v": v3},
    outputs=sq_norm(list(v3)) / 2 - 1 / sympy.sqrt(sq_norm(list(rv))),
    domain={"r": (-3, 3), "v": (-0.5, 0.5)},
    exclude=[sq_norm(list(rv))],  # the singularity at the centre
    margin=0.25,
    known=[
        KnownPoint(
            at={"r": [1, 0, 0], "v": [0, _R(1, 2), 0]},
            value=-_R(7, 8),
            jacobian=([1, 0, 0], [0, _R(1, 2), 0]),
        )
    ],
    tags=_SCALAR,
    torch_impl=lambda r, v: (v * v).sum(-1) / 2 - 1 / torch.linalg.vector_norm(r, dim=-1),
    description="the specific orbital energy |v|²/2 − μ/|r| with μ = 1 (torch.linalg.vector_norm)",
)

CASES = [
    physics_pendulum_energy,
    physics_double_pendulum_lagrangian,
    physics_gaussian_density,
    physics_spring_mass_potential,
    physics_lennard_jones,
    physics_gravitational_potential,
    physics_damped_oscillator,
    physics_relativistic_energy,
    physics_planck,
    physics_morse_potential,
    physics_free_energy,
    physics_van_der_waals,
    physics_heat_kernel,
    physics_kepler_energy,
]
