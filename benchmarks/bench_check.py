"""Measured side by side in one run: verijac vs gradcheck, verijac's overhead, the default suite.

    python benchmarks/bench_check.py [--points 10000] [--gradcheck-points 200] [--repeat 7]
                                     [--threads N] [--no-suite | --suite-only]
                                     [--suite-profile ci|dev] [--jobs N|auto]

(1) Throughput: a check of ``--points`` points of ``seed_batched_gradient`` (5 inputs) through
    batched paths, wall time including point generation, the exact reference and the
    comparison, per point and path, against ``torch.autograd.gradcheck`` per point (which
    verifies one derivative computation, autograd's). Target: 1000×.
(2) Overhead: the same check against the bare path calls on the same points. Target: 1.3×.
    A check has a fixed cost whatever its paths (drawing the batch, the exact Jacobian),
    printed first: beside one cheap path it is most of the time.
(3) The shipped cases: every case × every path that is not opt-in × CPU × float64 and
    float32, as the README's main job runs them: the ``verijac check`` command in a fresh
    process (``--jobs auto``), timed from its start to its exit. Targets on this 2-core
    machine: ``ci`` profile under 120 s, ``dev`` (``--suite-profile dev``) under 300 s. A
    speed gauge printed beside it (a fixed ``torch.func.linearize`` trace) says how fast the
    machine ran at the time: its speed drifts by ±25 % over hours.

Timings are medians of ``--repeat`` runs, the check and the bare calls alternating; the
overhead is the median of the paired ratios. The machine's load average is printed with them.
Prints figures and ratios; asserts nothing (timings vary by machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from verijac_cases.seeds import seed_batched_gradient as CASE

from verijac._reference import make_problem
from verijac._resolve import resolve_paths
from verijac._runner import run
from verijac.paths._base import Path
from verijac.strategies import PROFILES

#: The batched paths the throughput target names.
SINGLE = ("func.vmap_jacrev", "func.vmap_grad")
#: Batched paths whose own cost is far above the reference's (reported separately): torch.func
#: linearize traces the function at every call, and vmap of jvp with unbatched primals is
#: quadratic in the batch size in torch._make_dual.
SLOW = ("func.linearize", "func.jvp_range")


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _paired(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """Medians of ``a`` and ``b`` and of their ratio, run alternately: on a shared machine the
    speed drifts by tens of percent within seconds, and alternating exposes both to the same
    drift."""
    ta, tb, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def _load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unavailable"


def _points(n: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple(
        (torch.rand(n, generator=gen, dtype=torch.float64) * 6 - 3) for _ in CASE.variables
    )


def _verijac(paths: list[Path], n: int) -> Callable[[], None]:
    def go() -> None:
        report = run(
            [CASE], paths=paths, dtypes="float64", devices="cpu", seed=0, max_examples=1,
            batch_size=n,
        )  # fmt: skip
        assert report.passed, str(report)

    return go


def _bare(paths: list[Path], n: int) -> Callable[[], None]:
    problem = make_problem(CASE, _points(n))

    def go() -> None:
        for p in paths:
            p.run(dataclasses.replace(problem))

    return go


def _status(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _applies(path: Path, n: int) -> bool:
    """Whether ``path`` runs on the case (the bare side cannot time a path that raises)."""
    try:
        path.run(make_problem(CASE, _points(n)))
    except Exception:
        return False
    return True


def _fixed_costs(n: int, repeat: int) -> tuple[float, float]:
    """The parts of a check that do not depend on the paths: one Hypothesis example that
    draws ``n`` points with tangents and cotangents, and the exact Jacobian on them."""
    from hypothesis import given
    from hypothesis import seed as hseed

    from verijac._reference import exact_jacobian
    from verijac._runner import _settings
    from verijac.strategies import batches

    strategy = batches(CASE, batch_size=n, dtype="float64", seed=1)

    def draw() -> None:
        test = _settings(1)(hseed(0)(given(strategy)(lambda batch: None)))
        test._hypothesis_internal_database_key = None
        test()

    pts = _points(n)
    return _median(draw, repeat), _median(lambda: exact_jacobian(CASE, pts), repeat)


def throughput_and_overhead(n: int, n_gradcheck: int, repeat: int) -> None:
    every = [p for p in resolve_paths(None) if p.batched and _applies(p, 64)]
    batched = [p for p in every if p.computes in ("gradient", "jacobian", "vjp", "jvp")]
    fast = [p for p in batched if p.name not in SLOW]

    f = CASE.implementation()
    pts = _points(n_gradcheck)

    def gradcheck() -> None:
        for i in range(n_gradcheck):
            args = tuple(x[i : i + 1].clone().requires_grad_(True) for x in pts)
            assert torch.autograd.gradcheck(f, args)

    gradcheck()
    per_g = _median(gradcheck, max(1, repeat // 2)) / n_gradcheck
    print(
        f"case {CASE.name}, {n} points, float64, CPU, torch threads {torch.get_num_threads()}, "
        f"{_load()}, medians of {repeat}"
    )
    print(f"    torch.autograd.gradcheck: {per_g * 1e6:9.1f} µs/point ({n_gradcheck} points)")
    draw, reference = _fixed_costs(n, repeat)
    print(
        f"    fixed cost of a check, whatever its paths: {draw * 1e3:.1f} ms to draw the batch "
        f"(one Hypothesis example, {n} points, tangents, cotangents), {reference * 1e3:.1f} ms "
        "for the exact Jacobian"
    )
    print(
        "(1) throughput: verijac per point and path vs gradcheck per point (target >= 1000×); "
        "gradcheck verifies one derivative computation per point, verijac each path's"
    )
    print("(2) overhead: verijac check / bare path calls on the same points (target <= 1.3×)")
    rows = [(name, [p for p in batched if p.name == name]) for name in SINGLE]
    rows += [
        (f"{len(fast)} batched first-order paths (all but {', '.join(SLOW)})", fast),
        (f"all {len(batched)} batched first-order paths", batched),
        (f"all {len(every)} batched paths that apply, first and second order", every),
    ]
    for label, paths in rows:
        check, bare = _verijac(paths, n), _bare(paths, n)
        check()
        bare()
        t_v, t_b, ratio = _paired(check, bare, repeat)
        per = t_v / (n * len(paths))
        speed = per_g / per
        print(f"  {label}")
        print(
            f"    verijac {t_v * 1e3:8.1f} ms = {per * 1e6:7.3f} µs per point and path; "
            f"{speed:8,.0f}× gradcheck ({_status(speed >= 1000)})"
        )
        print(f"    bare    {t_b * 1e3:8.1f} ms;  overhead {ratio:5.2f}× ({_status(ratio <= 1.3)})")


#: The README's targets for the shipped cases on this (2-core) machine, in seconds.
SUITE_TARGETS = {"ci": 120.0, "dev": 300.0}


def speed_gauge(repeat: int = 5) -> float:
    """Milliseconds per `torch.func.linearize` trace of a fixed 20-operation function: this
    machine's speed varies by ±25 % over hours, and the suite's time moves with it (its
    largest path is that trace); print both to compare runs measured at different times."""
    import warnings

    def f(x: torch.Tensor) -> torch.Tensor:
        for _ in range(5):
            x = torch.sin(x) * x + x.cos() - x * 0.5
        return x

    x = torch.linspace(0.1, 1.0, 64, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.func.linearize(f, x)
        return 1e3 * _median(lambda: torch.func.linearize(f, x), repeat)


def _stolen() -> float | None:
    """CPU seconds the hypervisor gave to other guests so far, over all CPUs (Linux's
    ``/proc/stat`` steal column; ``None`` elsewhere). On a shared virtual machine the same
    work takes longer in wall time while its CPUs are stolen."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def suite(profile: str, jobs: int | str) -> None:
    """The shipped cases on the CPU in float64 and float32 as the README's main job runs them:
    ``verijac check --profile PROFILE`` in a fresh process, timed from its start to its exit
    (importing torch and loading the cases included), with ``--json`` to read the records."""
    import resource
    import subprocess
    import sys
    import tempfile

    from verijac import load_run

    gauge = speed_gauge()
    with tempfile.TemporaryDirectory() as tmp:
        run_file = os.path.join(tmp, "run.json")
        command = [
            sys.executable, "-m", "verijac", "check", "--profile", profile, "--device", "cpu",
            "--seed", "0", "--jobs", str(jobs), "--json", run_file, "--quiet", "--no-progress",
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        stolen = _stolen()
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        stolen_after = _stolen()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not os.path.exists(run_file):
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            print(f"(3) suite could not run (exit {done.returncode}): " + " | ".join(tail))
            return
        report = load_run(run_file)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    prof = PROFILES[profile]
    target = SUITE_TARGETS.get(profile)
    by_path: dict[str, float] = {}
    for r in report.records:
        by_path[r.path] = by_path.get(r.path, 0.0) + r.duration
    in_paths = sum(by_path.values())
    slowest = sorted(by_path.items(), key=lambda kv: -kv[1])[:5]
    verdict = f"target < {target:.0f} s ({_status(dt < target)})" if target else "no target"
    print(
        f"(3) `verijac check --profile {profile}` (shipped cases × every path × cpu × "
        f"float64+float32, {prof.max_examples}×{prof.batch_size} points, "
        f"{prof.unbatched_points} for per-point paths), {report.settings.get('jobs')} job(s) on "
        f"{os.cpu_count()} CPUs: {dt:.1f} s from start to exit for {len(report.records)} "
        f"records, {verdict}; {cpu:.0f} s CPU in all processes; {_load()}"
    )
    print(
        f"    {in_paths:.1f} s inside path calls and comparisons (all jobs); slowest paths: "
        + ", ".join(f"{name} {sec:.1f} s" for name, sec in slowest)
    )
    steal = ""
    if stolen is not None and stolen_after is not None:
        steal = (
            f"; CPU time stolen by the hypervisor during the run: {stolen_after - stolen:.1f} s "
            f"over {os.cpu_count()} CPUs"
        )
    print(
        f"    machine speed gauge (before the run): {gauge:.1f} ms per linearize trace "
        f"(lower is faster; compare runs at similar gauges){steal}"
    )
    print("    " + report.summary().splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--gradcheck-points", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--no-suite", action="store_true")
    parser.add_argument(
        "--suite-profile", choices=("ci", "dev"), default="ci", help="profile of (3)"
    )
    parser.add_argument("--jobs", default="auto", help="worker processes for (3)")
    parser.add_argument("--suite-only", action="store_true", help="skip (1) and (2)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.suite_only:
        throughput_and_overhead(args.points, args.gradcheck_points, args.repeat)
    if not args.no_suite:
        suite(args.suite_profile, args.jobs)


if __name__ == "__main__":
    main()
