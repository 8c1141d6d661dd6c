"""Known points of a case, checked: inside the domain, and every value, Jacobian, Hessian and
VJP given there equal to what the expressions give exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sympy
from sympy.tensor.array import NDimArray

from ._errors import CaseError, ShapeError
from ._layout import Shape
from ._parse import parse_number
from ._parts import KnownPoint
from ._trees import substitute_values

if TYPE_CHECKING:
    from ._case import Case


def _flatten(value: Any, shape: Shape, what: str, case: str) -> list[sympy.Expr]:
    if isinstance(value, str):
        value = parse_number(value)
    if hasattr(value, "tolist") and not isinstance(value, sympy.Basic):
        value = value.tolist()
    if isinstance(value, sympy.MatrixBase):
        value = value.tolist()
    if isinstance(value, NDimArray):
        value = value.tolist() if value.shape else value[()]
    got = _shape_of(value)
    if got != shape:
        raise ShapeError(f"case {case!r}: {what} has shape {got}, expected {shape}")
    flat = sympy.flatten(value) if shape else [value]
    out = []
    for x in flat:
        if isinstance(x, str):
            x = parse_number(x)
        try:
            out.append(sympy.sympify(x, strict=True))
        except (sympy.SympifyError, TypeError):
            raise CaseError(f"case {case!r}: {what} holds {x!r}, not a number") from None
    return out


def _shape_of(value: Any) -> Shape:
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,)
        inner = {_shape_of(v) for v in value}
        if len(inner) != 1:
            return (len(value), -1)
        return (len(value), *inner.pop())
    return ()


def _nested(value: Any, outer: bool, count: int, what: str, case: str) -> list[Any]:
    if not outer:
        return [value]
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise ShapeError(f"case {case!r}: {what} must be a tuple of {count} entries, got {value!r}")
    return list(value)


def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Whether a known value ``b`` equals the exact ``a``: numerically at 30 digits first
    (SymPy's evalf raises the working precision until the digits are right, so a difference
    it shows is real); symbolic simplification only where no number comes out."""
    try:
        num = abs(complex(sympy.N(a - b, 30)))
        scale = max(1.0, abs(complex(sympy.N(a, 30))))
    except (TypeError, ValueError):
        diff = sympy.nsimplify(a - b) if a.is_Float or b.is_Float else sympy.simplify(a - b)
        return bool(diff == 0)
    return num <= 1e-12 * scale


def _compare(case: str, what: str, expected: list[Any], given: list[Any]) -> None:
    for k, (e, g) in enumerate(zip(expected, given)):
        if not _same(e, g):
            raise CaseError(
                f"case {case!r}: known point {what} entry {k} is {g}, but the expressions give "
                f"{e}; fix the known value or the expression"
            )


def check_known(case: Case, point: KnownPoint) -> None:
    """Check a known point lies in the domain and its values match the expressions exactly."""
    if not isinstance(point, KnownPoint):
        raise CaseError(
            f"case {case.name!r}: known points must be verijac.KnownPoint, got {point!r}"
        )
    names = set(case.input_names)
    if set(point.at) != names:
        raise CaseError(
            f"case {case.name!r}: known point gives inputs {sorted(point.at)}, expected "
            f"{sorted(names)}"
        )
    subs: dict[sympy.Symbol, sympy.Expr] = {}
    for v in case.variables:
        vals = _flatten(point.at[v.name], v.shape, f"known point input {v.name!r}", case.name)
        for s, x in zip(v.symbols, vals):
            if x.free_symbols or not x.is_real:
                raise CaseError(
                    f"case {case.name!r}: known point {v.name}={point.at[v.name]!r} must hold real "
                    f"numbers, got {x}"
                )
            if not v.domain.contains(float(x)):
                raise CaseError(
                    f"case {case.name!r}: known point {v.name}={point.at[v.name]!r} lies outside "
                    f"its domain {v.domain}"
                )
            subs[s] = x
    if point.value is not None:
        given = _nested(point.value, case.tuple_outputs, len(case.outputs), "value", case.name)
        for k, (o, g) in enumerate(zip(case.outputs, given)):
            flat = _flatten(g, o.shape, f"known value of output {k}", case.name)
            exact = substitute_values(o.exprs, subs)
            _compare(case.name, f"value of output {k}", exact, flat)
    if point.jacobian is not None:
        _check_blocks(case, point.jacobian, "jacobian", _derivative_at(case, 1, subs))
    if point.hessian is not None:
        _check_blocks(case, point.hessian, "hessian", _derivative_at(case, 2, subs))
    for cot, result in point.vjp:
        _check_vjp(case, cot, result, subs)


def _derivative_at(case: Case, order: int, subs: Mapping[sympy.Symbol, sympy.Expr]) -> Any:
    """The exact Jacobian (``order`` 1) or Hessian (2) at the point ``subs``, nested like
    `Case.jacobian` / `Case.hessian` (entries from `_flat_at`)."""
    return case._nested(_flat_at(case, order, subs), order)


def _flat_at(case: Case, order: int, subs: Mapping[sympy.Symbol, sympy.Expr]) -> list[Any]:
    """The flat Jacobian ``[out][in]`` (``order`` 1) or Hessian ``[out][in][in]`` (2) at the
    point ``subs``, its entries exact SymPy numbers (or expressions of them).

    Where the derivatives live in symengine and the point is rational, each entry is
    evaluated there (exact rational arithmetic; functions stay unevaluated: sin(1/2)) and only
    the resulting number is converted to SymPy; converting the whole derivative to SymPy
    first cost most of the known-point checks of the symengine cases. Elsewhere (a float
    point, a SymPy-only function) the SymPy form is substituted.
    """
    d = case.derivatives
    if d.engine != "symengine" or not all(x.is_Rational for x in subs.values()):
        if order == 1:
            return [substitute_values(row, subs) for row in d.jacobian_sympy()]
        return [[substitute_values(row, subs) for row in h] for h in d.hessian_sympy()]
    import symengine

    native = {symengine.Symbol(s.name): symengine.sympify(x) for s, x in subs.items()}
    memo: dict[Any, Any] = {}

    def at(e: Any) -> sympy.Expr:
        hit = memo.get(e)
        if hit is None:
            hit = memo[e] = d.to_sympy(e.xreplace(native))
        return hit

    if order == 1:
        return [[at(e) for e in row] for row in d.jacobian_native]
    return [[[at(e) for e in row] for row in h] for h in d.hessian_native]


def _leaves(exact: Any) -> list[Any]:
    if isinstance(exact, tuple):
        return [leaf for e in exact for leaf in _leaves(e)]
    return [exact]


def _given_leaves(given: Any, exact: Any, what: str, case: str) -> list[Any]:
    if isinstance(exact, tuple):
        if not isinstance(given, (tuple, list)) or len(given) != len(exact):
            raise ShapeError(
                f"case {case!r}: known {what} must be nested like the exact one "
                f"({len(exact)} entries at this level), got {given!r}"
            )
        return [leaf for g, e in zip(given, exact) for leaf in _given_leaves(g, e, what, case)]
    return [given]


def _check_blocks(case: Case, given: Any, what: str, exact: Any) -> None:
    """Compare the known blocks ``given`` with ``exact`` (the derivative at the point)."""
    for k, (g, e) in enumerate(zip(_given_leaves(given, exact, what, case.name), _leaves(exact))):
        shape = tuple(e.shape) if isinstance(e, NDimArray) else ()
        flat_e = list(sympy.flatten(e.tolist())) if shape else [e]
        flat_g = _flatten(g, shape, f"known {what} block {k}", case.name)
        _compare(case.name, f"{what} block {k}", flat_e, flat_g)


def _check_vjp(case: Case, cot: Any, result: Any, subs: Mapping[Any, Any]) -> None:
    cots = _nested(cot, case.tuple_outputs, len(case.outputs), "vjp cotangent", case.name)
    c_flat: list[Any] = []
    for k, (o, c) in enumerate(zip(case.outputs, cots)):
        c_flat += _flatten(c, o.shape, f"vjp cotangent of output {k}", case.name)
    jac = _flat_at(case, 1, subs)
    expected = [
        sympy.Add(*[c_flat[r] * jac[r][col] for r in range(case.n_out)]) for col in range(case.n_in)
    ]
    results = _nested(result, case.tuple_inputs, len(case.variables), "vjp result", case.name)
    given: list[Any] = []
    for v, r in zip(case.variables, results):
        given += _flatten(r, v.shape, f"vjp result for input {v.name!r}", case.name)
    _compare(case.name, "vjp", expected, given)
