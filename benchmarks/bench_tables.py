"""Speed of reference tables (`verijac table`): the two workloads of the tables issue.

Prints, for each, the time to build the table and write it as JSON (what `verijac table`
does once its cases are loaded), against its target:

  * 1,000 generated points of ``seed_batched_gradient`` with J and H at 50 digits (≤ 10 s);
  * the Jacobian of a dense 64×64 ``tanh(W x)`` at 10 generated points at 30 digits (≤ 30 s);
    building that case (SymPy's own ``tanh`` of 64-term sums) is timed apart.

With ``--cli`` it also times the whole command for the first workload, which includes
starting Python and loading the case library. The machine's load average is printed: the
figures scale with it.

Run: ``python benchmarks/bench_tables.py [--cli]``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sympy

import verijac
from verijac._tables import build_table, write_table


def dense_tanh(n: int, seed: int = 0) -> verijac.Case:
    """f(x) = tanh(W x) for a dense random ``n × n`` W (as in bench_symbolic.py)."""
    rng = random.Random(seed)
    weights = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    x = verijac.array("x", (n,))
    rows = [
        sympy.tanh(
            sympy.Add(*[sympy.Float(weights[i][j]) * x[j] for j in range(n)], evaluate=False)
        )
        for i in range(n)
    ]
    return verijac.Case(
        f"bench_tanh_{n}", inputs={"x": x}, outputs=sympy.Array(rows), domain={"x": (-1, 1)}
    )


def timed_table(case: verijac.Case, *, points: int, digits: int, out: Path) -> tuple[float, int]:
    """Seconds to build and write the table, and its number of entries."""
    start = time.perf_counter()
    table = build_table([case], points=points, digits=digits, known=False)
    write_table(table, out)
    elapsed = time.perf_counter() - start
    entries = sum(len(v) for c in table.cases for p in c.values for v in p.values())
    return elapsed, entries


def report(label: str, seconds: float, target: float, detail: str) -> None:
    verdict = "meets" if seconds <= target else "MISSES"
    print(f"{label}: {seconds:.2f} s ({detail}); target ≤ {target:g} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", action="store_true", help="also time the whole command")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f}")
    from verijac_cases.seeds import seed_batched_gradient

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table.json"
        seconds, entries = timed_table(seed_batched_gradient, points=1000, digits=50, out=out)
        size = out.stat().st_size / 1e6
        report(
            "seed_batched_gradient, 1,000 points, J and H, 50 digits",
            seconds,
            10,
            f"{entries} entries, {size:.1f} MB of JSON",
        )
        start = time.perf_counter()
        case = dense_tanh(64)
        built = time.perf_counter() - start
        seconds, entries = timed_table(case, points=10, digits=30, out=out)
        report(
            "64×64 tanh(W x), J at 10 points, 30 digits",
            seconds,
            30,
            f"{entries} entries; building the case took {built:.2f} s more",
        )
        if args.cli:
            command = [
                *(sys.executable, "-m", "verijac", "table", "--case", "seed_batched_gradient"),
                *("--points", "1000", "--digits", "50", "--output", str(out), "--no-progress"),
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            report(
                "the same as a command (start-up and case library included)",
                time.perf_counter() - start,
                10,
                " ".join(command[2:]),
            )


if __name__ == "__main__":
    main()
