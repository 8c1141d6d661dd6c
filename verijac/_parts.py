"""The parts a `Case` is made of: its input symbols, its outputs and its known points."""

from __future__ import annotations

import keyword
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from ._domain import Interval
from ._errors import ShapeError
from ._layout import Shape


def scalar(name: str) -> sympy.Symbol:
    """A real scalar input symbol called ``name``."""
    return sympy.Symbol(name, real=True)


def array(name: str, shape: int | Sequence[int]) -> sympy.Array:
    """An array of real input symbols ``name[i,j,…]`` with the given shape (an int ``n``:
    a vector, ``(n,)``)."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        if isinstance(shape, (str, bytes, bool)):
            raise TypeError
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise ShapeError(
            f"array input {name!r}: shape must be an int or a sequence of ints, got {shape!r}"
        ) from None
    if any(s <= 0 for s in shape):
        raise ShapeError(f"array input {name!r}: every dimension must be >= 1, got shape={shape}")
    idx: list[tuple[int, ...]] = [()]
    for s in shape:
        idx = [(*i, k) for i in idx for k in range(s)]
    syms = [sympy.Symbol(f"{name}[{','.join(map(str, i))}]", real=True) for i in idx]
    return sympy.Array(syms, shape)


def is_identifier(name: str) -> bool:
    """Whether ``name`` can name a case or an input: an identifier, not a keyword."""
    return name.isidentifier() and not keyword.iskeyword(name)


@dataclass(frozen=True)
class Variable:
    """One named input of a case: its shape and its symbols in row-major order."""

    name: str
    shape: Shape
    symbols: tuple[sympy.Symbol, ...]
    domain: Interval

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def value(self) -> sympy.Symbol | sympy.Array:
        """The symbol, or the SymPy Array of symbols, as the user wrote it."""
        if self.shape == ():
            return self.symbols[0]
        return sympy.Array(list(self.symbols), self.shape)


@dataclass(frozen=True)
class Output:
    """One output of a case: its shape and its expressions in row-major order."""

    shape: Shape
    exprs: tuple[sympy.Expr, ...]

    @property
    def size(self) -> int:
        return len(self.exprs)


@dataclass(frozen=True)
class KnownPoint:
    """A point with exactly known values, checked against the expressions when the case is built.

    Args:
        at: input name → value (a number, or nested lists for an array input).
        value: the outputs there, in the nesting the case's function returns.
        jacobian: the Jacobian there, in the nesting of `Case.jacobian`.
        hessian: the Hessian there, in the nesting of `Case.hessian`.
        vjp: pairs ``(cotangent, result)``: the vector-Jacobian product for that cotangent
            (shaped like the outputs), nested like the inputs.
        note: where the values come from (e.g. the seed document).
    """

    at: Mapping[str, Any]
    value: Any = None
    jacobian: Any = None
    hessian: Any = None
    vjp: Sequence[tuple[Any, Any]] = ()
    note: str = ""


__all__ = ["KnownPoint", "Output", "Shape", "Variable", "array", "is_identifier", "scalar"]
