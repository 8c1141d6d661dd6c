"""One expression of a case, checked: sympified, on the case's real symbols, using only its
inputs, with constants float64 can hold; the outputs built from such expressions."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sympy
from sympy.core.numbers import ComplexInfinity, Infinity, NaN, NegativeInfinity
from sympy.tensor.array import NDimArray

from ._errors import CaseError
from ._parse import parse
from ._parts import Output, Variable
from ._trees import rewrite


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
