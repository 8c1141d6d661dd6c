"""Forward mode with dual numbers: ``torch.autograd.forward_ad``.

Forward mode needs no summed-output trick: when the case is pointwise, one dual pass over the
whole batch with one tangent per point gives every point's ``J @ t``. Otherwise each point
gets its own pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import Problem, path
from ._common import (
    converting,
    flatten,
    group_rows,
    groups,
    onehot,
    outputs_tuple,
    prepare_forward_ad,
    split,
)

if TYPE_CHECKING:
    import torch

_CALL = "with dual_level(): unpack_dual(f(make_dual(x, {t}))).tangent"


def _dual_pass(
    problem: Problem, inputs: tuple[torch.Tensor, ...], tangents: tuple[torch.Tensor, ...], bnd: int
) -> torch.Tensor:
    """One ``make_dual`` / ``unpack_dual`` pass → ``(*B, m)`` output tangents."""
    import torch
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        duals = [fwad.make_dual(x, t) for x, t in zip(inputs, tangents, strict=True)]
        outs = outputs_tuple(problem, problem.func(*duals))
        found = []
        for o in outs:
            t = fwad.unpack_dual(o).tangent
            # An output that does not depend on the inputs carries no tangent: its J @ t is 0.
            found.append(torch.zeros_like(o) if t is None else t)
        return flatten(found, problem.out_shapes, bnd).detach()


@path(
    name="forward.dual",
    family="forward",
    computes="jacobian",
    call=_CALL.format(t="e_j"),
    uses=frozenset({"forward_ad"}),
    cost="n dual passes (pointwise); N·n otherwise",
    description="Jacobian columns from dual numbers with one-hot tangents",
)
def dual(problem: Problem) -> torch.Tensor:
    """The Jacobian column by column: one dual pass per input element with tangent ``e_j``."""
    import torch

    prepare_forward_ad()

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        lead = inputs[0].shape[:bnd]
        cols = [
            _dual_pass(problem, inputs, onehot(j, problem.in_shapes, inputs[0], lead), bnd)
            for j in range(problem.n)
        ]
        return torch.stack(cols, dim=-1)

    with converting({"forward_ad"}):
        return groups(problem, body)


@path(
    name="forward.dual_jvp",
    family="forward",
    computes="jvp",
    call=_CALL.format(t="t"),
    uses=frozenset({"forward_ad"}),
    cost="1 dual pass (pointwise); N otherwise",
    description="J @ t from dual numbers with random tangents: catches a forward rule that "
    "ignores the scale of its tangent",
)
def dual_jvp(problem: Problem) -> torch.Tensor:
    """``J @ t`` for the problem's random tangents in one dual pass.

    Random (not one-hot) tangents catch a forward rule that ignores the scale of its tangent.
    """
    prepare_forward_ad()

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        tangents = split(group_rows(problem.tangents, point), problem.in_shapes)
        return _dual_pass(problem, inputs, tangents, bnd)

    with converting({"forward_ad"}):
        return groups(problem, body)
