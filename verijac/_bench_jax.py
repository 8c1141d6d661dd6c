"""JAX beside torch in ``verijac bench``: the case lowered to JAX, and the JAX methods.

The case's outputs are lowered with SymPy's JAX printer (``lambdify(modules="jax")``) into a
function of one flat vector ``x`` of the ``n`` input elements returning the ``m`` output
elements, so that ``jax.jacrev`` gives the ``(m, n)`` layout every verijac result uses. Large
linear combinations of the inputs (a dense ``W x``) become one matmul first, as in verijac's
torch generator; everything else is code per output entry (verijac's torch generator also
evaluates structurally equal entries together, which the JAX lowering does not).

JAX is optional (``pip install "verijac[jax]"``) and never imported at start-up: only
`load_jax` imports it, when a benchmark asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._bench_methods import Method, Mode
from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import Problem

#: What to do when jax is missing, for the message.
INSTALL_HINT = 'pip install "verijac[jax]" (or pip install jax)'


def load_jax() -> Any:
    """Import jax, with float64 enabled (verijac benchmarks float64 too).

    Raises:
        UsageError: jax is not installed; the message says how to install it or skip it.
    """
    try:
        import jax
    except ImportError:
        raise UsageError(
            f"the JAX comparison needs jax, which is not installed: {INSTALL_HINT}, or pass "
            "--no-jax to benchmark torch alone"
        ) from None
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_version() -> str | None:
    """The installed jax version, without importing jax; ``None`` when it is missing."""
    import importlib.metadata
    import sys

    if "jax" in sys.modules and sys.modules["jax"] is None:  # deliberately blocked
        return None
    try:
        return importlib.metadata.version("jax")
    except importlib.metadata.PackageNotFoundError:
        return None


def jax_device(device: str) -> Any:
    """The JAX device standing for a torch device name.

    Raises:
        LookupError: JAX has no such device here.
    """
    import jax

    kind = device.split(":")[0]
    index = int(device.split(":")[1]) if ":" in device else 0
    platform = {"cpu": "cpu", "cuda": "gpu"}.get(kind)
    if platform is None:
        raise LookupError(f"JAX has no device for torch device {device!r}")
    try:
        found = jax.devices(platform)
    except RuntimeError:
        raise LookupError(f"JAX has no {platform} device here") from None
    if index >= len(found):
        raise LookupError(f"JAX has {len(found)} {platform} device(s), not {device!r}")
    return found[index]


_LOWERED: dict[int, tuple[Any, Callable[..., Any]]] = {}


def _linear_parts(case: Case) -> tuple[list[Any], Any, Any, list[Any]]:
    """The outputs with every large linear combination of the inputs (a dense ``W x``)
    replaced by a dummy symbol, and ``W``, ``b`` such that the dummies are ``W x + b``.

    Printed entry by entry, a dense ``tanh(W x)`` of 64×64 is 4,096 scalar products and as
    many constants, which XLA takes minutes to compile; as one matmul it takes a moment.

    Returns:
        ``(outputs, W, b, dummies)``; ``W`` is ``None`` when there is no such combination.
    """
    import numpy as np
    import sympy

    from ._codegen import _is_big_linear, _linear_terms

    index = {s: i for i, s in enumerate(case.in_symbols)}
    found: dict[Any, Any] = {}
    rows: list[list[float]] = []
    consts: list[float] = []
    for expr in case.out_exprs:
        for sub in sympy.preorder_traversal(expr):
            if sub in found or not getattr(sub, "is_Add", False) or not _is_big_linear(sub):
                continue
            lin = _linear_terms(sub)
            if lin is None or not all(sym in index for _, sym in lin[0]):
                continue
            row = [0.0] * len(index)
            for coef, sym in lin[0]:
                row[index[sym]] += coef
            found[sub] = sympy.Dummy(f"lin{len(rows)}")
            rows.append(row)
            consts.append(lin[1])
    outputs = [e.xreplace(found) if found else e for e in case.out_exprs]
    if not rows:
        return outputs, None, None, []
    return outputs, np.array(rows), np.array(consts), list(found.values())


def _templates(
    outputs: list[Any], dummies: list[Any]
) -> tuple[Any, list[tuple[Any, list[int], list[int]]]] | None:
    """Outputs that are each one function of one linear combination, grouped by function.

    Returns:
        ``(u, [(g(u), outputs, rows), …])``: output ``outputs[i]`` is ``g(dummy[rows[i]])``;
        ``None`` when some output is not such a function (the per-entry lowering applies).
    """
    import sympy

    if not dummies:
        return None
    position = {d: k for k, d in enumerate(dummies)}
    u = sympy.Dummy("u")
    groups: dict[Any, tuple[list[int], list[int]]] = {}
    for k, e in enumerate(outputs):
        free = e.free_symbols
        d = next(iter(free)) if len(free) == 1 else None
        if d not in position:
            return None
        outs, rows = groups.setdefault(e.xreplace({d: u}), ([], []))
        outs.append(k)
        rows.append(position[d])
    if len(groups) > 8:  # not a layer: as many functions as outputs
        return None
    return u, [(g, outs, rows) for g, (outs, rows) in groups.items()]


def lower(case: Case) -> Callable[[Any], Any]:
    """The case as a JAX function of the flat input vector ``(n,)`` → ``(m,)``.

    Large linear combinations of the inputs become one matmul (`_linear_parts`); the rest is
    printed by SymPy's JAX printer, entry by entry.

    Raises:
        Exception: SymPy cannot print an output for JAX (the caller reports `unsupported`).
    """
    hit = _LOWERED.get(id(case))
    if hit is not None and hit[0] is case:
        return hit[1]
    import jax.numpy as jnp
    import sympy

    n = case.n_in
    outputs, weights, offsets, dummies = _linear_parts(case)
    found = _templates(outputs, dummies)
    if found is not None:
        # Each output is one of a few functions of its own linear combination (a layer
        # ``g(W x + b)``): one matmul, and each function applied once to its slice.
        import numpy as np

        u, parts = found
        pieces = [
            (sympy.lambdify([u], g, modules="jax"), weights[rows], offsets[rows])
            for g, _, rows in parts
        ]
        order = np.argsort(np.concatenate([outs for _, outs, _ in parts]))

        def layer(x: Any) -> Any:
            values = []
            for g, w, b in pieces:
                lin = jnp.asarray(w, dtype=x.dtype) @ x + jnp.asarray(b, dtype=x.dtype)
                values.append(jnp.asarray(g(lin), dtype=x.dtype) * jnp.ones_like(lin))
            return jnp.concatenate(values)[order]

        _LOWERED[id(case)] = (case, layer)
        return layer
    scalar = sympy.lambdify([*case.in_symbols, *dummies], outputs, modules="jax")

    def f(x: Any) -> Any:
        extra: list[Any] = []
        if weights is not None:
            lin = jnp.asarray(weights, dtype=x.dtype) @ x + jnp.asarray(offsets, dtype=x.dtype)
            extra = [lin[k] for k in range(len(dummies))]
        values = scalar(*[x[i] for i in range(n)], *extra)
        return jnp.stack([jnp.asarray(v, dtype=x.dtype) for v in values])

    _LOWERED[id(case)] = (case, f)
    return f


def _to_torch(value: Any) -> Any:
    import numpy as np
    import torch

    return torch.from_numpy(np.array(value, copy=True))


def _flat(problem: Problem) -> Any:
    import torch

    n_points = problem.N
    return torch.cat([x.reshape(n_points, -1) for x in problem.inputs], dim=1)


def _device_array(tensor: Any, device: str) -> Any:
    import jax
    import torch

    host = tensor.detach().cpu()
    if host.dtype == torch.bfloat16:  # numpy has no bfloat16: through float32, exactly
        return jax.device_put(host.float().numpy(), jax_device(device)).astype("bfloat16")
    return jax.device_put(host.numpy(), jax_device(device))


def _prepare(kind: str) -> Callable[[Problem], Callable[[], Any]]:
    """The preparation of one JAX method: lower, jit, move the batch to the JAX device."""

    def prepare(problem: Problem) -> Callable[[], Any]:
        import jax
        import jax.numpy as jnp

        from .paths._base import Unsupported

        case = problem.extra["case"]
        device = str(problem.inputs[0].device)
        try:
            jax_device(device)
        except LookupError as exc:
            raise Unsupported(str(exc)) from None
        x = _device_array(_flat(problem), device)
        try:
            f = lower(case)
            jax.eval_shape(f, x[0])
        except Exception as exc:  # SymPy printed something JAX cannot run (an unknown function)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise Unsupported(
                f"SymPy's JAX printer cannot lower case {case.name!r}: {type(exc).__name__}: {text}"
            ) from None
        t = _device_array(problem.tangents, device)
        c = _device_array(problem.cotangents, device)
        args: tuple[Any, ...]
        if kind == "grad":
            fn = jax.vmap(jax.grad(lambda v: f(v)[0]))
            args = (x,)
        elif kind in ("jacrev", "jacfwd"):
            fn = jax.vmap(getattr(jax, kind)(f))
            args = (x,)
        elif kind == "jvp":
            fn = jax.vmap(lambda v, w: jax.jvp(f, (v,), (w,))[1])
            args = (x, t)
        elif kind == "vjp":
            fn = jax.vmap(lambda v, u: jax.vjp(f, v)[1](u)[0])
            args = (x, c)
        elif kind in ("grad_in_dims", "jacrev_in_dims", "jacfwd_matmul", "jvp_range"):
            # Seed 003's shape: x0 batched, the other inputs one point (in_dims=None).
            k = case.variables[0].size
            rest = x[0, k:]

            def g(x0: Any, others: Any) -> Any:
                return f(jnp.concatenate([x0, others]))

            x0s = x[:, :k]
            if kind == "grad_in_dims":
                fn = jax.vmap(
                    lambda a, b: jnp.concatenate(jax.grad(lambda p, q: g(p, q)[0], (0, 1))(a, b)),
                    in_axes=(0, None),
                )
                args = (x0s, rest)
            elif kind == "jacrev_in_dims":
                fn = jax.vmap(
                    lambda a, b: jnp.concatenate(jax.jacrev(g, (0, 1))(a, b), axis=-1),
                    in_axes=(0, None),
                )
                args = (x0s, rest)
            elif kind == "jacfwd_matmul":
                fn = jax.vmap(
                    lambda a, b, w: jnp.concatenate(jax.jacfwd(g, (0, 1))(a, b), axis=-1) @ w,
                    in_axes=(0, None, 0),
                )
                args = (x0s, rest, t)
            else:
                fn = jax.vmap(
                    lambda a, b, w: jax.jvp(f, (jnp.concatenate([a, b]),), (w,))[1],
                    in_axes=(0, None, 0),
                )
                args = (x0s, rest, t)
        else:  # pragma: no cover - the table below names every kind
            raise ValueError(kind)
        jitted = jax.jit(fn)

        def call() -> Any:
            return jitted(*args).block_until_ready()

        return call

    return prepare


#: Per mode: (name, computes, kind, call, needs a scalar output, materialises J).
_TABLE: dict[str, tuple[tuple[str, str, str, str, bool, bool], ...]] = {
    "paths": (
        ("jax.grad", "gradient", "grad", "jax.jit(jax.vmap(jax.grad(f)))(x)", True, False),
        ("jax.jacrev", "jacobian", "jacrev", "jax.jit(jax.vmap(jax.jacrev(f)))(x)", False, False),
        ("jax.jacfwd", "jacobian", "jacfwd", "jax.jit(jax.vmap(jax.jacfwd(f)))(x)", False, False),
        ("jax.jvp", "jvp", "jvp", "jax.jit(jax.vmap(lambda x, t: jax.jvp(f, (x,), (t,))[1]))", False, False),
        ("jax.vjp", "vjp", "vjp", "jax.jit(jax.vmap(lambda x, c: jax.vjp(f, x)[1](c)))", False, False),
    ),
    "range-gradient": (
        ("jax.vmap_grad_in_dims", "gradient", "grad_in_dims",
         "jax.jit(jax.vmap(jax.grad(f, (0, 1)), in_axes=(0, None)))(x0s, others)", True, False),
        ("jax.jacrev_in_dims", "jacobian", "jacrev_in_dims",
         "jax.jit(jax.vmap(jax.jacrev(f, (0, 1)), in_axes=(0, None)))(x0s, others)", False, False),
        ("jax.jacfwd", "jacobian", "jacfwd", "jax.jit(jax.vmap(jax.jacfwd(f)))(x)", False, False),
    ),
    "range-jvp": (
        ("jax.jvp_range", "jvp", "jvp_range",
         "jax.jit(jax.vmap(lambda x0, t: jax.jvp(f, (x0, others), t)[1], in_axes=(0, None, 0)))", False, False),
        ("jax.jacfwd_matmul", "jvp", "jacfwd_matmul",
         "jax.jit(jax.vmap(lambda x0, t: jax.jacfwd(f)(x0, others) @ t, in_axes=(0, None, 0)))", False, True),
    ),
}  # fmt: skip


def jax_methods(mode: Mode) -> list[Method]:
    """The JAX methods ``mode`` times (jit of vmap of a transform of the lowered case)."""
    return [
        Method(
            name,
            "jax",
            computes,
            call,
            _prepare(kind),
            requires=frozenset({"scalar_output"}) if scalar else frozenset(),
            materialises=materialises,
            to_torch=_to_torch,
        )
        for name, computes, kind, call, scalar, materialises in _TABLE[mode.name]
    ]


def jax_f(problem: Problem) -> Callable[[], Any]:
    """One evaluation of the lowered f on the batch, jitted (JAX's floor, for the report)."""
    import jax

    f = lower(problem.extra["case"])
    x = _device_array(_flat(problem), str(problem.inputs[0].device))
    jitted = jax.jit(jax.vmap(f))
    return lambda: jitted(x).block_until_ready()


__all__ = ["INSTALL_HINT", "jax_device", "jax_f", "jax_methods", "jax_version", "load_jax", "lower"]
