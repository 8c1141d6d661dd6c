"""The check: cases × paths × devices × dtypes → one `Record` each, collected in a `Report`.

For each case, device and dtype, Hypothesis draws batches of points (`verijac.strategies`);
the exact reference is evaluated once per batch in float64 and every applicable path runs
once on the whole batch (a path that is not ``batched`` gets its first `UNBATCHED_POINTS`
points). A mismatch is narrowed to its failing rows and shrunk to a minimal single point.
Nothing raised by a path stops the run: it becomes that path's record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import math
import os
import random
import shlex
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._compare import Bound, Comparison, bound, weights
from ._errors import InternalError, UsageError, VerijacError
from ._interrupt import interruptible, raise_if_interrupted, time_limit
from ._parallel import can_fork, resolve_jobs
from ._precise import check_digits, describe
from ._report import Record, Report
from ._runfile import case_hash, environment, in_shard, load_run, parse_shard
from ._tolerances import (
    COMPUTES_ORDER,
    COND_ULPS,
    PathTolerances,
    Tolerance,
    dtype_name,
    normalise_path_tolerances,
    resolve_tolerance,
)
from .paths._base import selects

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import Path, Problem

#: Points a path with ``batched=False`` receives from each batch.
UNBATCHED_POINTS = 4
#: Path calls the shrinker may spend on one failure.
SHRINK_CALLS = 64
DEFAULT_DTYPES = ("float64", "float32")


class _Stop(Exception):
    """Ends a Hypothesis run early: every path has an outcome, or the time budget is spent."""


# -- option resolution ----------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def resolve_cases(cases: Any = None) -> list[Case]:
    """Cases from names, globs, ``"tag:NAME"``, `Case` objects or a list of those.

    Raises:
        UsageError: a glob or tag matches nothing, or an item has another type.
        UnknownCaseError: a plain name is not registered.
    """
    from ._case import Case
    from ._registry import get_case, list_cases

    if cases is None:
        return list_cases()
    out: list[Case] = []
    for item in _as_list(cases):
        if isinstance(item, Case):
            found = [item]
        elif isinstance(item, str) and item.startswith("tag:"):
            found = list_cases(tag=item[4:])
            if not found:
                raise UsageError(f"no case has the tag {item[4:]!r} (cases={item!r})")
        elif isinstance(item, str) and any(ch in item for ch in "*?["):
            found = list_cases(item)
            if not found:
                raise UsageError(f"no case name matches the glob {item!r}")
        elif isinstance(item, str):
            found = [get_case(item)]
        else:
            raise UsageError(
                f"cases must be names, globs, 'tag:NAME' or verijac.Case objects, got {item!r}"
            )
        out += [c for c in found if all(c is not o for o in out)]
    return out


def resolve_paths(paths: Any = None, *, command: str = "check") -> list[Path]:
    """Paths from names, globs, family names, `Path` objects or a list of those.

    ``None`` is every path ``command`` runs by default (not opt-in; `Path.default_for`). An
    item ``"!PATTERN"`` removes the paths it selects (from the default selection when it is
    the only kind of item): ``["!functional.jacobian_strict"]``, ``["func", "!func.linearize"]``.

    Raises:
        UsageError: a glob or family matches nothing, or an item has another type.
        UnknownPathError: a plain name is not registered.
    """
    from .paths._base import FAMILIES, Path, get_path, list_paths

    if paths is None:
        return list_paths(default_for=command)
    items = _as_list(paths)
    excluded = [i[1:] for i in items if isinstance(i, str) and i.startswith("!")]
    items = [i for i in items if not (isinstance(i, str) and i.startswith("!"))]
    out: list[Path] = []
    if excluded and not items:  # only exclusions: from the command's default selection
        out = list_paths(default_for=command)
    for item in items:
        if isinstance(item, Path):
            found = [item]
        elif isinstance(item, str) and item in FAMILIES:
            found = list_paths(family=item)
        elif isinstance(item, str) and any(ch in item for ch in "*?["):
            found = list_paths(item)
            if not found:
                raise UsageError(f"no path name matches the glob {item!r}")
        elif isinstance(item, str):
            found = [get_path(item)]
        else:
            raise UsageError(
                f"paths must be names, globs, family names or verijac Path objects, got {item!r}"
            )
        out += [p for p in found if all(p.name != o.name for o in out)]
    for pattern in excluded:
        drop = [p for p in list_paths() if selects(pattern, p)]
        if not drop:
            raise UsageError(
                f"the exclusion '!{pattern}' matches no path (see `verijac list --paths`)"
            )
        out = [p for p in out if all(p.name != d.name for d in drop)]
    return out


def resolve_devices(devices: Any = None) -> list[tuple[str, str]]:
    """``(device, skip reason)`` pairs; the reason is empty for an available device."""
    import torch

    if devices is None:
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if _mps_available():
            found.append("mps")
        return [(d, "") for d in found]
    out = []
    for item in _as_list(devices):
        try:
            dev = torch.device(item)
        except (RuntimeError, TypeError):
            raise UsageError(
                f"devices must be torch device names such as 'cpu', 'cuda', 'cuda:1' or 'mps', "
                f"got {item!r}"
            ) from None
        name = str(item)
        reason = ""
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                reason = f"device {name!r} skipped: CUDA is not available (torch.cuda.is_available() is False)"
            elif dev.index is not None and dev.index >= torch.cuda.device_count():
                reason = f"device {name!r} skipped: only {torch.cuda.device_count()} CUDA device(s)"
        elif dev.type == "mps":
            if not _mps_available():
                reason = f"device {name!r} skipped: MPS is not available"
        elif dev.type != "cpu":
            reason = f"device {name!r} skipped: verijac checks cpu, cuda and mps devices"
        out.append((name, reason))
    return out


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_dtypes(dtypes: Any = None) -> list[str]:
    """Canonical dtype names; ``None`` is float64 and float32."""
    if dtypes is None:
        return list(DEFAULT_DTYPES)
    out: list[str] = []
    for d in _as_list(dtypes):
        name = dtype_name(d)
        if name not in out:
            out.append(name)
    return out


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be an int >= 1 or None, got {name}={value!r}")
    return value


# -- per-run state ----------------------------------------------------------------------------


@dataclass
class _Options:
    seed: int
    max_examples: int
    batch_size: int
    unbatched_points: int
    profile: str
    pointwise: bool
    require: frozenset[str]
    tolerances: dict[str, dict[str, dict[str, float]]]
    command: str
    reproduce_prefix: str | None
    deadline: float | None
    tf32: bool
    on_record: Callable[[Record], Any] | None
    reference_digits: int | None = None
    jobs: int = 1  # worker processes (`verijac._parallel`)


#: Result kinds whose ``scale`` is ``|expected|`` itself (no sum over tangents or cotangents).
_PLAIN = frozenset({"jacobian", "gradient", "hessian"})


@dataclass(eq=False)
class _Reference:
    """The exact reference for one problem (points, tangents, cotangents), computed lazily and
    shared by every path that runs on that problem.

    The Jacobian, the Hessian (second-order paths only), each kind of exact result, its
    `Bound` and its conditioning term are each computed at most once per batch.
    """

    case: Case
    problem: Problem
    dtype: Any
    seed: int
    #: Decimal digits of the mpmath reference; ``None``: the generated code in float64.
    digits: int | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    #: Rows outside the case's domain (``None``: none), never compared: points a path moved
    #: itself, e.g. input 0 of one row with the others of row 0, may leave the domain.
    outside: Any = None

    @property
    def inputs(self) -> tuple[Any, ...]:
        return self.problem.inputs

    @property
    def jac(self) -> Any:
        from ._reference import exact_jacobian

        return self._once("jac", lambda: exact_jacobian(self.case, self.inputs, self.digits))

    @property
    def hess(self) -> Any:
        from ._reference import exact_hessian

        return self._once("hess", lambda: exact_hessian(self.case, self.inputs, self.digits))

    def _once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` cached under ``key``; an exception is cached too and raised again,
        so a reference that fails is evaluated once, not once per path."""
        if key not in self.cache:
            try:
                self.cache[key] = (True, compute())
            except Exception as exc:
                self.cache[key] = (False, exc)
        ok, value = self.cache[key]
        if not ok:
            raise value
        return value

    def _second(self, computes: str) -> Any:
        return self.hess if COMPUTES_ORDER[computes] == 2 else None

    def exact(self, computes: str) -> Any:
        """The exact result a path computing ``computes`` must return (float64)."""
        key = ("exact", computes)
        if key not in self.cache:
            from ._reference import expected

            self.cache[key] = expected(computes, self.problem, self.jac, self._second(computes))
        return self.cache[key]

    def bound(self, computes: str, tolerance: Tolerance) -> Bound:
        """The allowed error per entry for ``computes`` under ``tolerance`` (without cond)."""
        key = ("bound", computes, tolerance)
        if key not in self.cache:
            scale = weight = None
            if computes not in _PLAIN:
                scale = self.magnitude(computes)
                weight = weights(computes, self.problem, self.jac.device)
            found = bound(
                self.exact(computes),
                dtype=self.dtype,
                tolerance=tolerance,
                scale=scale,
                weight=weight,
            )
            if self.outside is not None:
                # Rows outside the domain are not compared at all, whatever the path gives
                # there (NaN included): they are skipped like unrepresentable entries.
                rows = self.outside.reshape(-1, *[1] * (found.allowed.dim() - 1))
                keep = ~rows.to(found.allowed.device).expand_as(found.allowed)
                found.in_range = keep if found.in_range is None else found.in_range & keep
                found.allowed = found.allowed.masked_fill(~keep, math.inf)
            self.cache[key] = found
        return self.cache[key]

    def magnitude(self, computes: str) -> Any:
        """The result computed with absolute values of every factor (``|J|·|t|`` for a JVP):
        the ``scale`` of the bound. ``|J|``, ``|H|`` and the absolute tangents and cotangents
        are computed once and shared by every kind."""
        abs_problem, abs_jac = self.cache.get("abs", (None, None))
        if abs_problem is None:
            abs_problem = dataclasses.replace(
                self.problem,
                tangents=self.problem.tangents.abs(),
                cotangents=self.problem.cotangents.abs(),
            )
            abs_jac = self.jac.abs()
            self.cache["abs"] = (abs_problem, abs_jac)
        abs_hess = None
        if COMPUTES_ORDER[computes] == 2:
            abs_hess = self.cache.get("abs_hess")
            if abs_hess is None:
                abs_hess = self.cache["abs_hess"] = self.hess.abs()
        from ._reference import expected

        return expected(computes, abs_problem, abs_jac, abs_hess)

    def cond(self, computes: str) -> Any:
        """How far the exact result moves when the inputs move by `COND_ULPS` roundoffs."""
        key = ("cond", computes)
        if key not in self.cache:
            import torch

            exp = self.exact(computes)
            cond = torch.zeros_like(exp)
            for p in self.perturbed:
                cond = cond.maximum((p.exact(computes) - exp).abs())
            self.cache[key] = torch.nan_to_num(cond, nan=0.0, posinf=0.0)
        return self.cache[key]

    @cached_property
    def perturbed(self) -> list[_Reference]:
        """The reference at the inputs moved by `COND_ULPS` roundoffs of the path's dtype
        with random signs, twice."""
        import torch

        u = torch.finfo(self.dtype).eps / 2 * COND_ULPS
        gen = torch.Generator().manual_seed(self.seed)
        out = []
        for _ in range(2):
            moved = []
            for x in self.inputs:
                x64 = x.detach().to(torch.float64)
                signs = torch.where(torch.rand(x64.shape, generator=gen) < 0.5, -u, u)
                moved.append(x64 * (1 + signs.to(torch.float64).to(x64.device)))
            problem = dataclasses.replace(self.problem, inputs=tuple(moved))
            out.append(_Reference(self.case, problem, self.dtype, self.seed, self.digits))
        return out

    def at(self, inputs: tuple[Any, ...]) -> _Reference:
        """The reference at other points with the same tangents (paths that move the points,
        e.g. a range of input 0 with the others fixed); shared when two paths move them alike."""
        import torch

        if all(a is b for a, b in zip(inputs, self.inputs, strict=True)):
            return self
        for other in self.cache.setdefault("moved", []):
            if all(
                a.shape == b.shape and torch.equal(a, b)
                for a, b in zip(inputs, other.inputs, strict=True)
            ):
                return other
        from .strategies import valid_rows

        problem = dataclasses.replace(self.problem, inputs=tuple(inputs))
        ref = _Reference(self.case, problem, self.dtype, self.seed, self.digits)
        inside = valid_rows(self.case, tuple(inputs))
        if not bool(inside.all()):
            ref.outside = ~inside
        self.cache["moved"].append(ref)
        return ref

    def defect(self, second_order: bool) -> tuple[str, int]:
        """``("case defect: …", row)`` when the reference is not finite at some point (row:
        the first such point), else ``("", 0)``."""
        import torch

        for what, value in (
            ("Jacobian", self.jac),
            ("Hessian", self.hess if second_order else None),
        ):
            # A sum is finite when every entry is (an overflowing sum takes the long way).
            if value is None or bool(torch.isfinite(value.sum())):
                continue
            bad = ~torch.isfinite(value.reshape(value.shape[0], -1))
            row = int(bad.any(dim=1).nonzero()[0])
            kind = "NaN" if bool(torch.isnan(value[row]).any()) else "inf"
            return (
                f"case defect: reference is {kind} at {_point_dict(self.case, self.inputs, row)} "
                f"(exact {what}) inside the declared domain; narrow the domain or exclude the point",
                row,
            )
        return "", 0


def _point_dict(case: Case, inputs: Sequence[Any], row: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v, x in zip(case.variables, inputs, strict=True):
        value = x[row].detach().cpu()
        out[v.name] = _short_tree(value.tolist(), x.dtype)
    return out


def _short(value: float, dtype: Any) -> float:
    """The shortest decimal that rounds to the same ``dtype`` number as ``value``."""
    import torch

    if not math.isfinite(value):
        return value
    target = torch.tensor(value, dtype=torch.float64).to(dtype)
    for digits in range(18):
        cand = float(f"{value:.{digits}g}") if digits else round(value)
        if torch.tensor(cand, dtype=torch.float64).to(dtype) == target:
            return float(cand)
    return float(value)


def _short_tree(value: Any, dtype: Any) -> Any:
    if isinstance(value, list):
        return [_short_tree(v, dtype) for v in value]
    return _short(float(value), dtype)


@dataclass
class _PathState:
    """What one path has shown so far in one case × device × dtype."""

    path: Path
    tolerance: Tolerance
    status: str | None = None  # None while still being checked
    points: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds spent in this path's calls and comparisons
    #: Seconds one call of the path may take (``None``: unbounded); set from the time budget.
    timeout: float | None = None
    warnings: set[str] = field(default_factory=set)  # distinct warnings torch raised in the path

    def add(self, cmp: Comparison, n: int) -> None:
        self.points += n
        self.max_abs = max(self.max_abs, cmp.max_abs)
        self.max_rel = max(self.max_rel, cmp.max_rel)
        self.max_ulp = max(self.max_ulp, cmp.max_ulp)

    def finish(self, status: str, reason: str = "", **kw: Any) -> None:
        self.status = status
        self.fields = {"reason": reason, **kw}


@dataclass
class _Group:
    """One case × device × dtype: its paths, function and options."""

    case: Case
    device: str
    dtype: str
    func: Callable[..., Any]
    states: list[_PathState]
    opts: _Options
    batches: int = 0  # drawn so far
    chunks: int = 0  # evaluated so far (drawn batches merged: `_Drawn`)
    where: str = ""  # the drawn batches of the chunk being evaluated, for messages
    #: Kinds of op in the function's autograd graph (`verijac._defects.op_kinds`), found at
    #: the first batch; known torch defects may be scoped by them.
    op_kinds: frozenset[str] = frozenset()

    @cached_property
    def tdtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @property
    def active(self) -> list[_PathState]:
        return [s for s in self.states if s.status is None]


# -- requirements and outcomes ------------------------------------------------------------


def _unmet(path: Path, case: Case, pointwise: bool) -> str:
    from ._reference import unused_inputs

    for req in sorted(path.requires):
        if req == "scalar_output" and not case.scalar_output:
            return (
                f"path {path.name!r} requires a scalar output; case {case.name!r} has "
                f"{case.n_out} output element(s) in {len(case.outputs)} output(s)"
            )
        if req == "pointwise" and not pointwise:
            return f"path {path.name!r} requires a pointwise (batchable) function"
        if req == "unused_input" and not any(unused_inputs(case)):
            return f"path {path.name!r} requires an input no output depends on; case {case.name!r} has none"
        if req == "array_input" and all(v.shape == () for v in case.variables):
            return (
                f"path {path.name!r} requires an array input; case {case.name!r} has scalars only"
            )
    return ""


def _exception_outcome(path: Path, exc: BaseException, require: frozenset[str]) -> tuple[str, str]:
    from .paths._base import BehaviourMismatch, Unsupported

    if isinstance(exc, Unsupported):
        needed = sorted(set(path.uses) & require)
        if needed:
            return "mismatch", f"required capability {needed[0]}: {exc}"
        return "unsupported", str(exc) or f"path {path.name!r} does not apply"
    if isinstance(exc, BehaviourMismatch):
        return "mismatch", str(exc)
    return "error", f"{type(exc).__name__}: {exc}{_where(exc)}"


def _where(exc: BaseException) -> str:
    """`` (raised at FILE:LINE in FUNC)`` for the innermost frame outside verijac, torch and
    Hypothesis: the line of the user's op, where there is one."""
    import traceback

    skip = (os.sep + "verijac" + os.sep, os.sep + "torch" + os.sep, os.sep + "hypothesis" + os.sep)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not any(s in f.filename for s in skip)
    ]
    if not frames:
        return ""
    f = frames[-1]
    return f" (raised at {f.filename}:{f.lineno} in {f.name})"


# -- evaluation ----------------------------------------------------------------------------


def _problem(group: _Group, inputs: Sequence[Any], t: Any, c: Any) -> Problem:
    from ._reference import make_problem

    return make_problem(
        group.case,
        inputs,
        func=group.func,
        tangents=t,
        cotangents=c,
        pointwise=group.opts.pointwise,
    )


#: With a time budget, one path call may always take this long, even when the budget is spent.
MIN_PATH_SECONDS = 2.0


#: At most this many distinct warnings are kept per record.
MAX_WARNINGS = 5


@contextlib.contextmanager
def _path_warnings(state: _PathState) -> Iterator[None]:
    """Warnings torch raises inside a path belong to that record, not to the user's terminal
    (e.g. F.logsigmoid under forward AD warns about resizing its own buffer, torch 2.15).

    Only warnings of the calling thread are taken: what another thread raises meanwhile (a
    user's own threads) is shown as usual.
    """
    caller = threading.get_ident()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        show = warnings.showwarning

        def record(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
            if threading.get_ident() != caller:
                show(message, category, *args, **kwargs)
            elif len(state.warnings) < MAX_WARNINGS:
                state.warnings.add(f"{category.__name__}: {str(message).splitlines()[0]}")

        warnings.showwarning = record
        yield


def _run_path(state: _PathState, ref: _Reference) -> tuple[Any, tuple[Any, ...] | None] | None:
    """Run a path on the reference's problem: its result and, for a path that moved the
    points, the points it used; ``None`` for a behaviour path (nothing to compare).

    Raises what the path raises.
    """
    from .paths._base import PathResult

    path = state.path
    with _path_warnings(state), time_limit(state.timeout, f"path {path.name!r}"):
        result = path.run(ref.problem)
    moved = None
    if isinstance(result, PathResult):
        if result.inputs is not None:
            moved = tuple(result.inputs)
        result = result.value
    if path.computes == "behaviour" or result is None:
        return None
    return result, moved


def _compare(
    state: _PathState, ref: _Reference, result: Any, moved: tuple[Any, ...] | None
) -> Comparison:
    """Compare a path's result with the reference (at the moved points, if it moved them).

    The conditioning term is computed only for a result that exceeds the bound without it
    (it can only widen the bound).
    """
    if moved is not None:
        ref = ref.at(moved)
    check = ref.bound(state.path.computes, state.tolerance)
    cmp = check.check(result, locate=False)
    if not cmp.ok:
        cmp = check.check(result, cond=ref.cond(state.path.computes), locate=False)
    return cmp


def _evaluate(
    state: _PathState, ref: _Reference, *, evidence: dict[str, Any] | None = None
) -> Comparison | None:
    """Run a path and compare its result; ``None`` for behaviour paths. Raises what the
    path raises.

    Args:
        evidence: when given and the result fails, filled with what its failing entries have
            in common (`verijac._evidence.measure`, over the whole batch).
    """
    out = _run_path(state, ref)
    if out is None:
        return None
    cmp = _compare(state, ref, *out)
    if evidence is not None and not cmp.ok:
        from ._evidence import from_reference

        evidence.update(from_reference(ref, state.path.computes, state.tolerance, *out))
    return cmp


def _batch(group: _Group, batch: Any, heads: Sequence[int] = (0,)) -> None:
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
        group.case, full, group.tdtype, opts.seed + group.chunks, opts.reference_digits
    )
    second = any(COMPUTES_ORDER[s.path.computes] == 2 for s in group.active)
    try:
        defect, row = ref.defect(second)
    except InternalError as exc:  # verijac's own fault, said so: never blamed on the case
        defect, row = str(exc), 0
    except Exception as exc:  # the generated reference itself failed: a defect of the case
        defect, row = f"case defect: the exact reference raised {type(exc).__name__}: {exc}", 0
    if defect:
        for s in group.active:
            s.finish("error", defect, point=_point_dict(group.case, inputs, row))
        raise _Stop
    small: dict[int, _Reference] = {}
    # The first chunk goes through each batched path in pieces (`PIECES`: one row, and 2
    # and 7 rows in larger profiles, then the rest): a defect that depends on the batch size
    # (a rule that broadcasts against the batch, a kernel that is wrong for one row) shows
    # against the same truth.
    parts = _pieces(group, inputs, batch, ref)
    for state in group.active:
        raise_if_interrupted()
        if opts.deadline is not None:
            state.timeout = max(opts.deadline - time.perf_counter(), MIN_PATH_SECONDS)
        refs = [ref]
        if not state.path.batched:
            need = opts.unbatched_points - state.points
            if need <= 0:
                continue  # a per-point path has had its share of points in this group
            rows = _head_rows(heads, full.N, need)
            if len(rows) < full.N:
                if need not in small:
                    k = rows
                    problem = _problem(
                        group, [x[k] for x in inputs], batch.tangents[k], batch.cotangents[k]
                    )
                    small[need] = _Reference(
                        group.case, problem, group.tdtype, ref.seed, ref.digits
                    )
                refs = [small[need]]
        elif parts is not None:
            refs = parts
        for k, sref in enumerate(refs):  # the bulk first: a piece is named only if it alone fails
            if not _check_on(state, group, sref, split=k > 0):
                break
    if not group.active or all(
        not s.path.batched and s.points >= opts.unbatched_points for s in group.active
    ):
        raise _Stop


#: Hypothesis draws a group's batches one at a time; the paths run on chunks of them merged,
#: up to this many points, or fewer where the case's exact reference per point is large
#: (`MERGE_ENTRIES`): the same points in a fraction of the calls, since a path call costs
#: mostly its fixed overhead (tracing, transforms, autograd bookkeeping) at these sizes.
MERGE_POINTS = 1024
#: Entries of the exact reference (Jacobian, and Hessian for second-order paths) one merged
#: chunk may hold; above it, drawn batches are evaluated one by one as drawn.
MERGE_ENTRIES = 2**21


class _Drawn:
    """The drawn batches of a group not yet evaluated, flushed through `_batch` as a chunk."""

    def __init__(self, group: _Group) -> None:
        case = group.case
        n, m = case.n_in, case.n_out
        second = any(COMPUTES_ORDER[s.path.computes] == 2 for s in group.states)
        entries = n + m + m * n + (m * n * n if second else 0)
        self.group = group
        self.limit = min(MERGE_POINTS, MERGE_ENTRIES // max(entries, 1))
        self.pending: list[Any] = []

    def add(self, batch: Any) -> None:
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


def _head_rows(heads: Sequence[int], n: int, need: int) -> list[int]:
    """The rows a per-point path sees: the first `UNBATCHED_POINTS` of each drawn batch (its
    row 0 is generic, its basis tangent and special values come first), at most ``need``."""
    bounds = [*heads, n]
    rows: list[int] = []
    for start, end in itertools.pairwise(bounds):
        rows += range(start, min(start + UNBATCHED_POINTS, end))
    return rows[:need]


#: The sizes the first chunk of a group is cut into for batched paths (then the rest): one
#: row; 2 and a prime too when the group draws at least `MORE_PIECES_FROM` batches (each cut
#: costs every batched path one more call).
PIECES = (1,)
MORE_PIECES = (1, 2, 7)
MORE_PIECES_FROM = 8


def _pieces(
    group: _Group, inputs: tuple[Any, ...], batch: Any, ref: _Reference
) -> list[_Reference] | None:
    """References for this chunk cut into the rest and its pieces (``None``: no cut)."""
    sizes: tuple[int, ...] = ()
    if group.chunks == 1:
        sizes = MORE_PIECES if group.opts.max_examples >= MORE_PIECES_FROM else PIECES
    n = int(inputs[0].shape[0])
    if not sizes or n <= sum(sizes):
        return None
    out, start = [], 0
    bounds = []
    for size in (*sizes, n - sum(sizes)):
        bounds.append(slice(start, start + size))
        start += size
    for k in (bounds[-1], *bounds[:-1]):  # the rest first, then the small pieces
        problem = _problem(group, [x[k] for x in inputs], batch.tangents[k], batch.cotangents[k])
        piece = _Reference(group.case, problem, group.tdtype, ref.seed, ref.digits)
        for key in ("jac", "hess"):  # rows of the chunk's reference: not evaluated again
            if key in ref.cache and ref.cache[key][0]:
                piece.cache[key] = (True, ref.cache[key][1][k])
        out.append(piece)
    return out


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


def _op_kinds(
    func: Callable[..., Any], inputs: tuple[Any, ...], seconds: float | None
) -> frozenset[str]:
    """The op kinds in ``func``'s autograd graph at the first point (none if it fails there,
    or takes longer than ``seconds``: the paths will report that themselves)."""
    import torch

    from ._defects import op_kinds

    try:
        with torch.enable_grad(), warnings.catch_warnings(), time_limit(seconds, "the op"):
            warnings.simplefilter("ignore")
            point = tuple(x[:1].detach().clone().requires_grad_(True) for x in inputs)
            return op_kinds(func(*point))
    except (Exception, SystemExit):
        return frozenset()


def _mismatch(
    state: _PathState,
    group: _Group,
    problem: Problem,
    cmp: Comparison,
    *,
    split: bool = False,
    evidence: dict[str, Any] | None = None,
) -> None:
    """Record a numeric mismatch at its minimal failing point.

    A known failure (``case.known_failures``) is not shrunk: it is shown at the worst point of
    the batch, which is enough to recognise the known issue and costs no further path calls.
    When the worst point does not shrink, it is checked once alone: ``fails_alone`` in the
    evidence says whether it still fails there (False: the result depends on the batch).

    Args:
        evidence: what the failing batch shows (`verijac._evidence.measure`), kept in the
            record with ``fails_alone`` added (``None``: not known).
    """
    row = cmp.index[0] if cmp.index else 0
    n_bad = len(cmp.bad_rows)
    inputs = tuple(x[row : row + 1] for x in problem.inputs)
    t, c = problem.tangents[row : row + 1], problem.cotangents[row : row + 1]
    best = cmp
    evidence = dict(evidence or {})
    if not _known(group, state.path):
        inputs, best = _shrink(state, group, inputs, t, c, cmp)
        alone: bool | None = best is not cmp or problem.N == 1
        if not alone:
            try:
                ref = _Reference(
                    group.case,
                    _problem(group, inputs, t, c),
                    group.tdtype,
                    group.opts.seed,
                    group.opts.reference_digits,
                )
                got = _evaluate(state, ref)
                alone = None if got is None else not got.ok
            except Exception:  # not checkable alone: no evidence either way
                alone = None
        evidence["fails_alone"] = alone
    single = best is not cmp
    what = (
        "a NaN/inf where a finite value was expected"
        if best.nonfinite
        else "errors beyond the tolerance"
    )
    piece = f" (a piece of {problem.N} points of it, called alone)" if split else ""
    reason = f"{n_bad} of {problem.N} points in {group.where}{piece} show {what}" + (
        "; shrunk to the point below" if single else "; shown at the worst point of the batch"
    )
    if evidence.get("fails_alone") is False:
        reason += ", which passes when checked alone: the result depends on the batch"
    index = list(best.index)
    if single and index:
        index[0] = 0
    state.finish(
        "mismatch",
        reason,
        point=_point_dict(group.case, inputs, 0),
        index=index,
        entry=entry_label(group.case, state.path.computes, index),
        expected=best.expected,
        actual=best.actual,
        allowed=best.allowed,
        cmp=best,
        tangent=[float(v) for v in t[0].tolist()]
        if state.path.computes in ("jvp", "hvp", "vhp", "chvp")
        else None,
        cotangent=[float(v) for v in c[0].tolist()]
        if state.path.computes in ("vjp", "vjp_accumulated", "chvp")
        else None,
        evidence=evidence or None,
    )


def _locate(flat: int, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> str:
    """Flat position → ``name[i,j]`` in the concatenation of the named blocks."""
    for name, shape in zip(names, shapes, strict=True):
        size = math.prod(shape)
        if flat < size:
            if not shape:
                return name
            idx = []
            for dim in reversed(shape):
                idx.append(flat % dim)
                flat //= dim
            return f"{name}[{','.join(map(str, reversed(idx)))}]"
        flat -= size
    return "?"


def entry_label(case: Case, computes: str, index: Sequence[int]) -> str:
    """The entry at ``index`` of a result of kind ``computes`` in the case's own terms:
    ``∂out[1][0,1]/∂A[0,1]`` for a Jacobian, ``∂²out/∂x∂y`` for a Hessian, ``(J·t)[…]`` …"""
    if not index:
        return ""
    outs = [f"out[{k}]" if case.tuple_outputs else "out" for k in range(len(case.outputs))]
    out_shapes = [tuple(o.shape) for o in case.outputs]
    ins = list(case.input_names)
    in_shapes = [tuple(v.shape) for v in case.variables]

    def out(i: int) -> str:
        return _locate(i, outs, out_shapes)

    def inp(j: int) -> str:
        return _locate(j, ins, in_shapes)

    rest = list(index[1:])
    try:
        if computes == "jacobian":
            return f"∂{out(rest[0])}/∂{inp(rest[1])}"
        if computes == "hessian":
            return f"∂²{out(rest[0])}/∂{inp(rest[1])}∂{inp(rest[2])}"
        if computes == "gradient":
            return f"∂{out(0)}/∂{inp(rest[0])}"
        if computes == "jvp":
            return f"(J·t) at {out(rest[0])}"
        if computes in ("vjp", "vjp_accumulated"):
            return f"(cᵀ·J) at {inp(rest[0])}"
        if computes in ("hvp", "vhp", "chvp"):
            return f"({computes}) at {inp(rest[0])}"
    except IndexError:
        return ""
    return ""


def _candidates(x: float, lo: float, hi: float) -> list[float]:
    out = [0.0, 1.0, -1.0, float(round(x))]
    out += [float(f"{x:.{d}g}") for d in range(1, 7)]
    out += [lo, hi, x / 2]
    return out


def _complexity(x: float) -> tuple[int, float]:
    return len(repr(x).removesuffix(".0").lstrip("-")), abs(x)


def _shrink(
    state: _PathState, group: _Group, inputs: tuple[Any, ...], t: Any, c: Any, cmp: Comparison
) -> tuple[tuple[Any, ...], Comparison]:
    """Move each element of a failing point toward simpler values while the path still fails.

    Returns the point and its comparison; when the single point does not fail on its own
    (a path that only fails in batches), the batch's comparison is returned unchanged.
    """
    import torch

    from .strategies import valid_rows

    case = group.case
    shapes = [x.shape for x in inputs]
    intervals = [v.domain for v in case.variables for _ in range(v.size)]
    values = [float(v) for x in inputs for v in x.reshape(-1).tolist()]
    calls = 0

    def build(vals: list[float]) -> tuple[Any, ...]:
        out, pos = [], 0
        for shape in shapes:
            k = int(math.prod(shape))
            t64 = torch.tensor(vals[pos : pos + k], dtype=torch.float64).reshape(shape)
            out.append(t64.to(group.tdtype).to(group.device))
            pos += k
        return tuple(out)

    def fails(vals: list[float]) -> Comparison | None:
        nonlocal calls
        raise_if_interrupted()
        pts = build(vals)
        if not bool(valid_rows(case, pts).all()):
            return None
        calls += 1
        try:
            problem = _problem(group, pts, t, c)
            ref = _Reference(
                case, problem, group.tdtype, group.opts.seed, group.opts.reference_digits
            )
            if ref.defect(COMPUTES_ORDER[state.path.computes] == 2)[0]:
                return None
            got = _evaluate(state, ref)
        except Exception:
            return None
        return got if got is not None and not got.ok else None

    best = fails(values)
    if best is None:
        return inputs, cmp
    for _ in range(3):
        changed = False
        for i, x in enumerate(values):
            lo, hi = intervals[i].sample_bounds()
            for cand in _candidates(x, lo, hi):
                if calls >= SHRINK_CALLS:
                    return build(values), best
                cand = _short(cand, group.tdtype)
                if _complexity(cand) >= _complexity(values[i]):
                    continue
                trial = [*values[:i], cand, *values[i + 1 :]]
                got = fails(trial)
                if got is not None:
                    values, best, changed = trial, got, True
                    break
        if not changed:
            break
    return build(values), best


# -- records -------------------------------------------------------------------------------


def _reproduce(opts: _Options, case: Case, path: Path, device: str, dtype: str) -> str:
    prefix = opts.reproduce_prefix or f"verijac {opts.command}"
    parts = [
        prefix,
        f"--case {shlex.quote(case.name)}",
        f"--path {shlex.quote(path.name)}",
        f"--device {shlex.quote(device)}",
        f"--dtype {dtype}",
        f"--seed {opts.seed}",
        f"--max-examples {opts.max_examples}",
        f"--batch-size {opts.batch_size}",
    ]
    if opts.tf32:
        parts.append("--tf32")
    if opts.reference_digits is not None:
        parts.append(f"--reference-digits {opts.reference_digits}")
    return " ".join(parts)


def known_failure(case: Case, path: Path, dtype: str) -> tuple[str, str]:
    """The first ``case.known_failures`` entry that covers ``path`` in ``dtype``.

    Returns:
        ``(key, reason)``, or ``("", "")`` when none does. A key is ``PATH_GLOB`` (every
        dtype) or ``PATH_GLOB@DTYPE``; the glob matches like ``check(paths=...)``: a name, a
        family or an `fnmatch` pattern.
    """
    for key, reason in getattr(case, "known_failures", {}).items():
        pattern, _, only = key.partition("@")
        if only and only != dtype:
            continue
        if selects(pattern, path):
            return key, reason
    return "", ""


def _known(group: _Group, path: Path) -> str:
    """What explains a failure of ``path`` in this group: ``case known_failures[KEY]``,
    ``torch defect ID`` or ``""``."""
    from ._defects import find_defect

    key, _ = known_failure(group.case, path, group.dtype)
    if key:
        return f"case known_failures[{key!r}]"
    defect = find_defect(
        case=group.case.name,
        path=path,
        device=group.device,
        dtype=group.dtype,
        op_kinds=group.op_kinds,
    )
    return f"torch defect {defect.id}" if defect is not None else ""


def _known_outcome(
    state: _PathState, group: _Group, status: str, reason: str, cmp: Comparison | None
) -> tuple[str, str, str]:
    """``(status, reason, known)`` after the case's ``known_failures`` and the torch-defects
    registry: a failure they explain is ``xfail``, a pass they expect to fail is ``xpass``.

    A failure of a path that uses a capability the caller requires stays a failure: the
    report still names the defect.
    """
    from ._defects import find_defect

    path = state.path
    key, text = known_failure(group.case, path, group.dtype)
    shows: tuple[str, ...] = ("mismatch",)
    if key:
        known_as = f"case known_failures[{key!r}]"
        where = f"case {group.case.name!r}, known_failures[{key!r}]"
    else:
        defect = find_defect(
            case=group.case.name,
            path=path,
            device=group.device,
            dtype=group.dtype,
            op_kinds=group.op_kinds,
        )
        if defect is None:
            return status, reason, ""
        known_as, shows = f"torch defect {defect.id}", defect.shows
        text = f"{defect.summary} (measured on torch {', '.join(defect.measured)})."
        where = f"known torch defect {defect.id}, docs/torch-defects.md"
    if status == "pass":
        return (
            "xpass",
            f"known failure did not show on {state.points} points ({where}): {text} "
            "It may be fixed; if it passes on other seeds too, narrow the entry's versions.",
            known_as,
        )
    if status not in shows:
        return status, reason, ""
    required = sorted(set(path.uses) & group.opts.require)
    if required:
        return status, f"{reason} (also {known_as}; required capability {required[0]})", ""
    observed = reason
    if cmp is not None:
        observed += (
            f"; expected {cmp.expected:.6g}, actual {cmp.actual:.6g} at index "
            f"{state.fields.get('index')}, allowed {cmp.allowed:.6g}"
        )
    return "xfail", f"expected failure ({where}): {text} Observed: {observed}", known_as


def _record(state: _PathState, group: _Group, status: str | None = None) -> Record:
    path, f = state.path, state.fields
    status = status or state.status or "pass"
    cmp: Comparison | None = f.get("cmp")
    numbers: dict[str, Any] = {}
    if cmp is not None:
        numbers = {"max_abs": cmp.max_abs, "max_rel": cmp.max_rel, "max_ulp": cmp.max_ulp}
    elif state.points and status in ("pass", "mismatch", "error") and path.computes != "behaviour":
        numbers = {"max_abs": state.max_abs, "max_rel": state.max_rel, "max_ulp": state.max_ulp}
    reason = f.get("reason", "")
    known_as = ""
    if status in ("mismatch", "pass", "error"):
        status, reason, known_as = _known_outcome(state, group, status, reason, cmp)
    return Record(
        case=group.case.name,
        path=path.name,
        family=path.family,
        computes=path.computes,
        device=group.device,
        dtype=group.dtype,
        status=status,
        points=state.points,
        seed=group.opts.seed,
        rtol=state.tolerance.rtol,
        atol=state.tolerance.atol,
        reason=reason,
        point=f.get("point"),
        index=f.get("index"),
        entry=f.get("entry", ""),
        expected=f.get("expected"),
        actual=f.get("actual"),
        allowed=f.get("allowed"),
        tangent=f.get("tangent"),
        cotangent=f.get("cotangent"),
        duration=state.elapsed,
        warnings=sorted(state.warnings),
        known=known_as,
        evidence=f.get("evidence"),
        reproduce=_reproduce(group.opts, group.case, path, group.device, group.dtype)
        if status in ("mismatch", "error", "xfail")
        else "",
        **numbers,
    )


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

        def body(batch: Any) -> None:
            drawn.add(batch)

        # Decorators applied as calls, not stacked on ``body``.
        strategy = batches(group.case, batch_size=opts.batch_size, dtype=group.dtype, seed=hs)
        test = _settings(opts.max_examples)(hseed(hs)(given(strategy)(body)))
        # No example database, so no database key: without one, Hypothesis would hash the
        # source of ``body`` at every run (inspect.getsource, ~0.6 ms per group).
        test._hypothesis_internal_database_key = None
        try:
            test()
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
    extra_paths: Sequence[Path] = (),
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
    if n_jobs > 1 and can_fork([d for d, skip in device_list if not skip]):
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
    path_list: Sequence[Path],
    shard_kn: tuple[int, int] | None,
    opts: _Options,
    emit: Callable[[Record], None],
) -> None:
    """The check loop: every case × device × dtype group in the shard, in order, in
    ``opts.jobs`` worker processes (`verijac._parallel`)."""
    from ._parallel import run_groups

    groups: list[tuple[_Group, str]] = []
    for case in case_list:
        func = func_for(case) if func_for is not None else case.implementation()
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
                            order=COMPUTES_ORDER[p.computes],
                            case_tolerances=case.tolerances,
                            path=p,
                            path_tolerances=opts.tolerances,
                        ),
                    )
                    for p in path_list
                ]
                groups.append((_Group(case, device, dtype, func, states, opts), why))

    def check(i: int, emit_record: Callable[[Record], None]) -> None:
        _run_group(*groups[i], emit_record)

    def lost(i: int, made: Sequence[Record], why: str) -> list[Record]:
        group = groups[i][0]
        have = {r.path for r in made}
        return [
            _record(dataclasses.replace(s, fields={"reason": why}), group, "error")
            for s in group.states
            if s.path.name not in have
        ]

    run_groups(len(groups), check, lost, emit, opts.jobs)


def memory_limit() -> int:
    """Bytes one batch may need: half the machine's memory (8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _check_memory(cases: Sequence[Case], paths: Sequence[Path], batch_size: int) -> None:
    """Refuse a batch whose exact reference alone would not fit in memory.

    The reference holds the Jacobian (N·m·n) and, for second-order paths, the Hessian
    (N·m·n²) in float64, with a few working copies each (bound, magnitude, perturbations).

    Raises:
        UsageError: the estimate exceeds `memory_limit`, with the estimate and the fix.
    """
    second = any(COMPUTES_ORDER[p.computes] == 2 for p in paths)
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


def _baseline_index(
    baseline: Report | str | os.PathLike[str] | None,
) -> dict[tuple[str, str, str, str], Record] | None:
    """The baseline's failing records by key (``None``: no baseline)."""
    if baseline is None:
        return None
    if not isinstance(baseline, Report):
        if not isinstance(baseline, (str, os.PathLike)):
            raise UsageError(
                f"baseline must be a Report or the path of a run file, got {baseline!r}"
            )
        baseline = load_run(baseline)
    return {r.key: r for r in baseline.records if r.failed or r.status == "known"}


def _baseline_name(baseline: Any) -> str:
    return "<Report>" if isinstance(baseline, Report) else os.fspath(baseline)


def against_baseline(record: Record, failing: dict[tuple[str, str, str, str], Record]) -> Record:
    """A failure the baseline already had becomes ``known`` (``known="baseline:STATUS"``
    keeps the status it had, for writing the next baseline); a new one stays a failure."""
    before = failing.get(record.key)
    if not record.failed or before is None:
        return record
    was = before.known.partition(":")[2] if before.status == "known" else before.status
    return dataclasses.replace(
        record,
        status="known",
        known=f"baseline:{record.status}",
        reason=f"known from the baseline ({was} there): {record.reason}",
    )


def as_baseline(report: Report) -> Report:
    """``report`` with ``known`` records back to the failures they are, to be written as the
    next baseline."""
    records = [
        dataclasses.replace(r, status=r.known.partition(":")[2], known="")
        if r.status == "known" and r.known.startswith("baseline:")
        else r
        for r in report.records
    ]
    return dataclasses.replace(report, records=records)


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


__all__ = [
    "against_baseline",
    "as_baseline",
    "check",
    "resolve_cases",
    "resolve_devices",
    "resolve_dtypes",
    "resolve_paths",
    "run",
]
