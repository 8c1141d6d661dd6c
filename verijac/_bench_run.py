"""The benchmark matrix: cases × devices × dtypes × modes × batch sizes × methods → results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._bench import (
    CORRECT,
    DEFAULT_BATCH_SIZES,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    MAX_CALL_S,
    BenchReport,
    BenchResult,
    Settings,
    draw_points,
    machine,
    run_method,
)
from ._bench_methods import (
    UNBATCHED_POINTS,
    Method,
    Mode,
    check_patterns,
    resolve_modes,
    theory,
    torch_methods,
    unmet,
)
from ._bench_timing import measure, synchronizer
from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case

#: ``progress(done, total, label)``: called before each method runs and once at the end.
Progress = Callable[[int, int, str], None]


def _methods(mode: Mode, patterns: Sequence[str], with_jax: bool) -> list[Method]:
    out = torch_methods(mode, patterns)
    if with_jax:
        from ._bench_jax import jax_methods
        from ._bench_methods import _selected

        found = jax_methods(mode)
        out += [m for m in found if not patterns or _selected(m, patterns)]
    return out


def _positive(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    return value


def use_jax(jax: bool | None) -> bool:
    """Whether to time JAX: ``None`` when installed, ``True`` requires it, ``False`` never.

    Raises:
        UsageError: ``jax=True`` and jax is not installed (the message says how to install).
    """
    from ._bench_jax import jax_version, load_jax

    if jax is False:
        return False
    if jax is None and jax_version() is None:
        return False
    load_jax()
    return True


def bench(
    cases: Sequence[Case],
    *,
    modes: Sequence[str] | None = None,
    paths: Sequence[str] = (),
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    devices: Any = None,
    dtypes: Any = ("float32",),
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    seed: int = 0,
    jax: bool | None = None,
    memory: bool = True,
    max_call_s: float = MAX_CALL_S,
    unbatched_points: int = UNBATCHED_POINTS,
    progress: Progress | None = None,
) -> BenchReport:
    """Time every applicable method for ``cases`` and compare each result once with the exact
    reference.

    Args:
        cases: `verijac.Case` objects.
        modes: ``paths``, ``range-gradient``, ``range-jvp`` or ``all`` (default: all).
        paths: names, globs or families narrowing the methods (``range.*``, ``jax.*`` too).
        batch_sizes: points per batch, each timed separately.
        devices: torch device names (default: cpu and every CUDA device).
        dtypes: dtype names (default: float32, torch's default).
        repeats / warmup: timed samples and untimed calls per method and batch size.
        seed: the points, tangents and cotangents.
        jax: time the JAX methods too: ``None`` where jax is installed, ``True`` always
            (an error without jax), ``False`` never.
        memory: measure each method's peak memory (on its first warm-up call).
        max_call_s: a batched method is not run at a batch size where one call would take
            longer than this, extrapolated from the sizes before (`_predict`).
        unbatched_points: the points a per-point loop is timed on.
        progress: called with (done, total, label) as methods run.

    Returns:
        A `BenchReport`.

    Raises:
        UsageError: an option is invalid, or ``jax=True`` without jax installed.
    """
    from ._case import Case
    from ._resolve import resolve_devices, resolve_dtypes

    for c in cases:
        if not isinstance(c, Case):
            raise UsageError(f"bench expects verijac.Case objects, got {c!r}; see verijac.get_case")
    mode_list = resolve_modes(modes)
    sizes = tuple(_positive("batch size", b, 1) for b in batch_sizes)
    if not sizes:
        raise UsageError("give at least one batch size, e.g. --batch-sizes 1,100,10000")
    settings = Settings(
        batch_sizes=tuple(sorted(set(sizes))),
        repeats=_positive("repeats", repeats, 1),
        warmup=_positive("warmup", warmup, 0),
        seed=_positive("seed", seed, 0),
        memory=bool(memory),
        max_call_s=float(max_call_s),
        unbatched_points=_positive("unbatched_points", unbatched_points, 1),
    )
    if not settings.max_call_s > 0:
        raise UsageError(f"max_call_s must be a number of seconds > 0, got {max_call_s!r}")
    with_jax = use_jax(jax)
    per_mode = {m.name: _methods(m, paths, with_jax) for m in mode_list}
    if paths:
        check_patterns(paths, [m for ms in per_mode.values() for m in ms])
    device_list = resolve_devices(devices)
    dtype_list = resolve_dtypes(dtypes)
    report = BenchReport(
        settings={
            **machine(),
            "modes": [m.name for m in mode_list],
            "batch_sizes": list(settings.batch_sizes),
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "seed": settings.seed,
            "devices": [d for d, _ in device_list],
            "dtypes": dtype_list,
            "jax_timed": with_jax,
        }
    )
    if jax is None and not with_jax:
        from ._bench_jax import INSTALL_HINT

        report.notes.append(f"JAX not timed: jax is not installed ({INSTALL_HINT})")
    total = len(cases) * len(dtype_list) * len(settings.batch_sizes)
    total *= sum(1 for _, skip in device_list if not skip) * sum(map(len, per_mode.values()))
    done = [0]

    def tick(label: str) -> None:
        if progress is not None:
            progress(done[0], total, label)
        done[0] += 1

    for case in cases:
        for device, skip in device_list:
            if skip:
                report.notes.append(skip)
                continue
            for dtype in dtype_list:
                for mode in mode_list:
                    _run_group(
                        case, mode, device, dtype, per_mode[mode.name], settings, report, tick
                    )
    if progress is not None:
        progress(total, total, "done")
    return report


def _run_group(
    case: Case,
    mode: Mode,
    device: str,
    dtype: str,
    methods: Sequence[Method],
    settings: Settings,
    report: BenchReport,
    tick: Callable[[str], None],
) -> None:
    """One case × mode × device × dtype over every batch size."""
    import torch

    from ._reference import _Reference, make_problem

    tdtype = getattr(torch, dtype)
    slow: dict[str, str] = {}
    history: dict[str, list[tuple[int, float]]] = {}
    per_point: dict[str, BenchResult] = {}
    for size in settings.batch_sizes:
        seed = settings.seed * 1_000_003 + size
        gen = torch.Generator().manual_seed(seed)
        inputs = draw_points(
            case, size, dtype=tdtype, device=device, seed=seed, fixed_rest=mode.range
        )
        tangents = torch.randn(size, case.n_in, generator=gen, dtype=torch.float64)
        cotangents = torch.randn(size, case.n_out, generator=gen, dtype=torch.float64)
        problem = make_problem(case, inputs, tangents=tangents, cotangents=cotangents)
        ref = _Reference(case, problem, tdtype, seed)
        k = min(size, settings.unbatched_points)
        small = make_problem(
            case, [x[:k] for x in inputs], tangents=tangents[:k], cotangents=cotangents[:k]
        )
        small_ref = _Reference(case, small, tdtype, seed)
        try:
            defect = ref.defect(False)[0]
        except Exception as exc:
            defect = f"case defect: the exact reference raised {type(exc).__name__}: {exc}"
        key = (case.name, mode.name, device, dtype, size)
        if not defect:
            report.floors[key] = _floor(problem, device, settings) / size
            if any(m.framework == "jax" for m in methods):
                report.jax_floors[key] = _jax_floor(problem, device, settings)
        group: list[BenchResult] = []
        for method in methods:
            tick(f"{case.name} {mode.name} {method.name} @ {size:,}")
            base = BenchResult(
                case=case.name,
                mode=mode.name,
                method=method.name,
                framework=method.framework,
                computes=method.computes,
                device=device,
                dtype=dtype,
                points=size,
                status="pass",
                theory=theory(method, case.n_in, case.n_out),
                call=method.call,
            )
            reason = defect or unmet(method, case)
            if reason:
                base.status = "error" if defect else "unsupported"
                base.reason = reason
                group.append(base)
                continue
            if method.name in slow:
                base.status, base.reason = "skipped", slow[method.name]
                group.append(base)
                continue
            cached = per_point.get(method.name)
            if not method.batched and cached is not None and size >= settings.unbatched_points:
                result = dataclasses.replace(cached, points=size, vs_fastest=None, vs_f=None)
            elif method.batched:
                result = run_method(method, problem, ref, case=case, base=base, settings=settings)
            else:
                result = run_method(
                    method, small, small_ref, case=case, base=base, settings=settings
                )
                if size >= settings.unbatched_points:
                    per_point[method.name] = result
            if result.status == "skipped" and result.reason.startswith("out of memory"):
                slow[method.name] = f"not run above {size:,} points: {result.reason}"
            later = [s for s in settings.batch_sizes if s > size]
            if method.batched and result.seconds is not None and later:
                seen = history.setdefault(method.name, [])
                seen.append((size, result.seconds))
                predicted = _predict(seen, later[0])
                if predicted > settings.max_call_s:
                    slow[method.name] = (
                        f"not run above {size:,} points: one call took {result.seconds:.2g} s "
                        f"there, about {predicted:.2g} s at {later[0]:,} (limit "
                        f"{settings.max_call_s:g} s)"
                    )
            group.append(result)
        _ratios(group, report.floors.get(key))
        report.results += group


def _predict(seen: list[tuple[int, float]], size: int) -> float:
    """Seconds of one call at ``size`` points, from ``(points, seconds)`` measured so far:
    affine in the points (a fixed cost per call plus a cost per point) through the last two
    measurements; with one, the fixed cost is all that is known, so the call time itself."""
    if len(seen) < 2:
        return seen[-1][1]
    (n1, t1), (n2, t2) = seen[-2], seen[-1]
    slope = max(0.0, (t2 - t1) / (n2 - n1))
    return t2 + slope * (size - n2)


def _ratios(group: list[BenchResult], floor: float | None) -> None:
    correct = [r.per_point for r in group if r.status in CORRECT and r.per_point is not None]
    fastest = min(correct) if correct else None
    for r in group:
        if r.per_point is None:
            continue
        if fastest:
            r.vs_fastest = r.per_point / fastest
        if floor:
            r.vs_f = r.per_point / floor


def _floor(problem: Any, device: str, settings: Settings) -> float:
    """Seconds of one evaluation of f on the whole batch (torch, no grad)."""
    import time

    import torch

    sync = synchronizer(device)
    func, args = problem.func, problem.inputs

    def call() -> Any:
        with torch.no_grad():
            return func(*args)

    start = time.perf_counter()
    call()
    sync()
    first = time.perf_counter() - start
    timing = measure(
        call, sync=sync, warmup=settings.warmup, repeats=settings.repeats, estimate=first
    )
    return timing.median


def _jax_floor(problem: Any, device: str, settings: Settings) -> float:
    """Seconds per point of one jitted evaluation of the lowered f (``nan`` if it fails)."""
    import time

    from ._bench_jax import jax_f

    try:
        call = jax_f(problem)
        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
        timing = measure(
            call,
            sync=lambda: None,
            warmup=settings.warmup,
            repeats=settings.repeats,
            estimate=first,
        )
    except Exception:
        return float("nan")
    return timing.median / problem.N


__all__ = ["Progress", "bench", "use_jax"]
