"""One path on one batch: run it, compare its result with the exact reference, and say
what an exception or an unmet requirement means for its record.

`verijac._runner` calls these for every active path of a group; `verijac._shrink` calls them
again on the smaller points it tries.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._compare import Comparison
from ._interrupt import time_limit
from ._reference import _Reference
from ._state import _Group, _PathState

if TYPE_CHECKING:
    import torch

    from ._case import Case
    from .paths._base import AutogradPath, Problem
    from .strategies import Batch

#: Points a path with ``batched=False`` receives from each batch.
UNBATCHED_POINTS = 4


def _unmet(path: AutogradPath, case: Case, pointwise: bool) -> str:
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


def _exception_outcome(
    path: AutogradPath, exc: BaseException, require: frozenset[str]
) -> tuple[str, str]:
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


def _problem(
    group: _Group, inputs: Sequence[torch.Tensor], t: torch.Tensor, c: torch.Tensor
) -> Problem:
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


def _run_path(
    state: _PathState, ref: _Reference
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None] | None:
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


def _compare_result(
    state: _PathState, ref: _Reference, result: torch.Tensor, moved: tuple[torch.Tensor, ...] | None
) -> Comparison:
    """Compare a path's result with the reference (at the moved points, if it moved them).

    The conditioning term is computed only for a result that exceeds the bound without it
    (it can only widen the bound).
    """
    if moved is not None:
        ref = ref.at(moved)
    check = ref.bound(state.path.computes, state.tolerance)
    cmp = check.check(result, locate=False, describe=False)
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
    cmp = _compare_result(state, ref, *out)
    if evidence is not None and not cmp.ok:
        from ._evidence import from_reference

        evidence.update(from_reference(ref, state.path.computes, state.tolerance, *out))
    return cmp


def _head_rows(
    heads: Sequence[int], n: int, need: int, per_batch: int = UNBATCHED_POINTS
) -> list[int]:
    """The rows a path that sees part of a chunk gets: the first ``per_batch`` of each drawn
    batch (its row 0 is generic, its basis tangent and special values come first), at most
    ``need``."""
    bounds = [*heads, n]
    rows: list[int] = []
    for start, end in itertools.pairwise(bounds):
        rows += range(start, min(start + per_batch, end))
    return rows[:need]


#: Work per point of a second-order composition, in evaluations of the function
#: (``m·n·max(m, n)`` for ``m`` output and ``n`` input elements: reverse over reverse runs
#: ``m·n`` vector-Jacobian products of ``m`` each), up to which it sees all of the profile's
#: `verijac.strategies.Profile.costly_points`; above it proportionally fewer, never fewer than
#: a per-point path sees. 16 × 16 × 16: every shipped case but the widest four.
COSTLY_WORK = 4096


def _point_cap(
    path: AutogradPath, case: Case, costly_points: int, unbatched_points: int
) -> int | None:
    """The most points ``path`` sees per case × device × dtype (``None``: every point drawn).

    A path that runs point by point sees ``unbatched_points``; a second-order path and a path
    that traces the function at every call (``traces``) see ``costly_points``, fewer where a
    point costs more than `COSTLY_WORK` evaluations. Such paths cost many times a
    first-order path per point or per call, and they exercise the same torch machinery at
    every point, so a share of the points says what all of them would.
    """
    from ._kinds import get_kind

    if not path.batched:
        return unbatched_points
    second = get_kind(path.computes).second_order
    if not (second or path.traces):
        return None
    cap = costly_points
    if second:
        m, n = case.n_out, case.n_in
        work = m * n * max(m, n)
        if work > COSTLY_WORK:
            cap = max(unbatched_points, cap * COSTLY_WORK // work)
    return cap


#: The sizes the first chunk of a group is cut into for batched paths (then the rest), where
#: the profile does not say (`Profile.pieces`): one row; 2 and a prime too when the group
#: draws at least `MORE_PIECES_FROM` batches (each cut costs every batched path one more call).
PIECES = (1,)

MORE_PIECES = (1, 2, 7)

MORE_PIECES_FROM = 8


def _pieces(
    group: _Group, inputs: tuple[torch.Tensor, ...], batch: Batch, ref: _Reference
) -> list[_Reference] | None:
    """References for this chunk cut into the rest and its pieces (``None``: no cut)."""
    sizes: tuple[int, ...] = ()
    if group.chunks == 1:
        if group.opts.pieces is not None:
            sizes = group.opts.pieces
        else:
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
        piece = ref.sibling(problem)
        for key in ("jac", "hess"):  # rows of the chunk's reference: not evaluated again
            if key in ref.cache and ref.cache[key][0]:
                piece.cache[key] = (True, ref.cache[key][1][k])
        out.append(piece)
    return out


def _op_kinds(
    func: Callable[..., Any], inputs: tuple[torch.Tensor, ...], seconds: float | None
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
