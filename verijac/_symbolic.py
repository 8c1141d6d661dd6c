"""Exact Jacobians and Hessians, derived with symengine where that is exact, else SymPy.

symengine differentiates large dense cases a thousand times faster than SymPy, but it silently
differentiates functions it does not know (SymPy's ``besselj``, ``Heaviside``, ``sinc``,
``erfinv``, wrapped as ``PyFunction``) to **zero**, and leaves ``Abs``, ``Max``, ``sign`` as
unevaluated ``Derivative``s (measured with symengine 0.15). So a case uses symengine only when
every function in it is one whose derivative symengine knows; otherwise SymPy derives it.
What users receive is always SymPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import sympy

#: SymPy functions whose derivatives symengine computes correctly (checked in the tests).
SYMENGINE_EXACT: frozenset[type] = frozenset(
    {
        sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.sec, sympy.csc,
        sympy.asin, sympy.acos, sympy.atan, sympy.acot, sympy.asec, sympy.acsc,
        sympy.sinh, sympy.cosh, sympy.tanh, sympy.coth, sympy.sech, sympy.csch,
        sympy.asinh, sympy.acosh, sympy.atanh, sympy.acoth,
        sympy.exp, sympy.log, sympy.atan2, sympy.erf, sympy.erfc,
        sympy.gamma, sympy.loggamma, sympy.polygamma,
    }
)  # fmt: skip


def _uses_only_symengine_exact(exprs: Sequence[sympy.Expr]) -> bool:
    for expr in exprs:
        for fn in expr.atoms(sympy.Function):
            if type(fn) not in SYMENGINE_EXACT and fn.func not in SYMENGINE_EXACT:
                return False
            if isinstance(fn, sympy.polygamma) and not fn.args[0].is_Integer:
                return False
        if expr.has(sympy.Piecewise, sympy.Derivative, sympy.Integral, sympy.Subs):
            return False
    return True


class Derivatives:
    """The exact flat Jacobian ``[out][in]`` and Hessian ``[out][in][in]`` of a case.

    Args:
        symbols: the input symbols, flattened in input order.
        exprs: the output expressions, flattened in output order.

    ``engine`` tells which library derives them (``"symengine"`` or ``"sympy"``). The
    ``*_native`` forms are in that engine's types (for code generation); the ``*_sympy`` forms
    are SymPy on the case's real symbols.
    """

    def __init__(self, symbols: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]) -> None:
        self.symbols = tuple(symbols)
        self.exprs = tuple(exprs)
        self.engine = "symengine" if _uses_only_symengine_exact(self.exprs) else "sympy"

    # -- native (engine) forms ---------------------------------------------------------------
    @cached_property
    def native_symbols(self) -> tuple[Any, ...]:
        if self.engine == "sympy":
            return self.symbols
        import symengine

        return tuple(symengine.Symbol(s.name) for s in self.symbols)

    @cached_property
    def native_exprs(self) -> tuple[Any, ...]:
        if self.engine == "sympy":
            return self.exprs
        import symengine

        return tuple(symengine.sympify(e) for e in self.exprs)

    @cached_property
    def jacobian_native(self) -> list[list[Any]]:
        """``J[k][l] = d out_k / d in_l`` in the engine's types."""
        syms = self.native_symbols
        rows = []
        for e in self.native_exprs:
            free = e.free_symbols
            rows.append([e.diff(s) if s in free else _zero(self.engine) for s in syms])
        return rows

    @cached_property
    def hessian_native(self) -> list[list[list[Any]]]:
        """``H[k][a][b] = d² out_k / d in_a d in_b`` in the engine's types (symmetric)."""
        syms = self.native_symbols
        zero = _zero(self.engine)
        out = []
        for row in self.jacobian_native:
            n = len(syms)
            h = [[zero] * n for _ in range(n)]
            for a in range(n):
                free = row[a].free_symbols
                for b in range(a, n):
                    val = row[a].diff(syms[b]) if syms[b] in free else zero
                    h[a][b] = h[b][a] = val
            out.append(h)
        return out

    # -- SymPy forms -------------------------------------------------------------------------
    def to_sympy(self, expr: Any) -> sympy.Expr:
        """Convert one native expression to SymPy on the case's real symbols."""
        if self.engine == "sympy":
            return expr  # type: ignore[no-any-return]
        return sympy.sympify(expr).xreplace(self._plain_to_real)  # type: ignore[no-any-return]

    @cached_property
    def _plain_to_real(self) -> dict[sympy.Symbol, sympy.Symbol]:
        return {sympy.Symbol(s.name): s for s in self.symbols}

    def jacobian_sympy(self) -> list[list[sympy.Expr]]:
        """The flat Jacobian as SymPy, ``[out][in]``."""
        return self._jacobian_sympy

    @cached_property
    def _jacobian_sympy(self) -> list[list[sympy.Expr]]:
        return [[self.to_sympy(e) for e in row] for row in self.jacobian_native]

    def hessian_sympy(self) -> list[list[list[sympy.Expr]]]:
        """The flat Hessian as SymPy, ``[out][in][in]``."""
        return self._hessian_sympy

    @cached_property
    def _hessian_sympy(self) -> list[list[list[sympy.Expr]]]:
        return [[[self.to_sympy(e) for e in row] for row in h] for h in self.hessian_native]


def _zero(engine: str) -> Any:
    if engine == "sympy":
        return sympy.S.Zero
    import symengine

    return symengine.Integer(0)
