"""Speed of the symbolic side: build, derive and generate code for f(x) = tanh(W x).

Prints, measured side by side in one run:
  * verijac's phases for dense W of 64×64 and 256×256 (targets: ≤ 2 s and ≤ 30 s in total),
    from real array symbols and from plain ``sympy.symbols`` with evaluated sums (the form
    users often write; ``Case()`` then substitutes real symbols without re-evaluating);
  * the exact Jacobian's evaluation on 1,000 points against ``vmap(jacrev)`` (target ≤ 20×);
  * SymPy's own ``derive_by_array`` and ``lambdify`` on the same problem at 32×32, for scale.

Run: ``python benchmarks/bench_symbolic.py`` (add ``--quick`` to skip 256×256 and SymPy's own).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import sympy
import torch
from torch.func import jacrev, vmap

import verijac


def dense_expressions(n: int, seed: int = 0) -> tuple[sympy.Array, list[list[float]]]:
    rng = random.Random(seed)
    weights = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    x = verijac.array("x", (n,))
    # SymPy's evaluating Add of n float-weighted terms costs ~30 ms at n = 64 (SymPy's own cost,
    # not verijac's); the terms are already distinct, so build the sums unevaluated.
    rows = [
        sympy.tanh(
            sympy.Add(*[sympy.Float(weights[i][j]) * x[j] for j in range(n)], evaluate=False)
        )
        for i in range(n)
    ]
    return sympy.Array(rows), weights


def plain_symbol_expressions(n: int, seed: int = 0) -> tuple[list[sympy.Symbol], list[sympy.Expr]]:
    """The same tanh(W x) as users often write it: ``sympy.symbols``, evaluated sums.

    Only ``tanh`` is built unevaluated: evaluating it asks SymPy's assumptions about every
    term of its sum (minutes at 256×256 on a busy machine), the user's cost, not verijac's.
    """
    rng = random.Random(seed)
    weights = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    xs = list(sympy.symbols(f"x0:{n}"))  # no real assumption: verijac substitutes real ones
    rows = [
        sympy.tanh(sympy.Add(*[weights[i][j] * xs[j] for j in range(n)]), evaluate=False)
        for i in range(n)
    ]
    return xs, rows


def plain_symbol_phases(n: int) -> dict[str, float]:
    """verijac's phases for plain-symbol input (``Case()`` substitutes real symbols)."""
    t0 = time.perf_counter()
    xs, rows = plain_symbol_expressions(n)
    t1 = time.perf_counter()
    case = verijac.Case(f"bench_plain_{n}", inputs={"x": xs}, outputs=rows, domain={"x": (-1, 1)})
    t2 = time.perf_counter()
    case.torch_jacobian()
    t3 = time.perf_counter()
    return {
        "expressions (the user's SymPy)": t1 - t0,
        "case (substitute + validate + code)": t2 - t1,
        "exact Jacobian + its code": t3 - t2,
        "total verijac (case+derive+codegen)": t3 - t1,
    }


def median_time(fn: Callable[[], object], repeat: int = 15) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def verijac_phases(n: int) -> tuple[dict[str, float], verijac.Case, list[list[float]]]:
    t0 = time.perf_counter()
    outputs, weights = dense_expressions(n)
    t1 = time.perf_counter()
    x = verijac.array("x", (n,))
    case = verijac.Case(f"bench_tanh_{n}", inputs={"x": x}, outputs=outputs, domain={"x": (-1, 1)})
    t2 = time.perf_counter()
    _ = case.derivatives.jacobian_native
    t3 = time.perf_counter()
    case.torch_jacobian()
    t4 = time.perf_counter()
    phases = {
        "expressions (SymPy)": t1 - t0,
        "case (validate + function code)": t2 - t1,
        "exact Jacobian (symengine)": t3 - t2,
        "Jacobian code generation": t4 - t3,
    }
    phases["total verijac (case+derive+codegen)"] = t4 - t1
    return phases, case, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip 256×256 and SymPy's own timings")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        f"torch {torch.__version__}, sympy {sympy.__version__}, threads {torch.get_num_threads()}"
    )

    array_totals: dict[int, float] = {}
    for n, target in [(64, 2.0), (256, 30.0)] if not args.quick else [(64, 2.0)]:
        phases, case, weights = verijac_phases(n)
        print(f"\n{n}×{n} dense tanh(W x)")
        for name, seconds in phases.items():
            print(f"  {name:38s} {seconds:8.3f} s")
        total = phases["total verijac (case+derive+codegen)"]
        array_totals[n] = total
        print(
            f"  target ≤ {target:g} s: {'met' if total <= target else 'MISSED'} ({total / target:.2f} of budget)"
        )
        if n == 64:
            w = torch.tensor(weights, dtype=torch.float64)
            points = torch.rand(1000, n, dtype=torch.float64) * 2 - 1
            exact = case.torch_jacobian()
            reference = vmap(jacrev(lambda v: torch.tanh(w @ v)))  # noqa: B023
            diff = (exact(points) - reference(points)).abs().max().item()
            t_exact = median_time(lambda: exact(points))  # noqa: B023 (called right here)
            t_ref = median_time(lambda: reference(points))  # noqa: B023
            print(f"  exact Jacobian, 1,000 points          {t_exact * 1e3:8.2f} ms")
            print(f"  vmap(jacrev), 1,000 points            {t_ref * 1e3:8.2f} ms")
            print(
                f"  ratio exact / vmap(jacrev)            {t_exact / t_ref:8.2f}×   (target ≤ 20×; max |diff| {diff:.1e})"
            )
            t_sym = time.perf_counter()
            case.jacobian()
            print(f"  case.jacobian() as SymPy (lazy)       {time.perf_counter() - t_sym:8.3f} s")

    for n, target in [(64, 2.0), (256, 30.0)] if not args.quick else [(64, 2.0)]:
        phases = plain_symbol_phases(n)
        print(f"\n{n}×{n} dense tanh(W x) from plain symbols (sympy.symbols, evaluated sums)")
        for name, seconds in phases.items():
            print(f"  {name:38s} {seconds:8.3f} s")
        total = phases["total verijac (case+derive+codegen)"]
        print(
            f"  target ≤ {target:g} s: {'met' if total <= target else 'MISSED'} ({total / target:.2f} of budget)"
        )
        print(
            f"  ratio plain symbols / verijac.array   {total / array_totals[n]:8.2f}×   (same run)"
        )

    if not args.quick:
        # SymPy's lambdify of a 32×32 Jacobian takes ~130 s to build here: time it at 16×16.
        print("\nSymPy's own (for scale)")
        for n, with_lambdify in ((32, False), (16, True)):
            outputs, _ = dense_expressions(n)
            x = verijac.array("x", (n,))
            start = time.perf_counter()
            jac = sympy.derive_by_array(outputs, x)
            print(
                f"  {n}×{n} sympy.derive_by_array               {time.perf_counter() - start:8.3f} s"
            )
            _, case, _ = verijac_phases(n)
            pts = torch.rand(1000, n, dtype=torch.float64)
            t_ours = median_time(lambda: case.torch_jacobian()(pts))  # noqa: B023
            print(f"  {n}×{n} verijac's Jacobian, 1,000 points    {t_ours * 1e3:8.2f} ms")
            if not with_lambdify:
                continue
            start = time.perf_counter()
            # SymPy's torch printer cannot print an Array; nested lists give nested tensors.
            fn = sympy.lambdify([list(x)], jac.tolist(), modules="torch")
            print(
                f"  {n}×{n} sympy.lambdify(torch) build         {time.perf_counter() - start:8.3f} s"
            )
            point = [torch.tensor(0.1, dtype=torch.float64)] * n
            start = time.perf_counter()
            fn(point)
            print(
                f"  {n}×{n} its call on ONE point               {(time.perf_counter() - start) * 1e3:8.2f} ms"
            )


if __name__ == "__main__":
    main()
