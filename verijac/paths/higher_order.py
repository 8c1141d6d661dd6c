"""Second order: every composition of forward and reverse mode, against the exact Hessian.

==========================  ==============================================================
composition                 paths
==========================  ==============================================================
reverse over reverse        ``higher.double_backward``, ``func.jacrev_jacrev``,
                            ``functional.hessian`` / ``hvp`` / ``vhp``
forward over reverse        ``func.jacfwd_jacrev``, ``func.hessian``, ``higher.jvp_of_vjp``
reverse over forward        ``higher.jacrev_jacfwd``, ``higher.grad_of_jvp``
forward over forward        ``higher.jacfwd_jacfwd``, ``higher.jvp_of_jvp``
==========================  ==============================================================

The vector-product compositions compute ``chvp`` = ``Σ_k c_k H_k @ t``, which applies to any
output, not only a scalar one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._base import Problem, path
from ._common import (
    converting,
    flatten,
    grads,
    groups,
    leaves,
    onehot,
    outputs_tuple,
    prepare_forward_ad,
    quiet_vmap_fallback,
    split,
)
from .func import _second_order

if TYPE_CHECKING:
    import torch

_NUMS = "argnums=all"


@path(
    name="higher.double_backward",
    family="higher-order",
    computes="hessian",
    call="torch.autograd.grad(torch.autograd.grad(out, x, e_k, create_graph=True)[j], x)",
    uses=frozenset({"double_backward"}),
    cost="1 f, m·(n + 1) backward (pointwise); N times that otherwise",
    description="Hessian of every output, reverse over reverse with create_graph=True; "
    "whole batch at once when pointwise (summed-output trick), else per point",
)
def double_backward(problem: Problem) -> torch.Tensor:
    """The Hessian of every output by ``torch.autograd.grad(..., create_graph=True)`` twice."""
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        lead = outs[0].shape[:bnd]
        per_output = []
        for k in range(problem.m):
            first = grads(
                outs,
                xs,
                onehot(k, problem.out_shapes, xs[0], lead),
                retain_graph=True,
                create_graph=True,
            )
            g = flatten(first, problem.in_shapes, bnd)
            rows = [
                flatten(
                    grads([g[..., j]], xs, [torch.ones_like(g[..., j])], retain_graph=True),
                    problem.in_shapes,
                    bnd,
                )
                for j in range(problem.n)
            ]
            per_output.append(torch.stack(rows, dim=-2))
        return torch.stack(per_output, dim=-3).detach()

    with converting({"double_backward"}):
        return groups(problem, body)


jacrev_jacfwd = path(
    name="higher.jacrev_jacfwd",
    family="higher-order",
    computes="hessian",
    call=f"torch.func.vmap(torch.func.jacrev(torch.func.jacfwd(f, {_NUMS}), {_NUMS}))(*x)",
    uses=frozenset({"vmap", "forward_ad", "double_backward"}),
    cost="1 vmapped backward over m·n cotangents of 1 vmapped jvp over n tangents",
    description="Hessian of every output, reverse over forward",
)(_second_order("jacrev", "jacfwd"))
jacfwd_jacfwd = path(
    name="higher.jacfwd_jacfwd",
    family="higher-order",
    computes="hessian",
    call=f"torch.func.vmap(torch.func.jacfwd(torch.func.jacfwd(f, {_NUMS}), {_NUMS}))(*x)",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="1 vmapped jvp over n tangents of 1 vmapped jvp over n tangents",
    description="Hessian of every output, forward over forward",
)(_second_order("jacfwd", "jacfwd"))


def _flat_point_fn(problem: Problem) -> Callable[..., torch.Tensor]:
    """``f`` with its outputs flattened to one ``(m,)`` vector (one point, no batch dims)."""

    def f(*xs: torch.Tensor) -> torch.Tensor:
        return flatten(outputs_tuple(problem, problem.func(*xs)), problem.out_shapes, 0)

    return f


def _contract(c: torch.Tensor, problem: Problem) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A cotangent ``(m,)`` nested like the outputs, for a pullback."""
    parts = split(c, problem.out_shapes)
    return parts if problem.tuple_outputs else parts[0]


@path(
    name="higher.grad_of_jvp",
    family="higher-order",
    computes="chvp",
    call="torch.func.vmap(torch.func.grad(lambda x: (torch.func.jvp(f, x, t)[1] * c).sum()))",
    uses=frozenset({"vmap", "forward_ad", "double_backward"}),
    cost="1 vmapped backward of 1 jvp",
    description="Σ c_k H_k @ t, reverse over forward",
)
def grad_of_jvp(problem: Problem) -> torch.Tensor:
    """Reverse over forward: ``grad_x ⟨c, jvp(f, x, t)⟩`` = ``Σ_k c_k H_k @ t``, vmapped."""
    import torch.func

    prepare_forward_ad()
    f = _flat_point_fn(problem)
    k = len(problem.in_shapes)

    def inner(*args: torch.Tensor) -> torch.Tensor:
        xs, t, c = args[:k], args[k], args[k + 1]
        jt = torch.func.jvp(f, tuple(xs), split(t, problem.in_shapes))[1]
        return (jt * c).sum()

    g = torch.func.grad(inner, argnums=tuple(range(k)))
    with converting({"vmap", "forward_ad", "double_backward"}, func=True), quiet_vmap_fallback():
        found = torch.func.vmap(g)(*problem.inputs, problem.tangents, problem.cotangents)
    return flatten(found, problem.in_shapes, 1).detach()


@path(
    name="higher.jvp_of_vjp",
    family="higher-order",
    computes="chvp",
    call="torch.func.vmap(lambda x: torch.func.jvp(lambda y: torch.func.vjp(f, y)[1](c), x, t))",
    uses=frozenset({"vmap", "forward_ad", "double_backward"}),
    cost="1 vmapped jvp of 1 backward",
    description="Σ c_k H_k @ t, forward over reverse (the classic Hessian-vector product)",
)
def jvp_of_vjp(problem: Problem) -> torch.Tensor:
    """Forward over reverse: ``jvp(x ↦ vjp(f, x)(c), x, t)`` = ``Σ_k c_k H_k @ t``, vmapped."""
    import torch.func

    prepare_forward_ad()
    k = len(problem.in_shapes)

    def one(*args: torch.Tensor) -> torch.Tensor:
        xs, t, c = args[:k], args[k], args[k + 1]

        def pulled(*ys: torch.Tensor) -> torch.Tensor:
            pullback = torch.func.vjp(problem.func, *ys)[1]
            return flatten(pullback(_contract(c, problem)), problem.in_shapes, 0)

        out = torch.func.jvp(pulled, tuple(xs), split(t, problem.in_shapes))[1]
        return out

    with converting({"vmap", "forward_ad", "double_backward"}, func=True), quiet_vmap_fallback():
        found = torch.func.vmap(one)(*problem.inputs, problem.tangents, problem.cotangents)
    return found.detach()


@path(
    name="higher.jvp_of_jvp",
    family="higher-order",
    computes="chvp",
    call="torch.func.vmap(lambda x: torch.func.vmap(lambda u: torch.func.jvp(lambda y: "
    "(torch.func.jvp(f, y, t)[1] * c).sum(), x, u)[1])(I_n))",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="1 vmapped jvp over n tangents of 1 jvp",
    description="Σ c_k H_k @ t, forward over forward (one jvp of a jvp per input element)",
)
def jvp_of_jvp(problem: Problem) -> torch.Tensor:
    """Forward over forward: ``jvp(x ↦ ⟨c, jvp(f, x, t)⟩, x, e_j)`` for every ``e_j``, vmapped.

    Entry ``j`` is ``e_j @ (Σ_k c_k H_k) @ t``, so the ``n`` entries form ``Σ_k c_k H_k @ t``.
    """
    import torch
    import torch.func

    prepare_forward_ad()
    f = _flat_point_fn(problem)
    k = len(problem.in_shapes)
    eye = torch.eye(problem.n, dtype=problem.inputs[0].dtype, device=problem.inputs[0].device)

    def one(*args: torch.Tensor) -> torch.Tensor:
        xs, t, c = args[:k], args[k], args[k + 1]

        def directional(*ys: torch.Tensor) -> torch.Tensor:
            jt = torch.func.jvp(f, ys, split(t, problem.in_shapes))[1]
            return (jt * c).sum()

        def along(u: torch.Tensor) -> torch.Tensor:
            return torch.func.jvp(directional, tuple(xs), split(u, problem.in_shapes))[1]

        return torch.func.vmap(along)(eye)

    with converting({"vmap", "forward_ad"}, func=True), quiet_vmap_fallback():
        found = torch.func.vmap(one)(*problem.inputs, problem.tangents, problem.cotangents)
    return found.detach()
