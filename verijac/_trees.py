"""Expression-tree rewriting without SymPy's evaluation: substitution and CSE (and, with
evaluation, an ``xreplace`` that visits shared subtrees once).

SymPy re-evaluates every node it rebuilds: evaluating a ``Max`` of n arguments compares every
pair of them with the assumptions system (minutes at n = 64), and ``tanh`` of a sum asks the
assumptions of every term. The trees rewritten here are already canonical, so they are
rebuilt as they stand: ``Add``/``Mul`` from their new terms, anything else under
``evaluate(False)`` (entered only when needed: entering it clears SymPy's cache). symengine
trees are rebuilt with symengine's (cheap) constructors.

The walks are iterative (no recursion limit) and visit each subtree once: SymPy nodes by
identity (a SymPy ``Float`` computes its hash anew each time, ~10 µs), symengine nodes by
value (each ``.args`` call makes new Python wrappers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Marks, in the memo of `substitute`, a subtree that comes out unchanged.
_SAME = object()


class _Builder:
    """Rebuilds nodes from new arguments without evaluation (see the module docstring)."""

    def __init__(self, engine: str, stack: contextlib.ExitStack) -> None:
        self.sympy = engine == "sympy"
        self.stack = stack
        self.unevaluated = False

    def __call__(self, node: Any, args: Sequence[Any]) -> Any:
        if self.sympy:
            if node.is_Add or node.is_Mul:
                return node._new_rawargs(*args)  # the same terms, already in canonical order
            if not self.unevaluated:
                from sympy.core.parameters import evaluate, global_parameters

                # Entered only when evaluation is on: a second, overlapping entry (a walk
                # inside a walk) would restore "off" on its exit, for every later caller.
                if global_parameters.evaluate:
                    self.stack.enter_context(evaluate(False))
                self.unevaluated = True
        return node.func(*args)


def _key(engine: str) -> Callable[[Any], Any]:
    # Keyed by identity, a SymPy node must outlive the walk: the walked tree holds them all.
    return id if engine == "sympy" else _itself


def _itself(node: Any) -> Any:
    return node


def substitute(
    exprs: Sequence[Any], replace: Callable[[Any], Any | None], engine: str
) -> list[Any]:
    """``exprs`` with each outermost node for which ``replace`` returns a value replaced by it.

    Args:
        exprs: SymPy or symengine expressions (as ``engine`` says).
        replace: called once per non-atomic node, from the roots down; a value replaces the
            node (its subtree is not visited), ``None`` keeps it.
        engine: ``"sympy"`` or ``"symengine"``.
    """
    key = _key(engine)
    memo: dict[Any, Any] = {}
    stack: list[tuple[Any, tuple[Any, ...] | None]] = [(e, None) for e in reversed(exprs)]
    with contextlib.ExitStack() as context:
        build = _Builder(engine, context)
        while stack:
            node, args = stack.pop()
            if args is None:
                if key(node) in memo:
                    continue
                args = tuple(node.args)
                new = replace(node) if args else None
                if new is not None or not args:
                    memo[key(node)] = _SAME if new is None else new
                    continue
                stack.append((node, args))
                stack.extend((a, None) for a in args)
                continue
            new_args = [memo[key(a)] for a in args]
            if all(n is _SAME for n in new_args):
                memo[key(node)] = _SAME
            else:
                new_args = [a if n is _SAME else n for a, n in zip(args, new_args)]
                memo[key(node)] = build(node, new_args)
    return [e if memo[key(e)] is _SAME else memo[key(e)] for e in exprs]


def rewrite(
    exprs: Sequence[Any],
    change: Callable[[Any, Sequence[Any]], Any | None],
    engine: str,
    *,
    evaluate: bool = False,
) -> list[Any]:
    """``exprs`` rebuilt from the leaves up, each node (atoms too) passed to ``change``.

    Args:
        exprs: SymPy or symengine expressions (as ``engine`` says).
        change: ``change(node, args)`` with the node's rewritten ``args`` returns the node's
            replacement, or ``None`` to keep the node (rebuilt if an argument changed).
        engine: ``"sympy"`` or ``"symengine"``.
        evaluate: rebuild changed nodes with evaluation, as ``xreplace`` does.
    """
    key = _key(engine)
    memo: dict[Any, Any] = {}
    stack: list[tuple[Any, tuple[Any, ...] | None]] = [(e, None) for e in reversed(exprs)]
    with contextlib.ExitStack() as context:
        build = _Builder(engine, context) if not evaluate else _evaluated
        while stack:
            node, args = stack.pop()
            if args is None:
                if key(node) in memo:
                    continue
                args = tuple(node.args)
                stack.append((node, args))
                stack.extend((a, None) for a in args)
                continue
            new_args = [memo[key(a)] for a in args]
            out = change(node, new_args)
            if out is None:
                changed = any(n is not o for n, o in zip(new_args, args))
                out = build(node, new_args) if changed else node
            memo[key(node)] = out
    return [memo[key(e)] for e in exprs]


def _evaluated(node: Any, args: Sequence[Any]) -> Any:
    return node.func(*args)


def substitute_values(exprs: Sequence[Any], values: Mapping[Any, Any]) -> list[Any]:
    """``[e.xreplace(values) for e in exprs]`` for SymPy expressions and symbol → value maps,
    rebuilding each shared subtree once (``xreplace`` walks a sum shared by 4,096 Jacobian
    entries 4,096 times)."""

    def change(node: Any, args: Sequence[Any]) -> Any:
        return None if args else values.get(node)

    return rewrite(exprs, change, "sympy", evaluate=True)


def tree_cse(
    exprs: Sequence[Any], new_symbol: Callable[[], Any], engine: str = "sympy"
) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """Common-subexpression elimination without re-evaluation.

    Every non-atomic expression met more than once (conditions apart) becomes a symbol.
    Unlike ``sympy.cse`` it does not search for shared sub-sums and sub-products (pairwise
    over all sums and products) nor rebuild nodes with evaluation, both quadratic on long
    ``Max``/``Min`` and sums.

    Returns:
        ``(replacements, reduced)`` as ``sympy.cse`` does: ``[(symbol, expression)]`` in an
        order where each expression uses only earlier symbols, and the reduced ``exprs``.
    """
    import sympy

    seen: set[Any] = set()
    repeated: set[Any] = set()
    stack = list(exprs)
    while stack:
        node = stack.pop()
        args = node.args
        if not args:
            continue
        if node in seen:
            repeated.add(node)
            continue
        seen.add(node)
        stack.extend(args)
    # Conditions stay where they are (they are printed inside their Piecewise).
    expression = (lambda e: isinstance(e, sympy.Expr)) if engine == "sympy" else _not_boolean
    repeated = {e for e in repeated if expression(e)}
    if not repeated:
        return [], list(exprs)

    replacements: list[tuple[Any, Any]] = []
    made: dict[Any, Any] = {}  # repeated node → its symbol (a SymPy walk tells copies apart)

    def change(node: Any, args: Sequence[Any]) -> Any:
        if not args or node not in repeated:
            return None
        sym = made.get(node)
        if sym is None:
            changed = any(n is not o for n, o in zip(args, node.args))
            sym = made[node] = new_symbol()
            replacements.append((sym, build(node, args) if changed else node))
        return sym

    with contextlib.ExitStack() as context:
        build = _Builder(engine, context)
        reduced = rewrite(exprs, change, engine)
    return replacements, reduced


def _not_boolean(e: Any) -> bool:
    return not e.is_Boolean
