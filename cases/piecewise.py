"""Piecewise functions with their kinks excluded: abs, max/min, ReLU family, Huber, clamp.

Each kink is removed from the domain, as an excluded point of the input's `Interval` for a
function of one input or as ``exclude=[x - y]`` where two inputs tie, so that every point
verijac draws has one well-defined derivative. The torch implementations are the ones users
call (``torch.relu``, ``torch.nn.functional.huber_loss`` …), and the safe square root is the
double-``where`` idiom users write to keep NaN gradients out.
"""

from __future__ import annotations

import sympy
import torch
import torch.nn.functional as F

from verijac import Case, Interval, KnownPoint, array, scalar

_FAMILY = "piecewise"
_SCALAR = frozenset({_FAMILY, "scalar-output"})
_HALF = sympy.Rational(1, 2)

x, y = scalar("x"), scalar("y")
_KINK_AT_0 = Interval(-5, 5, exclude=(0,))


def _safe_sqrt(t: torch.Tensor) -> torch.Tensor:
    """sqrt(t) for t > 0 and 0 elsewhere, with no NaN gradient from the unused branch."""
    positive = t > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, t, torch.ones_like(t))), 0.0)


piecewise_abs = Case(
    "piecewise_abs",
    inputs={"x": x},
    outputs=sympy.Abs(x),
    domain={"x": _KINK_AT_0},
    known=[
        KnownPoint(at={"x": -2}, value=2, jacobian=-1),
        KnownPoint(at={"x": 3}, value=3, jacobian=1),
    ],
    tags=_SCALAR,
    torch_impl=torch.abs,
    description="|x|, the kink at 0 excluded (torch.abs)",
)

piecewise_max = Case(
    "piecewise_max",
    inputs={"x": x, "y": y},
    outputs=sympy.Max(x, y),
    domain={"x": (-5, 5), "y": (-5, 5)},
    exclude=[x - y],
    known=[KnownPoint(at={"x": 1, "y": 2}, value=2, jacobian=(0, 1))],
    tags=_SCALAR,
    torch_impl=torch.maximum,
    description="max(x, y), ties x = y excluded (torch.maximum)",
)

piecewise_min = Case(
    "piecewise_min",
    inputs={"x": x, "y": y},
    outputs=sympy.Min(x, y),
    domain={"x": (-5, 5), "y": (-5, 5)},
    exclude=[x - y],
    known=[KnownPoint(at={"x": 1, "y": 2}, value=1, jacobian=(1, 0))],
    tags=_SCALAR,
    torch_impl=torch.minimum,
    description="min(x, y), ties x = y excluded (torch.minimum)",
)

v3 = array("x", (3,))
_V3 = list(v3)
piecewise_amax = Case(
    "piecewise_amax",
    inputs={"x": v3},
    outputs=sympy.Max(*_V3),
    domain={"x": (-5, 5)},
    exclude=[_V3[0] - _V3[1], _V3[0] - _V3[2], _V3[1] - _V3[2]],
    known=[KnownPoint(at={"x": [1, 3, 2]}, value=3, jacobian=[0, 1, 0])],
    tags=_SCALAR,
    torch_impl=lambda t: torch.amax(t, dim=-1),
    description="the largest element of a 3-vector, ties excluded (torch.amax(x, -1))",
)

piecewise_relu = Case(
    "piecewise_relu",
    inputs={"x": x},
    outputs=sympy.Piecewise((x, x > 0), (0, True)),
    domain={"x": _KINK_AT_0},
    known=[
        KnownPoint(at={"x": 2}, value=2, jacobian=1),
        KnownPoint(at={"x": -1}, value=0, jacobian=0),
    ],
    tags=_SCALAR,
    torch_impl=torch.relu,
    description="max(x, 0) as a Piecewise, the kink at 0 excluded (torch.relu)",
)

_SLOPE = sympy.Rational(1, 100)  # torch's default negative_slope
piecewise_leaky_relu = Case(
    "piecewise_leaky_relu",
    inputs={"x": v3},
    outputs=v3.applyfunc(lambda e: sympy.Piecewise((e, e > 0), (_SLOPE * e, True))),
    domain={"x": _KINK_AT_0},
    known=[
        KnownPoint(
            at={"x": [2, -1, -3]},
            value=[2, -_SLOPE, -3 * _SLOPE],
            jacobian=[[1, 0, 0], [0, _SLOPE, 0], [0, 0, _SLOPE]],
        )
    ],
    tags=frozenset({_FAMILY}),
    torch_impl=F.leaky_relu,
    description="leaky ReLU, slope 0.01, on a 3-vector (torch.nn.functional.leaky_relu)",
)

piecewise_elu = Case(
    "piecewise_elu",
    inputs={"x": x},
    outputs=sympy.Piecewise((x, x > 0), (sympy.exp(x) - 1, True)),
    domain={"x": _KINK_AT_0},
    known=[
        KnownPoint(at={"x": 2}, value=2, jacobian=1),
        KnownPoint(at={"x": -1}, value=sympy.exp(-1) - 1, jacobian=sympy.exp(-1)),
    ],
    tags=_SCALAR,
    torch_impl=F.elu,
    description="ELU with α = 1, whose second derivative jumps at 0 (torch.nn.functional.elu)",
)

# huber_loss(x, 0) with delta = 1: x²/2 for |x| <= 1, |x| - 1/2 beyond; C¹ but not C² at ±1.
piecewise_huber = Case(
    "piecewise_huber",
    inputs={"x": x},
    outputs=sympy.Piecewise((x - _HALF, x > 1), (-x - _HALF, x < -1), (x**2 / 2, True)),
    domain={"x": Interval(-4, 4, exclude=(-1, 1))},
    known=[
        KnownPoint(at={"x": _HALF}, value=sympy.Rational(1, 8), jacobian=_HALF),
        KnownPoint(at={"x": 3}, value=sympy.Rational(5, 2), jacobian=1),
        KnownPoint(at={"x": -2}, value=sympy.Rational(3, 2), jacobian=-1),
    ],
    tags=_SCALAR,
    torch_impl=lambda t: F.huber_loss(t, torch.zeros_like(t), reduction="none"),
    description="Huber loss with δ = 1, kinks ±1 excluded (torch.nn.functional.huber_loss)",
)

piecewise_safe_sqrt = Case(
    "piecewise_safe_sqrt",
    inputs={"x": x},
    outputs=sympy.Piecewise((sympy.sqrt(x), x > 0), (0, True)),
    domain={"x": Interval(-4, 4, exclude=(0,))},
    known=[
        KnownPoint(at={"x": 4}, value=2, jacobian=sympy.Rational(1, 4)),
        KnownPoint(at={"x": -1}, value=0, jacobian=0),
    ],
    tags=_SCALAR,
    torch_impl=_safe_sqrt,
    description="sqrt(x) for x > 0, else 0, the double-where safe form (torch.where)",
)

piecewise_clamp = Case(
    "piecewise_clamp",
    inputs={"x": x},
    outputs=sympy.Max(sympy.Min(x, 1), -1),
    domain={"x": Interval(-3, 3, exclude=(-1, 1))},
    known=[
        KnownPoint(at={"x": _HALF}, value=_HALF, jacobian=1),
        KnownPoint(at={"x": 2}, value=1, jacobian=0),
        KnownPoint(at={"x": -2}, value=-1, jacobian=0),
    ],
    tags=_SCALAR,
    torch_impl=lambda t: torch.clamp(t, -1.0, 1.0),
    description="max(min(x, 1), -1), kinks ±1 excluded (torch.clamp)",
)

m23 = array("x", (2, 3))
_INSIDE = {(0, 0), (1, 0), (1, 1)}  # the elements of the known point inside (-1, 1)
_HARDTANH_JAC = [
    [
        [[int((i, j) == (k, m) and (i, j) in _INSIDE) for m in range(3)] for k in range(2)]
        for j in range(3)
    ]
    for i in range(2)
]
piecewise_hardtanh = Case(
    "piecewise_hardtanh",
    inputs={"x": m23},
    outputs=m23.applyfunc(lambda e: sympy.Max(sympy.Min(e, 1), -1)),
    domain={"x": Interval(-3, 3, exclude=(-1, 1))},
    known=[
        KnownPoint(
            at={"x": [[_HALF, 2, -2], [0, -_HALF, 3]]},
            value=[[_HALF, 1, -1], [0, -_HALF, 1]],
            jacobian=_HARDTANH_JAC,
            note="slope 1 inside (-1, 1), 0 outside",
        )
    ],
    tags=frozenset({_FAMILY, "matrix"}),
    torch_impl=F.hardtanh,
    description="clamp to [-1, 1] on a 2×3 matrix (torch.nn.functional.hardtanh)",
)

piecewise_softshrink = Case(
    "piecewise_softshrink",
    inputs={"x": x},
    outputs=sympy.Piecewise((x - _HALF, x > _HALF), (x + _HALF, x < -_HALF), (0, True)),
    domain={"x": Interval(-3, 3, exclude=(-0.5, 0.5))},
    known=[
        KnownPoint(at={"x": 2}, value=sympy.Rational(3, 2), jacobian=1),
        KnownPoint(at={"x": 0}, value=0, jacobian=0),
    ],
    tags=_SCALAR,
    torch_impl=lambda t: F.softshrink(t, 0.5),
    description="soft shrinkage with λ = 1/2, kinks ±1/2 excluded (torch.nn.functional.softshrink)",
)

CASES = [
    piecewise_abs,
    piecewise_max,
    piecewise_min,
    piecewise_amax,
    piecewise_relu,
    piecewise_leaky_relu,
    piecewise_elu,
    piecewise_huber,
    piecewise_safe_sqrt,
    piecewise_clamp,
    piecewise_hardtanh,
    piecewise_softshrink,
]
