"""The contract family: what a correct autograd op must do beyond getting Jacobian values right.

The other families ask "is this derivative right?"; these paths ask whether the op keeps the
promises every caller of ``backward`` relies on:

* ``contract.values``: the forward value equals the exact value (a custom op's forward and
  backward are separate code, so a right derivative says nothing about the value);
* ``contract.cotangent_scaling``: backward is linear in its incoming gradient: ``2·c`` and
  ``-c`` give exactly ``2×`` and ``-1×`` the result for ``c`` (scaling by a power of two is
  exact in binary floating point, so any difference is a bug, not rounding);
* ``contract.repeat_backward``: backward run again on the retained graph gives the same
  gradient (a backward that corrupts a saved or cached tensor in place does not);
* ``contract.grad_metadata``: each gradient has its input's dtype, device and shape, and the
  outputs have the case's shapes and the inputs' dtype and device;
* ``contract.batch_consistency``: a batch and the same points one at a time agree, values and
  gradients (a backward that mixes rows or divides by the batch size does not);
* ``contract.vmap_consistency``: ``torch.func.vmap(f)`` agrees with ``f`` on the batch (a wrong
  custom ``vmap`` rule does not).

Double backward against the exact Hessian is the higher-order family's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._base import BehaviourMismatch, Problem, Truth, Unsupported, path
from ._common import converting, flatten, leaves, outputs_tuple, quiet_vmap_fallback, split

if TYPE_CHECKING:
    import torch

#: Rows of a batch that `batch_consistency` also evaluates one at a time.
PER_POINT_ROWS = 8
#: The contract paths run by default under ``check-op`` only (`AutogradPath.default_for`).
_CHECK_OP = frozenset({"check-op"})


# -- helpers ----------------------------------------------------------------------------------
def _truth_of(problem: Problem) -> Truth:
    """The exact math of a problem (``problem.truth``, set by `verijac._reference.make_problem`)."""
    if problem.truth is None:
        raise Unsupported(
            "the exact values are not available to this path: the problem carries no truth "
            "(build it with verijac._reference.make_problem)"
        )
    return problem.truth


def _point_text(problem: Problem, row: int) -> str:
    """``x=0.5, y=[1.0, 2.0]`` for row ``row`` of the problem's inputs."""
    names = (
        list(problem.truth.input_names)
        if problem.truth is not None
        else [f"input{i}" for i in range(len(problem.inputs))]
    )
    return ", ".join(
        f"{name}={x[row].detach().cpu().tolist()!r}"
        for name, x in zip(names, problem.inputs, strict=True)
    )


def _entry(layout: Sequence[tuple[int, ...]], column: int, what: str) -> str:
    """``"gradient of input 1 [0, 1]"`` for flat column ``column`` of a per-point layout."""
    pos = 0
    for i, shape in enumerate(layout):
        k = math.prod(shape)
        if column < pos + k:
            local = column - pos
            index = []
            for s in reversed(shape):
                index.append(local % s)
                local //= s
            where = f" {list(reversed(index))}" if shape else ""
            return f"{what} {i}{where}"
        pos += k
    return what


def _worst(diff: torch.Tensor, allowed: torch.Tensor) -> tuple[int, int] | None:
    """``(row, column)`` of the entry of a 2-d ``diff`` that exceeds ``allowed`` the most."""
    import torch

    diff = diff.reshape(-1, diff.shape[-1]) if diff.dim() else diff.reshape(1, 1)
    allowed = allowed.expand_as(diff) if allowed.dim() else allowed.reshape(1, 1).expand_as(diff)
    bad = ~(diff <= allowed)  # NaN differences count as bad
    if not bool(bad.any()):
        return None
    ratio = torch.where(bad, diff / allowed.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    ratio = torch.nan_to_num(ratio, nan=math.inf)
    flat = int(torch.argmax(ratio))
    return flat // diff.shape[1], flat % diff.shape[1]


def _each(
    problem: Problem, body: Callable[[tuple[torch.Tensor, ...], int, int | None], None]
) -> None:
    """``body(inputs, batch_ndim, point)`` on the whole batch (pointwise) or point by point."""
    if problem.pointwise:
        body(problem.inputs, 1, None)
        return
    for i in range(problem.N):
        body(problem.unbatched(i), 0, i)


def _rows(problem: Problem, flat: torch.Tensor, point: int | None) -> torch.Tensor:
    """Rows of a problem-level ``(N, k)`` tensor for a `_each` body (one row, kept 2-d)."""
    return flat if point is None else flat[point : point + 1]


def _as_rows(t: torch.Tensor, bnd: int) -> torch.Tensor:
    """A ``(*B, k)`` result as 2-d rows (a single point gets a batch dimension)."""
    return t if bnd else t.unsqueeze(0)


def _vjp(
    problem: Problem,
    outs: tuple[torch.Tensor, ...],
    xs: tuple[torch.Tensor, ...],
    cots: torch.Tensor,
    bnd: int,
) -> torch.Tensor:
    """``c @ J`` as 2-d rows with the graph retained; zeros for inputs without a gradient.

    ``cots`` is ``(rows, m)``; it is split into one tensor per output, without the batch
    dimension when ``bnd == 0``.
    """
    from ._common import grads

    parts = split(cots if bnd else cots[0], problem.out_shapes)
    found = grads(outs, xs, parts, retain_graph=True)
    return _as_rows(flatten(found, problem.in_shapes, bnd).detach(), bnd)


def _first_row(point: int | None, row: int) -> int:
    return row if point is None else point


# -- contract.values ----------------------------------------------------------------------------
@path(
    name="contract.values",
    family="contract",
    computes="behaviour",
    call="f(*x)",
    description="the forward value equals the exact value (custom ops compute value and "
    "derivative apart)",
    cost="1 f",
    default_for=_CHECK_OP,
)
def values(problem: Problem) -> None:
    """The forward value against the exact value, with the value tolerance of the dtype.

    The allowed error of each entry is ``atol + rtol·|exact| + cond``, where ``cond`` is
    ``|J|·|x|`` times `verijac._tolerances.COND_ULPS` roundoffs: what rounding the inputs alone
    forces on any implementation.
    """
    import torch

    truth = _truth_of(problem)
    with torch.no_grad():
        if problem.pointwise:
            actual = problem.flat_outputs(problem.func(*problem.inputs))
        else:
            per = []
            for i in range(problem.N):
                out = problem.func(*problem.unbatched(i))
                outs = out if problem.tuple_outputs else (out,)
                per.append(torch.cat([o.reshape(-1) for o in outs]))
            actual = torch.stack(per)
    actual = actual.detach().to(torch.float64)
    exact = truth.values(problem.inputs).to(actual.device)
    jac = truth.jacobian(problem.inputs).to(actual.device)
    x = problem.flat_inputs(problem.inputs).detach().to(torch.float64).abs()
    dtype = problem.inputs[0].dtype
    rtol, atol = truth.tolerance(dtype, 0)
    u = torch.finfo(dtype).eps / 2 * truth.cond_ulps
    cond = torch.einsum("bmn,bn->bm", jac.abs(), x) * u
    allowed = atol + rtol * exact.abs() + cond
    diff = (actual - exact).abs()
    diff = torch.where(torch.isfinite(actual), diff, torch.full_like(diff, math.inf))
    worst = _worst(diff, allowed)
    if worst is not None:
        row, col = worst
        raise BehaviourMismatch(
            f"the forward value is wrong at {_point_text(problem, row)}: "
            f"{_entry(problem.out_shapes, col, 'output')} is {float(actual[row, col])!r}, "
            f"exact {float(exact[row, col])!r} (abs error {float(diff[row, col]):.3g} > allowed "
            f"{float(allowed[row, col]):.3g}: rtol={rtol:g}, atol={atol:g})"
        )


# -- contract.cotangent_scaling ------------------------------------------------------------------
@path(
    name="contract.cotangent_scaling",
    family="contract",
    computes="behaviour",
    call="torch.autograd.grad(out, x, grad_outputs=k·c, retain_graph=True) for k = 1, 2, -1",
    description="backward is linear in its incoming gradient: exactly 2× and -1× for 2c and -c",
    cost="1 f, 3 backward",
    default_for=_CHECK_OP,
)
def cotangent_scaling(problem: Problem) -> None:
    """Backward with cotangents ``c``, ``2c`` and ``-c`` gives results in the ratio 1 : 2 : -1.

    Scaling by ``2`` and ``-1`` is exact in floating point, so the check allows only a few
    roundoffs (a GPU may reduce in another order each pass).
    """
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> None:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        c = _rows(problem, problem.cotangents, point)
        once = _vjp(problem, outs, xs, c, bnd)
        rtol = 16 * torch.finfo(once.dtype).eps
        for factor, label in ((2.0, "2"), (-1.0, "-1")):
            got = _vjp(problem, outs, xs, factor * c, bnd)
            want = factor * once
            scale = float(want.abs().max()) if want.numel() else 0.0
            worst = _worst((got - want).abs(), rtol * want.abs() + rtol * scale)
            if worst is not None:
                row, col = worst
                raise BehaviourMismatch(
                    f"backward is not linear in its incoming gradient: with grad_outputs = "
                    f"{label}·c the {_entry(problem.in_shapes, col, 'gradient of input')} at "
                    f"{_point_text(problem, _first_row(point, row))} is "
                    f"{float(got[row, col])!r}, but {label} × (its value for c) is "
                    f"{float(want[row, col])!r}; backward must multiply by its incoming "
                    "gradient (one that ignores it is right only for out.sum().backward())"
                )

    _each(problem, body)


# -- contract.repeat_backward ----------------------------------------------------------------------
@path(
    name="contract.repeat_backward",
    family="contract",
    computes="behaviour",
    call="torch.autograd.grad(out, x, c, retain_graph=True) three times",
    description="backward again on the retained graph gives the same gradient (no in-place "
    "corruption)",
    cost="1 f, 3 backward",
    default_for=_CHECK_OP,
)
def repeat_backward(problem: Problem) -> None:
    """Backward three times on the retained graph: every pass gives the first pass's gradient.

    Raises `BehaviourMismatch` when a later pass differs or fails (torch's "modified by an
    inplace operation" included): backward changed something it reads. That ``.grad``
    accumulates twice the gradient is ``reverse.accumulation``'s check.
    """
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> None:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        c = _rows(problem, problem.cotangents, point)
        first = _vjp(problem, outs, xs, c, bnd)
        rtol = 16 * torch.finfo(first.dtype).eps
        for attempt in (2, 3):
            try:
                again = _vjp(problem, outs, xs, c, bnd)
            except RuntimeError as exc:
                raise BehaviourMismatch(
                    f"backward pass {attempt} on the retained graph (retain_graph=True) failed: "
                    f"{exc}; the first pass changed something backward reads"
                ) from exc
            scale = float(first.abs().max()) if first.numel() else 0.0
            worst = _worst((again - first).abs(), rtol * first.abs() + rtol * scale)
            if worst is not None:
                row, col = worst
                raise BehaviourMismatch(
                    f"backward pass {attempt} on the retained graph gave a different gradient: "
                    f"{_entry(problem.in_shapes, col, 'gradient of input')} at "
                    f"{_point_text(problem, _first_row(point, row))} is {float(again[row, col])!r}, "
                    f"pass 1 gave {float(first[row, col])!r}; backward modifies a saved or "
                    "cached tensor in place"
                )

    _each(problem, body)


# -- contract.grad_metadata ----------------------------------------------------------------------
def _describe(t: torch.Tensor) -> str:
    return f"dtype={t.dtype}, device={t.device}, shape={tuple(t.shape)}"


@path(
    name="contract.grad_metadata",
    family="contract",
    computes="behaviour",
    call="torch.autograd.grad(out, x, c); out.backward(c); x.grad",
    description="outputs and gradients have the expected dtype, device and shape",
    cost="1 f, 2 backward",
    default_for=_CHECK_OP,
)
def grad_metadata(problem: Problem) -> None:
    """Outputs have the case's shapes and the inputs' dtype and device; each gradient (from
    ``torch.autograd.grad`` and in ``.grad``) has its input's dtype, device and shape."""
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> None:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        if len(outs) != len(problem.out_shapes):
            raise BehaviourMismatch(
                f"the function returned {len(outs)} outputs; the case describes "
                f"{len(problem.out_shapes)}"
            )
        ref = xs[0]
        lead = (problem.N,) if bnd else ()
        for k, (o, shape) in enumerate(zip(outs, problem.out_shapes, strict=True)):
            if not isinstance(o, torch.Tensor):
                raise BehaviourMismatch(f"output {k} is a {type(o).__name__}, not a torch.Tensor")
            want = (*lead, *shape)
            if tuple(o.shape) != want or o.dtype != ref.dtype or o.device != ref.device:
                raise BehaviourMismatch(
                    f"output {k} has {_describe(o)}; expected dtype={ref.dtype}, "
                    f"device={ref.device}, shape={want} (the inputs' dtype and device, the "
                    "case's output shape after the batch dimension)"
                )
        c = _rows(problem, problem.cotangents, point)
        cots = split(c if bnd else c[0], problem.out_shapes)
        pairs = [(o, g) for o, g in zip(outs, cots, strict=True) if o.requires_grad]
        if not pairs:
            return
        found = torch.autograd.grad(
            [o for o, _ in pairs],
            list(xs),
            [g for _, g in pairs],
            retain_graph=True,
            allow_unused=True,
        )
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        for i, (x, g) in enumerate(zip(xs, found, strict=True)):
            for api, grad in (("torch.autograd.grad", g), (".grad", x.grad)):
                if grad is None:
                    continue
                if grad.dtype != x.dtype or grad.device != x.device or grad.shape != x.shape:
                    raise BehaviourMismatch(
                        f"the gradient of input {i} from {api} has {_describe(grad)}; its input "
                        f"has {_describe(x)}"
                    )

    _each(problem, body)


# -- contract.batch_consistency ------------------------------------------------------------------
def _one_point(problem: Problem, row: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Value ``(m,)`` and ``c @ J`` ``(n,)`` of point ``row`` evaluated on its own (no batch dim)."""
    from ._common import grads

    xs = leaves(problem.unbatched(row))
    outs = outputs_tuple(problem, problem.func(*xs))
    value = flatten([o.detach() for o in outs], problem.out_shapes, 0)
    cots = split(problem.cotangents[row], problem.out_shapes)
    grad = flatten(grads(outs, xs, cots, retain_graph=False), problem.in_shapes, 0)
    return value, grad.detach()


def _agree(
    problem: Problem,
    batched: torch.Tensor,
    single: torch.Tensor,
    rows: Sequence[int],
    *,
    order: int,
    what: str,
    layout: Sequence[tuple[int, ...]],
    other: str,
) -> None:
    import torch

    rtol, atol = _truth_of(problem).tolerance(batched.dtype, order, own=False)
    b = batched.to(torch.float64)
    s = single.to(torch.float64)
    allowed = atol + rtol * torch.maximum(b.abs(), s.abs())
    worst = _worst((b - s).abs(), allowed)
    if worst is not None:
        i, col = worst
        row = rows[i]
        raise BehaviourMismatch(
            f"{what} depends on the batch: {_entry(layout, col, what)} at "
            f"{_point_text(problem, row)} (row {row} of {problem.N}) is {float(b[i, col])!r} in "
            f"the batch, {float(s[i, col])!r} {other} (allowed difference "
            f"{float(allowed[i, col]):.3g})"
        )


@path(
    name="contract.batch_consistency",
    family="contract",
    computes="behaviour",
    call="f(x_batch) vs f(x_i) and their backward with c",
    description=f"a batch and its first {PER_POINT_ROWS} points one at a time agree (values "
    "and gradients)",
    requires=frozenset({"pointwise"}),
    cost=f"1 + {PER_POINT_ROWS} f, 1 + {PER_POINT_ROWS} backward",
    default_for=_CHECK_OP,
)
def batch_consistency(problem: Problem) -> None:
    """The batch and its first `PER_POINT_ROWS` points one at a time give the same values and
    the same ``c @ J``, within the dtype's tolerance."""
    import torch

    xs = leaves(problem.inputs)
    outs = outputs_tuple(problem, problem.func(*xs))
    values_b = problem.flat_outputs(
        tuple(o.detach() for o in outs) if problem.tuple_outputs else outs[0].detach()
    )
    grads_b = _vjp(problem, outs, xs, problem.cotangents, 1)
    rows = list(range(min(problem.N, PER_POINT_ROWS)))
    singles = [_one_point(problem, r) for r in rows]
    values_s = torch.stack([v for v, _ in singles])
    grads_s = torch.stack([g for _, g in singles])
    _agree(
        problem,
        values_b[rows],
        values_s,
        rows,
        order=0,
        what="output",
        layout=problem.out_shapes,
        other="on its own",
    )
    _agree(
        problem,
        grads_b[rows],
        grads_s,
        rows,
        order=1,
        what="gradient of input",
        layout=problem.in_shapes,
        other="on its own",
    )


# -- contract.vmap_consistency -------------------------------------------------------------------
@path(
    name="contract.vmap_consistency",
    family="contract",
    computes="behaviour",
    call="torch.func.vmap(f)(x_batch) vs f(x_batch)",
    description="vmap over the batch agrees with the batched call (catches a wrong custom vmap "
    "rule)",
    requires=frozenset({"pointwise"}),
    uses=frozenset({"vmap"}),
    cost="2 f",
    default_for=_CHECK_OP,
)
def vmap_consistency(problem: Problem) -> None:
    """``torch.func.vmap(f)`` over the batch agrees with ``f`` on the batch (values)."""
    import torch

    with torch.no_grad():
        plain = problem.flat_outputs(problem.func(*problem.inputs))
        with converting({"vmap"}, func=True), quiet_vmap_fallback():
            mapped = problem.flat_outputs(torch.func.vmap(problem.func)(*problem.inputs))
    rows = list(range(problem.N))
    _agree(
        problem,
        plain,
        mapped,
        rows,
        order=0,
        what="output",
        layout=problem.out_shapes,
        other="under torch.func.vmap",
    )


__all__ = [
    "PER_POINT_ROWS",
    "batch_consistency",
    "cotangent_scaling",
    "grad_metadata",
    "repeat_backward",
    "values",
    "vmap_consistency",
]
