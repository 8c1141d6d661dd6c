"""Reverse mode: ``backward`` and ``torch.autograd.grad`` as users call them.

Every path here works on the whole batch when the case is pointwise (the summed-output trick,
see docs/paths.md) and point by point otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import BehaviourMismatch, Problem, path
from ._common import (
    converting,
    flatten,
    grads,
    group_rows,
    groups,
    leaves,
    onehot,
    outputs_tuple,
    quiet_vmap_fallback,
    split,
)

if TYPE_CHECKING:
    import torch

_POINTWISE_NOTE = "whole batch at once when pointwise (summed-output trick), else per point"


def _present(xs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """The ``.grad`` of each leaf, zeros where torch left it ``None`` (an unused input)."""
    import torch

    return [x.grad if x.grad is not None else torch.zeros_like(x) for x in xs]


def _backward(
    outs: tuple[torch.Tensor, ...], grad_tensors: tuple[torch.Tensor, ...], *, retain_graph: bool
) -> None:
    """``out.backward(g)`` (``torch.autograd.backward`` for several outputs), skipping constants."""
    import torch

    pairs = [(o, g) for o, g in zip(outs, grad_tensors, strict=True) if o.requires_grad]
    if len(pairs) == 1:
        pairs[0][0].backward(pairs[0][1], retain_graph=retain_graph)
    elif pairs:
        torch.autograd.backward(
            [o for o, _ in pairs], [g for _, g in pairs], retain_graph=retain_graph
        )


@path(
    name="reverse.backward_onehot",
    family="reverse",
    computes="jacobian",
    call="out.backward(e_k, retain_graph=True); x.grad; x.grad.zero_()",
    cost="1 f, m backward (pointwise); N f, N·m backward otherwise",
    description="Jacobian rows from .grad after one-hot backward passes (seed 001); "
    + _POINTWISE_NOTE,
)
def backward_onehot(problem: Problem) -> torch.Tensor:
    """The Jacobian row by row: ``out.backward(e_k, retain_graph=True)``, read ``.grad``, zero it."""
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        lead = outs[0].shape[:bnd]
        rows = []
        for k in range(problem.m):
            _backward(outs, onehot(k, problem.out_shapes, xs[0], lead), retain_graph=True)
            rows.append(flatten(_present(xs), problem.in_shapes, bnd).clone())
            for x in xs:
                if x.grad is not None:
                    x.grad.zero_()
        return torch.stack(rows, dim=bnd)

    return groups(problem, body)


@path(
    name="reverse.grad_loop",
    family="reverse",
    computes="jacobian",
    call="torch.autograd.grad(out, x, grad_outputs=e_k, retain_graph=True)",
    cost="1 f, m backward (pointwise); N f, N·m backward otherwise",
    description="Jacobian rows from an autograd.grad loop (seed 002); " + _POINTWISE_NOTE,
)
def grad_loop(problem: Problem) -> torch.Tensor:
    """The Jacobian row by row with ``torch.autograd.grad`` and one-hot ``grad_outputs``."""
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        lead = outs[0].shape[:bnd]
        rows = [
            flatten(
                grads(outs, xs, onehot(k, problem.out_shapes, xs[0], lead), retain_graph=True),
                problem.in_shapes,
                bnd,
            )
            for k in range(problem.m)
        ]
        return torch.stack(rows, dim=bnd).detach()

    return groups(problem, body)


@path(
    name="reverse.grad_batched",
    family="reverse",
    computes="jacobian",
    call="torch.autograd.grad(out, x, grad_outputs=I_m, is_grads_batched=True)",
    uses=frozenset({"vmap"}),
    cost="1 f, 1 vmapped backward over m cotangents (pointwise); N f, N otherwise",
    description="Jacobian from one batched backward over the identity cotangents; "
    + _POINTWISE_NOTE,
)
def grad_batched(problem: Problem) -> torch.Tensor:
    """The Jacobian in one call: ``torch.autograd.grad(..., is_grads_batched=True)``."""
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        lead = tuple(outs[0].shape[:bnd])
        eye = torch.eye(problem.m, dtype=xs[0].dtype, device=xs[0].device)
        cots = tuple(
            c.reshape(problem.m, *[1] * bnd, *c.shape[1:]).expand(problem.m, *lead, *c.shape[1:])
            for c in split(eye, problem.out_shapes)
        )
        with converting({"vmap"}), quiet_vmap_fallback():
            found = grads(outs, xs, cots, retain_graph=False, is_grads_batched=True)
        # (m, *B, n) → (*B, m, n)
        return flatten(found, problem.in_shapes, 1 + bnd).movedim(0, bnd).detach()

    return groups(problem, body)


@path(
    name="reverse.vjp_random",
    family="reverse",
    computes="vjp",
    call="torch.autograd.grad(out, x, grad_outputs=c)",
    cost="1 f, 1 backward (pointwise); N f, N backward otherwise",
    description="c @ J for random cotangents: catches a backward that ignores the scale of "
    "its incoming gradient",
)
def vjp_random(problem: Problem) -> torch.Tensor:
    """``c @ J`` for the problem's random cotangents with one ``torch.autograd.grad`` call.

    Random (not one-hot) cotangents catch a backward that ignores the scale of its incoming
    gradient, which every one-hot path would miss.
    """

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, problem.func(*xs))
        cots = split(group_rows(problem.cotangents, point), problem.out_shapes)
        found = grads(outs, xs, cots, retain_graph=False)
        return flatten(found, problem.in_shapes, bnd).detach()

    return groups(problem, body)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to a few rounding errors (a GPU may reduce in a different order each pass)."""
    import torch

    eps = torch.finfo(a.dtype).eps
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=64 * eps, atol=64 * eps * scale))


@path(
    name="reverse.accumulation",
    family="reverse",
    computes="vjp_accumulated",
    call="out.backward(c, retain_graph=True) twice; x.grad.zero_(); "
    "module.zero_grad(set_to_none=True)",
    cost="1 f, 4 backward (pointwise); N f, 4·N backward otherwise",
    description="two backward passes accumulate 2·c @ J in .grad, and both resets clear it "
    "(seed 001)",
)
def accumulation(problem: Problem) -> torch.Tensor:
    """Two backward passes with ``retain_graph=True`` accumulate ``2 · c @ J`` into ``.grad``.

    Also checks that ``x.grad.zero_()`` and ``zero_grad(set_to_none=True)`` reset the
    accumulation, raising `BehaviourMismatch` when they do not.
    """
    import torch

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        # Parameters of a module, so that the user-facing zero_grad(set_to_none=True) applies
        # (a module's zero_grad has the optimizer's semantics without its construction cost).
        holder = torch.nn.Module()
        holder.xs = torch.nn.ParameterList(torch.nn.Parameter(x.detach().clone()) for x in inputs)
        xs = tuple(holder.xs)
        outs = outputs_tuple(problem, problem.func(*xs))
        cots = split(group_rows(problem.cotangents, point), problem.out_shapes)

        _backward(outs, cots, retain_graph=True)
        once = flatten(_present(xs), problem.in_shapes, bnd).clone()
        _backward(outs, cots, retain_graph=True)
        twice = flatten(_present(xs), problem.in_shapes, bnd).clone()
        if not _same(twice, 2 * once):
            raise BehaviourMismatch(
                "two backward passes with retain_graph=True did not accumulate twice the "
                f"gradient: max |twice - 2·once| = {float((twice - 2 * once).abs().max()):.3g}"
            )

        for x in xs:
            if x.grad is not None:
                x.grad.zero_()
        if any(x.grad is not None and bool(x.grad.any()) for x in xs):
            raise BehaviourMismatch("x.grad.zero_() left a non-zero gradient")
        _backward(outs, cots, retain_graph=True)
        after_zero = flatten(_present(xs), problem.in_shapes, bnd)
        if not _same(after_zero, once):
            raise BehaviourMismatch(
                "after x.grad.zero_() one backward pass did not give the single gradient again"
            )

        holder.zero_grad(set_to_none=True)
        if any(x.grad is not None for x in xs):
            raise BehaviourMismatch("zero_grad(set_to_none=True) left .grad set")
        _backward(outs, cots, retain_graph=False)
        after_none = flatten(_present(xs), problem.in_shapes, bnd)
        if not _same(after_none, once):
            raise BehaviourMismatch(
                "after zero_grad(set_to_none=True) one backward pass did not give the single "
                "gradient again"
            )
        return twice

    return groups(problem, body)
