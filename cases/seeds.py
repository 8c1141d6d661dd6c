"""The four seed cases: the examples of the documents verijac grew from, with their printed values."""

from __future__ import annotations

import sympy

from verijac import Case, KnownPoint, array, scalar

x1, x2, x3 = scalar("x1"), scalar("x2"), scalar("x3")

#: Seed 000: torch.autograd.functional.jacobian of a function of three scalars returning a tuple.
seed_tuple_io = Case(
    "seed_tuple_io",
    inputs={"x1": x1, "x2": x2, "x3": x3},
    outputs=(x1 + x2, x3 * x1, x2**3),
    domain={"x1": (-10, 10), "x2": (-10, 10), "x3": (-10, 10)},
    known=[
        KnownPoint(
            at={"x1": 3, "x2": 4, "x3": 5},
            value=(7, 15, 64),
            jacobian=((1, 1, 0), (5, 0, 3), (0, 48, 0)),
            note="seed 000: jacobian(f, (tensor(3.), tensor(4.), tensor(5.)))",
        )
    ],
    tags={"seed", "polynomial", "smooth", "tuple"},
    description="(x1 + x2, x3·x1, x2³): tuple in, tuple out (seed 000)",
)

X = array("x", (2, 2))
_ONES = [[1, 1], [1, 1]]
_I = [[1, 0], [0, 1]]

#: Seed 001: f(x) = (x + 1)² elementwise on a 2×2 matrix, backward with ones.
seed_matrix_square = Case(
    "seed_matrix_square",
    inputs={"x": X},
    outputs=X.applyfunc(lambda e: (e + 1) ** 2),
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": _I},
            value=[[4, 1], [1, 4]],
            jacobian=[
                [[[4, 0], [0, 0]], [[0, 2], [0, 0]]],
                [[[0, 0], [2, 0]], [[0, 0], [0, 4]]],
            ],
            vjp=[(_ONES, [[4, 2], [2, 4]]), ([[2, 2], [2, 2]], [[8, 4], [4, 8]])],
            note="seed 001: x = torch.eye(2); out.backward(torch.ones_like(x)) gives "
            "[[4, 2], [2, 4]], twice with retain_graph=True accumulates [[8, 4], [4, 8]]",
        )
    ],
    tags={"seed", "polynomial", "smooth", "elementwise", "matrix"},
    description="(x + 1)² elementwise on a 2×2 matrix (seed 001)",
)

V = array("x", (2,))

#: Seed 002: y = x², the Jacobian assembled row by row with torch.autograd.grad.
seed_grad_loop = Case(
    "seed_grad_loop",
    inputs={"x": V},
    outputs=V.applyfunc(lambda e: e**2),
    domain={"x": (-10, 10)},
    known=[
        KnownPoint(
            at={"x": [2, 3]},
            value=[4, 9],
            jacobian=[[4, 0], [0, 6]],
            note="seed 002: calculate_jacobian(x=[2., 3.], y=x**2)",
        )
    ],
    tags={"seed", "polynomial", "smooth", "elementwise"},
    description="x² on a 2-vector, Jacobian by an autograd.grad loop (seed 002)",
)

xs = [scalar(f"x{k}") for k in range(5)]
_f003 = sum(x**p for x, p in zip(xs, range(2, 7)))
_names = [f"x{k}" for k in range(5)]


def _at(x0: int) -> dict[str, int]:
    return {"x0": x0, "x1": 1, "x2": 1, "x3": 1, "x4": 1}


#: Seed 003: f(x0..x4) = x0² + x1³ + x2⁴ + x3⁵ + x4⁶, the gradient over a range of x0.
seed_batched_gradient = Case(
    "seed_batched_gradient",
    inputs=dict(zip(_names, xs)),
    outputs=_f003,
    domain=dict.fromkeys(_names, (-3, 3)) | {"x0": (-10, 10)},
    known=[
        KnownPoint(
            at=_at(k),
            value=k**2 + 4,
            jacobian=(2 * k, 3, 4, 5, 6),
            note=f"seed 003: row {k} of the 9×5 table over x0 in 1…9",
        )
        for k in range(1, 10)
    ],
    tags={"seed", "polynomial", "smooth", "scalar-output"},
    description="x0² + x1³ + x2⁴ + x3⁵ + x4⁶ over a range of x0 (seed 003)",
)

#: Seed 003's 9×5 table: the gradient at x0 = k (rows), the others at 1.
SEED_003_TABLE = [[2 * k, 3, 4, 5, 6] for k in range(1, 10)]

CASES = [seed_tuple_io, seed_matrix_square, seed_grad_loop, seed_batched_gradient]
_ = sympy
