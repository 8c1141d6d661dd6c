"""``torch.compile``d derivatives (opt-in: compiling takes seconds per case).

Where compilation cannot happen for reasons outside the function under test (no C compiler,
a Python version Dynamo does not support, a backend failure), the path is `Unsupported` with
torch's reason; a wrong compiled result is a mismatch like any other.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._base import Problem, Unsupported, path
from ._common import (
    argnums,
    converting,
    flatten,
    grads,
    group_rows,
    groups,
    leaves,
    outputs_tuple,
    quiet_vmap_fallback,
    split,
)

if TYPE_CHECKING:
    import torch


def _backend_errors() -> tuple[type[BaseException], ...]:
    """The exception types torch raises when a compiler backend fails."""
    found: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        from torch._dynamo.exc import BackendCompilerFailed

        found.append(BackendCompilerFailed)
    with contextlib.suppress(ImportError):
        from torch._inductor.exc import InductorError

        found.append(InductorError)
    return tuple(found)


def _compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn)``, or `Unsupported` when this environment cannot compile."""
    import torch

    try:
        return torch.compile(fn)
    except RuntimeError as exc:  # e.g. "Dynamo is not supported on Python 3.x"
        raise Unsupported(f"torch.compile is unavailable here: {exc}") from exc


@contextlib.contextmanager
def _compiling() -> Iterator[None]:
    """Run compiled code, turning backend failures into `Unsupported`.

    Compilation runs torch's own code generators, which emit FutureWarning and
    DeprecationWarning about torch internals (e.g. ``torch._prims_common.check`` is
    deprecated). Under ``-W error`` those abort the compilation although they say nothing
    about the function under test, so they are ignored while compiling.
    """
    errors = _backend_errors()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            yield
        except errors as exc:
            raise Unsupported(f"torch.compile failed in its backend: {exc}") from exc


@path(
    name="compiled.jacrev",
    family="compiled",
    computes="jacobian",
    call="torch.compile(torch.func.vmap(torch.func.jacrev(f, argnums=all)))(*x)",
    uses=frozenset({"compile", "vmap"}),
    cost="1 compilation, then 1 f, 1 vmapped backward over m cotangents",
    opt_in=True,
    description="Jacobian from a compiled jacobian transform",
)
def jacrev(problem: Problem) -> torch.Tensor:
    """``torch.compile(vmap(jacrev(f, argnums=all)))(*x)`` over the whole batch."""
    import torch.func

    fn = _compile(torch.func.vmap(torch.func.jacrev(problem.func, argnums=argnums(problem))))
    with _compiling(), converting({"vmap"}, func=True), quiet_vmap_fallback():
        return problem.flat_jacobian(fn(*problem.inputs)).detach()


@path(
    name="compiled.forward_backward",
    family="compiled",
    computes="vjp",
    call="torch.autograd.grad(torch.compile(f)(x), x, grad_outputs=c)",
    uses=frozenset({"compile"}),
    cost="1 compilation, then 1 f, 1 backward (pointwise); N of each otherwise",
    opt_in=True,
    description="c @ J through a compiled forward and its AOT-compiled backward",
)
def forward_backward(problem: Problem) -> torch.Tensor:
    """``c @ J`` by backward through ``torch.compile(f)`` (compiled forward and backward)."""
    compiled = _compile(problem.func)

    def body(inputs: tuple[torch.Tensor, ...], bnd: int, point: int | None) -> torch.Tensor:
        xs = leaves(inputs)
        outs = outputs_tuple(problem, compiled(*xs))
        cots = split(group_rows(problem.cotangents, point), problem.out_shapes)
        return flatten(grads(outs, xs, cots, retain_graph=False), problem.in_shapes, bnd).detach()

    with _compiling():
        return groups(problem, body)
