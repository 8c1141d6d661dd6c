"""A case's entries as one tape of operations, evaluated exactly or with mpmath.

The expressions (symengine's where the case's derivatives are symengine's, else SymPy's)
are flattened into a list of operations, each shared subexpression once: the ``tanh(W x)_i``
in every entry of row ``i`` of a dense Jacobian is evaluated once per point. No code is
generated or executed, and SymPy is not involved at evaluation time.

Sums, products, integer powers, rational constants and the piecewise-rational functions
(``Abs``, ``sign``, ``Max``, ``Min``, ``floor``, ``ceiling``) are *exact*: at a rational point
they are evaluated with `fractions.Fraction`. Every operation also has an mpmath form, used
at the working precision. An entry that uses anything else (``Piecewise``, a user's
function) is *uncovered*, and evaluated by the caller another way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

#: Function name (SymPy's or symengine's) → its mpmath name.
_MPMATH = {
    **{
        name: name
        for name in [
            "exp",
            "sin",
            "cos",
            "tan",
            "cot",
            "sec",
            "csc",
            "asin",
            "acos",
            "atan",
            "acot",
            "sinh",
            "cosh",
            "tanh",
            "coth",
            "sech",
            "csch",
            "asinh",
            "acosh",
            "atanh",
            "acoth",
            "erf",
            "erfc",
            "erfinv",
            "gamma",
            "loggamma",
            "digamma",
            "zeta",
            "atan2",
        ]
    },
    "log": "log",
    "Abs": "fabs",
    "sign": "sign",
    "floor": "floor",
    "ceiling": "ceil",
    "polygamma": "polygamma",
    "LambertW": "lambertw",
}
_EXACT_FUNCTIONS: dict[str, Callable[..., Fraction]] = {
    "Abs": abs,
    "sign": lambda x: Fraction((x > 0) - (x < 0)),
    "Max": max,
    "Min": min,
    "floor": lambda x: Fraction(math.floor(x)),
    "ceiling": lambda x: Fraction(math.ceil(x)),
}
_CONSTANTS = {"Pi": "pi", "Exp1": "e"}


def _fraction(e: Any) -> Fraction | None:
    """A SymPy or symengine number as its exact `Fraction`; ``None`` for other numbers."""
    if getattr(e, "is_Rational", False) or getattr(e, "is_Integer", False):
        if hasattr(e, "get_num_den"):  # symengine
            num, den = e.get_num_den()
            return Fraction(int(num), int(den))
        return Fraction(int(e.p), int(e.q))
    if getattr(e, "is_Float", False) or type(e).__name__ == "RealDouble":
        mpf = getattr(e, "_mpf_", None)
        if mpf is not None:  # SymPy's Float: an exact binary value at its precision
            sign, man, exp, _ = mpf
            value = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
            return -value if sign else value
        return Fraction(float(e))
    return None


class Program:
    """The tape of ``exprs`` over ``symbols``.

    Args:
        symbols: the input symbols, flattened.
        exprs: the entries, flattened.

    Attributes:
        outputs: per entry, its slot, or ``None`` where the entry is uncovered.
        exact: per entry, whether it is exact at rational points.
    """

    def __init__(self, symbols: Sequence[Any], exprs: Sequence[Any]) -> None:
        self.n_inputs = len(symbols)
        self.slot: dict[Any, int] = {s: k for k, s in enumerate(symbols)}
        self.ops: list[tuple[str, Any, tuple[int, ...]]] = []
        self.is_exact: list[bool] = [True] * len(symbols)
        self.outputs: list[int | None] = []
        for e in exprs:
            try:
                self.outputs.append(self._add(e))
            except _Uncovered:
                self.outputs.append(None)
        self.exact = [k is not None and self.is_exact[k] for k in self.outputs]

    def _add(self, e: Any) -> int:
        hit = self.slot.get(e)
        if hit is not None:
            return hit
        value = _fraction(e)
        kind: str
        payload: Any = None
        args: tuple[int, ...] = ()
        exact = True
        if value is not None:
            kind, payload = "const", value
        elif e.is_Symbol:
            raise _Uncovered  # a symbol that is not an input
        elif type(e).__name__ in _CONSTANTS:
            kind, payload, exact = "constant", _CONSTANTS[type(e).__name__], False
        elif e.is_Add or e.is_Mul:
            kind = "add" if e.is_Add else "mul"
            args = tuple(self._add(a) for a in e.args)
        elif e.is_Pow:
            base, power = e.args
            if type(base).__name__ == "Exp1":
                kind, payload, args, exact = "call", "exp", (self._add(power),), False
            else:
                p = _fraction(power)
                if p is not None and p.denominator == 1:
                    kind, payload, args = "ipow", int(p), (self._add(base),)
                else:
                    kind, args, exact = "pow", (self._add(base), self._add(power)), False
        else:
            name = type(e).__name__
            if name in ("Max", "Min") or name in _MPMATH:
                kind, payload = "call", name
            else:
                raise _Uncovered
            args = tuple(self._add(a) for a in e.args)
            exact = name in _EXACT_FUNCTIONS
        slot = self.n_inputs + len(self.ops)
        self.ops.append((kind, payload, args))
        self.is_exact.append(exact and all(self.is_exact[a] for a in args))
        self.slot[e] = slot
        return slot

    def run_exact(self, point: Sequence[Fraction]) -> list[Fraction | None]:
        """Per entry, its exact value at the rational ``point``; ``None`` for an entry that
        is not exact, or that divides by zero there."""
        values: list[Fraction | None] = [*point]
        for (kind, payload, args), exact in zip(self.ops, self.is_exact[self.n_inputs :]):
            out: Fraction | None = None
            parts = [values[a] for a in args]
            if exact and all(p is not None for p in parts):
                out = _exact_op(kind, payload, parts)  # type: ignore[arg-type]
            values.append(out)
        return [
            None if k is None or not ok else values[k] for k, ok in zip(self.outputs, self.exact)
        ]

    def run_mpmath(self, point: Sequence[Any]) -> list[Any]:
        """Per entry, its mpmath value at ``point`` (mpmath numbers at the working precision);
        ``None`` for an uncovered entry or one that fails to evaluate (a division by zero)."""
        import mpmath

        values: list[Any] = [*point]
        for kind, payload, args in self.ops:
            parts = [values[a] for a in args]
            if any(p is None for p in parts):
                values.append(None)
                continue
            try:
                values.append(_mp_op(mpmath, kind, payload, parts))
            except (ZeroDivisionError, ValueError, OverflowError):
                values.append(None)
        return [None if k is None else values[k] for k in self.outputs]


class _Uncovered(Exception):
    """An expression the tape has no operation for."""


def _exact_op(kind: str, payload: Any, parts: list[Fraction]) -> Fraction | None:
    if kind == "const":
        return payload
    if kind == "add":
        return sum(parts[1:], parts[0])
    if kind == "mul":
        out = parts[0]
        for p in parts[1:]:
            out *= p
        return out
    if kind == "ipow":
        if parts[0] == 0 and payload < 0:
            return None
        return parts[0] ** payload
    return _EXACT_FUNCTIONS[payload](*parts)


def _mp_op(mpmath: Any, kind: str, payload: Any, parts: list[Any]) -> Any:
    if kind == "const":
        return mpmath.mpf(payload.numerator) / payload.denominator
    if kind == "constant":
        return +getattr(mpmath, payload)
    if kind == "add":
        return mpmath.fsum(parts)
    if kind == "mul":
        out = parts[0]
        for p in parts[1:]:
            out = out * p
        return out
    if kind == "ipow":
        return parts[0] ** payload
    if kind == "pow":
        return mpmath.power(parts[0], parts[1])
    if payload in ("Max", "Min"):
        return max(parts) if payload == "Max" else min(parts)
    return getattr(mpmath, _MPMATH[payload])(*parts)


__all__ = ["Program"]
