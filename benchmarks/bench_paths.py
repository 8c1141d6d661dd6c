"""The figures of docs/performance.md: which way of computing a Jacobian is fastest, by shape.

    python benchmarks/bench_paths.py [--out docs/img/performance] [--json-dir DIR]
                                     [--quick] [--no-jax] [--device cpu] [--threads N]

Runs ``verijac bench`` (the `verijac._bench_run.bench` engine) on four shapes:

* ``seed_batched_gradient``: seed 003, f: R⁵ → R, every mode (random points, the gradient
  over a range of x0, J·v over that range), 1 to 100,000 points;
* ``wide_8x512``: sin(W x), W 512×8: few inputs, many outputs (forward mode's shape);
* ``tall_512x8``: tanh(W x), W 8×512: many inputs, few outputs (reverse mode's shape);
* ``dense_64x64``: tanh(W x), W 64×64;

the last three built here with `verijac.Case` (they are benchmark shapes, not shipped cases),
``paths`` mode, 1 to 10,000 points. Writes the PNG plots and one JSON per shape, and prints
per shape and batch size the ranking of the five fastest correct methods, the machine, its
load and the versions: the numbers docs/performance.md quotes. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import sympy

import verijac
from verijac._bench_report import fmt_time, groups, ranked, write_plots
from verijac._bench_run import bench


def dense(name: str, n_out: int, n_in: int, fn: type, seed: int = 0) -> verijac.Case:
    """``fn(W x)`` for a random dense ``W`` (``n_out × n_in``), x in [-1, 1]^n_in."""
    rng = random.Random(seed)
    x = verijac.array("x", (n_in,))
    scale = 1 / n_in**0.5  # keeps W x of order 1, so tanh is not flat
    rows = [
        fn(
            sympy.Add(
                *[sympy.Float(rng.uniform(-1, 1) * scale) * x[j] for j in range(n_in)],
                evaluate=False,
            )
        )
        for _ in range(n_out)
    ]
    return verijac.Case(
        name,
        inputs={"x": x},
        outputs=sympy.Array(rows),
        domain={"x": (-1, 1)},
        description=f"{fn.__name__}(W x), W {n_out}×{n_in}",
    )


def markdown(report: object, *, rows: int = 8, always: tuple[str, ...] = ()) -> str:
    """Per group: the ``rows`` fastest methods at the largest batch size (and ``always``),
    time per point at every batch size with the ratio to one f; the tables of
    docs/performance.md."""
    out = []
    for (case, mode, device, dtype), results in groups(report).items():  # type: ignore[arg-type]
        sizes = sorted({r.points for r in results})
        top = ranked(results, sizes[-1])
        names = [r.method for r in top if r.per_point is not None][:rows]
        names += [n for n in always if n not in names and any(r.method == n for r in results)]
        out.append(f"\n`{case}` · `{mode}` · {device} · {dtype} (time per point, and × one f)\n")
        out.append("| method | " + " | ".join(f"{s:,}" for s in sizes) + " |")
        out.append("|---|" + "---|" * len(sizes))
        floors = [report.floors.get((case, mode, device, dtype, s)) for s in sizes]  # type: ignore[attr-defined]
        out.append("| *one f (torch, no grad)* | " + " | ".join(fmt_time(f) for f in floors) + " |")
        for name in names:
            cells = []
            for size in sizes:
                r = next((r for r in results if r.method == name and r.points == size), None)
                if r is None or r.per_point is None:
                    cells.append(r.status if r else "-")
                    continue
                mark = "" if r.status == "pass" else f" **{r.status}**"
                cells.append(f"{fmt_time(r.per_point)} ({r.vs_f:.2g}×){mark}")
            out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/performance", help="plot directory")
    parser.add_argument("--json-dir", default=None, help="also write one JSON per shape here")
    parser.add_argument("--quick", action="store_true", help="smaller batch sizes, 3 repeats")
    parser.add_argument("--no-jax", action="store_true", help="torch only")
    parser.add_argument("--device", action="append", default=None, help="cpu, cuda, …")
    parser.add_argument("--only", action="append", default=None, help="shape names to run")
    parser.add_argument("--markdown", default=None, help="write the docs' tables to this file")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch (and XLA) CPU threads; 1 on a shared machine, where two threads spin "
        "waiting for each other (default: torch's own choice)",
    )
    args = parser.parse_args()
    if args.threads is not None:
        # Before jax is imported: XLA reads its flags once.
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}"
            + f" intra_op_parallelism_threads={args.threads}"
        )

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    seed_sizes = [1, 10, 100, 1_000, 10_000] if args.quick else [1, 10, 100, 1_000, 10_000, 100_000]
    shape_sizes = [1, 10, 100, 1_000] if args.quick else [1, 10, 100, 1_000, 10_000]
    shapes: list[tuple[str, object, list[str], list[int]]] = [
        ("seed_batched_gradient", verijac.get_case("seed_batched_gradient"), ["all"], seed_sizes),
    ]
    t0 = time.perf_counter()
    shapes += [
        ("wide_8x512", dense("wide_8x512", 512, 8, sympy.sin), ["paths"], shape_sizes),
        ("tall_512x8", dense("tall_512x8", 8, 512, sympy.tanh), ["paths"], shape_sizes),
        ("dense_64x64", dense("dense_64x64", 64, 64, sympy.tanh), ["paths"], shape_sizes),
    ]
    print(f"built the three dense cases in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.only:
        shapes = [s for s in shapes if s[0] in args.only]
    for name, case, modes, sizes in shapes:
        t = time.perf_counter()
        load_before = os.getloadavg()[0]
        report = bench(
            [case],  # type: ignore[list-item]
            modes=modes,
            batch_sizes=sizes,
            devices=args.device,
            dtypes=["float32"],
            repeats=3 if args.quick else 5,
            warmup=1,
            seed=0,
            jax=False if args.no_jax else None,
            max_call_s=5.0 if name.startswith("seed") else 3.0,
            # A per-point loop over 512 outputs or inputs takes seconds per point.
            unbatched_points=10 if name.startswith("seed") else 2,
        )
        s = report.settings
        print(
            f"\n=== {name}: {time.perf_counter() - t:.0f} s; torch {s['torch']}, jax {s['jax']}, "
            f"{s['cpu_count']} CPUs, {s['torch_threads']} torch threads, load {load_before:.2f} "
            f"→ {os.getloadavg()[0]:.2f}, {s['processor']}, {s['cuda'] or 'no CUDA'}"
        )
        for (case_name, mode, device, dtype), results in groups(report).items():
            print(f"--- {case_name} · {mode} · {device} · {dtype}")
            for size in sorted({r.points for r in results}):
                key = (case_name, mode, device, dtype, size)
                floor = report.floors.get(key)
                jf = report.jax_floors.get(key)
                top = [r for r in ranked(results, size) if r.per_point is not None][:6]
                wrong = [
                    r.method for r in ranked(results, size) if r.status in ("mismatch", "error")
                ]
                cells = ", ".join(
                    f"{r.method} {fmt_time(r.per_point)} ({r.vs_f:.3g}×f{'' if r.status == 'pass' else ' ' + r.status})"
                    for r in top
                    if r.vs_f is not None
                )
                torch_best = next(
                    (
                        r
                        for r in ranked(results, size)
                        if r.framework == "torch" and r.status == "pass" and r.per_point
                    ),
                    None,
                )
                best = (
                    f"; best torch {torch_best.method} {torch_best.vs_f:.3g}×f"
                    if torch_best and torch_best.vs_f
                    else ""
                )
                print(
                    f"  {size:>7,}: f {fmt_time(floor)}/pt (jax f {fmt_time(jf)}){best}; {cells}"
                    + (f"; WRONG: {wrong}" if wrong else "")
                )
        for note in report.notes:
            print(f"note: {note}")
        files = write_plots(report, args.out)
        print(f"plots: {', '.join(os.path.basename(f) for f in files)}")
        if args.markdown:
            with open(args.markdown, "a", encoding="utf-8") as fh:
                fh.write(markdown(report, always=("functional.jacobian", "func.jacrev")))
        if args.json_dir:
            os.makedirs(args.json_dir, exist_ok=True)
            with open(os.path.join(args.json_dir, f"{name}.json"), "w", encoding="utf-8") as fh:
                json.dump(report.to_dict(), fh, indent=1, default=str)
        sys.stdout.flush()
    print(f"\nall shapes in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
