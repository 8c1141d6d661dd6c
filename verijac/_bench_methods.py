"""What ``verijac bench`` times: the benchmark modes and, per mode, the torch methods.

A *method* is one way of computing a derivative that a mode ranks. In the ``paths`` mode the
methods are the catalogue's first-order paths; the two range modes are seed 003's question
(the gradient, or ``J @ v``, over a range of input 0 with the other inputs fixed) and add the
``in_dims=(0, None, …)`` and materialise-then-multiply variants that only make sense there.
JAX methods come from `verijac._bench_jax`; every method's result is compared with the exact
reference like a catalogue path's.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import AutogradPath, Problem

#: A method's preparation: the problem in, a zero-argument call that computes the result out.
Prepare = Callable[["Problem"], Callable[[], Any]]


@dataclass(frozen=True)
class Method:
    """One timed way of computing a derivative.

    Attributes:
        name: ``func.vmap_grad`` (a catalogue path), ``range.…`` or ``jax.…``.
        framework: ``"torch"`` or ``"jax"``.
        computes: the result kind (`verijac.paths.COMPUTES`); fixes the exact reference.
        call: the call, as a reader would write it.
        prepare: builds the timed call for a problem; what that call returns is converted by
            ``to_torch`` and compared (a tensor, or a `verijac.paths.PathResult`).
        batched: whether one call covers the whole batch; a per-point loop is timed on at
            most `UNBATCHED_POINTS` points and reported per point.
        path: the catalogue path it runs (tolerances, known failures, requirements), if any.
        requires: requirements (`verijac.paths.REQUIREMENTS`) beyond the path's.
        materialises: computes the full Jacobian on the way (theoretical cost ``min(n, m)``
            even where the result is a ``J @ v``).
        to_torch: converts the call's value to a torch tensor (JAX arrays), or ``None``.
    """

    name: str
    framework: str
    computes: str
    call: str
    prepare: Prepare
    batched: bool = True
    path: AutogradPath | None = None
    requires: frozenset[str] = frozenset()
    materialises: bool = False
    to_torch: Callable[[Any], Any] | None = None

    @property
    def family(self) -> str:
        """The catalogue family, or ``range`` / ``jax`` for the methods bench adds."""
        if self.path is not None:
            return self.path.family
        return self.name.split(".", 1)[0]


#: Points a per-point loop is timed on (its time per point does not depend on the batch).
UNBATCHED_POINTS = 10


def theory(method: Method, n: int, m: int) -> float | None:
    """The theoretical cost of ``method`` in evaluations of f (up to a small constant).

    A full Jacobian costs about ``min(n, m)`` evaluations (the better of forward mode, one
    jvp per input, and reverse mode, one vjp per output); one jvp or vjp, or the gradient of
    a scalar function, about one. Second-order results get ``None``.
    """
    if method.materialises or method.computes == "jacobian":
        return float(min(n, m))
    return {"gradient": 1.0, "jvp": 1.0, "vjp": 1.0, "vjp_accumulated": 2.0}.get(method.computes)


@dataclass(frozen=True)
class Mode:
    """One benchmark mode: which points, which result kinds, which methods.

    Attributes:
        name: as ``--mode`` takes it.
        description: one line for ``--help`` and the report.
        range: points are a range of input 0 with every other input fixed at one point.
        computes: the catalogue result kinds it runs by default.
        exclude: catalogue paths it leaves out by default.
    """

    name: str
    description: str
    range: bool
    computes: frozenset[str]
    exclude: frozenset[str] = frozenset()


_RANGE_PATHS = frozenset({"func.vmap_in_dims", "func.jvp_range"})
#: The modes, one record each; ``all`` runs them in this order.
MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            "paths",
            "every first-order catalogue path at random points of the domain",
            range=False,
            computes=frozenset({"jacobian", "gradient", "jvp", "vjp", "vjp_accumulated"}),
            exclude=_RANGE_PATHS,
        ),
        Mode(
            "range-gradient",
            "seed 003: the Jacobian (gradient) over a range of input 0, the others fixed",
            range=True,
            computes=frozenset({"jacobian", "gradient"}),
        ),
        Mode(
            "range-jvp",
            "seed 003: J @ v over a range of input 0, the others fixed (jvp vs materialise)",
            range=True,
            computes=frozenset({"jvp"}),
        ),
    )
}


def resolve_modes(names: Sequence[str] | None) -> list[Mode]:
    """Modes from names (``all`` is every mode); ``None`` is every mode.

    Raises:
        UsageError: an unknown mode name.
    """
    if not names:
        return list(MODES.values())
    out: list[Mode] = []
    for name in names:
        if name == "all":
            found = list(MODES.values())
        elif name in MODES:
            found = [MODES[name]]
        else:
            raise UsageError(
                f"mode must be one of {[*MODES, 'all']}, got mode={name!r}; e.g. --mode range-gradient"
            )
        out += [m for m in found if m not in out]
    return out


# -- the methods -----------------------------------------------------------------------------


def _catalogue(path: AutogradPath) -> Method:
    def prepare(problem: Problem) -> Callable[[], Any]:
        return lambda: path.run(problem)

    return Method(
        name=path.name,
        framework="torch",
        computes=path.computes,
        call=path.call,
        prepare=prepare,
        batched=path.batched,
        path=path,
    )


def _range_args(problem: Problem) -> tuple[Any, ...]:
    """Input 0 batched, the others as one point without a batch dimension."""
    return (problem.inputs[0], *(x[0] for x in problem.inputs[1:]))


def _in_dims(problem: Problem) -> tuple[int | None, ...]:
    return (0, *([None] * (len(problem.inputs) - 1)))


def _vmap_in_dims(transform: str) -> Prepare:
    """``vmap(<transform>(f, argnums=all), in_dims=(0, None, …))`` → ``(N, m, n)`` or ``(N, n)``."""

    def prepare(problem: Problem) -> Callable[[], Any]:
        import torch.func

        from .paths._common import argnums, flatten, prepare_forward_ad, quiet_vmap_fallback

        if transform == "jacfwd":
            prepare_forward_ad()
        fn = torch.func.vmap(
            getattr(torch.func, transform)(problem.func, argnums=argnums(problem)),
            in_dims=_in_dims(problem),
        )
        args = _range_args(problem)

        def call() -> Any:
            with quiet_vmap_fallback():
                found = fn(*args)
            if transform == "grad":
                parts = found if problem.tuple_inputs else (found,)
                return flatten(parts, problem.in_shapes, 1).detach()
            return problem.flat_jacobian(found).detach()

        return call

    return prepare


def _grad_of_sum(problem: Problem) -> Callable[[], Any]:
    """``torch.autograd.grad(f(*x).sum(), x)``: every point's gradient from one backward.

    Valid because each output row depends on its own input row only (the summed-output trick,
    docs/paths.md); the fixed inputs are repeated per row so each row gets its own gradient.
    """
    import torch

    from .paths._common import flatten

    def call() -> Any:
        xs = [x.detach().requires_grad_(True) for x in problem.inputs]
        found = torch.autograd.grad(problem.func(*xs).sum(), xs)
        return flatten(found, problem.in_shapes, 1)

    return call


def _materialise(jacobian: Prepare) -> Prepare:
    """``J`` by ``jacobian``, then ``J @ v`` per point (the materialise-then-multiply answer)."""

    def prepare(problem: Problem) -> Callable[[], Any]:
        import torch

        jac = jacobian(problem)
        t = problem.tangents

        def call() -> Any:
            j = jac()
            if j.dim() == 2:  # a gradient (N, n): one output
                return torch.einsum("bn,bn->b", j, t).unsqueeze(1)
            return torch.einsum("bmn,bn->bm", j, t)

        return call

    return prepare


def _loop_jacobian(problem: Problem) -> Callable[[], Any]:
    """``torch.autograd.functional.jacobian`` per point: the loop seed 003's user wrote."""
    from .paths._base import get_path

    path = get_path("functional.jacobian")
    return lambda: path.run(problem)


def _range_methods(mode: Mode) -> list[Method]:
    """The methods only the range modes have (``in_dims=None`` and materialise-then-multiply)."""
    scalar = frozenset({"scalar_output"})
    if mode.name == "range-gradient":
        return [
            Method(
                "range.grad_of_sum",
                "torch",
                "gradient",
                "torch.autograd.grad(f(x0s, *others repeated).sum(), (x0s, *others repeated))",
                _grad_of_sum,
                requires=scalar,
            ),
            Method(
                "range.vmap_grad_in_dims",
                "torch",
                "gradient",
                "torch.func.vmap(torch.func.grad(f, argnums=all), in_dims=(0, None, …))(x0s, *others)",
                _vmap_in_dims("grad"),
                requires=scalar,
            ),
            Method(
                "range.vmap_jacfwd_in_dims",
                "torch",
                "jacobian",
                "torch.func.vmap(torch.func.jacfwd(f, argnums=all), in_dims=(0, None, …))(x0s, *others)",
                _vmap_in_dims("jacfwd"),
            ),
        ]
    return [
        Method(
            "range.loop_jacobian_matmul",
            "torch",
            "jvp",
            "for x0 in x0s: torch.autograd.functional.jacobian(f, (x0, *others)); then J @ v",
            _materialise(_loop_jacobian),
            batched=False,
            materialises=True,
        ),
        Method(
            "range.vmap_jacrev_matmul",
            "torch",
            "jvp",
            "torch.func.vmap(torch.func.jacrev(f, argnums=all), in_dims=(0, None, …)); then J @ v",
            _materialise(_vmap_in_dims("jacrev")),
            materialises=True,
        ),
        Method(
            "range.vmap_jacfwd_matmul",
            "torch",
            "jvp",
            "torch.func.vmap(torch.func.jacfwd(f, argnums=all), in_dims=(0, None, …)); then J @ v",
            _materialise(_vmap_in_dims("jacfwd")),
            materialises=True,
        ),
        Method(
            "range.vmap_grad_matmul",
            "torch",
            "jvp",
            "torch.func.vmap(torch.func.grad(f, argnums=all), in_dims=(0, None, …)); then g · v",
            _materialise(_vmap_in_dims("grad")),
            requires=scalar,
            materialises=True,
        ),
    ]


def _selected(method: Method, patterns: Sequence[str]) -> bool:
    from .paths._base import selects

    for pattern in patterns:
        if method.path is not None and selects(pattern, method.path):
            return True
        if pattern in (method.name, method.family) or fnmatch.fnmatchcase(method.name, pattern):
            return True
    return False


def torch_methods(mode: Mode, patterns: Sequence[str] = ()) -> list[Method]:
    """The torch methods ``mode`` times, narrowed to ``patterns`` (names, globs, families).

    Without patterns: the mode's default catalogue paths (first order, not opt-in) and its own
    variants. With patterns, opt-in and second-order paths a pattern names are included too.
    """
    from .paths._base import list_paths

    out: list[Method] = []
    for path in list_paths(include_opt_in=bool(patterns)):
        if path.computes == "behaviour":
            continue
        if not patterns and (path.computes not in mode.computes or path.name in mode.exclude):
            continue
        if patterns and mode.range and path.computes not in mode.computes:
            continue  # a range mode ranks one kind of result
        if patterns and not mode.range and path.name in _RANGE_PATHS:
            continue
        out.append(_catalogue(path))
    if mode.range:
        out += _range_methods(mode)
    if patterns:
        out = [m for m in out if _selected(m, patterns)]
    return out


def check_patterns(patterns: Sequence[str], methods: Sequence[Method]) -> None:
    """Raise when a ``--path`` pattern selects none of ``methods``.

    Raises:
        UsageError: the pattern, and where the names come from.
    """
    for pattern in patterns:
        if not any(_selected(m, [pattern]) for m in methods):
            raise UsageError(
                f"no benchmarked path matches --path {pattern!r} in the selected mode(s): give a "
                "catalogue path, family or glob (`verijac list --paths`), range.* or jax.*"
            )


def unmet(method: Method, case: Case) -> str:
    """Why ``method`` does not apply to ``case`` (``""`` when it does)."""
    from ._evaluate import _unmet

    if method.path is not None:
        reason = _unmet(method.path, case, True)
        if reason:
            return reason
    if "scalar_output" in method.requires and not case.scalar_output:
        return (
            f"{method.name!r} needs one scalar output; case {case.name!r} has {case.n_out} "
            "output element(s)"
        )
    return ""


__all__ = [
    "MODES",
    "UNBATCHED_POINTS",
    "Method",
    "Mode",
    "check_patterns",
    "resolve_modes",
    "theory",
    "torch_methods",
    "unmet",
]
