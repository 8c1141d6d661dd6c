"""``verijac bench``: time every way of computing a case's derivatives, and check each once.

For each case × device × dtype × mode × batch size: draw the points, evaluate the exact
reference once, time one evaluation of f (the floor every ratio refers to), then per method
(`verijac._bench_methods`, `verijac._bench_jax`): prepare it, call it once and compare that
result with the exact reference (the status beside the time), warm it up (measuring its peak
memory on that call), and time it (`verijac._bench_timing`: samples, median and quartiles,
CUDA synchronised). Nothing a method raises stops the run.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._bench_methods import UNBATCHED_POINTS, Method
from ._bench_timing import measure, peak_memory, synchronizer
from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import Problem

#: Batch sizes, repeats and warm-up calls of a default run (seed 003 in well under 60 s).
DEFAULT_BATCH_SIZES = (1, 100, 10_000)
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1
#: A method is not run at a batch size where one call would take longer than this (its time
#: at the previous size scaled by the batch size).
MAX_CALL_S = 2.0
#: Statuses whose time counts as a correct answer (the fastest of them is the reference).
CORRECT = frozenset({"pass"})


@dataclass
class BenchResult:
    """One method × case × mode × device × dtype × batch size.

    Attributes:
        status: ``pass`` / ``mismatch`` / ``xfail`` (compared once with the exact reference),
            ``unsupported`` / ``error`` (with ``reason``), ``skipped`` (not run: too slow).
        points: the batch size; ``timed_points`` the points the timed call covered (fewer for
            a per-point loop, whose time per point does not depend on the batch).
        seconds / q25 / q75: median and quartiles of one call, in seconds.
        per_point: ``seconds / timed_points``.
        first_call: the first call (compilation for JAX and ``torch.compile``).
        vs_fastest / vs_f: time per point over the fastest correct method's, and over one
            evaluation of f on the same batch (torch, no grad).
        theory: theoretical cost in evaluations of f (`verijac._bench_methods.theory`).
        peak_bytes: peak memory of one call above what was allocated before it
            (``torch.cuda.max_memory_allocated`` on CUDA, peak RSS growth on the CPU).
        wall: seconds the benchmark spent on this result (checking, warm-up, timing).
    """

    case: str
    mode: str
    method: str
    framework: str
    computes: str
    device: str
    dtype: str
    points: int
    status: str
    reason: str = ""
    timed_points: int = 0
    seconds: float | None = None
    q25: float | None = None
    q75: float | None = None
    per_point: float | None = None
    first_call: float | None = None
    vs_fastest: float | None = None
    vs_f: float | None = None
    theory: float | None = None
    peak_bytes: int | None = None
    max_abs: float | None = None
    max_ulp: float | None = None
    call: str = ""
    wall: float = 0.0

    @property
    def failed(self) -> bool:
        """A wrong result or an exception: the run's exit status is 1."""
        return self.status in ("mismatch", "error")


@dataclass
class BenchReport:
    """Every `BenchResult` of a run, the f floors and the machine it ran on."""

    results: list[BenchResult] = field(default_factory=list)
    #: ``(case, mode, device, dtype, points)`` → seconds per point of one f (torch, no grad).
    floors: dict[tuple[str, str, str, str, int], float] = field(default_factory=dict)
    #: The same for the jitted JAX f, where JAX ran.
    jax_floors: dict[tuple[str, str, str, str, int], float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data."""

        def floors(d: dict[tuple[str, str, str, str, int], float]) -> list[dict[str, Any]]:
            keys = ("case", "mode", "device", "dtype", "points")
            return [{**dict(zip(keys, k)), "per_point": v} for k, v in d.items()]

        return {
            "settings": self.settings,
            "notes": self.notes,
            "f": floors(self.floors),
            "jax_f": floors(self.jax_floors),
            "results": [asdict(r) for r in self.results],
        }


def machine() -> dict[str, Any]:
    """The machine and versions a figure needs beside it."""
    import torch

    from ._bench_jax import jax_version

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "jax": jax_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


# -- points ------------------------------------------------------------------------------------


def draw_points(
    case: Case, n_points: int, *, dtype: Any, device: str, seed: int, fixed_rest: bool
) -> tuple[Any, ...]:
    """``n_points`` valid points of ``case``, uniform over each input's sampling bounds.

    Args:
        fixed_rest: every input but the first takes one point for all rows (seed 003's range).

    Raises:
        UsageError: too few valid points could be drawn (a domain mostly excluded).
    """
    import torch

    from .strategies import valid_rows

    gen = torch.Generator().manual_seed(seed)

    def draw(count: int) -> list[Any]:
        out = []
        for v in case.variables:
            lo, hi = v.domain.sample_bounds()
            u = torch.rand((count, *v.shape), generator=gen, dtype=torch.float64)
            out.append((lo + (hi - lo) * u).to(dtype))
        return out

    inputs = draw(n_points)
    for _ in range(20):
        if fixed_rest:
            inputs = [inputs[0], *(x[:1].expand_as(x).clone() for x in inputs[1:])]
        bad = ~valid_rows(case, tuple(inputs))
        k = int(bad.sum())
        if not k:
            return tuple(x.to(device) for x in inputs)
        fresh = draw(k)
        for x, y in zip(inputs, fresh):
            x[bad] = y
        if fixed_rest and bool(bad[0]):  # the fixed point itself was excluded: move it too
            continue
    raise UsageError(
        f"could not draw {n_points} points inside the domain of case {case.name!r} "
        "(is most of it excluded?)"
    )


# -- one method --------------------------------------------------------------------------------


@dataclass
class Settings:
    """The options of one benchmark run (validated by `bench`)."""

    batch_sizes: tuple[int, ...]
    repeats: int
    warmup: int
    seed: int
    memory: bool = True
    max_call_s: float = MAX_CALL_S
    unbatched_points: int = UNBATCHED_POINTS


def _compare(method: Method, value: Any, ref: Any, case: Case, dtype: str) -> tuple[str, str, Any]:
    """Status, reason and comparison of one result against the exact reference."""
    from ._records import known_failure
    from ._tolerances import COMPUTES_ORDER, resolve_tolerance
    from .paths._base import PathResult

    if isinstance(value, PathResult):
        if value.inputs is not None:
            ref = ref.at(tuple(value.inputs))
        value = value.value
    if method.to_torch is not None:
        value = method.to_torch(value)
    tol = resolve_tolerance(
        dtype,
        order=COMPUTES_ORDER[method.computes],
        case_tolerances=case.tolerances,
        path=method.path,
    )
    check = ref.bound(method.computes, tol)
    cmp = check.check(value, locate=False, describe=False)
    if not cmp.ok:
        cmp = check.check(value, cond=ref.cond(method.computes), locate=False)
    if cmp.ok:
        return "pass", "", cmp
    where = (
        f"{len(cmp.bad_rows)} of {ref.problem.N} points wrong; worst at index {cmp.index}: "
        f"expected {cmp.expected:.6g}, got {cmp.actual:.6g}, allowed error {cmp.allowed:.3g}"
    )
    if method.path is not None:
        key, known = known_failure(case, method.path, dtype)
        if known:
            return "xfail", f"known failure ({key}): {known} {where}", cmp
    return "mismatch", where, cmp


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "RESOURCE_EXHAUSTED" in text or "DefaultCPUAllocator" in text
    )


def run_method(
    method: Method,
    problem: Problem,
    ref: Any,
    *,
    case: Case,
    base: BenchResult,
    settings: Settings,
) -> BenchResult:
    """Prepare, check once, time and measure one method on one problem."""
    from ._evaluate import _exception_outcome
    from .paths._base import Unsupported

    out = base
    sync = synchronizer(out.device)
    began = time.perf_counter()
    try:
        call = method.prepare(problem)
        start = time.perf_counter()
        value = call()
        sync()
        out.first_call = time.perf_counter() - start
        out.status, out.reason, cmp = _compare(method, value, ref, case, out.dtype)
        out.max_abs, out.max_ulp = cmp.max_abs, cmp.max_ulp
        del value

        def probe() -> None:
            out.peak_bytes = peak_memory(call, out.device)

        if settings.memory and settings.warmup == 0:
            probe()
        timing = measure(
            call,
            sync=sync,
            warmup=settings.warmup,
            repeats=settings.repeats,
            estimate=out.first_call,
            first_warmup=probe if settings.memory else None,
        )
    except Exception as exc:
        if _out_of_memory(exc):
            # Not the method's fault at this size: reported, not failed; larger sizes skip it.
            out.status = "skipped"
            out.reason = f"out of memory at {problem.N:,} points ({type(exc).__name__})"
        elif method.path is not None:
            out.status, out.reason = _exception_outcome(method.path, exc, frozenset())
        elif isinstance(exc, Unsupported):
            out.status, out.reason = "unsupported", str(exc)
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            out.status, out.reason = "error", f"{type(exc).__name__}: {first}"
        out.wall = time.perf_counter() - began
        return out
    out.wall = time.perf_counter() - began
    out.timed_points = problem.N
    out.seconds, out.q25, out.q75 = timing.median, timing.q25, timing.q75
    out.per_point = timing.median / problem.N
    return out


__all__ = [
    "CORRECT",
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_REPEATS",
    "DEFAULT_WARMUP",
    "MAX_CALL_S",
    "BenchReport",
    "BenchResult",
    "Settings",
    "draw_points",
    "machine",
    "run_method",
]
