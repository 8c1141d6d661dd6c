"""A case's domain, probed: points inside it clear of the exclusions, the outputs real and
finite there, and not every point on a kink of the expressions."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sympy
from sympy.core.relational import Relational

from ._codegen import compile_program
from ._errors import CaseError, DomainError, VerijacError
from ._validate_expr import _clip, _show

if TYPE_CHECKING:
    import torch

    from ._case import Case

#: How many pseudo-random probe points are tried when checking a case's domain.
PROBE_TRIES = 200
#: How many probe points must be found (and evaluated) inside the domain.
PROBE_POINTS = 8


def _exclusion_values(case: Case) -> Callable[[dict[sympy.Symbol, float]], list[float]]:
    """The case's exclusions as one numeric function of a point, compiled once: verijac's own
    torch code in float64 (a few ms to generate), else mpmath at double precision (SymPy's
    printer: ~20 ms a case), else SymPy substitution. Substituting floats into the expressions
    instead re-evaluates them and asks SymPy's assumptions at every point: seconds per case."""
    import torch

    symbols = [s for v in case.variables for s in v.symbols]
    exclude = list(case.exclude)
    try:
        generated, _ = compile_program(
            "sympy", [("point", (len(symbols),), symbols)], [((len(exclude),), exclude)]
        )
    except (VerijacError, TypeError, ValueError):  # a function torch lacks: mpmath may have it
        generated = None

    @functools.cache
    def by_mpmath() -> Callable[..., Any] | None:
        try:
            return sympy.lambdify(symbols, exclude, modules="mpmath")
        except Exception:
            return None

    def evaluate(values: dict[sympy.Symbol, float]) -> list[float]:
        if generated is not None:
            point = torch.tensor([values[s] for s in symbols], dtype=torch.float64)
            with torch.no_grad():
                return [float(v) for v in generated(point)[0].tolist()]
        compiled = by_mpmath()
        if compiled is not None:
            try:
                return [float(v) for v in compiled(*(values[s] for s in symbols))]
            except (TypeError, ValueError, ArithmeticError):
                pass
        return [float(sympy.sympify(g.xreplace(values)).evalf()) for g in exclude]

    return evaluate


def _probe_values(
    case: Case,
    rng: random.Random,
    exclusions: Callable[[dict[sympy.Symbol, float]], list[float]] | None = None,
) -> dict[sympy.Symbol, float] | None:
    values: dict[sympy.Symbol, float] = {}
    for v in case.variables:
        lo, hi = v.domain.sample_bounds()
        for s in v.symbols:
            for _ in range(20):
                x = rng.uniform(lo, hi)
                if v.domain.keeps_clear(x):
                    values[s] = x
                    break
            else:
                return None
    if not case.exclude:
        return values
    try:
        found = (exclusions or _exclusion_values(case))(values)
    except (TypeError, ValueError, ArithmeticError):
        return None
    if any(not abs(val) >= case.margin for val in found):
        return None
    return values


def probe_points(case: Case, count: int = PROBE_POINTS) -> list[dict[sympy.Symbol, float]]:
    """Deterministic pseudo-random points inside the case's domain, clear of exclusions.

    Raises:
        DomainError: no point could be found: the domain is empty once exclusions apply.
    """
    rng = random.Random(f"verijac-probe-{case.name}")
    exclusions = _exclusion_values(case) if case.exclude else None
    found = []
    for _ in range(PROBE_TRIES):
        pt = _probe_values(case, rng, exclusions)
        if pt is not None:
            found.append(pt)
            if len(found) == count:
                break
    if not found:
        raise DomainError(
            f"case {case.name!r}: no point of the domain "
            f"{ {v.name: str(v.domain) for v in case.variables} } avoids the exclusions "
            f"{[str(g) for g in case.exclude]} (tried {PROBE_TRIES}); the domain is empty — "
            "widen it or relax the exclusions"
        )
    return found


def check_outputs_real(case: Case) -> list[dict[sympy.Symbol, float]]:
    """Evaluate the outputs at probe points: each must be real and finite there.

    Returns:
        The probe points, for `check_kinks`.
    """
    import torch

    points = probe_points(case)
    fn = case.torch_function()
    with torch.no_grad():
        result = fn(*_tensors(case, points))
    outs = result if case.tuple_outputs else (result,)
    for k, (out, spec) in enumerate(zip(outs, case.outputs)):
        flat = out.reshape(len(points), -1)
        bad = ~torch.isfinite(flat)
        if bool(bad.any()):
            p, e = (int(i) for i in bad.nonzero()[0])
            point = {str(s): round(val, 6) for s, val in points[p].items()}
            raise CaseError(
                f"case {case.name!r}: output {k} element {e} = {_show(spec.exprs[e])} is not real and "
                f"finite ({float(flat[p, e])}) at {point}, inside the declared domain; narrow the "
                "domain, exclude the singular points, or fix the expression"
            )
    return points


#: At most this many non-smooth nodes (Abs, Max, floor, Piecewise conditions …) are checked.
MAX_KINK_NODES = 256
#: A probe point closer than this (relative to max(1, |value|)) to a kink lies on it.
KINK_TOL = 1e-9


def _kinks(exprs: Sequence[sympy.Expr]) -> list[tuple[str, sympy.Basic, list[sympy.Expr]]]:
    """The non-smooth nodes of ``exprs``: (rule, node, the expressions the rule tests).

    Rules: ``zero`` (the kink is where the expression is 0), ``integer`` (where it is an
    integer: the jumps of floor/ceiling) and ``tie`` (where two of the arguments of a Max/Min
    tie for the extreme).
    """
    found: list[tuple[str, sympy.Basic, list[sympy.Expr]]] = []
    seen: set[int] = set()  # by id: hashing thousands of Floats costs seconds
    stack: list[sympy.Basic] = list(exprs)
    while stack and len(found) < MAX_KINK_NODES:
        node = stack.pop()
        if not node.args or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            found.append(("zero", node, [node.args[0]]))
        elif isinstance(node, (sympy.floor, sympy.ceiling)):
            found.append(("integer", node, [node.args[0]]))
        elif isinstance(node, (sympy.Max, sympy.Min)):
            found.append(("tie", node, list(node.args)))
        elif isinstance(node, Relational) and isinstance(node.lhs, sympy.Expr):
            found.append(("zero", node, [node.lhs - node.rhs]))
        stack.extend(node.args)
    return found


def _on_kink(rule: str, node: sympy.Basic, values: list[Any]) -> Any:
    """Per probe point (``values``: one float64 tensor per tested expression): on the kink?"""
    import torch

    if rule == "zero":
        v = values[0]
        return v.abs() <= KINK_TOL
    if rule == "integer":
        v = values[0]
        return (v - v.round()).abs() <= KINK_TOL * v.abs().clamp(min=1.0)
    stacked = torch.stack(values, dim=-1)
    if isinstance(node, sympy.Min):
        stacked = -stacked
    top = stacked.topk(2, dim=-1).values
    return (top[..., 0] - top[..., 1]).abs() <= KINK_TOL * top[..., 0].abs().clamp(min=1.0)


def check_kinks(case: Case, points: Sequence[Mapping[sympy.Symbol, float]]) -> None:
    """Refuse a case whose every probe point lies on one kink or jump of its expressions.

    Off a measure-zero set the derivative of ``Abs``, ``Max``, ``floor``, ``Piecewise`` …
    is defined, and verijac checks it there; a domain that lies inside that set (``Abs(x)``
    on ``[0, 0]``) leaves nothing to check, and a report that "passed" would be false.

    Raises:
        CaseError: every probe point lies on the kink of one node; the message names it.
    """
    import torch

    kinks = _kinks(case.out_exprs)
    if not kinks or not points:
        return
    blocks = [((), [e]) for _, _, tested in kinks for e in tested]
    variables = [(v.name, v.shape, list(v.symbols)) for v in case.variables]
    fn, _ = compile_program("sympy", variables, blocks)
    with torch.no_grad():
        flat = [
            torch.as_tensor(o, dtype=torch.float64).reshape(-1) for o in fn(*_tensors(case, points))
        ]
    pos = 0
    for rule, node, tested in kinks:
        values = [t.expand(len(points)) for t in flat[pos : pos + len(tested)]]
        pos += len(tested)
        if bool(_on_kink(rule, node, values).all()):
            domain = {v.name: str(v.domain) for v in case.variables}
            raise CaseError(
                f"case {case.name!r}: every point of the domain {domain} lies on the kink or "
                f"jump of {_clip(str(node))}, where the derivative is undefined (all "
                f"{len(points)} probe points; verijac derives such nodes only off their kinks), "
                "so there is nothing it could check. Widen the domain so that it holds points "
                "off the kink"
            )


def _tensors(case: Case, points: Sequence[Mapping[sympy.Symbol, float]]) -> list[torch.Tensor]:
    """``points`` as one float64 tensor per input, ``(len(points), *shape)``."""
    import torch

    return [
        torch.tensor([[pt[s] for s in v.symbols] for pt in points], dtype=torch.float64).reshape(
            (len(points), *v.shape)
        )
        for v in case.variables
    ]
