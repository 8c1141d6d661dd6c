"""Helpers shared by the path families: batching, nesting, gradients and error conversion.

Nothing here imports torch at module import; every helper imports it when called.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._base import Problem, Unsupported, _size
from ._base import flatten as flatten  # re-exported: the families import layout helpers here
from ._base import split as split  # re-exported with flatten

if TYPE_CHECKING:
    import torch

# -- torch errors that mean "this path does not apply to this function" -----------------------
#: Per capability, the messages torch gives when a function lacks it. Only the capabilities a
#: path uses are converted, so a reverse-mode path never hides a forward-mode failure.
_UNSUPPORTED_PATTERNS: dict[str, tuple[str, ...]] = {
    "forward_ad": (
        r"forward AD with .* that does not support it",
        r"implement the jvp function",
        r"forward[- ]mode AD",
    ),
    "vmap": (
        r"^vmap:",
        r"does not have vmap support",
        r"Batching rule not implemented",
        r"vmap.*not supported",
    ),
    "double_backward": (
        r"once_differentiable",
        r"derivative for .* is not implemented",
        r"double backward.*not (implemented|supported)",
    ),
    # torch.func transforms reject an autograd.Function written in the old style.
    "func": (r"must override the setup_context staticmethod",),
    # linearize traces the function (make_fx): data-dependent Python control flow cannot be
    # traced. A capability of the function, not a wrong derivative.
    "trace": (
        r"data-dependent control flow",
        r"get value out of a tracing tensor",
    ),
    # APIs that need one scalar output (the runner checks `scalar_output` first).
    "scalar": (
        r"should contain a single element",
        r"Expected f\(\*args\) to return a scalar",
    ),
}


@contextlib.contextmanager
def converting(
    uses: Iterable[str], *, func: bool = False, scalar: bool = False, trace: bool = False
) -> Iterator[None]:
    """Turn torch's "this function lacks capability X" errors into `Unsupported`.

    Args:
        uses: the path's capabilities (`CAPABILITIES`); their messages are converted.
        func: also convert torch.func's rejection of old-style autograd.Functions.
        scalar: also convert "needs a scalar output" errors.
        trace: also convert "cannot trace data-dependent control flow" errors.

    Anything else propagates unchanged (the runner reports it as an error).
    """
    kinds = [
        *uses,
        *(["func"] if func else []),
        *(["scalar"] if scalar else []),
        *(["trace"] if trace else []),
    ]
    patterns = [p for k in kinds for p in _UNSUPPORTED_PATTERNS.get(k, ())]
    try:
        yield
    except (RuntimeError, NotImplementedError) as exc:
        msg = str(exc)
        if any(re.search(p, msg) for p in patterns):
            raise Unsupported(msg.strip()) from exc
        raise


def require_scalar_output(problem: Problem, api: str) -> None:
    """Raise `Unsupported` unless the case has exactly one scalar output."""
    if not problem.scalar_output:
        raise Unsupported(
            f"{api} needs a function with one scalar output; this case returns "
            f"{problem.m} output elements (shapes {list(problem.out_shapes)})"
        )


_FORWARD_AD_READY = False


def prepare_forward_ad() -> None:
    """Load torch's forward-AD decompositions once, silencing torch's own deprecation warning.

    The first ``make_dual`` in a process imports ``torch._decomp.decompositions_for_jvp``, which
    calls the deprecated ``torch.jit.script`` on torch's own code and emits a FutureWarning
    that says nothing about the function under test; under ``-W error`` it would abort the
    path. Importing the module here, once, with that one warning ignored, keeps later calls
    warning-free without hiding warnings the function itself raises.
    """
    global _FORWARD_AD_READY
    if _FORWARD_AD_READY:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning
        )
        with contextlib.suppress(ImportError):
            import torch._decomp.decompositions_for_jvp  # noqa: F401
    _FORWARD_AD_READY = True


# -- argument and result plumbing -----------------------------------------------------------------
def argnums(problem: Problem) -> int | tuple[int, ...]:
    """``argnums`` for torch.func covering every input, nested like the case's inputs."""
    return tuple(range(len(problem.in_shapes))) if problem.tuple_inputs else 0


def outputs_tuple(problem: Problem, out: Any) -> tuple[torch.Tensor, ...]:
    """The function's return value as a tuple of tensors."""
    return tuple(out) if problem.tuple_outputs else (out,)


def leaves(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Fresh leaf copies that require grad (the problem's own tensors are never touched)."""
    return tuple(t.detach().clone().requires_grad_(True) for t in tensors)


def onehot(
    k: int, shapes: Sequence[tuple[int, ...]], like: torch.Tensor, lead: Sequence[int] = ()
) -> tuple[torch.Tensor, ...]:
    """The one-hot vector ``e_k`` split into ``shapes`` and broadcast to ``(*lead, *shape)``."""
    import torch

    e = torch.zeros(sum(_size(s) for s in shapes), dtype=like.dtype, device=like.device)
    e[k] = 1
    return tuple(p.expand((*lead, *p.shape)).clone() for p in split(e, shapes))


def per_point(problem: Problem, body: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """Stack ``body(i)`` over the problem's points (a one-point API looped over the batch)."""
    import torch

    return torch.stack([body(i) for i in range(problem.N)])


def fixed_row0(problem: Problem) -> tuple[torch.Tensor, ...]:
    """The points a range path uses: input 0 as given, the others fixed at row 0, broadcast."""
    first, *rest = problem.inputs
    return (first, *(x[:1].expand_as(x).clone() for x in rest))


# -- reverse-mode plumbing shared by the reverse and higher-order families -------------------------
def grads(
    outputs: Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    grad_outputs: Sequence[torch.Tensor],
    *,
    retain_graph: bool = True,
    create_graph: bool = False,
    is_grads_batched: bool = False,
) -> tuple[torch.Tensor, ...]:
    """``torch.autograd.grad`` with zeros where torch has no gradient.

    Outputs that do not require grad (constants) contribute nothing, and inputs no output
    depends on get zeros, so every path sees the mathematically correct zero blocks instead
    of torch's "does not require grad" / "not used in the graph" errors.
    """
    import torch

    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        found: Sequence[torch.Tensor | None] = (None,) * len(inputs)
    else:
        found = torch.autograd.grad(
            [o for o, _ in pairs],
            list(inputs),
            grad_outputs=[g for _, g in pairs],
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
            is_grads_batched=is_grads_batched,
        )
    out = []
    for x, g in zip(inputs, found, strict=True):
        if g is None:
            lead = grad_outputs[0].shape[:1] if is_grads_batched else ()
            g = torch.zeros((*lead, *x.shape), dtype=x.dtype, device=x.device)
        out.append(g)
    return tuple(out)


def groups(
    problem: Problem, body: Callable[[tuple[torch.Tensor, ...], int, int | None], torch.Tensor]
) -> torch.Tensor:
    """Run ``body(inputs, batch_ndim, point)`` on the whole batch or point by point.

    When the case is pointwise, ``body`` gets the batch itself (``batch_ndim=1``,
    ``point=None``): one backward of the summed output gives every point's row (see
    docs/paths.md, "the summed-output trick"). Otherwise it gets each point without its
    batch dimension (``batch_ndim=0``, ``point=i``) and the results are stacked.
    """
    import torch

    if problem.pointwise:
        return body(problem.inputs, 1, None)
    return torch.stack([body(problem.unbatched(i), 0, i) for i in range(problem.N)])


def group_rows(flat: torch.Tensor, point: int | None) -> torch.Tensor:
    """The rows of a problem-level ``(N, k)`` tensor that a `groups` body works on."""
    return flat if point is None else flat[point]


@contextlib.contextmanager
def quiet_vmap_fallback() -> Iterator[None]:
    """Silence torch's "performance drop … batching rule" warning inside vmap-based paths.

    torch warns when an op has no batching rule and vmap falls back to a slow loop. The result
    is still exact, and the warning is about speed, not about the derivative under test; under
    ``-W error`` it would otherwise turn a correct path into an error.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*performance drop because we have not yet implemented"
        )
        yield
