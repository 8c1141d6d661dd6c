"""Validation of `Case` pieces at the boundary: every defect becomes a clear `CaseError`."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sympy
from sympy.tensor.array import NDimArray

from ._domain import as_interval
from ._errors import CaseError, DomainError, ShapeError
from ._trees import rewrite, substitute_values

if TYPE_CHECKING:
    from ._case import Case, KnownPoint, Output, Shape, Variable
    from ._domain import Interval

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
            if el.is_commutative is False:
                raise CaseError(
                    f"case {case!r}: input symbol {el.name!r} is non-commutative; verijac checks "
                    "real functions: use verijac.scalar / verijac.array"
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
        for el in elements:
            interval = honour_assumptions(case, name, el, interval)
        variables.append(Variable(name, shape, tuple(symbols), interval))
    return tuple(variables)


#: The assumptions a refusal names first (SymPy derives many more from each of them).
_MAIN_ASSUMPTIONS = (
    "real", "integer", "rational", "irrational", "algebraic", "transcendental", "prime",
    "even", "odd", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "zero",
)  # fmt: skip


def _sign_facts(interval: Interval) -> dict[str, bool]:
    """The sign assumptions every point of ``interval`` satisfies."""
    facts = {}
    if interval.lo >= 0:
        facts["nonnegative"] = True
    if interval.hi <= 0:
        facts["nonpositive"] = True
    if not interval.contains(0.0) and not (interval.lo < 0 < interval.hi):
        facts["positive" if interval.lo >= 0 else "negative"] = True
    elif not interval.contains(0.0):
        facts["nonzero"] = True
    return facts


def honour_assumptions(case: str, name: str, el: sympy.Symbol, interval: Interval) -> Interval:
    """The domain of input ``name`` after checking that it honours ``el``'s assumptions.

    SymPy simplifies with a symbol's assumptions as soon as an expression is built
    (``sqrt(x**2)`` is ``x`` for a positive ``x``, ``sin(pi*x)`` is 0 for an integer ``x``), so
    an assumption the domain does not honour would silently change the "exact" truth. A sign
    assumption that excludes only the point 0 of the domain (``positive`` on ``[0, 2]``)
    removes that point; any other assumption the domain does not imply is refused.

    Raises:
        CaseError: ``el`` assumes something (integer, positive on ``(-1, 1)``, …) that the
            domain does not imply.
    """
    from dataclasses import replace

    facts = el.assumptions0
    declared = interval
    try:
        if (facts.get("positive") or facts.get("zero") is False) and interval.lo == 0:
            interval = replace(interval, left_open=True)
        if (facts.get("negative") or facts.get("zero") is False) and interval.hi == 0:
            interval = replace(interval, right_open=True)
        if facts.get("zero") is False and interval.lo < 0 < interval.hi:
            interval = replace(interval, exclude=(*interval.exclude, 0.0))
    except DomainError:
        pass  # the single point of [0, 0] is the point the assumption removes: refused below
    implied = sympy.Symbol(el.name, real=True, **_sign_facts(interval)).assumptions0
    wrong = sorted(k for k, v in facts.items() if k != "commutative" and implied.get(k) != v)
    if wrong:
        main = [k for k in _MAIN_ASSUMPTIONS if k in wrong] or wrong
        given = ", ".join(f"{k}={facts[k]}" for k in main)
        raise CaseError(
            f"case {case!r}: input symbol {el.name!r} of input {name!r} assumes {given}, which "
            f"its domain {declared} does not imply; SymPy has already simplified the "
            "expressions with these assumptions, so the exact derivatives would be wrong on "
            "the domain. Build the input with verijac.scalar / verijac.array (real symbols) or "
            "narrow the domain to match"
        )
    return interval


@functools.lru_cache(maxsize=8)
def _real_map(variables: tuple[Variable, ...]) -> dict[sympy.Symbol, sympy.Symbol]:
    """Map plain (assumption-free) symbols to the real symbols the case uses (cached: a case
    with 256 outputs asks 256 times)."""
    out = {}
    for v in variables:
        for s in v.symbols:
            out[sympy.Symbol(s.name)] = s
    return out


@functools.lru_cache(maxsize=8)
def _allowed(variables: tuple[Variable, ...]) -> frozenset[sympy.Symbol]:
    """The case's input symbols (cached like `_real_map`)."""
    return frozenset(s for v in variables for s in v.symbols)


def _on_real_symbols(
    expr: sympy.Expr, real: Mapping[sympy.Symbol, sympy.Symbol]
) -> tuple[sympy.Expr, set[sympy.Basic] | None]:
    """``expr`` with its plain symbols replaced by the case's real ones, without re-evaluation.

    ``xreplace`` rebuilds every node with evaluation, and evaluating ``tanh`` of a sum asks
    SymPy's assumptions system about every term: 15 s for a dense 64×64 ``tanh(W x)``. The
    expression is already in SymPy's canonical form for arbitrary symbols, which stays a
    correct form for real ones, so the nodes are rebuilt unevaluated (`_trees.rewrite`: each
    shared subtree once, and only the nodes above a replaced symbol).

    Returns:
        The expression, and the symbols met on the way (a superset of its free symbols;
        ``None`` when nothing was substituted).
    """
    if not real:
        return expr, None
    found: set[sympy.Basic] = set()

    def change(node: sympy.Basic, args: Sequence[sympy.Basic]) -> sympy.Basic | None:
        if not node.is_Symbol:
            return None
        new = real.get(node, node)
        found.add(new)
        return new

    return rewrite([expr], change, "sympy")[0], found


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
    expr, met = _on_real_symbols(expr, _real_map(tuple(variables)))
    allowed = _allowed(tuple(variables))
    stray = expr.free_symbols - allowed if met is None or met - allowed else set()
    if stray:
        names = sorted(str(s) for s in stray)
        raise CaseError(
            f"case {case!r}: {what} uses symbol(s) {names} that are not inputs; add them to "
            f"inputs or replace them by numbers (inputs: {sorted(str(s) for s in allowed)})"
        )
    check_constants(case, what, expr)
    return expr


#: Largest finite float64.
FLOAT64_MAX = 1.7976931348623157e308
#: Most bits of an exact numerator or denominator (float64 reaches about 2**1024).
MAX_CONSTANT_BITS = 1100
#: Largest magnitude of a numeric exponent (``x**1e300`` has no meaning in float64).
MAX_EXPONENT = 1e6


def check_constants(case: str, what: str, expr: sympy.Expr) -> None:
    """Refuse ``I`` and constants that float64 cannot hold: ``oo``, ``nan``, ``zoo``, numbers beyond
    ±1.8e308 (``gamma(1000)**3``, ``factorial(3000)``, ``exp(1000)``), exact numbers of more
    than about 330 digits, and exponents beyond `MAX_EXPONENT`.

    Raises:
        CaseError: such a constant appears; the message names it and how to fix it.
    """

    def refuse(node: sympy.Basic, why: str, fix: str) -> None:
        raise CaseError(
            f"case {case!r}: {what} holds the constant {_show(node, 60)}, which {why}; {fix}"
        )

    from sympy.core.numbers import ComplexInfinity, Infinity, NaN, NegativeInfinity

    not_finite = (Infinity, NegativeInfinity, ComplexInfinity, NaN)

    def atom(node: sympy.Basic) -> None:
        if node.is_Symbol:
            return
        if node is sympy.I:
            raise CaseError(
                f"case {case!r}: {what} = {_show(expr)} is not real (contains I); verijac "
                "checks real functions on real domains"
            )
        if node.is_Float:
            _, man, exp, bc = node._mpf_
            if (man == 0 and node._mpf_ != (0, 0, 0, 0)) or exp + bc > 1024:
                refuse(node, "overflows float64", "write a smaller constant")
        elif node.is_Rational:
            if max(int(node.p).bit_length(), int(node.q).bit_length()) > MAX_CONSTANT_BITS:
                refuse(
                    node,
                    f"has more than {MAX_CONSTANT_BITS} bits (about 330 digits) and does not "
                    "fit float64",
                    "write a smaller constant or rescale the expression",
                )
        elif isinstance(node, not_finite):
            refuse(node, "is not a finite number", "verijac checks finite real functions")

    if not expr.args:
        atom(expr)
        return
    constant: dict[int, bool] = {}  # by id: hashing thousands of Floats costs seconds
    stack: list[tuple[sympy.Basic, bool]] = [(expr, False)]
    while stack:  # post-order over the inner nodes: which subtrees are free of symbols
        node, done = stack.pop()
        if not done:
            if id(node) in constant:
                continue
            stack.append((node, True))
            for a in node.args:
                if a.args:
                    stack.append((a, False))
                else:
                    atom(a)
            continue
        is_constant = all(constant.get(id(a), not a.is_Symbol) for a in node.args)
        constant[id(node)] = is_constant
        if isinstance(node, sympy.Pow) and constant.get(id(node.exp), not node.exp.is_Symbol):
            try:
                big = not abs(float(node.exp)) <= MAX_EXPONENT
            except (TypeError, ValueError, OverflowError):
                big = False  # not a plain number (e.g. a Piecewise): left to the probe points
            if big:
                refuse(
                    node.exp,
                    f"as an exponent exceeds {MAX_EXPONENT:g} in magnitude",
                    "float64 powers that high overflow or vanish; rescale the expression",
                )
        if not is_constant or not isinstance(node, sympy.Expr):
            continue
        try:
            value = complex(node.evalf(20))
        except (TypeError, ValueError, OverflowError, AttributeError):
            continue  # not a plain number (e.g. a condition): checked where it is used
        if not abs(value) <= FLOAT64_MAX:
            refuse(node, "overflows float64", "write a smaller constant or rescale the expression")


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


def _exclusion_values(case: Case) -> Callable[[dict[sympy.Symbol, float]], list[float]]:
    """The case's exclusions as one numeric function of a point, compiled once: verijac's own
    torch code in float64 (a few ms to generate), else mpmath at double precision (SymPy's
    printer: ~20 ms a case), else SymPy substitution. Substituting floats into the expressions
    instead re-evaluates them and asks SymPy's assumptions at every point: seconds per case."""
    import torch

    from ._codegen import compile_program
    from ._errors import VerijacError

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
    from sympy.core.relational import Relational

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

    from ._codegen import compile_program

    kinks = _kinks(case.out_exprs)
    if not kinks or not points:
        return
    blocks = [((), [e]) for _, _, tested in kinks for e in tested]
    variables = [(v.name, v.shape, list(v.symbols)) for v in case.variables]
    fn, _ = compile_program("sympy", variables, blocks)
    args = [
        torch.tensor([[pt[s] for s in v.symbols] for pt in points], dtype=torch.float64).reshape(
            len(points), *v.shape
        )
        for v in case.variables
    ]
    with torch.no_grad():
        flat = [torch.as_tensor(o, dtype=torch.float64).reshape(-1) for o in fn(*args)]
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


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any, limit: int = 80) -> str:
    """``str(value)`` clipped to ``limit``; a number too long for Python to print, described."""
    try:
        return _clip(str(value), limit)
    except ValueError:  # an int of more than 4300 digits
        bits = max(
            int(getattr(value, "p", 1)).bit_length(), int(getattr(value, "q", 1)).bit_length()
        )
        return f"<a number of about {int(bits * 0.30103)} digits>"


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
            exact = substitute_values(o.exprs, subs)
            _compare(case.name, f"value of output {k}", exact, flat)
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
        _compare(case.name, f"{what} block {k}", substitute_values(flat_e, subs), flat_g)


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
