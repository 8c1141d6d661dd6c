"""``torch.autograd.functional``: one-point APIs, looped over the batch (``batched=False``).

These functions take one point (a tensor or a tuple of tensors, no batch dimension), so every
path here calls them once per point and stacks the results; the runner gives such paths a
few points only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._base import BehaviourMismatch, Problem, Unsupported, path
from ._common import (
    converting,
    flatten,
    outputs_tuple,
    per_point,
    prepare_forward_ad,
    quiet_vmap_fallback,
    require_scalar_output,
    split,
)

if TYPE_CHECKING:
    import torch

_F = "torch.autograd.functional"
_LOOP = "N f, N·m backward"


def _point(problem: Problem, i: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Point ``i`` the way torch.autograd.functional takes it: a tensor or a tuple."""
    return problem.as_args(problem.unbatched(i))


def _tangent(problem: Problem, i: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Point ``i``'s tangent, nested like the inputs."""
    return problem.as_args(split(problem.tangents[i], problem.in_shapes))


def _cotangent(problem: Problem, i: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Point ``i``'s cotangent, nested like the outputs."""
    parts = split(problem.cotangents[i], problem.out_shapes)
    return parts if problem.tuple_outputs else parts[0]


def _jacobian_with(**options: Any) -> Callable[[Problem], torch.Tensor]:
    """A path body calling ``torch.autograd.functional.jacobian(f, point, **options)`` per point."""

    def run(problem: Problem) -> torch.Tensor:
        import torch

        if options.get("vectorize") or options.get("strategy") == "forward-mode":
            prepare_forward_ad()
        uses = {"vmap"} if options.get("vectorize") else set()
        if options.get("strategy") == "forward-mode":
            uses.add("forward_ad")

        def one(i: int) -> torch.Tensor:
            nested = torch.autograd.functional.jacobian(problem.func, _point(problem, i), **options)
            return problem.flat_jacobian(nested)[0].detach()

        with converting(uses), quiet_vmap_fallback():
            return per_point(problem, one)

    return run


jacobian = path(
    name="functional.jacobian",
    family="functional",
    computes="jacobian",
    call=f"{_F}.jacobian(f, x)",
    cost=_LOOP,
    batched=False,
    description="Jacobian, one backward per output element (seed 000; seed 003's loop)",
)(_jacobian_with())
jacobian_vectorize = path(
    name="functional.jacobian_vectorize",
    family="functional",
    computes="jacobian",
    call=f"{_F}.jacobian(f, x, vectorize=True)",
    uses=frozenset({"vmap"}),
    cost="N f, N vmapped backward",
    batched=False,
    description="Jacobian with vmap over the one-hot cotangents",
)(_jacobian_with(vectorize=True))
jacobian_forward = path(
    name="functional.jacobian_forward",
    family="functional",
    computes="jacobian",
    call=f"{_F}.jacobian(f, x, vectorize=True, strategy='forward-mode')",
    uses=frozenset({"vmap", "forward_ad"}),
    cost="N vmapped jvp (n tangents each)",
    batched=False,
    description="Jacobian column by column in forward mode, vmapped",
)(_jacobian_with(vectorize=True, strategy="forward-mode"))
jacobian_create_graph = path(
    name="functional.jacobian_create_graph",
    family="functional",
    computes="jacobian",
    call=f"{_F}.jacobian(f, x, create_graph=True)",
    cost=_LOOP,
    batched=False,
    description="Jacobian built with create_graph=True (a differentiable result), detached",
)(_jacobian_with(create_graph=True))


#: torch's message when strict=True finds an input that no output depends on.
_STRICT_MESSAGE = re.compile(r"independent of input (\d+)")


@path(
    name="functional.jacobian_strict",
    family="functional",
    computes="behaviour",
    call=f"{_F}.jacobian(f, x, strict=True)",
    requires=frozenset({"unused_input"}),
    cost="1 f, ≤ m backward (first point only)",
    batched=False,
    description="strict=True raises the documented RuntimeError naming the unused input",
    # A custom op may depend on an input only through terms that cancel (a derivative of
    # 1e-17): torch is right not to raise there, so check-op runs it only when named.
    default_for=frozenset({"check"}),
)
def jacobian_strict(problem: Problem) -> None:
    """``jacobian(..., strict=True)`` raises when an input is unused (documented behaviour).

    Raises:
        Unsupported: the case has no unused input, so strict mode has nothing to detect.
        BehaviourMismatch: torch did not raise, or named an input the outputs do depend on.
    """
    import torch

    unused = [i for i, u in enumerate(problem.unused_inputs) if u]
    if not unused:
        raise Unsupported("strict=True needs an input no output depends on; this case has none")
    try:
        torch.autograd.functional.jacobian(problem.func, _point(problem, 0), strict=True)
    except RuntimeError as exc:
        found = _STRICT_MESSAGE.search(str(exc))
        if found is None:
            raise
        named = int(found.group(1))
        if named not in unused:
            raise BehaviourMismatch(
                f"strict=True reported input {named} as unused, but the outputs depend on it "
                f"(unused inputs: {unused}): {exc}"
            ) from exc
        return None
    raise BehaviourMismatch(
        f"jacobian(..., strict=True) did not raise although no output depends on input(s) {unused}"
    )


@path(
    name="functional.jvp",
    family="functional",
    computes="jvp",
    call=f"{_F}.jvp(f, x, t)",
    uses=frozenset({"double_backward"}),
    cost="N f, 2·N backward (the double-backward trick)",
    batched=False,
    description="J @ t through the double-backward trick",
)
def jvp(problem: Problem) -> torch.Tensor:
    """``torch.autograd.functional.jvp(f, x, v)`` per point."""
    import torch

    def one(i: int) -> torch.Tensor:
        _, out = torch.autograd.functional.jvp(
            problem.func, _point(problem, i), _tangent(problem, i)
        )
        return flatten(outputs_tuple(problem, out), problem.out_shapes, 0).detach()

    with converting({"double_backward"}):
        return per_point(problem, one)


@path(
    name="functional.vjp",
    family="functional",
    computes="vjp",
    call=f"{_F}.vjp(f, x, c)",
    cost="N f, N backward",
    batched=False,
    description="c @ J for random cotangents",
)
def vjp(problem: Problem) -> torch.Tensor:
    """``torch.autograd.functional.vjp(f, x, c)`` per point."""
    import torch

    def one(i: int) -> torch.Tensor:
        _, out = torch.autograd.functional.vjp(
            problem.func, _point(problem, i), _cotangent(problem, i)
        )
        parts = out if problem.tuple_inputs else (out,)
        return flatten(parts, problem.in_shapes, 0).detach()

    return per_point(problem, one)


@path(
    name="functional.hessian",
    family="functional",
    computes="hessian",
    call=f"{_F}.hessian(f, x)",
    requires=frozenset({"scalar_output"}),
    uses=frozenset({"double_backward"}),
    cost="N f, N·(n + 1) backward",
    batched=False,
    description="Hessian, reverse over reverse",
)
def hessian(problem: Problem) -> torch.Tensor:
    """``torch.autograd.functional.hessian(f, x)`` per point (scalar output only)."""
    import torch

    require_scalar_output(problem, "torch.autograd.functional.hessian")

    def one(i: int) -> torch.Tensor:
        nested = torch.autograd.functional.hessian(problem.func, _point(problem, i))
        return problem.flat_hessian(nested)[0].detach()

    with converting({"double_backward"}, scalar=True):
        return per_point(problem, one)


def _vector_hessian(api: str) -> Callable[[Problem], torch.Tensor]:
    """A path body for ``torch.autograd.functional.hvp`` or ``vhp`` per point."""

    def run(problem: Problem) -> torch.Tensor:
        import torch

        require_scalar_output(problem, f"torch.autograd.functional.{api}")
        fn = getattr(torch.autograd.functional, api)

        def one(i: int) -> torch.Tensor:
            _, out = fn(problem.func, _point(problem, i), _tangent(problem, i))
            parts = out if problem.tuple_inputs else (out,)
            return flatten(parts, problem.in_shapes, 0).detach()

        with converting({"double_backward"}, scalar=True):
            return per_point(problem, one)

    return run


hvp = path(
    name="functional.hvp",
    family="functional",
    computes="hvp",
    call=f"{_F}.hvp(f, x, t)",
    requires=frozenset({"scalar_output"}),
    uses=frozenset({"double_backward"}),
    cost="N f, 3·N backward",
    batched=False,
    description="H @ t, reverse over reverse (double-backward trick)",
)(_vector_hessian("hvp"))
vhp = path(
    name="functional.vhp",
    family="functional",
    computes="vhp",
    call=f"{_F}.vhp(f, x, t)",
    requires=frozenset({"scalar_output"}),
    uses=frozenset({"double_backward"}),
    cost="N f, 2·N backward",
    batched=False,
    description="t @ H, reverse over reverse",
)(_vector_hessian("vhp"))
