"""Functions of two (or three) scalar inputs: powers, angles, norms, quotients, log-sum-exp.

Singular sets that involve both inputs are excluded with ``exclude=[…]`` (the origin for
``atan2`` and ``hypot``); bounds keep a divisor or a base away from zero.
"""

from __future__ import annotations

import sympy
import torch

from verijac import Case, KnownPoint, scalar

_FAMILY = "binary"
_SMOOTH = frozenset({_FAMILY, "smooth", "scalar-output"})
_HALF = sympy.Rational(1, 2)

x, y, w = scalar("x"), scalar("y"), scalar("w")

binary_pow = Case(
    "binary_pow",
    inputs={"x": x, "y": y},
    outputs=x**y,
    domain={"x": (0.1, 10), "y": (-3, 3)},
    known=[
        KnownPoint(at={"x": 2, "y": 3}, value=8, jacobian=(12, 8 * sympy.log(2))),
        KnownPoint(
            at={"x": 4, "y": _HALF}, value=2, jacobian=(sympy.Rational(1, 4), 2 * sympy.log(4))
        ),
    ],
    tags=_SMOOTH,
    torch_impl=torch.pow,
    description="x**y with a positive base (torch.pow)",
)

# atan2 jumps by 2π across the negative x-axis; its derivative is smooth there, but points on
# the cut are excluded too (``y``) so that finite differences never straddle it.
binary_atan2 = Case(
    "binary_atan2",
    inputs={"y": y, "x": x},
    outputs=sympy.atan2(y, x),
    domain={"y": (-5, 5), "x": (-5, 5)},
    exclude=[x**2 + y**2, y],
    known=[
        KnownPoint(at={"y": 1, "x": 1}, value=sympy.pi / 4, jacobian=(_HALF, -_HALF)),
        KnownPoint(at={"y": 1, "x": -1}, value=3 * sympy.pi / 4, jacobian=(-_HALF, -_HALF)),
    ],
    tags=_SMOOTH,
    torch_impl=torch.atan2,
    description="atan2(y, x), the origin and the branch cut y = 0 excluded (torch.atan2)",
)

binary_hypot = Case(
    "binary_hypot",
    inputs={"x": x, "y": y},
    outputs=sympy.sqrt(x**2 + y**2),
    domain={"x": (-5, 5), "y": (-5, 5)},
    exclude=[x**2 + y**2],
    known=[
        KnownPoint(
            at={"x": 3, "y": 4},
            value=5,
            jacobian=(sympy.Rational(3, 5), sympy.Rational(4, 5)),
        )
    ],
    tags=_SMOOTH,
    torch_impl=torch.hypot,
    description="sqrt(x² + y²), the origin excluded (torch.hypot)",
)

binary_mul = Case(
    "binary_mul",
    inputs={"x": x, "y": y},
    outputs=x * y,
    domain={"x": (-10, 10), "y": (-10, 10)},
    known=[KnownPoint(at={"x": 3, "y": -2}, value=-6, jacobian=(-2, 3))],
    tags=_SMOOTH | {"polynomial"},
    torch_impl=torch.mul,
    description="x·y (torch.mul)",
)

binary_div = Case(
    "binary_div",
    inputs={"x": x, "y": y},
    outputs=x / y,
    domain={"x": (-10, 10), "y": (0.5, 10)},
    known=[KnownPoint(at={"x": 1, "y": 2}, value=_HALF, jacobian=(_HALF, -sympy.Rational(1, 4)))],
    tags=_SMOOTH,
    torch_impl=torch.div,
    description="x/y with y in [0.5, 10] (torch.div)",
)

binary_logaddexp = Case(
    "binary_logaddexp",
    inputs={"x": x, "y": y},
    outputs=sympy.log(sympy.exp(x) + sympy.exp(y)),
    domain={"x": (-10, 10), "y": (-10, 10)},
    known=[
        KnownPoint(at={"x": 0, "y": 0}, value=sympy.log(2), jacobian=(_HALF, _HALF)),
        KnownPoint(
            at={"x": sympy.log(3), "y": 0},
            value=2 * sympy.log(2),
            jacobian=(sympy.Rational(3, 4), sympy.Rational(1, 4)),
        ),
    ],
    tags=_SMOOTH,
    torch_impl=torch.logaddexp,
    description="log(exp(x) + exp(y)) (torch.logaddexp)",
)

binary_xlogy = Case(
    "binary_xlogy",
    inputs={"x": x, "y": y},
    outputs=x * sympy.log(y),
    domain={"x": (-10, 10), "y": (0.01, 10)},
    known=[KnownPoint(at={"x": 3, "y": sympy.E}, value=3, jacobian=(1, 3 / sympy.E))],
    tags=_SMOOTH,
    torch_impl=torch.special.xlogy,
    description="x·log(y) with y > 0 (torch.special.xlogy)",
)

binary_lerp = Case(
    "binary_lerp",
    inputs={"x": x, "y": y, "w": w},
    outputs=x + w * (y - x),
    domain={"x": (-10, 10), "y": (-10, 10), "w": (-1, 2)},
    known=[
        KnownPoint(
            at={"x": 1, "y": 3, "w": _HALF},
            value=2,
            jacobian=(_HALF, _HALF, 2),
        )
    ],
    tags=_SMOOTH | {"polynomial"},
    torch_impl=torch.lerp,
    description="x + w·(y - x), three inputs (torch.lerp with a tensor weight)",
)

binary_squared_difference = Case(
    "binary_squared_difference",
    inputs={"x": x, "y": y},
    outputs=(x - y) ** 2,
    domain={"x": (-10, 10), "y": (-10, 10)},
    known=[KnownPoint(at={"x": 3, "y": 1}, value=4, jacobian=(4, -4))],
    tags=_SMOOTH | {"polynomial"},
    torch_impl=lambda a, b: torch.nn.functional.mse_loss(a, b, reduction="none"),
    description="(x - y)² (torch.nn.functional.mse_loss, reduction='none')",
)

CASES = [
    binary_pow,
    binary_atan2,
    binary_hypot,
    binary_mul,
    binary_div,
    binary_logaddexp,
    binary_xlogy,
    binary_lerp,
    binary_squared_difference,
]
