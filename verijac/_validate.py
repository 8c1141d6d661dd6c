"""Validation of `Case` pieces at the boundary: every defect becomes a clear `CaseError`."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sympy
from sympy.tensor.array import NDimArray

from ._domain import as_interval
from ._errors import CaseError, DomainError, ShapeError

if TYPE_CHECKING:
    from ._case import Case, KnownPoint, Output, Shape, Variable

#: How many pseudo-random probe points are tried when checking a case's domain.
PROBE_TRIES = 200
#: How many probe points must be found (and evaluated) inside the domain.
PROBE_POINTS = 8


def check_name(name: Any) -> str:
    from ._case import is_identifier

    if not isinstance(name, str) or not is_identifier(name):
        raise CaseError(
            f"a case name must be an identifier (letters, digits, underscores), got name={name!r}"
        )
    return name


def check_margin(case: str, margin: Any) -> float:
    """The exclusion margin: a finite number > 0."""
    import math

    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float))
        or not math.isfinite(margin)
        or margin <= 0
    ):
        raise CaseError(f"case {case!r}: margin must be a finite number > 0, got margin={margin!r}")
    return float(margin)


def check_tags(case: str, tags: Any) -> frozenset[str]:
    """Tags: an iterable of strings (a single string would silently become its letters)."""
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise CaseError(
            f"case {case!r}: tags must be a collection of strings such as {{'smooth'}}, got "
            f"tags={tags!r}"
        )
    return frozenset(tags)


def _flat_symbols(case: str, name: str, value: Any) -> tuple[Shape, list[Any]]:
    if isinstance(value, sympy.Symbol):
        return (), [value]
    if isinstance(value, sympy.MatrixBase):
        return tuple(value.shape), list(value)
    if isinstance(value, (list, tuple)):
        value = sympy.Array(value)
    if isinstance(value, NDimArray):
        return tuple(value.shape), list(sympy.flatten(value.tolist())) if value.shape else [
            value[()]
        ]
    raise CaseError(
        f"case {case!r}: input {name!r} must be a SymPy Symbol or an array of Symbols "
        f"(verijac.scalar / verijac.array), got {value!r} of type {type(value).__name__}"
    )


def normalise_inputs(
    case: str, inputs: Mapping[str, Any], domain: Mapping[str, Any]
) -> tuple[Variable, ...]:
    """Check the inputs and their domains; return `Variable`s with real symbols."""
    from ._case import Variable, is_identifier

    if not isinstance(inputs, Mapping) or not inputs:
        raise CaseError(
            f"case {case!r}: inputs must be a non-empty mapping name → symbol, got {inputs!r}"
        )
    if not isinstance(domain, Mapping):
        raise DomainError(
            f"case {case!r}: domain must be a mapping input name → (lo, hi), got {domain!r}"
        )
    unknown = set(domain) - set(inputs)
    if unknown:
        raise DomainError(
            f"case {case!r}: domain names unknown inputs {sorted(unknown)}; the inputs are "
            f"{list(inputs)}"
        )
    seen: dict[sympy.Symbol, str] = {}
    names: set[str] = set()
    variables = []
    for name, value in inputs.items():
        if not isinstance(name, str) or not is_identifier(name):
            raise CaseError(f"case {case!r}: input names must be identifiers, got {name!r}")
        shape, elements = _flat_symbols(case, name, value)
        symbols = []
        for el in elements:
            if not isinstance(el, sympy.Symbol):
                raise CaseError(
                    f"case {case!r}: input {name!r} must hold only Symbols, got element {el!r}; "
                    "build array inputs with verijac.array(name, shape)"
                )
            real = el if el.is_real else sympy.Symbol(el.name, real=True)
            if el in seen or real in seen or el.name in names:
                where = seen.get(el, seen.get(real, name))
                raise CaseError(
                    f"case {case!r}: symbol {el.name!r} appears twice (in input {where!r} and "
                    f"input {name!r}); every input element needs its own symbol"
                )
            seen[el] = seen[real] = name
            names.add(el.name)
            symbols.append(real)
        if name not in domain:
            raise DomainError(
                f"case {case!r}: input {name!r} has no domain; give domain={{{name!r}: (lo, hi)}}"
                " or a sign such as 'positive'"
            )
        try:
            interval = as_interval(domain[name], name=name)
        except DomainError as exc:
            raise DomainError(f"case {case!r}: {exc}") from None
        variables.append(Variable(name, shape, tuple(symbols), interval))
    return tuple(variables)


def _real_map(variables: Sequence[Variable]) -> dict[sympy.Symbol, sympy.Symbol]:
    """Map plain (assumption-free) symbols to the real symbols the case uses."""
    out = {}
    for v in variables:
        for s in v.symbols:
            out[sympy.Symbol(s.name)] = s
    return out


def as_expr(case: str, value: Any, what: str, variables: Sequence[Variable]) -> sympy.Expr:
    """One output expression: sympified, on real symbols, checked to use only inputs."""
    if isinstance(value, str):
        from ._parse import parse

        symbols = {v.name: v.value for v in variables}
        symbols.update({s.name: s for v in variables for s in v.symbols})
        value = parse(value, symbols=symbols)
    try:
        expr = sympy.sympify(value, strict=True)
    except (sympy.SympifyError, TypeError):
        raise CaseError(
            f"case {case!r}: {what} must be a SymPy expression or a number, got {value!r}"
        ) from None
    if not isinstance(expr, sympy.Expr):
        raise CaseError(
            f"case {case!r}: {what} must be an expression, got {expr!r} "
            f"({type(expr).__name__}); conditions belong inside Piecewise"
        )
    expr = expr.xreplace(_real_map(variables))
    allowed = {s for v in variables for s in v.symbols}
    stray = expr.free_symbols - allowed
    if stray:
        names = sorted(str(s) for s in stray)
        raise CaseError(
            f"case {case!r}: {what} uses symbol(s) {names} that are not inputs; add them to "
            f"inputs or replace them by numbers (inputs: {sorted(str(s) for s in allowed)})"
        )
    if expr.has(sympy.I):
        raise CaseError(
            f"case {case!r}: {what} = {expr} is not real (contains I); verijac checks real "
            "functions on real domains"
        )
    return expr


def _output(case: str, value: Any, what: str, variables: Sequence[Variable]) -> Output:
    from ._case import Output

    if isinstance(value, sympy.MatrixBase):
        value = sympy.Array(value.tolist())
    if isinstance(value, list):
        value = sympy.Array(value)
    if isinstance(value, NDimArray):
        shape = tuple(value.shape)
        elems = list(sympy.flatten(value.tolist())) if shape else [value[()]]
        exprs = tuple(as_expr(case, e, f"{what} element", variables) for e in elems)
        return Output(shape, exprs)
    return Output((), (as_expr(case, value, what, variables),))


def normalise_outputs(
    case: str, outputs: Any, variables: Sequence[Variable]
) -> tuple[tuple[Output, ...], bool]:
    """Normalise outputs into `Output`s and whether they form a tuple."""
    if isinstance(outputs, tuple):
        if not outputs:
            raise CaseError(f"case {case!r}: outputs is an empty tuple; give at least one output")
        outs = tuple(_output(case, o, f"output {k}", variables) for k, o in enumerate(outputs))
        return outs, True
    return (_output(case, outputs, "output", variables),), False


def _probe_values(case: Case, rng: random.Random) -> dict[sympy.Symbol, float] | None:
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
    for g in case.exclude:
        try:
            val = float(sympy.sympify(g.xreplace(values)).evalf())
        except (TypeError, ValueError):
            return None
        if abs(val) < case.margin:
            return None
    return values


def probe_points(case: Case, count: int = PROBE_POINTS) -> list[dict[sympy.Symbol, float]]:
    """Deterministic pseudo-random points inside the case's domain, clear of exclusions.

    Raises:
        DomainError: no point could be found: the domain is empty once exclusions apply.
    """
    rng = random.Random(f"verijac-probe-{case.name}")
    found = []
    for _ in range(PROBE_TRIES):
        pt = _probe_values(case, rng)
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


def check_outputs_real(case: Case) -> None:
    """Evaluate the outputs at probe points: each must be real and finite there."""
    import torch

    points = probe_points(case)
    fn = case.torch_function()
    args = []
    for v in case.variables:
        rows = [[pt[s] for s in v.symbols] for pt in points]
        args.append(torch.tensor(rows, dtype=torch.float64).reshape((len(points), *v.shape)))
    with torch.no_grad():
        result = fn(*args)
    outs = result if case.tuple_outputs else (result,)
    for k, (out, spec) in enumerate(zip(outs, case.outputs)):
        flat = out.reshape(len(points), -1)
        bad = ~torch.isfinite(flat)
        if bool(bad.any()):
            p, e = (int(i) for i in bad.nonzero()[0])
            point = {str(s): round(val, 6) for s, val in points[p].items()}
            raise CaseError(
                f"case {case.name!r}: output {k} element {e} = {spec.exprs[e]} is not real and "
                f"finite ({float(flat[p, e])}) at {point}, inside the declared domain; narrow the "
                "domain, exclude the singular points, or fix the expression"
            )


# -- known points ------------------------------------------------------------------------


def _flatten(value: Any, shape: Shape, what: str, case: str) -> list[sympy.Expr]:
    if isinstance(value, str):
        from ._parse import parse_number

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
            from ._parse import parse_number

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
    diff = sympy.nsimplify(a - b) if a.is_Float or b.is_Float else sympy.simplify(a - b)
    if diff == 0:
        return True
    try:
        num = abs(complex(sympy.N(a - b, 30)))
        scale = max(1.0, abs(complex(sympy.N(a, 30))))
    except (TypeError, ValueError):
        return False
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
    from ._case import KnownPoint

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
            _compare(case.name, f"value of output {k}", [e.xreplace(subs) for e in o.exprs], flat)
    if point.jacobian is not None:
        _check_blocks(case, point.jacobian, subs, "jacobian", case.jacobian())
    if point.hessian is not None:
        _check_blocks(case, point.hessian, subs, "hessian", case.hessian())
    for cot, result in point.vjp:
        _check_vjp(case, cot, result, subs)


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


def _check_blocks(case: Case, given: Any, subs: Mapping[Any, Any], what: str, exact: Any) -> None:
    for k, (g, e) in enumerate(zip(_given_leaves(given, exact, what, case.name), _leaves(exact))):
        shape = tuple(e.shape) if isinstance(e, NDimArray) else ()
        flat_e = list(sympy.flatten(e.tolist())) if shape else [e]
        flat_g = _flatten(g, shape, f"known {what} block {k}", case.name)
        _compare(case.name, f"{what} block {k}", [x.xreplace(subs) for x in flat_e], flat_g)


def _check_vjp(case: Case, cot: Any, result: Any, subs: Mapping[Any, Any]) -> None:
    cots = _nested(cot, case.tuple_outputs, len(case.outputs), "vjp cotangent", case.name)
    c_flat: list[Any] = []
    for k, (o, c) in enumerate(zip(case.outputs, cots)):
        c_flat += _flatten(c, o.shape, f"vjp cotangent of output {k}", case.name)
    jac = case.derivatives.jacobian_sympy()
    expected = [
        sympy.Add(*[c_flat[r] * jac[r][col].xreplace(subs) for r in range(case.n_out)])
        for col in range(case.n_in)
    ]
    results = _nested(result, case.tuple_inputs, len(case.variables), "vjp result", case.name)
    given: list[Any] = []
    for v, r in zip(case.variables, results):
        given += _flatten(r, v.shape, f"vjp result for input {v.name!r}", case.name)
    _compare(case.name, "vjp", expected, given)
