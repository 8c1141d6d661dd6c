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
    code run in float64, or with ``digits``, mpmath at that precision (`verijac._precise`)."""

    if digits is not None:
        from ._precise import precise_jacobian

        return precise_jacobian(case, inputs, digits).to(_reference_device(inputs[0].device))
    args = _f64(inputs)
    return flat_jacobian(
        case.torch_jacobian()(*args),
        [o.shape for o in case.outputs],
        [v.shape for v in case.variables],
        tuple_outputs=case.tuple_outputs,
        tuple_inputs=case.tuple_inputs,
    )


def exact_hessian(case: Case, inputs: Sequence[Any], digits: int | None = None) -> Any:
    """The exact Hessian at ``inputs`` in float64, flattened to ``(N, m, n, n)`` (``digits``:
    as in `exact_jacobian`)."""

    if digits is not None:
        from ._precise import precise_hessian

        return precise_hessian(case, inputs, digits).to(_reference_device(inputs[0].device))
    args = _f64(inputs)
    return flat_hessian(
        case.torch_hessian()(*args),
        [o.shape for o in case.outputs],
        [v.shape for v in case.variables],
        tuple_outputs=case.tuple_outputs,
        tuple_inputs=case.tuple_inputs,
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
