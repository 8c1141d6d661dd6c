"""The check: cases × paths × devices × dtypes → one `Record` each, collected in a `Report`.

For each case, device and dtype, Hypothesis draws batches of points (`verijac.strategies`);
the exact reference is evaluated once per batch in float64 and every applicable path runs
once on the whole batch (a path that is not ``batched`` gets the first few points of each,
`verijac._evaluate.UNBATCHED_POINTS`). A mismatch is narrowed to its failing rows and shrunk
to a minimal single point. Nothing raised by a path stops the run: it becomes that path's
record.

This module keeps the loop (`run`, `check`, the groups, the drawn batches, the memory guard);
the rest of a check lives where its idea does:

* `verijac._resolve`: what the ``cases``/``paths``/``devices``/``dtypes`` options name;
* `verijac._state`: the options, the groups and each path's state;
* `verijac._reference`: the exact reference, and `_Reference`, lazily evaluated per batch;
* `verijac._evaluate`: one path on one batch, compared with the reference;
* `verijac._shrink`: a mismatch narrowed to a minimal failing point;
* `verijac._records`: records, reproduction lines, known failures and baselines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import InternalError, UsageError, VerijacError
from ._evaluate import (
    MIN_PATH_SECONDS,
    UNBATCHED_POINTS,
    _evaluate,
    _exception_outcome,
    _head_rows,
    _op_kinds,
    _pieces,
    _point_cap,
    _problem,
    _unmet,
)
from ._interrupt import interruptible, raise_if_interrupted
from ._kinds import get_kind
from ._parallel import can_fork, resolve_jobs
from ._points import _point_dict
from ._precise import check_digits, describe
from ._records import _baseline_index, _baseline_name, _record, against_baseline
from ._reference import NEGLIGIBLE, _Reference
from ._report import Record, Report
from ._resolve import (
    _as_list,
    _positive_int,
    resolve_cases,
    resolve_devices,
    resolve_dtypes,
    resolve_paths,
)
from ._runfile import case_hash, environment, in_shard, parse_shard
from ._shrink import _mismatch
from ._state import _Group, _Options, _PathState
from ._tolerances import PathTolerances, normalise_path_tolerances, resolve_tolerance

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import AutogradPath
    from .strategies import Batch


class _Stop(Exception):
    """Ends a Hypothesis run early: every path has an outcome, or the time budget is spent."""


def _batch(group: _Group, batch: Batch, heads: Sequence[int] = (0,)) -> None:
    """Points through the reference and every active path: a chunk of the drawn batches
    merged (``heads``: the row where each drawn batch starts; see `_Drawn`)."""
    opts = group.opts
    if not group.active or (
        group.chunks and opts.deadline is not None and time.perf_counter() > opts.deadline
    ):
        raise _Stop
    group.chunks += 1
    first_batch = group.batches + 1
    group.batches += len(heads)
    group.where = (
        f"batch {first_batch}"
        if len(heads) == 1
        else f"batches {first_batch}-{group.batches} (evaluated together)"
    )
    dev = group.device
    inputs = tuple(x.to(dev) for x in batch.inputs)
    if group.chunks == 1:
        limit = (
            None
            if opts.deadline is None
            else max(opts.deadline - time.perf_counter(), MIN_PATH_SECONDS)
        )
        group.op_kinds = _op_kinds(group.func, inputs, limit)
    full = _problem(group, inputs, batch.tangents, batch.cotangents)
    ref = _Reference(
        group.case,
        full,
        group.tdtype,
        opts.seed + group.chunks,
        opts.reference_digits,
        normwise="linalg" in group.op_kinds,
        negligible=NEGLIGIBLE * min(s.tolerance.atol for s in group.states),
    )
    # Which paths run on which points of this chunk: all of them, or the head rows of each
    # drawn batch for a path with a cap on its points (`_point_cap`) that this chunk exceeds.
    plan: list[tuple[_PathState, list[int] | None]] = []
    for state in group.active:
        cap = _point_cap(state.path, group.case, opts.costly_points, opts.unbatched_points)
        if cap is None:
            plan.append((state, None))
            continue
        need = cap - state.points
        if need <= 0:
            continue  # the path has had its share of points in this group
        per_batch = UNBATCHED_POINTS if not state.path.batched else -(-need // len(heads))
        head = _head_rows(heads, full.N, need, per_batch)
        plan.append((state, None if len(head) == full.N else head))
    if not plan:
        raise _Stop
    # The chunk's Hessian only where a second-order path runs on the whole chunk (a path on
    # some rows gets them checked with their own reference).
    second = any(get_kind(s.path.computes).second_order and r is None for s, r in plan)
    defect, row = _defect(ref, second)
    if defect:
        for s in group.active:
            s.finish("error", defect, point=_point_dict(group.case, inputs, row))
        raise _Stop
    small: dict[tuple[int, ...], _Reference] = {}
    # The first chunk goes through each batched path in pieces (`PIECES`: one row, and 2
    # and 7 rows in larger profiles, then the rest): a defect that depends on the batch size
    # (a rule that broadcasts against the batch, a kernel that is wrong for one row) shows
    # against the same truth.
    parts = _pieces(group, inputs, batch, ref)
    for state, rows in plan:
        raise_if_interrupted()
        if opts.deadline is not None:
            state.timeout = max(opts.deadline - time.perf_counter(), MIN_PATH_SECONDS)
        refs = [ref]
        if rows is not None:
            key = tuple(rows)
            if key not in small:
                problem = _problem(
                    group,
                    [x[rows] for x in inputs],
                    batch.tangents[rows],
                    batch.cotangents[rows],
                )
                small[key] = ref.sibling(problem)
            sref = small[key]
            if get_kind(state.path.computes).second_order:
                defect, row = _defect(sref, True)
                if defect:
                    state.finish("error", defect, point=_point_dict(group.case, sref.inputs, row))
                    continue
            refs = [sref]
        elif parts is not None and state.path.batched:
            # A path that traces at every call pays a trace per piece: it runs on the whole
            # chunk (the bulk piece and the rows cut from it, together).
            refs = [ref] if state.path.traces else parts
        for k, sref in enumerate(refs):  # the bulk first: a piece is named only if it alone fails
            if not _check_on(state, group, sref, split=k > 0):
                break
    if not group.active or all(
        (cap := _point_cap(s.path, group.case, opts.costly_points, opts.unbatched_points))
        is not None
        and s.points >= cap
        for s in group.active
    ):
        raise _Stop


def _defect(ref: _Reference, second_order: bool) -> tuple[str, int]:
    """`_Reference.defect`, with a failure of the reference itself said as what it is."""
    try:
        return ref.defect(second_order)
    except InternalError as exc:  # verijac's own fault, said so: never blamed on the case
        return str(exc), 0
    except Exception as exc:  # the generated reference itself failed: a defect of the case
        return f"case defect: the exact reference raised {type(exc).__name__}: {exc}", 0


#: Hypothesis draws a group's batches one at a time; the paths run on chunks of them merged,
#: up to this many points, or fewer where the case's exact reference per point is large
#: (`MERGE_ENTRIES`): the same points in a fraction of the calls, since a path call costs
#: mostly its fixed overhead (tracing, transforms, autograd bookkeeping) at these sizes.
#: 2,048 rather than 1,024: the default profile's 5,120 points in 3 calls per path instead of
#: 5, 270 s instead of 325 s for the 220 shipped cases (docs/benchmarks.md).
MERGE_POINTS = 2048

#: Entries of the exact reference (Jacobian, and Hessian for second-order paths) one merged
#: chunk may hold; above it, drawn batches are evaluated one by one as drawn.
MERGE_ENTRIES = 2**21


class _Drawn:
    """The drawn batches of a group not yet evaluated, flushed through `_batch` as a chunk."""

    def __init__(self, group: _Group) -> None:
        case = group.case
        n, m = case.n_in, case.n_out
        second = any(get_kind(s.path.computes).second_order for s in group.states)
        entries = n + m + m * n + (m * n * n if second else 0)
        self.group = group
        self.limit = min(MERGE_POINTS, MERGE_ENTRIES // max(entries, 1))
        self.pending: list[Batch] = []

    def add(self, batch: Batch) -> None:
        self.pending.append(batch)
        deadline = self.group.opts.deadline
        if sum(b.size for b in self.pending) >= self.limit or (
            deadline is not None and time.perf_counter() > deadline
        ):
            self.flush()  # a spent time budget: what was drawn is checked, nothing more

    def flush(self) -> None:
        import torch

        from .strategies import Batch

        if not self.pending:
            return
        drawn, self.pending = self.pending, []
        if len(drawn) == 1:
            _batch(self.group, drawn[0])
            return
        heads, start = [], 0
        for b in drawn:
            heads.append(start)
            start += b.size
        merged = Batch(
            {name: torch.cat([b.points[name] for b in drawn]) for name in drawn[0].points},
            torch.cat([b.tangents for b in drawn]),
            torch.cat([b.cotangents for b in drawn]),
        )
        _batch(self.group, merged, heads)


def _check_on(state: _PathState, group: _Group, sref: _Reference, *, split: bool) -> bool:
    """Run ``state``'s path on ``sref``'s points and compare; False once the path has an
    outcome (an exception or a mismatch)."""
    started = time.perf_counter()
    evidence: dict[str, Any] = {}
    try:
        cmp = _evaluate(state, sref, evidence=evidence)
    except (Exception, SystemExit) as exc:  # sys.exit() in the op is an error, not the end
        status, reason = _exception_outcome(state.path, exc, group.opts.require)
        if split:
            reason += f" (called with a batch of {sref.problem.N} points)"
        state.finish(status, reason)
        return False
    finally:
        state.elapsed += time.perf_counter() - started
    if cmp is None:
        state.points += sref.problem.N
        return True
    state.add(cmp, sref.problem.N)
    if cmp.ok:
        return True
    started = time.perf_counter()
    _mismatch(state, group, sref.problem, cmp, split=split, evidence=evidence)
    state.elapsed += time.perf_counter() - started
    return False


def _hypothesis_seed(seed: int, case: Case, dtype: str) -> int:
    digest = hashlib.sha256(f"{seed}/{case.name}/{dtype}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@functools.lru_cache(maxsize=64)
def _settings(max_examples: int) -> Any:
    """Hypothesis settings of a check: one example per batch, generation only (verijac shrinks
    a failing point itself, with the path, not through Hypothesis)."""
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )


def _run_group(group: _Group, skip: str, emit: Callable[[Record], None]) -> None:
    from hypothesis import given
    from hypothesis import seed as hseed

    from .strategies import batches

    opts = group.opts
    if skip:
        for s in group.states:
            emit(_record(dataclasses.replace(s, fields={"reason": skip}), group, "skipped"))
        return
    for s in group.states:
        reason = _unmet(s.path, group.case, opts.pointwise)
        if reason:
            s.finish("unsupported", reason)
    if group.active:
        hs = _hypothesis_seed(opts.seed, group.case, group.dtype)

        drawn = _Drawn(group)
        # What ended the group, kept here rather than raised through Hypothesis: Hypothesis
        # replays a failing example, and a replay that does not fail alike (a chunk is
        # evaluated when enough batches are drawn, not at every one) is a FlakyFailure.
        ended: list[BaseException] = []

        def body(batch: Batch) -> None:
            if ended:
                return  # the rest of the examples are drawn and ignored (a few ms each)
            try:
                drawn.add(batch)
            except Exception as exc:
                ended.append(exc)

        # Decorators applied as calls, not stacked on ``body``.
        strategy = batches(group.case, batch_size=opts.batch_size, dtype=group.dtype, seed=hs)
        test = _settings(opts.max_examples)(hseed(hs)(given(strategy)(body)))
        # No example database, so no database key: without one, Hypothesis would hash the
        # source of ``body`` at every run (inspect.getsource, ~0.6 ms per group).
        test._hypothesis_internal_database_key = None
        try:
            test()
            if ended:
                raise ended[0]
            drawn.flush()
        except _Stop:
            pass
        except VerijacError as exc:
            for s in group.active:
                s.finish("error", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # Hypothesis could not generate: report, never stop the run
            for s in group.active:
                s.finish("error", f"{type(exc).__name__} while generating points: {exc}")
    for s in group.states:
        if s.status is None and s.points == 0:
            s.finish("skipped", "no points were checked (time budget exhausted)")
        emit(_record(s, group))


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls off (unless enabled) while checking; the previous flags restored after."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def run(
    cases: Sequence[Case],
    *,
    func_for: Callable[[Case], Callable[..., Any]] | None = None,
    pointwise: bool = True,
    require: Iterable[str] = (),
    extra_paths: Sequence[AutogradPath] = (),
    command: str = "check",
    reproduce_prefix: str | None = None,
    paths: Any = None,
    devices: Any = None,
    dtypes: Any = None,
    seed: int | None = None,
    max_examples: int | None = None,
    batch_size: int | None = None,
    time_budget: float | None = None,
    profile: str | None = None,
    on_record: Callable[[Record], Any] | None = None,
    tf32: bool = False,
    tolerances: PathTolerances | None = None,
    reference_digits: int | None = None,
    shard: str | tuple[int, int] | None = None,
    baseline: Report | str | os.PathLike[str] | None = None,
    jobs: int | str = 1,
) -> Report:
    """Check resolved ``cases``; the engine under `check` and ``check_op``.

    Args:
        cases: `Case` objects.
        func_for: the function under test for a case (default ``case.implementation()``).
        pointwise: whether the function maps each point of a batch independently.
        require: capabilities (`verijac.paths.CAPABILITIES`) whose absence is a failure.
        extra_paths: paths appended to those selected by ``paths``.
        command: the ``verijac`` sub-command reproduction lines name.
        reproduce_prefix: replaces ``verijac COMMAND`` in reproduction lines.
        Other options: as `check`.

    Returns:
        A `Report` with one record per case × path × device × dtype.
    """
    import torch

    from ._case import Case
    from .paths._base import CAPABILITIES
    from .strategies import get_profile

    case_list = list(cases)
    for c in case_list:
        if not isinstance(c, Case):
            raise UsageError(f"run expects verijac.Case objects, got {c!r}; use check() for names")
    if func_for is not None and not callable(func_for):
        raise UsageError(f"func_for must be callable (case → function), got {func_for!r}")
    req = frozenset(_as_list(require)) if not isinstance(require, str) else frozenset([require])
    unknown = req - set(CAPABILITIES)
    if unknown:
        raise UsageError(
            f"require must name capabilities from {CAPABILITIES}, got {sorted(unknown)}"
        )
    path_list = resolve_paths(paths, command=command)
    path_list += [p for p in extra_paths if all(p.name != q.name for q in path_list)]
    device_list = resolve_devices(devices)
    n_jobs = resolve_jobs(jobs)
    serial = can_fork([d for d, skip in device_list if not skip]) if n_jobs > 1 else ""
    if serial:
        n_jobs = 1
    dtype_list = resolve_dtypes(dtypes)
    prof = get_profile(profile)
    if not path_list:
        raise UsageError(f"no path selected (paths={paths!r}): nothing would be checked")
    if not dtype_list:
        raise UsageError(f"no dtype selected (dtypes={dtypes!r}): nothing would be checked")
    if not device_list:
        raise UsageError(f"no device selected (devices={devices!r}): nothing would be checked")
    opts_batch = _positive_int("batch_size", batch_size) or prof.batch_size
    _check_memory(case_list, path_list, opts_batch)
    shard_kn = shard if shard is None or isinstance(shard, tuple) else parse_shard(shard)
    known_before = _baseline_index(baseline)
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be an int >= 0 or None, got seed={seed!r}")
    if time_budget is not None and not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise UsageError(
            f"time_budget must be a number of seconds > 0 or None, got {time_budget!r}"
        )
    if on_record is not None and not callable(on_record):
        raise UsageError(f"on_record must be callable (record → None), got {on_record!r}")
    opts = _Options(
        seed=seed,
        max_examples=_positive_int("max_examples", max_examples) or prof.max_examples,
        batch_size=opts_batch,
        unbatched_points=prof.unbatched_points,
        costly_points=prof.costly_points,
        pieces=prof.pieces,
        profile=profile or "dev",
        pointwise=bool(pointwise),
        require=req,
        tolerances=normalise_path_tolerances(tolerances),
        command=command,
        reproduce_prefix=reproduce_prefix,
        deadline=None if time_budget is None else time.perf_counter() + float(time_budget),
        tf32=bool(tf32),
        on_record=on_record,
        reference_digits=check_digits(reference_digits),
        jobs=n_jobs,
    )
    report = Report(
        seed=seed,
        settings={
            "torch": torch.__version__,
            "hypothesis": _hypothesis_version(),
            "tf32": bool(tf32),
            "profile": opts.profile,
            "max_examples": opts.max_examples,
            "batch_size": opts.batch_size,
            "devices": [d for d, _ in device_list],
            "dtypes": dtype_list,
            "command": command,
            "require": sorted(req),
            "reference": describe(opts.reference_digits),
            "jobs": n_jobs,
            **({"jobs_note": f"one job: {serial}"} if serial else {}),
            "paths": [p.name for p in path_list],
            "tolerances": opts.tolerances,
            **({"shard": f"{shard_kn[0]}/{shard_kn[1]}"} if shard_kn else {}),
            **({"baseline": _baseline_name(baseline)} if baseline is not None else {}),
        },
        environment=environment([d for d, _ in device_list]),
        cases={c.name: case_hash(c) for c in case_list},
    )

    def emit(record: Record) -> None:
        if known_before is not None:
            record = against_baseline(record, known_before)
        report.records.append(record)
        if on_record is not None:
            on_record(record)

    try:
        with _tf32(bool(tf32)), interruptible():
            _run_cases(
                case_list, func_for, device_list, dtype_list, path_list, shard_kn, opts, emit
            )
    except KeyboardInterrupt as exc:
        # The records finished so far, marked interrupted, travel with the interrupt.
        report.settings["interrupted"] = True
        exc.verijac_report = report  # type: ignore[attr-defined]
        raise
    return report


def _run_cases(
    case_list: Sequence[Case],
    func_for: Callable[[Case], Callable[..., Any]] | None,
    device_list: Sequence[tuple[str, str]],
    dtype_list: Sequence[str],
    path_list: Sequence[AutogradPath],
    shard_kn: tuple[int, int] | None,
    opts: _Options,
    emit: Callable[[Record], None],
) -> None:
    """The check loop: every case × device × dtype group in the shard, in order, in
    ``opts.jobs`` worker processes (`verijac._parallel`). A worker takes all the groups of
    one case: the case's derivatives and generated code are built once, by that worker."""
    from ._parallel import run_groups

    units: list[list[tuple[_Group, str]]] = []
    for case in case_list:
        func = func_for(case) if func_for is not None else case.implementation()
        unit = []
        for device, skip in device_list:
            for dtype in dtype_list:
                if not in_shard(case.name, device, dtype, shard_kn):
                    continue
                why = skip
                if not why and device.startswith("mps") and dtype == "float64":
                    why = "dtype 'float64' skipped on mps: MPS has no float64"
                states = [
                    _PathState(
                        p,
                        resolve_tolerance(
                            dtype,
                            order=get_kind(p.computes).order,
                            case_tolerances=case.tolerances,
                            path=p,
                            path_tolerances=opts.tolerances,
                        ),
                    )
                    for p in path_list
                ]
                unit.append((_Group(case, device, dtype, func, states, opts), why))
        if unit:
            units.append(unit)

    def check(i: int, emit_record: Callable[[Record], None]) -> None:
        for group, why in units[i]:
            _run_group(group, why, emit_record)

    def lost(i: int, made: Sequence[Record], why: str) -> list[Record]:
        have = {(r.device, r.dtype, r.path) for r in made}
        return [
            _record(dataclasses.replace(s, fields={"reason": why}), group, "error")
            for group, _ in units[i]
            for s in group.states
            if (group.device, group.dtype, s.path.name) not in have
        ]

    run_groups(len(units), check, lost, emit, opts.jobs)


def memory_limit() -> int:
    """Bytes one batch may need: half the machine's memory (8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _check_memory(cases: Sequence[Case], paths: Sequence[AutogradPath], batch_size: int) -> None:
    """Refuse a batch whose exact reference alone would not fit in memory.

    The reference holds the Jacobian (N·m·n) and, for second-order paths, the Hessian
    (N·m·n²) in float64, with a few working copies each (bound, magnitude, perturbations).

    Raises:
        UsageError: the estimate exceeds `memory_limit`, with the estimate and the fix.
    """
    second = any(get_kind(p.computes).second_order for p in paths)
    limit = memory_limit()
    for case in cases:
        n, m = case.n_in, case.n_out
        entries = n + m + m * n + (m * n * n if second else 0)
        need = 6 * 8 * batch_size * entries
        if need > limit:
            per_point = need // batch_size
            hint = (
                f"lower batch_size to {max(limit // per_point, 1)} or less"
                if per_point <= limit
                else "select first-order paths only, or a smaller case"
                if second
                else "use a smaller case"
            )
            raise UsageError(
                f"case {case.name!r} with batch_size={batch_size} needs about "
                f"{need / 2**30:.3g} GiB per batch for its exact reference ({n} inputs, {m} "
                f"outputs{', Hessian included' if second else ''}), more than the "
                f"{limit / 2**30:.3g} GiB allowed; {hint}"
            )


def _hypothesis_version() -> str:
    import hypothesis

    return hypothesis.__version__


def check(
    cases: Any = None,
    *,
    paths: Any = None,
    devices: Any = None,
    dtypes: Any = None,
    seed: int | None = None,
    max_examples: int | None = None,
    batch_size: int | None = None,
    time_budget: float | None = None,
    profile: str | None = None,
    on_record: Callable[[Record], Any] | None = None,
    tf32: bool = False,
    tolerances: PathTolerances | None = None,
    reference_digits: int | None = None,
    shard: str | tuple[int, int] | None = None,
    baseline: Report | str | os.PathLike[str] | None = None,
    jobs: int | str = 1,
) -> Report:
    """Verify autograd paths against the exact derivatives of cases.

    Args:
        cases: ``None`` (every registered case), a name, a glob (``"seed_*"``), a tag
            (``"tag:smooth"``), a `Case`, or a list of those.
        paths: ``None`` (every path that is not opt-in), names, globs or family names.
        devices: ``None`` (``cpu``, every CUDA device, ``mps`` when available) or names;
            an unavailable device yields ``skipped`` records, never failures.
        dtypes: ``None`` (float64 and float32) or names / torch dtypes (float16, bfloat16 too).
        seed: makes the points reproducible; random (and stated in the report) when ``None``.
        max_examples: batches per case × device × dtype (default: the profile's).
        batch_size: points per batch (default: the profile's).
        time_budget: seconds for the whole check; each group still checks one batch.
        profile: ``"ci"``, ``"dev"`` (default) or ``"thorough"`` (see `verijac.strategies.PROFILES`).
        on_record: called with each `Record` as it is finished.
        tf32: allow TF32 matmuls on CUDA (off by default; the report states it).
        tolerances: per path name / glob / family: ``{dtype: {"rtol": …, "atol": …}}`` or
            ``{"rtol": …, "atol": …}`` for every dtype.
        reference_digits: evaluate the exact derivatives with mpmath at this many decimal
            digits (17 to 1000) and round them once to float64, instead of running the
            generated code in float64; slower (a Python-level evaluation per point), for
            float64 paths at points where the float64 reference's own rounding matters.
        shard: ``"K/N"`` or ``(K, N)``: only the K-th of N deterministic slices of the
            case × device × dtype matrix (merge the shards' run files with `merge_runs`).
        baseline: a `Report` or the path of a run file: failures it already had are
            reported as ``known`` and do not fail the check; only new ones do.
        jobs: worker processes checking case × device × dtype groups side by side (an int,
            or ``"auto"``: one per CPU, at most 8). The report is the same as with one job.
            Workers are forked: on Linux with CPU devices only; elsewhere the groups run in
            this process (``report.settings["jobs"]`` says how many ran).

    Returns:
        A `Report`; ``report.passed`` is False when any record is a mismatch or an error.

    Raises:
        UsageError: an option is invalid (the message says which and how to fix it).
        UnknownCaseError / UnknownPathError: a name is not registered.
    """
    return run(
        resolve_cases(cases),
        paths=paths,
        devices=devices,
        dtypes=dtypes,
        seed=seed,
        max_examples=max_examples,
        batch_size=batch_size,
        time_budget=time_budget,
        profile=profile,
        on_record=on_record,
        tf32=tf32,
        tolerances=tolerances,
        reference_digits=reference_digits,
        shard=shard,
        baseline=baseline,
        jobs=jobs,
    )


__all__ = ["check", "run"]
