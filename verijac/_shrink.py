"""A mismatch narrowed to a minimal failing point and recorded in its path's state.

A failing batch is cut down to its worst row; each coordinate of that point then moves toward
simpler values (0, ±1, fewer digits, the domain's ends) while the path still fails there, with
at most `SHRINK_CALLS` path calls. The shrinking is verijac's own, with the path in the loop,
not Hypothesis's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._compare import Comparison
from ._evaluate import _evaluate, _problem
from ._interrupt import raise_if_interrupted
from ._kinds import get_kind
from ._points import _point_dict, _short
from ._records import _known, entry_label
from ._reference import _Reference
from ._state import _Group, _PathState

if TYPE_CHECKING:
    import torch

    from .paths._base import Problem

#: Path calls the shrinker may spend on one failure.
SHRINK_CALLS = 64


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
                    normwise="linalg" in group.op_kinds,
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
    kind = get_kind(state.path.computes)
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
        tangent=[float(v) for v in t[0].tolist()] if kind.tangent else None,
        cotangent=[float(v) for v in c[0].tolist()] if kind.cotangent else None,
        evidence=evidence or None,
    )


def _candidates(x: float, lo: float, hi: float) -> list[float]:
    out = [0.0, 1.0, -1.0, float(round(x))]
    out += [float(f"{x:.{d}g}") for d in range(1, 7)]
    out += [lo, hi, x / 2]
    return out


def _complexity(x: float) -> tuple[int, float]:
    return len(repr(x).removesuffix(".0").lstrip("-")), abs(x)


def _shrink(
    state: _PathState,
    group: _Group,
    inputs: tuple[torch.Tensor, ...],
    t: torch.Tensor,
    c: torch.Tensor,
    cmp: Comparison,
) -> tuple[tuple[torch.Tensor, ...], Comparison]:
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

    def build(vals: list[float]) -> tuple[torch.Tensor, ...]:
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
                case,
                problem,
                group.tdtype,
                group.opts.seed,
                group.opts.reference_digits,
                normwise="linalg" in group.op_kinds,
            )
            if ref.defect(get_kind(state.path.computes).second_order)[0]:
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
