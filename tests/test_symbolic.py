"""Exact derivatives: the shortcuts that make large cases fast give the same exact values."""

from __future__ import annotations

import random

import pytest
import sympy
import torch
from torch.func import jacrev, vmap

import verijac
from verijac import Case, Interval
from verijac._symbolic import Derivatives


def _dense_sums(n: int, k: int, rng: random.Random, xs: list[sympy.Symbol]) -> list[sympy.Expr]:
    return [
        sympy.Add(
            *[sympy.Rational(rng.randint(-99, 99), 37) * xs[j] for j in rng.sample(range(n), k)]
        )
        for _ in range(3)
    ]


def test_chain_rule_through_linear_sums_equals_direct_differentiation() -> None:
    """Sums met once, twice, nested in one another's functions, next to their own inputs
    (exact rational weights, so that expanding the difference leaves exactly 0)."""
    import symengine

    rng = random.Random(3)
    n = 12
    xs = list(verijac.array("x", (n,)))
    s1, s2, s3 = _dense_sums(n, 9, rng, xs)
    exprs = [
        sympy.tanh(s1),
        sympy.tanh(s1) * s2 + xs[0] * s1**2 + sympy.sin(xs[3]),
        sympy.exp(sympy.tanh(s3) + s2) / (2 + sympy.cos(s1)),
        s3 + 1,
        xs[5] ** 3,  # no sum: derived directly
    ]
    d = Derivatives(xs, exprs)
    assert d.engine == "symengine"
    syms = d.native_symbols
    for e, row in zip(d.native_exprs, d.jacobian_native):
        for s, got in zip(syms, row):
            assert symengine.expand(got - e.diff(s)) == 0, (e, s)
    for e, h in zip(d.native_exprs, d.hessian_native):
        for a in range(n):
            for b in range(n):
                assert symengine.expand(h[a][b] - e.diff(syms[a]).diff(syms[b])) == 0


def test_plain_symbols_and_evaluated_sums_give_the_array_forms_derivatives() -> None:
    """The set-up users write (``sympy.symbols``, evaluated sums, their own Matrix) derives
    the same exact Jacobian as the real-symbol array form."""
    rng = random.Random(5)
    n = 16
    weights = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    xs = sympy.symbols(f"x0:{n}")
    rows = (sympy.Matrix(weights) * sympy.Matrix(xs)).applyfunc(sympy.tanh)
    plain = Case("s_plain", inputs={"x": xs}, outputs=rows, domain={"x": (-1, 1)})
    assert all(s.is_real for s in plain.in_symbols)
    assert plain.out_exprs[3].free_symbols <= set(plain.in_symbols)
    x = verijac.array("x", (n,))
    w = sympy.Matrix(weights)
    array_rows = sympy.Array([sympy.tanh(sum(w[i, j] * x[j] for j in range(n))) for i in range(n)])
    arrayed = Case("s_array", inputs={"x": x}, outputs=array_rows, domain={"x": (-1, 1)})
    pts = torch.rand(7, n, dtype=torch.float64) * 2 - 1
    got = plain.torch_jacobian()(pts)  # the user's column Matrix: shape (n, 1) + (n,)
    assert got.shape == (7, n, 1, n)
    assert torch.allclose(got[:, :, 0], arrayed.torch_jacobian()(pts), rtol=1e-14)
    exact = plain.jacobian()
    point = {s: sympy.Rational(k + 1, 40) for k, s in enumerate(plain.in_symbols)}
    wt = torch.tensor(weights, dtype=torch.float64)
    at = torch.tensor([float(point[s]) for s in plain.in_symbols], dtype=torch.float64)
    auto = jacrev(lambda v: torch.tanh(wt @ v))(at)
    at_point = [[float(exact[i, 0, j].xreplace(point)) for j in range(n)] for i in range(n)]
    assert torch.allclose(torch.tensor(at_point, dtype=torch.float64), auto, rtol=1e-13)


def _value(expr: sympy.Expr, point: dict[sympy.Symbol, sympy.Float]) -> float:
    # SymPy's own derivatives of Max/Min hold Subs(Derivative(...)) terms, 0 off the kinks.
    return float(expr.xreplace(point).doit())


def test_max_min_and_steps_derive_as_sympy_does() -> None:
    """Max/Min are derived lazily and step functions held constant: the derivatives equal
    SymPy's own (with its DiracDelta terms dropped off the jumps)."""
    from verijac._symbolic import _almost_everywhere

    x, y, z = (verijac.scalar(c) for c in "xyz")
    out = (
        sympy.Max(x, 2 * y, z**2, x * y) * sympy.sign(x - z)
        + sympy.Min(x + y, y * z, sympy.sin(x), evaluate=False)
        + sympy.floor(3 * y) * x**2
        + sympy.Max(x, y) * sympy.Abs(z)
    )
    case = Case("s_kinks", inputs={"x": x, "y": y, "z": z}, outputs=out,
                domain={"x": Interval(-1, 1), "y": Interval(-1, 1), "z": Interval(0.1, 1)})  # fmt: skip
    rng = random.Random(7)
    syms = (x, y, z)
    for _ in range(5):
        point = {s: sympy.Float(rng.uniform(-0.9, 0.9)) for s in syms}
        point[z] = sympy.Float(rng.uniform(0.2, 0.9))
        for a, sa in enumerate(syms):
            theirs = _almost_everywhere(sympy.diff(out, sa))
            assert float(case.jacobian()[a].xreplace(point)) == pytest.approx(_value(theirs, point))
            for b, sb in enumerate(syms):
                theirs2 = _almost_everywhere(sympy.diff(theirs, sb))
                ours2 = float(case.hessian()[a][b].xreplace(point))
                assert ours2 == pytest.approx(_value(theirs2, point), abs=1e-12)


def test_derivatives_of_a_long_min_match_autograd() -> None:
    n = 20
    X = verijac.array("x", (n,))
    out = sympy.Min(*[X[k] ** 2 - k * X[k] for k in range(n)], evaluate=False)
    case = Case("s_min20", inputs={"x": X}, outputs=out, domain={"x": (-1, 1)})
    pts = torch.rand(6, n, dtype=torch.float64) * 2 - 1
    fn = case.torch_function()
    assert torch.allclose(case.torch_jacobian()(pts), vmap(jacrev(fn))(pts))
    assert torch.allclose(case.torch_hessian()(pts), vmap(jacrev(jacrev(fn)))(pts))
