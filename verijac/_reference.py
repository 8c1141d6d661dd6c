"""The exact reference: a case's derivatives evaluated in float64, in the paths' flat layout."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .paths._base import Problem, flat_hessian, flat_jacobian

if TYPE_CHECKING:
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
    inputs: Sequence[Any],
    *,
    func: Callable[..., Any] | None = None,
    tangents: Any = None,
    cotangents: Any = None,
    pointwise: bool = True,
    generator: Any = None,
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
    )


def _reference_device(device: Any) -> Any:
    import torch

    # MPS has no float64: evaluate the reference on the CPU there.
    return torch.device("cpu") if torch.device(device).type == "mps" else device


def _f64(inputs: Sequence[Any]) -> tuple[Any, ...]:
    import torch

    dev = _reference_device(inputs[0].device)
    return tuple(x.detach().to(device=dev, dtype=torch.float64) for x in inputs)


def exact_values(case: Case, inputs: Sequence[Any]) -> Any:
    """The outputs at ``inputs`` in float64, flattened to ``(N, m)``."""
    import torch

    args = _f64(inputs)
    out = case.torch_function()(*args)
    outs = out if case.tuple_outputs else (out,)
    return torch.cat([o.reshape(args[0].shape[0], -1) for o in outs], dim=1)


def exact_jacobian(case: Case, inputs: Sequence[Any], digits: int | None = None) -> Any:
    """The exact Jacobian at ``inputs`` in float64, flattened to ``(N, m, n)``: the generated
    code run in float64, or with ``digits``, mpmath at that precision (`verijac._precise`).

    In float64, rows where the generated code cannot be trusted (`suspect_rows`: NaN/inf, or
    a value that jumps when the point moves by a few roundoffs, as at a removable
    singularity such as sin(x)/x near 0) are evaluated with mpmath instead.
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
    )


def _generated_jacobian(case: Case, at: Sequence[Any]) -> Any:
    """The generated Jacobian code at float64 points, ``(N, m, n)``."""
    return flat_jacobian(
        case.torch_jacobian()(*at),
        [o.shape for o in case.outputs],
        [v.shape for v in case.variables],
        tuple_outputs=case.tuple_outputs,
        tuple_inputs=case.tuple_inputs,
    )


#: At most this many rows of one evaluation are settled with mpmath (the rest stay float64).
SETTLE_ROWS = 64
#: Digits of the mpmath evaluation of suspect rows.
SETTLE_DIGITS = 30
#: A relative change beyond this when the point moves by `MOVE_ULPS` roundoffs marks a row
#: whose float64 evaluation cancels (a well-conditioned value moves by ~1e-14).
SUSPECT_RTOL = 1e-9
MOVE_ULPS = 16


#: Relative step of the central difference that cross-checks a derivative against the
#: value (or Jacobian) below it, and the relative disagreement that marks a row.
FD_STEP = 1e-6
FD_RTOL = 1e-3


def suspect_rows(value: Any, moved: Sequence[Any]) -> Any:
    """Rows ``(N,)`` of ``value`` that are not finite, or change by more than `SUSPECT_RTOL`
    relative in some entry between ``value`` and the evaluations at moved points."""
    import torch

    flat = value.reshape(value.shape[0], -1)
    bad = ~torch.isfinite(flat).all(dim=1)
    scale = flat.abs()
    for other in moved:
        diff = (other.reshape(flat.shape) - flat).abs()
        jump = (diff > SUSPECT_RTOL * scale) & (diff > 1e-300)
        bad |= (jump | ~torch.isfinite(diff)).any(dim=1)
    return bad


def inconsistent_rows(
    value: Any, args: Sequence[Any], lower: Callable[[Sequence[Any]], Any]
) -> Any:
    """Rows ``(N,)`` where the derivative ``value`` (``(N, …, n)``, the last axis the inputs)
    disagrees with a central difference of ``lower`` along a random direction by more than
    `FD_RTOL` of the row's scale.

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
    up = lower(tuple(x + h for x, h in zip(args, steps, strict=True)))
    down = lower(tuple(x - h for x, h in zip(args, steps, strict=True)))
    # Directional derivative: value · (h / FD_STEP) against (up - down) / (2 FD_STEP).
    h_flat = torch.cat([h.reshape(n_points, -1) for h in steps], dim=1) / FD_STEP
    along = (value * h_flat.reshape(n_points, *[1] * (value.dim() - 2), -1)).sum(-1)
    fd = (up - down).reshape(along.shape) / (2 * FD_STEP)
    err = (fd - along).reshape(n_points, -1).abs().amax(dim=1)
    scale = torch.maximum(fd.reshape(n_points, -1).abs(), along.reshape(n_points, -1).abs())
    bad = err > FD_RTOL * scale.amax(dim=1)
    return bad | ~torch.isfinite(err)


def _settled(
    case: Case,
    which: str,
    args: tuple[Any, ...],
    evaluate: Callable[[Sequence[Any]], Any],
    lower: Callable[[Sequence[Any]], Any],
) -> Any:
    """``evaluate(args)`` with its `suspect_rows` and `inconsistent_rows` evaluated by
    mpmath (`SETTLE_DIGITS`)."""
    import torch

    value = evaluate(args)
    # Every input with the batch in front (a path that moves the points may pass some
    # without a batch dimension: the others fixed at one row).
    n_points = value.shape[0]
    args = tuple(
        x.expand(n_points, *v.shape) if x.dim() == len(v.shape) else x
        for x, v in zip(args, case.variables, strict=True)
    )
    u = MOVE_ULPS * torch.finfo(torch.float64).eps
    moved = [evaluate(tuple(x * (1 + s * u) for x in args)) for s in (1, -1)]
    bad = suspect_rows(value, moved) | inconsistent_rows(value, args, lower)
    rows = bad.nonzero().flatten()[:SETTLE_ROWS]
    if rows.numel() == 0:
        return value
    from ._errors import CaseError
    from ._precise import _evaluate

    try:
        exact = _evaluate(
            case, which, [x[rows] for x in args], SETTLE_DIGITS, tuple(value.shape[1:])
        )
    except CaseError:  # mpmath cannot settle them either: keep float64 (the bound's cond)
        return value
    rows = rows.to(value.device)
    exact = exact.to(value.device)
    # mpmath's NaN where float64 has ±inf is a pole seen from both sides: keep the inf.
    before = value[rows]
    exact = torch.where(torch.isnan(exact) & torch.isinf(before), before, exact)
    value = value.clone()
    value[rows] = exact
    return value


def exact_hessian(case: Case, inputs: Sequence[Any], digits: int | None = None) -> Any:
    """The exact Hessian at ``inputs`` in float64, flattened to ``(N, m, n, n)`` (``digits``
    and suspect rows: as in `exact_jacobian`)."""
    if digits is not None:
        from ._precise import precise_hessian

        return precise_hessian(case, inputs, digits).to(_reference_device(inputs[0].device))

    def evaluate(at: Sequence[Any]) -> Any:
        return flat_hessian(
            case.torch_hessian()(*at),
            [o.shape for o in case.outputs],
            [v.shape for v in case.variables],
            tuple_outputs=case.tuple_outputs,
            tuple_inputs=case.tuple_inputs,
        )

    return _settled(
        case, "hessian", _f64(inputs), evaluate, lambda at: _generated_jacobian(case, at)
    )


def expected(computes: str, problem: Problem, jac: Any, hess: Any = None) -> Any:
    """The exact value a path computing ``computes`` must return (see `verijac.paths`).

    Args:
        jac: ``(N, m, n)`` float64; hess: ``(N, m, n, n)`` float64 (second-order kinds only).
    """
    import torch

    t = problem.tangents.to(device=jac.device, dtype=torch.float64)
    c = problem.cotangents.to(device=jac.device, dtype=torch.float64)
    if computes == "jacobian":
        return jac
    if computes == "jvp":
        return torch.einsum("bmn,bn->bm", jac, t)
    if computes == "vjp":
        return torch.einsum("bm,bmn->bn", c, jac)
    if computes == "vjp_accumulated":
        return 2.0 * torch.einsum("bm,bmn->bn", c, jac)
    if computes == "gradient":
        return jac[:, 0, :]
    if computes == "hessian":
        return hess
    if computes == "hvp":
        return torch.einsum("bij,bj->bi", hess[:, 0], t)
    if computes == "vhp":
        return torch.einsum("bi,bij->bj", t, hess[:, 0])
    if computes == "chvp":
        return torch.einsum("bm,bmij,bj->bi", c, hess, t)
    raise ValueError(f"no exact reference for computes={computes!r}")
