"""``torch.func``: composable transforms, vmapped over the batch where the name says so.

``func.jacrev``, ``func.jacfwd`` and ``func.grad`` are the one-point APIs looped over the
points (``batched=False``); their ``vmap_`` twins, the Hessians and seed 003's range paths
vmap over the batch. ``func.jvp``, ``func.vjp`` and ``func.linearize`` call the transform on
the whole batch when the case is pointwise (forward mode and a per-point cotangent need no
summed-output trick) and point by point otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._base import PathResult, Problem, path
from ._common import (
    argnums,
    converting,
    fixed_row0,
    flatten,
    group_rows,
    groups,
    outputs_tuple,
    per_point,
    prepare_forward_ad,
    quiet_vmap_fallback,
    require_scalar_output,
    split,
)

if TYPE_CHECKING:
    import torch

_NUMS = "argnums=all"


def _transform(name: str) -> Callable[..., Any]:
    import torch.func

    transform: Callable[..., Any] = getattr(torch.func, name)
    return transform


def _jacobian_loop(transform: str) -> Callable[[Problem], torch.Tensor]:
    """``torch.func.<transform>(f, argnums=all)(*x)`` per point."""

    def run(problem: Problem) -> torch.Tensor:
        jac = _transform(transform)(problem.func, argnums=argnums(problem))

        def one(i: int) -> torch.Tensor:
            return problem.flat_jacobian(jac(*problem.unbatched(i)))[0].detach()

        uses = {"vmap", "forward_ad"} if transform == "jacfwd" else {"vmap"}
        if transform == "jacfwd":
            prepare_forward_ad()
        with converting(uses, func=True), quiet_vmap_fallback():
            return per_point(problem, one)

    return run


def _jacobian_vmap(transform: str) -> Callable[[Problem], torch.Tensor]:
    """``vmap(torch.func.<transform>(f, argnums=all))(*x)`` over the whole batch."""

    def run(problem: Problem) -> torch.Tensor:
        import torch.func

        jac = _transform(transform)(problem.func, argnums=argnums(problem))
        uses = {"vmap", "forward_ad"} if transform == "jacfwd" else {"vmap"}
        if transform == "jacfwd":
            prepare_forward_ad()
        with converting(uses, func=True), quiet_vmap_fallback():
            return problem.flat_jacobian(torch.func.vmap(jac)(*problem.inputs)).detach()

    return run


jacrev = path(
    name="func.jacrev",
    family="func",
    computes="jacobian",
    call=f"torch.func.jacrev(f, {_NUMS})(*x)",
    uses=frozenset({"vmap"}),
    cost="N f, N vmapped backward over m cotangents",
    batched=False,
    description="Jacobian by jacrev, one point at a time",
)(_jacobian_loop("jacrev"))
vmap_jacrev = path(
    name="func.vmap_jacrev",
    family="func",
    computes="jacobian",
    call=f"torch.func.vmap(torch.func.jacrev(f, {_NUMS}))(*x)",
    uses=frozenset({"vmap"}),
    cost="1 f, 1 vmapped backward over m cotangents",
    description="Jacobian by jacrev, vmapped over the batch",
)(_jacobian_vmap("jacrev"))
jacfwd = path(
    name="func.jacfwd",
    family="func",
    computes="jacobian",
    call=f"torch.func.jacfwd(f, {_NUMS})(*x)",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="N vmapped jvp over n tangents",
    batched=False,
    description="Jacobian by jacfwd, one point at a time",
)(_jacobian_loop("jacfwd"))
vmap_jacfwd = path(
    name="func.vmap_jacfwd",
    family="func",
    computes="jacobian",
    call=f"torch.func.vmap(torch.func.jacfwd(f, {_NUMS}))(*x)",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="1 vmapped jvp over n tangents",
    description="Jacobian by jacfwd, vmapped over the batch",
)(_jacobian_vmap("jacfwd"))


@path(
    name="func.grad",
    family="func",
    computes="gradient",
    call=f"torch.func.grad(f, {_NUMS})(*x)",
    requires=frozenset({"scalar_output"}),
    cost="N f, N backward",
    batched=False,
    description="gradient of a scalar function, one point at a time",
)
def grad(problem: Problem) -> torch.Tensor:
    """``torch.func.grad(f, argnums=all)(*x)`` per point (scalar output only)."""
    import torch.func

    require_scalar_output(problem, "torch.func.grad")
    g = torch.func.grad(problem.func, argnums=argnums(problem))

    def one(i: int) -> torch.Tensor:
        found = g(*problem.unbatched(i))
        parts = found if problem.tuple_inputs else (found,)
        return flatten(parts, problem.in_shapes, 0).detach()

    with converting(set(), func=True, scalar=True):
        return per_point(problem, one)


@path(
    name="func.vmap_grad",
    family="func",
    computes="gradient",
    call=f"torch.func.vmap(torch.func.grad(f, {_NUMS}))(*x)",
    requires=frozenset({"scalar_output"}),
    uses=frozenset({"vmap"}),
    cost="1 f, 1 vmapped backward",
    description="gradient of a scalar function, vmapped over the batch",
)
def vmap_grad(problem: Problem) -> torch.Tensor:
    """``vmap(torch.func.grad(f, argnums=all))(*x)`` over the batch (scalar output only)."""
    import torch.func

    require_scalar_output(problem, "torch.func.grad")
    g = torch.func.vmap(torch.func.grad(problem.func, argnums=argnums(problem)))
    with converting({"vmap"}, func=True, scalar=True), quiet_vmap_fallback():
        found = g(*problem.inputs)
    parts = found if problem.tuple_inputs else (found,)
    return flatten(parts, problem.in_shapes, 1).detach()


@path(
    name="func.jvp",
    family="func",
    computes="jvp",
    call="torch.func.jvp(f, x, t)",
    uses=frozenset({"forward_ad"}),
    cost="1 jvp (pointwise); N jvp otherwise",
    description="J @ t in forward mode for random tangents",
)
def jvp(problem: Problem) -> torch.Tensor:
    """``torch.func.jvp(f, x, t)``: the whole batch when pointwise, else per point."""
    import torch.func

    prepare_forward_ad()

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        tangents = split(group_rows(problem.tangents, point), problem.in_shapes)
        out = torch.func.jvp(problem.func, tuple(inputs), tangents)[1]
        return flatten(outputs_tuple(problem, out), problem.out_shapes, bnd).detach()

    with converting({"forward_ad"}, func=True):
        return groups(problem, body)


@path(
    name="func.vjp",
    family="func",
    computes="vjp",
    call="torch.func.vjp(f, *x)[1](c)",
    cost="1 f, 1 backward (pointwise); N f, N backward otherwise",
    description="c @ J through the pullback for random cotangents",
)
def vjp(problem: Problem) -> torch.Tensor:
    """``torch.func.vjp(f, *x)[1](c)``: the whole batch when pointwise, else per point."""
    import torch.func

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        parts = split(group_rows(problem.cotangents, point), problem.out_shapes)
        pullback = torch.func.vjp(problem.func, *inputs)[1]
        found = pullback(parts if problem.tuple_outputs else parts[0])
        return flatten(found, problem.in_shapes, bnd).detach()

    with converting(set(), func=True):
        return groups(problem, body)


@path(
    name="func.linearize",
    family="func",
    computes="jvp",
    call="torch.func.linearize(f, *x)[1](*t)",
    uses=frozenset({"forward_ad"}),
    cost="1 traced jvp + 1 replay (pointwise); N of each otherwise",
    description="J @ t through a linearized (traced, constant-folded) jvp",
    traces=True,
)
def linearize(problem: Problem) -> torch.Tensor:
    """``torch.func.linearize(f, *x)[1](*t)``: the whole batch when pointwise, else per point."""
    import warnings

    import torch.func

    prepare_forward_ad()

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        tangents = split(group_rows(problem.tangents, point), problem.in_shapes)
        with warnings.catch_warnings():
            # linearize's constant folding (torch.fx const_fold) inserts get_attr nodes before
            # it registers their buffers and warns about its own intermediate graph; the
            # warning is internal to torch and says nothing about the function under test.
            warnings.filterwarnings("ignore", message=r"Attempted to insert a get_attr Node")
            _, jvp_fn = torch.func.linearize(problem.func, *inputs)
        out = jvp_fn(*tangents)
        return flatten(outputs_tuple(problem, out), problem.out_shapes, bnd).detach()

    with converting({"forward_ad"}, func=True, trace=True):
        return groups(problem, body)


def _second_order(
    outer: str, inner: str, *, scalar: bool = False
) -> Callable[[Problem], torch.Tensor]:
    """``vmap(outer(inner(f)))`` over the batch → ``(N, m, n, n)``; ``outer="hessian"`` alone."""

    def run(problem: Problem) -> torch.Tensor:
        import torch.func

        if scalar:
            require_scalar_output(problem, "torch.func.hessian")
        nums = argnums(problem)
        if outer == "hessian":
            fn = torch.func.hessian(problem.func, argnums=nums)
        else:
            fn = _transform(outer)(_transform(inner)(problem.func, argnums=nums), argnums=nums)
        uses = {"vmap"}
        if "jacfwd" in (outer, inner) or outer == "hessian":
            uses.add("forward_ad")
            prepare_forward_ad()
        if "jacrev" in (outer, inner) or outer == "hessian":
            uses.add("double_backward")
        with converting(uses, func=True, scalar=scalar), quiet_vmap_fallback():
            return problem.flat_hessian(torch.func.vmap(fn)(*problem.inputs)).detach()

    return run


hessian = path(
    name="func.hessian",
    family="func",
    computes="hessian",
    call=f"torch.func.vmap(torch.func.hessian(f, {_NUMS}))(*x)",
    requires=frozenset({"scalar_output"}),
    uses=frozenset({"vmap", "forward_ad", "double_backward"}),
    cost="1 vmapped jvp over n tangents of 1 vmapped backward",
    description="Hessian, forward over reverse (jacfwd(jacrev))",
)(_second_order("hessian", "", scalar=True))
jacfwd_jacrev = path(
    name="func.jacfwd_jacrev",
    family="func",
    computes="hessian",
    call=f"torch.func.vmap(torch.func.jacfwd(torch.func.jacrev(f, {_NUMS}), {_NUMS}))(*x)",
    uses=frozenset({"vmap", "forward_ad", "double_backward"}),
    cost="1 vmapped jvp over n tangents of 1 vmapped backward over m cotangents",
    description="Hessian of every output, forward over reverse",
)(_second_order("jacfwd", "jacrev"))
jacrev_jacrev = path(
    name="func.jacrev_jacrev",
    family="func",
    computes="hessian",
    call=f"torch.func.vmap(torch.func.jacrev(torch.func.jacrev(f, {_NUMS}), {_NUMS}))(*x)",
    uses=frozenset({"vmap", "double_backward"}),
    cost="1 vmapped backward over m·n cotangents of 1 vmapped backward",
    description="Hessian of every output, reverse over reverse",
)(_second_order("jacrev", "jacrev"))


def _range_args(problem: Problem) -> tuple[torch.Tensor, ...]:
    """Seed 003's arguments: input 0 batched, the others at row 0 without a batch dimension."""
    return (problem.inputs[0], *(x[0] for x in problem.inputs[1:]))


def _in_dims(problem: Problem) -> tuple[int | None, ...]:
    return (0, *([None] * (len(problem.inputs) - 1)))


@path(
    name="func.vmap_in_dims",
    family="func",
    computes="jacobian",
    call=f"torch.func.vmap(torch.func.jacrev(f, {_NUMS}), in_dims=(0, None, …))(x0s, *others)",
    uses=frozenset({"vmap"}),
    cost="1 f, 1 vmapped backward over m cotangents",
    description="seed 003: Jacobian over a range of input 0 with the others fixed at row 0",
)
def vmap_in_dims(problem: Problem) -> PathResult:
    """Seed 003: the Jacobian over a range of input 0, the others fixed, by one ``vmap``.

    Returns the Jacobian at the points actually used: input 0 as given, every other input
    fixed at its first row.
    """
    import torch.func

    jac = torch.func.jacrev(problem.func, argnums=argnums(problem))
    with converting({"vmap"}, func=True), quiet_vmap_fallback():
        nested = torch.func.vmap(jac, in_dims=_in_dims(problem))(*_range_args(problem))
    return PathResult(problem.flat_jacobian(nested).detach(), inputs=fixed_row0(problem))


@path(
    name="func.jvp_range",
    family="func",
    computes="jvp",
    call="torch.func.vmap(lambda x0, t, *others: torch.func.jvp(f, (x0, *others), t))"
    "(x0s, ts, *others expanded)",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="1 vmapped jvp",
    description="seed 003: J @ t over a range of input 0 with the others fixed at row 0",
)
def jvp_range(problem: Problem) -> PathResult:
    """Seed 003: ``J @ t`` over a range of input 0, the others fixed, by ``vmap`` of ``jvp``."""
    import torch.func

    prepare_forward_ad()

    def one(x0: torch.Tensor, t: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        out = torch.func.jvp(problem.func, (x0, *others), split(t, problem.in_shapes))[1]
        return flatten(outputs_tuple(problem, out), problem.out_shapes, 0)

    first, *rest = _range_args(problem)
    # The fixed inputs are repeated per row rather than passed with in_dims=None: torch's vmap
    # of jvp with unbatched primals and batched tangents grows quadratically in N (measured,
    # torch 2.15: 21 ms at 1,000 points, 1.6 s at 10,000). func.vmap_in_dims covers in_dims=None.
    rest = [r.expand(first.shape[0], *r.shape).contiguous() for r in rest]
    with converting({"vmap", "forward_ad"}, func=True), quiet_vmap_fallback():
        value = torch.func.vmap(one)(first, problem.tangents, *rest)
    return PathResult(value.detach(), inputs=fixed_row0(problem))
