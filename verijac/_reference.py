"""The exact reference: a case's derivatives evaluated in float64, in the paths' flat layout,
and `_Reference`, what one batch needs of it, computed lazily and shared by every path
checked on that batch (with the bound each kind of result is compared against)."""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._compare import Bound, bound, weights
from ._kinds import BY_NAME, get_kind
from ._points import _point_dict
from ._tolerances import COND_ULPS, Tolerance
from .paths._base import Problem, flat_hessian, flat_jacobian

if TYPE_CHECKING:
    import torch

    from ._case import Case


_UNUSED: weakref.WeakKeyDictionary[Any, tuple[bool, ...]] = weakref.WeakKeyDictionary()


def unused_inputs(case: Case) -> tuple[bool, ...]:
    """Per input, whether no output depends on it (its Jacobian columns are exactly zero);
    cached per case (it walks the expressions)."""
    if case not in _UNUSED:
        out = []
        for v in case.variables:
            syms = set(v.symbols)
            out.append(not any(e.free_symbols & syms for e in case.out_exprs))
        _UNUSED[case] = tuple(out)
    return _UNUSED[case]


def make_problem(
    case: Case,
    inputs: Sequence[torch.Tensor],
    *,
    func: Callable[..., Any] | None = None,
    tangents: torch.Tensor | None = None,
    cotangents: torch.Tensor | None = None,
    pointwise: bool = True,
    generator: torch.Generator | None = None,
) -> Problem:
    """A `Problem` for ``case`` at the batch ``inputs`` (one ``(N, *shape)`` tensor per input).

    Tangents and cotangents default to standard normal draws from ``generator``.
    """
    import torch

    inputs = tuple(inputs)
    ref = inputs[0]
    n_points = int(ref.shape[0])
    if tangents is None:
        tangents = torch.randn(n_points, case.n_in, generator=generator, dtype=torch.float64)
    if cotangents is None:
        cotangents = torch.randn(n_points, case.n_out, generator=generator, dtype=torch.float64)
    return Problem(
        func=func if func is not None else case.implementation(),
        inputs=inputs,
        in_shapes=tuple(v.shape for v in case.variables),
        out_shapes=tuple(o.shape for o in case.outputs),
        tuple_inputs=case.tuple_inputs,
        tuple_outputs=case.tuple_outputs,
        tangents=tangents.to(dtype=ref.dtype, device=ref.device),
        cotangents=cotangents.to(dtype=ref.dtype, device=ref.device),
        pointwise=pointwise,
        unused_inputs=unused_inputs(case),
        extra={"case": case},
        truth=CaseTruth(case),
    )


class CaseTruth:
    """A case's exact math as paths see it (`verijac.paths.Truth`)."""

    def __init__(self, case: Case) -> None:
        from ._tolerances import COND_ULPS

        self.case = case
        self.input_names = case.input_names
        self.cond_ulps = COND_ULPS

    def values(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return exact_values(self.case, inputs)

    def jacobian(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return exact_jacobian(self.case, inputs)

    def tolerance(self, dtype: torch.dtype, order: int, *, own: bool = True) -> tuple[float, float]:
        from ._tolerances import base_tolerance, resolve_tolerance

        tol = (
            resolve_tolerance(dtype, order=order, case_tolerances=self.case.tolerances)
            if own
            else base_tolerance(dtype, order=order)
        )
        return tol.rtol, tol.atol


def _reference_device(device: torch.device) -> torch.device:
    import torch

    # MPS has no float64: evaluate the reference on the CPU there.
    return torch.device("cpu") if torch.device(device).type == "mps" else device


def _f64(inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    import torch

    dev = _reference_device(inputs[0].device)
    return tuple(x.detach().to(device=dev, dtype=torch.float64) for x in inputs)


def exact_values(case: Case, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The outputs at ``inputs`` in float64, flattened to ``(N, m)``."""
    import torch

    args = _f64(inputs)
    out = case.torch_function()(*args)
    outs = out if case.tuple_outputs else (out,)
    return torch.cat([o.reshape(args[0].shape[0], -1) for o in outs], dim=1)


def exact_jacobian(
    case: Case,
    inputs: Sequence[torch.Tensor],
    digits: int | None = None,
    *,
    suspect_rtol: float | None = None,
    negligible: float = 0.0,
    settle_rows: int | None = None,
) -> torch.Tensor:
    """The exact Jacobian at ``inputs`` in float64, flattened to ``(N, m, n)``: the generated
    code run in float64, or with ``digits``, mpmath at that precision (`verijac._precise`).

    In float64, rows where the generated code cannot be trusted (`suspect_rows`: NaN/inf, or
    a value that jumps when the point moves by a few roundoffs, as at a removable
    singularity such as sin(x)/x near 0) are evaluated with mpmath instead, except finite rows
    whose every entry is below ``negligible`` in magnitude (`_settled`); at most
    ``settle_rows`` (default `SETTLE_ROWS`) finite rows.
    """
    if digits is not None:
        from ._precise import precise_jacobian

        return precise_jacobian(case, inputs, digits).to(_reference_device(inputs[0].device))
    return _settled(
        case,
        "jacobian",
        _f64(inputs),
        lambda at: _generated_jacobian(case, at),
        lambda at: exact_values(case, at),
        suspect_rtol,
        negligible,
        settle_rows,
    )


def _generated_jacobian(case: Case, at: Sequence[torch.Tensor]) -> torch.Tensor:
    """The generated Jacobian code at float64 points, ``(N, m, n)``."""
    return flat_jacobian(
        case.torch_jacobian()(*at),
        [o.shape for o in case.outputs],
        [v.shape for v in case.variables],
        tuple_outputs=case.tuple_outputs,
        tuple_inputs=case.tuple_inputs,
    )


#: Cases with at most this many input elements get `_Reference.cond` from one move per
#: element (its first-order worst case); wider ones from two moves with random signs.
COND_COORDINATES = 64
#: Entries (Jacobian and Hessian, all points) of one stacked evaluation of `_Reference.cond`'s
#: moved points: 32 MiB in float64, times the few working copies `_settled` makes.
COND_STACK_ENTRIES = 2**22

#: At most this many finite suspect rows of one evaluation are settled with mpmath (the rest
#: stay float64); rows float64 gives as NaN/inf are always settled.
SETTLE_ROWS = 64
#: Digits of the mpmath evaluation of suspect rows.
SETTLE_DIGITS = 30
#: A row whose float64 value and alternatives all stay below this fraction of the smallest
#: ``atol`` it is compared under is not settled (`_settled`): its error moves the bound by less
#: than 0.1 % of atol. (network_sdpa's Hessian at a saturated softmax: entries of 1e-12 that
#: float64 rounds to 0, beside the Hessian's atol 4e-7, cost 7 s of mpmath in `ci`.)
NEGLIGIBLE = 1e-3
#: Roundoff noise beyond this, relative (the second difference of the value under moves of the
#: point by `MOVE_ULPS` roundoffs either way, `suspect_rows`), marks a row whose float64
#: evaluation cancels (a well-conditioned value's noise is a few times 1e-16).
SUSPECT_RTOL = 1e-9
#: An entry's noise is measured against at least this fraction of its row's largest entry:
#: with `SUSPECT_RTOL`, noise up to 1e-14 of the row's largest (~45 float64 roundoffs) is
#: left alone. That is the roundoff any float64 evaluation of the row carries (a Hessian entry
#: sums dozens of terms of the row's size: the 8-output attention Hessian's zero entries are
#: noise of 1e-15 of their row), torch's float64 result included, so mpmath would not make
#: the comparison any closer; a cancellation worth settling loses digits by the million.
SUSPECT_FLOOR = 1e-5
MOVE_ULPS = 16
#: The reference evaluates a point and its moves in one call when the three results hold at
#: most this many entries together (32 MiB in float64).
ONE_CALL_ENTRIES = 2**22


#: Relative step of the central difference that cross-checks a derivative against the
#: value (or Jacobian) below it, and the relative disagreement that marks a row.
FD_STEP = 1e-6
FD_RTOL = 1e-3
#: Roundoff of each side of the central difference, in units of its own magnitude: an entry
#: of ``lower`` evaluated without cancellation is within a few roundoffs of its value, so its
#: difference carries noise up to ``FD_NOISE_ULPS · eps · |lower| / FD_STEP``, which is not
#: evidence against the derivative (`inconsistent_rows`).
FD_NOISE_ULPS = 8


def suspect_rows(
    value: torch.Tensor, up: torch.Tensor, down: torch.Tensor, rtol: float | None = None
) -> torch.Tensor:
    """Rows ``(N,)`` of ``value`` that are not finite, or whose roundoff noise exceeds
    ``rtol`` (default `SUSPECT_RTOL`) relative in some entry, where ``up`` and ``down`` are
    the evaluations at the point moved by the same few roundoffs either way.

    The noise is the second difference ``|up + down - 2·value| / 2``: the change a smooth
    value makes under the moves cancels in it (what is left is of the order of the move
    squared, ~1e-29), while the noise of an evaluation that cancels does not (it differs at
    every nearby point). A one-sided change would flag an entry that is merely steep beside
    its own size: a Hessian entry of 1e-6 of its row's largest whose derivative is of the
    row's size moves by ~4e-15 of the row under the moves, though float64 evaluates it to
    its last digits.

    An entry is measured against its own magnitude, but never against less than
    `SUSPECT_FLOOR` of its row's largest: an entry that is zero in truth and roundoff noise in
    float64 (an entry of a Hessian whose terms cancel, 1e-17 beside entries of 1) is 100 %
    noise and would flag the row, though its error is at float64's own resolution at that
    row's scale."""
    import torch

    rtol = SUSPECT_RTOL if rtol is None else rtol
    flat = value.reshape(value.shape[0], -1)
    bad = ~torch.isfinite(flat).all(dim=1)
    finite = torch.where(torch.isfinite(flat), flat.abs(), torch.zeros_like(flat))
    floor = SUSPECT_FLOOR * finite.amax(dim=1, keepdim=True) if flat.shape[1] else finite
    scale = torch.maximum(flat.abs(), floor)
    noise = (up.reshape(flat.shape) + down.reshape(flat.shape) - 2 * flat).abs() / 2
    jump = (noise > rtol * scale) & (noise > 1e-300)
    return bad | (jump | ~torch.isfinite(noise)).any(dim=1)


def inconsistent_rows(
    value: torch.Tensor,
    args: Sequence[torch.Tensor],
    lower: Callable[[Sequence[torch.Tensor]], torch.Tensor],
    negligible: float = 0.0,
) -> torch.Tensor:
    """Rows ``(N,)`` where the derivative ``value`` (``(N, …, n)``, the last axis the inputs)
    disagrees with a central difference of ``lower`` along a random direction by more than
    `FD_RTOL` of the row's scale, beyond the difference's own roundoff (`FD_NOISE_ULPS`);
    a finite row where both stay below ``negligible`` in every entry is not marked.

    This catches what the moved-point test cannot: a cancellation that rounds to the same
    wrong value at every nearby point (the second derivative of sin(x)/x at 1e-9 evaluates
    to exactly 0 in float64, where the truth is -1/3).
    """
    import torch

    n_points = value.shape[0]
    gen = torch.Generator().manual_seed(0)
    sizes = [int(x[0].numel()) if x.dim() else 1 for x in args]
    v = torch.randn(n_points, sum(sizes), generator=gen, dtype=torch.float64).to(value.device)
    steps, pos = [], 0
    for x, k in zip(args, sizes, strict=True):
        vx = v[:, pos : pos + k].reshape(x.shape)
        steps.append(FD_STEP * torch.clamp(x.abs(), min=1.0) * vx)
        pos += k
    # Both sides in one call: the generated code's cost is mostly per operation, not per row.
    up, down = lower(
        tuple(torch.cat([x + h, x - h]) for x, h in zip(args, steps, strict=True))
    ).split(n_points)
    # Directional derivative: value · (h / FD_STEP) against (up - down) / (2 FD_STEP).
    h_flat = torch.cat([h.reshape(n_points, -1) for h in steps], dim=1) / FD_STEP
    along = (value * h_flat.reshape(n_points, *[1] * (value.dim() - 2), -1)).sum(-1)
    fd = (up - down).reshape(n_points, -1) / (2 * FD_STEP)
    along = along.reshape(n_points, -1)
    # The difference's own roundoff, entry by entry: where the derivative is zero in truth
    # (attention's Hessian at a saturated softmax, 1e-12 beside a Jacobian of 1e-2), the
    # difference is that noise and nothing else.
    noise = FD_NOISE_ULPS * torch.finfo(torch.float64).eps / (2 * FD_STEP)
    noise = noise * (up.abs() + down.abs()).reshape(n_points, -1)
    excess = (fd - along).abs() - noise
    scale = torch.maximum(fd.abs(), along.abs()).amax(dim=1)
    bad = (excess > FD_RTOL * scale.unsqueeze(1)).any(dim=1) & ~(scale < negligible)
    return bad | ~torch.isfinite(excess).all(dim=1)


def _settled(
    case: Case,
    which: str,
    args: tuple[torch.Tensor, ...],
    evaluate: Callable[[Sequence[torch.Tensor]], torch.Tensor],
    lower: Callable[[Sequence[torch.Tensor]], torch.Tensor],
    suspect_rtol: float | None = None,
    negligible: float = 0.0,
    settle_rows: int | None = None,
) -> torch.Tensor:
    """``evaluate(args)`` with its `suspect_rows` (jumps beyond ``suspect_rtol``, default
    `SUSPECT_RTOL`) and `inconsistent_rows` evaluated by mpmath (`SETTLE_DIGITS`).

    A finite row whose entries are all below ``negligible`` in magnitude (at the point and its
    moves for the noise test; in the derivative and the central difference for the
    consistency test, so that a value that rounds to zero where the truth is not still is
    settled) is kept as float64 evaluates it: its error is below that too. The caller passes
    a small fraction of the smallest absolute tolerance the row will be compared under
    (`NEGLIGIBLE`): an error there cannot move a verdict.
    """
    import torch

    # Every input with the batch in front (a path that moves the points may pass some
    # without a batch dimension: the others fixed at one row).
    batched = [x for x, v in zip(args, case.variables, strict=True) if x.dim() > len(v.shape)]
    n_points = int(batched[0].shape[0]) if batched else 1
    args = tuple(
        x.expand(n_points, *v.shape) if x.dim() == len(v.shape) else x
        for x, v in zip(args, case.variables, strict=True)
    )
    # The point and its moves either way in one call where the result is small (the
    # generated code's cost is mostly per operation, not per row: a third of the time for a
    # large Hessian); else one call each, so that memory stays that of one evaluation.
    u = MOVE_ULPS * torch.finfo(torch.float64).eps
    per_row = case.n_out * case.n_in * (case.n_in if which == "hessian" else 1)
    if 3 * n_points * per_row <= ONE_CALL_ENTRIES:
        moved = tuple(torch.cat([x, x * (1 + u), x * (1 - u)]) for x in args)
        value, up, down = evaluate(moved).split(n_points)
        value = value.clone()  # not a view that keeps the moved rows alive in the cache
    else:
        value, up, down = (evaluate(tuple(x * (1 + s * u) for x in args)) for s in (0, 1, -1))
    suspect = suspect_rows(value, up, down, suspect_rtol)
    # A NaN/inf row has no size below anything: it stays suspect.
    if negligible > 0 and value.numel():
        size = torch.stack([value.abs(), up.abs(), down.abs()]).reshape(3, n_points, -1)
        suspect &= ~(size.amax(dim=2).amax(dim=0) < negligible)
    bad = suspect | inconsistent_rows(value, args, lower, negligible)
    # Every row float64 could not evaluate (0/0 at an exact special value such as a zero
    # coordinate), else it would read as a defect of the case; of the finite suspect rows,
    # the first ``settle_rows`` (`SETTLE_ROWS`).
    finite = torch.isfinite(value.reshape(n_points, -1)).all(dim=1)
    cap = SETTLE_ROWS if settle_rows is None else settle_rows
    rows = torch.cat(
        [(bad & ~finite).nonzero().flatten(), (bad & finite).nonzero().flatten()[:cap]]
    )
    if rows.numel() == 0:
        return value
    from ._errors import CaseError
    from ._precise import settle

    # A row mpmath cannot settle either (a cancellation beyond `MAX_DIGITS`) keeps its
    # float64 value (the bound's conditioning term covers it); the others are settled.
    try:
        exact, ok = settle(case, which, [x[rows] for x in args], SETTLE_DIGITS, value.shape[1:])
    except CaseError:  # mpmath cannot evaluate the case at all: keep float64
        return value
    rows, exact = rows[ok.to(rows.device)], exact[ok]
    rows = rows.to(value.device)
    exact = exact.to(value.device)
    # mpmath's NaN where float64 has ±inf is a pole seen from both sides: keep the inf.
    before = value[rows]
    exact = torch.where(torch.isnan(exact) & torch.isinf(before), before, exact)
    value[rows] = exact
    return value


def exact_hessian(
    case: Case,
    inputs: Sequence[torch.Tensor],
    digits: int | None = None,
    *,
    suspect_rtol: float | None = None,
    negligible: float = 0.0,
    settle_rows: int | None = None,
) -> torch.Tensor:
    """The exact Hessian at ``inputs`` in float64, flattened to ``(N, m, n, n)`` (``digits``
    and suspect rows: as in `exact_jacobian`)."""
    if digits is not None:
        from ._precise import precise_hessian

        return precise_hessian(case, inputs, digits).to(_reference_device(inputs[0].device))

    def evaluate(at: Sequence[torch.Tensor]) -> torch.Tensor:
        return flat_hessian(
            case.torch_hessian()(*at),
            [o.shape for o in case.outputs],
            [v.shape for v in case.variables],
            tuple_outputs=case.tuple_outputs,
            tuple_inputs=case.tuple_inputs,
        )

    return _settled(
        case,
        "hessian",
        _f64(inputs),
        evaluate,
        lambda at: _generated_jacobian(case, at),
        suspect_rtol,
        negligible,
        settle_rows,
    )


def expected(
    computes: str, problem: Problem, jac: torch.Tensor, hess: torch.Tensor | None = None
) -> torch.Tensor:
    """The exact value a path computing ``computes`` must return (`verijac._kinds`).

    Args:
        jac: ``(N, m, n)`` float64; hess: ``(N, m, n, n)`` float64 (second-order kinds only).
    """
    import torch

    kind = BY_NAME.get(computes)
    if kind is None or kind.exact is None:
        raise ValueError(f"no exact reference for computes={computes!r}")
    t = problem.tangents.to(device=jac.device, dtype=torch.float64)
    c = problem.cotangents.to(device=jac.device, dtype=torch.float64)
    return kind.exact(jac, hess, t, c)


# -- the reference of one batch ----------------------------------------------------------


@dataclass(eq=False)
class _Reference:
    """The exact reference for one problem (points, tangents, cotangents), computed lazily and
    shared by every path that runs on that problem.

    The Jacobian, the Hessian (second-order paths only), each kind of exact result, its
    `Bound` and its conditioning term are each computed at most once per batch.
    """

    case: Case
    problem: Problem
    dtype: torch.dtype
    seed: int
    #: Decimal digits of the mpmath reference; ``None``: the generated code in float64.
    digits: int | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    #: Rows outside the case's domain (``None``: none), never compared: points a path moved
    #: itself, e.g. input 0 of one row with the others of row 0, may leave the domain.
    outside: torch.Tensor | None = None
    #: Whether the function's graph holds a linear-algebra op (`verijac._defects.op_kinds`
    #: ``"linalg"``): its roundoff is normwise, see `perturbed`.
    normwise: bool = False
    #: Magnitude below which a float64 row is not re-evaluated with mpmath (`_settled`):
    #: `NEGLIGIBLE` of the smallest ``atol`` the comparisons use (0: every suspect row).
    negligible: float = 0.0
    #: At most this many finite suspect rows are settled with mpmath (`SETTLE_ROWS` per
    #: point set; a reference of several point sets stacked gets that many times more).
    settle_rows: int = SETTLE_ROWS

    def sibling(self, problem: Problem, sets: int = 1) -> _Reference:
        """The reference of another problem of the same case, compared the same way;
        ``sets``: how many point sets ``problem`` stacks (`cond`'s moves)."""
        return _Reference(
            self.case,
            problem,
            self.dtype,
            self.seed,
            self.digits,
            normwise=self.normwise,
            negligible=self.negligible,
            settle_rows=SETTLE_ROWS * sets,
        )

    @property
    def inputs(self) -> tuple[torch.Tensor, ...]:
        return self.problem.inputs

    @property
    def jac(self) -> torch.Tensor:
        return self._once("jac", lambda: self._evaluated(exact_jacobian))

    @property
    def hess(self) -> torch.Tensor:
        return self._once("hess", lambda: self._evaluated(exact_hessian))

    def _evaluated(self, exact: Callable[..., torch.Tensor]) -> torch.Tensor:
        """``exact`` (`exact_jacobian` or `exact_hessian`) at this reference's points, settled
        as this reference settles."""
        return exact(
            self.case,
            self.inputs,
            self.digits,
            suspect_rtol=self.suspect_rtol,
            negligible=self.negligible,
            settle_rows=self.settle_rows,
        )

    @property
    def suspect_rtol(self) -> float:
        """The jump that sends a float64 row to mpmath (`suspect_rows`) when checking
        `dtype`: `SUSPECT_RTOL` (1 % of float64's rtol), or a tenth of the checked dtype's
        epsilon where that is larger. A float64 value uncertain in its ninth digit is exact
        for a float32 check (1.2e-8 against float32's 1.2e-7 rounding) and is not settled
        again there."""
        import torch

        return max(SUSPECT_RTOL, torch.finfo(self.dtype).eps / 10)

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

    def _second(self, computes: str) -> torch.Tensor | None:
        return self.hess if get_kind(computes).second_order else None

    def exact(self, computes: str) -> torch.Tensor:
        """The exact result a path computing ``computes`` must return (float64)."""
        key = ("exact", computes)
        if key not in self.cache:
            self.cache[key] = expected(computes, self.problem, self.jac, self._second(computes))
        return self.cache[key]

    def bound(self, computes: str, tolerance: Tolerance) -> Bound:
        """The allowed error per entry for ``computes`` under ``tolerance`` (without cond)."""
        key = ("bound", computes, tolerance)
        if key not in self.cache:
            scale = weight = None
            if not get_kind(computes).plain:
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

    def magnitude(self, computes: str) -> torch.Tensor:
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
        if get_kind(computes).second_order:
            abs_hess = self.cache.get("abs_hess")
            if abs_hess is None:
                abs_hess = self.cache["abs_hess"] = self.hess.abs()
        return expected(computes, abs_problem, abs_jac, abs_hess)

    def cond(self, computes: str) -> torch.Tensor:
        """How far the exact result may move when the inputs move by `COND_ULPS` roundoffs:
        the sum over input elements of the change each one's move makes (the first-order
        worst case over the signs), or, for cases of more than `COND_COORDINATES` input
        elements, the largest change under two moves of every element with random signs."""
        key = ("cond", computes)
        if key not in self.cache:
            import torch

            exp = self.exact(computes)
            cond = torch.zeros_like(exp)
            for stacked, count in self.perturbed:
                moved = stacked.exact(computes).reshape(count, *exp.shape)
                for k in range(count):
                    change = (moved[k] - exp).abs()
                    cond = cond + change if self.coordinatewise else cond.maximum(change)
            self.cache[key] = torch.nan_to_num(cond, nan=0.0, posinf=0.0)
        return self.cache[key]

    @property
    def coordinatewise(self) -> bool:
        """Whether `perturbed` moves one input element at a time (every input batched and at
        most `COND_COORDINATES` elements per point)."""
        batched = all(
            x.dim() == len(v.shape) + 1
            for x, v in zip(self.inputs, self.case.variables, strict=True)
        )
        return batched and self.case.n_in <= COND_COORDINATES

    @cached_property
    def perturbed(self) -> list[tuple[_Reference, int]]:
        """The reference at the inputs moved by `COND_ULPS` roundoffs of the path's dtype:
        one input element at a time (`coordinatewise`), else every element with random signs,
        twice. The moved point sets are stacked along the batch, as many per reference as
        `COND_STACK_ENTRIES` allows (one call of the generated code instead of one per input
        element): ``(reference, how many point sets it stacks)``.

        Each element moves relative to itself; with `normwise`, each element of an array input
        moves by at least that many roundoffs of the input's largest element at that point. A
        backward-stable matrix algorithm (an SVD, a factorisation, a solve) is exact for a
        matrix perturbed *normwise*: a zero or tiny element beside elements of order 1 is as
        uncertain as they are, and near a tie of singular values that moves a second
        derivative far more than moving each element relative to itself does. Random signs
        alone can miss the one combination that matters (two small off-diagonal elements of
        an SVD moving together): a false float32 mismatch of ``svdvals``' Hessian."""
        import torch

        u = torch.finfo(self.dtype).eps / 2 * COND_ULPS
        sizes = []
        for x in self.inputs:
            x64 = x.detach().to(torch.float64)
            size = x64.abs()
            if self.normwise and x64.dim() >= 2:  # (N, *shape) of an array input
                top = size.reshape(size.shape[0], -1).amax(dim=1)
                size = size.maximum(top.reshape(-1, *[1] * (x64.dim() - 1)))
            sizes.append((x64, size))
        moves: list[list[torch.Tensor]] = []
        if self.coordinatewise:
            for i, (x64, size) in enumerate(sizes):
                for k in range(int(x64[0].numel()) if x64.dim() > 1 else 1):
                    step = torch.zeros_like(x64).reshape(x64.shape[0], -1)
                    step[:, k] = u
                    moved = [x for x, _ in sizes]
                    moved[i] = x64 + step.reshape(x64.shape) * size
                    moves.append(moved)
        else:
            gen = torch.Generator().manual_seed(self.seed)
            for _ in range(2):
                moved = []
                for x64, size in sizes:
                    signs = torch.where(torch.rand(x64.shape, generator=gen) < 0.5, -u, u)
                    moved.append(x64 + signs.to(torch.float64).to(x64.device) * size)
                moves.append(moved)
        # Inputs a moving path passed without a batch dimension (fixed at one row) are
        # expanded to the batch first, as `_settled` would: point sets stack along it.
        variables = self.case.variables
        batched = [x for x, v in zip(self.inputs, variables, strict=True) if x.dim() > len(v.shape)]
        n_points = int(batched[0].shape[0]) if batched else 1
        moves = [
            [
                x.expand(n_points, *v.shape) if x.dim() == len(v.shape) else x
                for x, v in zip(moved, variables, strict=True)
            ]
            for moved in moves
        ]
        per_set = max(n_points * self.case.n_out * self.case.n_in * (self.case.n_in + 1), 1)
        stack = max(1, COND_STACK_ENTRIES // per_set)
        out = []
        for start in range(0, len(moves), stack):
            sets = moves[start : start + stack]
            problem = dataclasses.replace(
                self.problem,
                inputs=tuple(torch.cat(parts) for parts in zip(*sets, strict=True)),
                tangents=self.problem.tangents.repeat(len(sets), 1),
                cotangents=self.problem.cotangents.repeat(len(sets), 1),
            )
            out.append((self.sibling(problem, len(sets)), len(sets)))
        return out

    def at(self, inputs: tuple[torch.Tensor, ...]) -> _Reference:
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

        ref = self.sibling(dataclasses.replace(self.problem, inputs=tuple(inputs)))
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
