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

#: Sums with at least this many terms convert to SymPy unevaluated (see `Derivatives._converter`).
LARGE_SUM = 16

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
    """Whether every node is arithmetic, an atom, or a function symengine differentiates right."""
    for expr in exprs:
        stack = [expr]
        while stack:
            node = stack.pop()
            if node.is_Atom:
                continue
            if not isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow)):
                if type(node) not in SYMENGINE_EXACT:
                    return False
                if isinstance(node, sympy.polygamma) and not node.args[0].is_Integer:
                    return False
            stack.extend(node.args)
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

    def _diff(self, e: Any, s: Any) -> Any:
        if self.engine == "symengine":
            return e.diff(s)
        return _almost_everywhere(sympy.diff(e, s))

    @cached_property
    def jacobian_native(self) -> list[list[Any]]:
        """``J[k][l] = d out_k / d in_l`` in the engine's types."""
        syms = self.native_symbols
        rows = []
        for e in self.native_exprs:
            free = e.free_symbols
            rows.append([self._diff(e, s) if s in free else _zero(self.engine) for s in syms])
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
                    val = self._diff(row[a], syms[b]) if syms[b] in free else zero
                    h[a][b] = h[b][a] = val
            out.append(h)
        return out

    # -- SymPy forms -------------------------------------------------------------------------
    def to_sympy(self, expr: Any) -> sympy.Expr:
        """Convert one native expression to SymPy on the case's real symbols."""
        if self.engine == "sympy":
            return expr
        out: sympy.Expr = self._converter(expr)
        return out

    @cached_property
    def _converter(self) -> Any:
        """A memoising symengine → SymPy converter.

        Shared subtrees (the ``tanh(W x)_i`` inside every entry of row ``i``) convert once.
        Sums of many terms are built unevaluated from symengine's already canonical terms:
        SymPy's evaluating ``Add`` of 64 float-weighted terms costs ~30 ms, which made
        ``jacobian()`` of a dense 64×64 case take 10 s.
        """
        real = {s.name: s for s in self.symbols}
        memo: dict[Any, Any] = {}

        def conv(e: Any) -> Any:
            hit = memo.get(e)
            if hit is not None:
                return hit
            if e.is_Symbol:
                out = real[e.name]
            elif not e.free_symbols:
                out = sympy.sympify(e)
            elif e.is_Add:
                args = [conv(a) for a in e.args]
                out = sympy.Add(*args, evaluate=len(args) < LARGE_SUM)
            elif e.is_Mul:
                out = sympy.Mul(*[conv(a) for a in e.args])
            elif e.is_Pow:
                base, exp = e.args
                out = sympy.exp(conv(exp)) if base == _E else sympy.Pow(conv(base), conv(exp))
            else:
                fn = getattr(sympy, type(e).__name__, None)
                if fn is None:
                    out = sympy.sympify(e).xreplace({sympy.Symbol(k): v for k, v in real.items()})
                else:
                    out = fn(*[conv(a) for a in e.args])
            memo[e] = out
            return out

        return conv

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


#: Functions that are constant between their jumps: their derivative is 0 almost everywhere.
_STEPS = (sympy.floor, sympy.ceiling, sympy.sign, sympy.Heaviside)


def _almost_everywhere(expr: sympy.Expr) -> sympy.Expr:
    """The derivative away from the kinks and jumps that a case's domain must exclude.

    SymPy differentiates ``sign`` and ``Heaviside`` into ``DiracDelta`` terms and leaves
    ``floor``/``ceiling`` as unevaluated ``Derivative``s; off their jump points (which the
    domain excludes) all of these are exactly zero.
    """
    if expr.has(sympy.DiracDelta):
        expr = expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
    if expr.has(sympy.Derivative):
        expr = expr.replace(
            lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, _STEPS),
            lambda e: sympy.S.Zero,
        )
    return expr


def _e() -> Any:
    import symengine

    return symengine.E


class _LazyE:
    def __eq__(self, other: object) -> bool:
        return bool(other == _e())

    def __hash__(self) -> int:
        return hash("E")


_E = _LazyE()


def _zero(engine: str) -> Any:
    if engine == "sympy":
        return sympy.S.Zero
    import symengine

    return symengine.Integer(0)
