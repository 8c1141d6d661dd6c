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
from sympy.core.function import ArgumentIndexError

from ._trees import rewrite

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


#: A sum of at least this many ``c·x`` terms is differentiated by the chain rule (`_LinearChain`).
CHAIN_MIN_TERMS = 8


class _LinearChain:
    """Gradients of symengine expressions through their large linear sums, by the chain rule.

    Differentiating ``tanh(Σ_j w_ij x_j)`` by each of n inputs walks the n-term sum n times:
    8 s for the 65,536 entries of a dense 256×256 Jacobian. With each sum ``S = Σ c_j x_j``
    standing for a symbol ``u``, ``d e/d x_j = (d e/d u)·c_j + ∂e/∂x_j`` (the inputs met outside
    the sums) needs one derivative per sum and one product per entry. It is the same exact
    expression: symengine writes ``d tanh(S)/d x_j`` as ``c_j·(1 - tanh(S)**2)`` as well.
    """

    def __init__(self, symbols: Sequence[Any]) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: k for k, s in enumerate(symbols)}
        #: sum → (its symbol, [(input index, coefficient)]); None for an Add that is not one.
        self.sums: dict[Any, tuple[Any, list[tuple[int, Any]]] | None] = {}

    def _linear(self, node: Any) -> tuple[Any, list[tuple[int, Any]]] | None:
        if node in self.sums:
            return self.sums[node]
        import symengine

        found = None
        terms: list[tuple[int, Any]] = []
        for term, coeff in node.as_coefficients_dict().items():
            k = self.index.get(term)
            if k is not None:
                terms.append((k, coeff))
            elif not term.is_Number:  # a term other than c·x or the constant
                break
        else:
            if len(terms) >= CHAIN_MIN_TERMS:
                found = (symengine.Dummy(f"sum{len(self.sums)}"), terms)
        self.sums[node] = found
        return found

    def _find(self, e: Any) -> dict[Any, tuple[Any, list[tuple[int, Any]]]]:
        """The large linear sums in ``e`` (outside other such sums)."""
        found = {}
        seen = set()
        stack = [e]
        while stack:
            node = stack.pop()
            if not node.args or node in seen:
                continue
            seen.add(node)
            if node.is_Add:
                hit = self._linear(node)
                if hit is not None:
                    found[node] = hit
                    continue
            stack.extend(node.args)
        return found

    def gradient(self, e: Any, start: int) -> list[Any] | None:
        """``[d e / d in_l for l >= start]``, or None when ``e`` holds no large linear sum."""
        found = self._find(e)
        if not found:
            return None
        import symengine

        reduced = e.xreplace({node: u for node, (u, _) in found.items()})
        back = {u: node for node, (u, _) in found.items()}
        parts: dict[int, list[Any]] = {}
        for u, terms in found.values():
            outer = reduced.diff(u).xreplace(back)
            unit = outer == 1
            for k, c in terms:
                if k >= start:
                    parts.setdefault(k, []).append(c if unit else c * outer)
        for s in reduced.free_symbols:  # the inputs met outside the sums
            direct = self.index.get(s)
            if direct is not None and direct >= start:
                parts.setdefault(direct, []).append(reduced.diff(s).xreplace(back))
        out = []
        for k in range(start, len(self.symbols)):
            terms_k = parts.get(k, [])
            out.append(
                symengine.Integer(0)
                if not terms_k
                else terms_k[0]
                if len(terms_k) == 1
                else symengine.Add(*terms_k)
            )
        return out


class _LazyMax(sympy.Max):
    """``Max`` whose derivative holds the Max of the other arguments unevaluated.

    SymPy's ``Max.fdiff`` evaluates ``Max(others)``, which compares every pair of them with
    its assumptions system: minutes for a Jacobian of 64 arguments. The ``Heaviside`` is left
    unevaluated too (evaluating it asks the sign of the difference: 20 ms each).
    """

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        i = argindex - 1
        if not 0 <= i < len(self.args):
            raise ArgumentIndexError(self, argindex)
        others = self.args[:i] + self.args[i + 1 :]
        rest = others[0] if len(others) == 1 else _LazyMax(*others, evaluate=False)
        return sympy.Heaviside(self.args[i] - rest, evaluate=False)


class _LazyMin(sympy.Min):
    """``Min`` whose derivative holds the Min of the other arguments unevaluated (as `_LazyMax`)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        i = argindex - 1
        if not 0 <= i < len(self.args):
            raise ArgumentIndexError(self, argindex)
        others = self.args[:i] + self.args[i + 1 :]
        rest = others[0] if len(others) == 1 else _LazyMin(*others, evaluate=False)
        return sympy.Heaviside(rest - self.args[i], evaluate=False)


_TO_LAZY: dict[type, type] = {sympy.Max: _LazyMax, sympy.Min: _LazyMin}
_FROM_LAZY: dict[type, type] = {_LazyMax: sympy.Max, _LazyMin: sympy.Min}


def _for_diff(expr: sympy.Expr) -> tuple[sympy.Expr, dict[sympy.Dummy, sympy.Basic]]:
    """``expr`` made cheap for ``sympy.diff``, with what `_after_diff` needs to undo it.

    Each step function (`_STEPS`: derivative 0 off its jumps, which the domain excludes)
    becomes a constant symbol, so no ``DiracDelta`` terms are built only to be dropped; each
    Max/Min becomes lazy (`_LazyMax`). Rebuilt without evaluation; ``expr`` itself when it holds
    neither.
    """
    if not expr.has(*_STEPS, sympy.Max, sympy.Min):
        return expr, {}
    steps: dict[sympy.Basic, sympy.Dummy] = {}

    def change(node: sympy.Basic, args: Sequence[sympy.Basic]) -> sympy.Basic | None:
        if isinstance(node, _STEPS):
            return steps.setdefault(node, sympy.Dummy("step"))
        lazy = _TO_LAZY.get(type(node))
        return lazy(*args, evaluate=False) if lazy is not None else None

    return rewrite([expr], change, "sympy")[0], {d: node for node, d in steps.items()}


def _after_diff(expr: sympy.Expr, steps: dict[sympy.Dummy, sympy.Basic]) -> sympy.Expr:
    """A derivative of `_for_diff`'s form in the ordinary form: the step functions back, each
    lazy Max/Min an (unevaluated) ``Max``/``Min``."""
    if not steps and not expr.has(_LazyMax, _LazyMin):
        return expr

    def change(node: sympy.Basic, args: Sequence[sympy.Basic]) -> sympy.Basic | None:
        if not args:
            return steps.get(node)
        plain = _FROM_LAZY.get(type(node))
        return plain(*args, evaluate=False) if plain is not None else None

    result: sympy.Expr = rewrite([expr], change, "sympy")[0]
    return result


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
        ready = self._ready.get(e)
        if ready is None:
            ready = self._ready[e] = _for_diff(e)
        return _almost_everywhere(_after_diff(sympy.diff(ready[0], s), ready[1]))

    @cached_property
    def _ready(self) -> dict[sympy.Expr, tuple[sympy.Expr, dict[sympy.Dummy, sympy.Basic]]]:
        """Each differentiated SymPy expression in `_for_diff`'s form (memoised)."""
        return {}

    def _gradient(self, e: Any, start: int = 0) -> list[Any]:
        """``[d e / d in_l for l >= start]``, each derived only where ``in_l`` occurs in ``e``."""
        syms = self.native_symbols[start:]
        zero = _zero(self.engine)
        if self.engine == "symengine":
            chained = self._chain.gradient(e, start)
            if chained is not None:
                return chained
        free = e.free_symbols
        return [self._diff(e, s) if s in free else zero for s in syms]

    @cached_property
    def _chain(self) -> _LinearChain:
        return _LinearChain(self.native_symbols)

    @cached_property
    def jacobian_native(self) -> list[list[Any]]:
        """``J[k][l] = d out_k / d in_l`` in the engine's types."""
        return [self._gradient(e) for e in self.native_exprs]

    @cached_property
    def hessian_native(self) -> list[list[list[Any]]]:
        """``H[k][a][b] = d² out_k / d in_a d in_b`` in the engine's types (symmetric)."""
        n = len(self.native_symbols)
        zero = _zero(self.engine)
        out = []
        for row in self.jacobian_native:
            h = [[zero] * n for _ in range(n)]
            for a in range(n):
                for b, val in enumerate(self._gradient(row[a], a), start=a):
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
        ``jacobian()`` of a dense 64×64 case take 10 s. Functions are applied unevaluated
        too (symengine has applied its rules): ``tanh.eval`` of a 64-term sum peels multiples
        of ``iπ`` off every term, 0.25 s a call, 47 s for that Jacobian.
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
                if base == _E:
                    out = sympy.exp(conv(exp), evaluate=False)
                else:
                    out = sympy.Pow(conv(base), conv(exp))
            else:
                fn = getattr(sympy, type(e).__name__, None)
                if fn is None:
                    out = sympy.sympify(e).xreplace({sympy.Symbol(k): v for k, v in real.items()})
                else:
                    out = fn(*[conv(a) for a in e.args], evaluate=False)
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
