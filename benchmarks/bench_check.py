"""Measured side by side in one run: verijac vs gradcheck, verijac's overhead, the default suite.

    python benchmarks/bench_check.py [--points 10000] [--gradcheck-points 200] [--no-suite]

Prints figures and ratios; asserts nothing (timings vary by machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from verijac_cases.seeds import seed_batched_gradient as CASE

from verijac._reference import make_problem
from verijac._runner import resolve_paths, run
from verijac.paths._base import Path, Problem
from verijac.strategies import PROFILES


def _grad_path(problem: Problem) -> torch.Tensor:
    flat = problem.flat_inputs(problem.inputs).detach().requires_grad_(True)
    out = problem.func(*problem.split_inputs(flat))
    (g,) = torch.autograd.grad(out.sum(), flat)
    return g


FALLBACK = [
    Path("bench.grad", "reverse", "gradient", "torch.autograd.grad(f(x).sum(), x)", _grad_path)
]


def _paths() -> tuple[list[Path], str]:
    """The catalogue's batched first-order paths that apply to the case, else a stand-in."""
    try:
        found = resolve_paths(None)
    except ImportError as exc:  # the catalogue is not importable in this checkout
        return FALLBACK, f"stand-in path (catalogue unavailable: {exc})"
    keep = [
        p
        for p in found
        if p.batched
        and p.computes in ("gradient", "jacobian", "vjp", "jvp")
        and p.family != "compiled"
    ]
    return keep or FALLBACK, f"{len(keep)} batched catalogue paths"


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _points(n: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple(
        (torch.rand(n, generator=gen, dtype=torch.float64) * 6 - 3) for _ in CASE.variables
    )


def throughput_and_overhead(n: int, n_gradcheck: int) -> None:
    paths, what = _paths()
    print(f"case {CASE.name}: {len(paths)} path(s) ({what}), {n} points, float64, CPU")

    def verijac() -> None:
        report = run(
            [CASE],
            paths=paths,
            dtypes="float64",
            devices="cpu",
            seed=0,
            max_examples=1,
            batch_size=n,
        )
        assert report.passed, str(report)

    verijac()  # warm up imports and generated code
    t_v = _best(verijac)

    inputs = _points(n)
    problem = make_problem(CASE, inputs)

    def bare() -> None:
        for p in paths:
            p.run(dataclasses.replace(problem))

    bare()
    t_bare = _best(bare)

    f = CASE.implementation()
    pts = _points(n_gradcheck)

    def gradcheck() -> None:
        for i in range(n_gradcheck):
            args = tuple(x[i : i + 1].clone().requires_grad_(True) for x in pts)
            assert torch.autograd.gradcheck(f, args)

    t_g = _best(gradcheck, repeat=1)
    per_v = t_v / n
    per_g = t_g / n_gradcheck
    print(
        f"(1) verijac check:         {t_v * 1e3:9.1f} ms for {n} points  = {per_v * 1e6:9.3f} µs/point"
    )
    print(
        f"    torch.autograd.gradcheck: {t_g * 1e3:6.1f} ms for {n_gradcheck} points = {per_g * 1e6:9.3f} µs/point"
    )
    print(f"    speed-up per point: {per_g / per_v:,.0f}×   (target >= 1000×)")
    print(
        f"(2) bare path calls on the same points: {t_bare * 1e3:.1f} ms; verijac {t_v * 1e3:.1f} ms"
    )
    print(f"    overhead ratio verijac / bare: {t_v / t_bare:.2f}×   (target <= 1.3×)")


def suite() -> None:
    t0 = time.perf_counter()
    try:
        report = run_suite()
    except Exception as exc:  # the shipped library may be mid-edit; say so instead of crashing
        print(f"(3) default suite could not run: {type(exc).__name__}: {exc}")
        return
    dt = time.perf_counter() - t0
    ci = PROFILES["ci"]
    print(
        f"(3) default suite (every case × path × cpu × float64+float32, ci profile: "
        f"{ci.max_examples}×{ci.batch_size} points): {dt:.1f} s for {len(report.records)} records "
        f"(target < 120 s)"
    )
    print("    " + report.summary().replace("\n", "\n    "))


def run_suite() -> Any:
    from verijac._runner import check

    return check(profile="ci", devices="cpu", seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--gradcheck-points", type=int, default=200)
    parser.add_argument("--no-suite", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    throughput_and_overhead(args.points, args.gradcheck_points)
    if not args.no_suite:
        suite()


if __name__ == "__main__":
    main()
