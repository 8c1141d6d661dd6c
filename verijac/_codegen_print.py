"""SymPy/symengine expression trees → the text of torch expressions.

`_Printer` writes one expression as torch code: arithmetic, powers (``sqrt``, ``rsqrt``,
``reciprocal`` where they apply), relations and logic, the functions of the function map
(`verijac._functions`), and ``Piecewise`` in the safe form, where every branch sees its
inputs through ``where(cond, s, s.detach())`` so that a branch not selected sends no NaN
gradient back. `_codegen_program` decides what to print; `_codegen` compiles the result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import UnsupportedFunctionError
from ._functions import lookup


def _name(e: Any) -> str:
    return type(e).__name__


_NUMERIC: dict[Any, bool] = {}


def _is_numeric(e: Any) -> bool:
    """Whether ``e`` is a real constant (no free symbols, not a condition); memoised."""
    if e.is_Number:
        return True
    if e.is_Symbol:
        return False
    hit = _NUMERIC.get(e)
    if hit is None:
        hit = not e.free_symbols and not _is_boolean(e)
        if len(_NUMERIC) > 100_000:
            _NUMERIC.clear()
        _NUMERIC[e] = hit
    return hit


def _is_boolean(e: Any) -> bool:
    return (
        _name(e) in _RELATIONALS
        or _name(e) in _LOGIC
        or _name(e) in ("BooleanTrue", "BooleanFalse")
    )


def _num(e: Any) -> float:
    try:
        return float(e)
    except (TypeError, ValueError):
        raise UnsupportedFunctionError(
            f"the constant {e} does not evaluate to a real number"
        ) from None


def _literal(value: float) -> str:
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    return repr(value)


_RELATIONALS = {
    "StrictLessThan": "<",
    "LessThan": "<=",
    "StrictGreaterThan": ">",
    "GreaterThan": ">=",
    "Equality": "==",
    "Unequality": "!=",
}
_LOGIC = {
    "And": "torch.logical_and",
    "Or": "torch.logical_or",
    "Xor": "torch.logical_xor",
    "Not": "torch.logical_not",
}


def _args(x: Any) -> tuple[Any, ...]:
    return tuple(x.args)


def _piecewise_pairs(x: Any) -> list[tuple[Any, Any]]:
    args = list(x.args)
    if args and hasattr(args[0], "cond"):  # SymPy: ExprCondPair objects
        return [(a.expr, a.cond) for a in args]
    return [(args[i], args[i + 1]) for i in range(0, len(args), 2)]


@dataclass
class _Program:
    """Accumulates generated lines and constant tensors for one callable."""

    lines: list[str] = field(default_factory=list)
    consts: dict[str, tuple[list[Any], str]] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def const(self, values: list[Any], kind: str = "float") -> str:
        name = self.fresh("_K")
        self.consts[name] = (values, kind)
        return name

    def emit(self, line: str) -> None:
        self.lines.append("    " + line)


class _Printer:
    """Print expressions into a `_Program`; the functions they call are collected in
    ``functions`` (name in the generated code → torch callable)."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.prog = _Program()
        #: Subtrees computed elsewhere (large linear sums) → the symbol holding their value.
        self.hoisted: dict[Any, Any] = {}
        self.functions: dict[str, Callable[..., Any]] = {}

    def print(
        self,
        e: Any,
        env: Callable[[Any], str],
        lift: Callable[[Any], str] | None = None,
    ) -> str:
        def p(x: Any, liftable: bool = False) -> str:
            if x in self.hoisted:
                return env(self.hoisted[x])
            if x.is_Symbol:
                return env(x)
            if _is_numeric(x):
                if liftable and lift is not None:
                    return lift(x)
                return _literal(_num(x))
            if x.is_Add:
                return "(" + " + ".join(p(a, True) for a in x.args) + ")"
            if x.is_Mul:
                return self._print_mul(x, p)
            if x.is_Pow:
                return self._print_pow(x, p)
            name = _name(x)
            if name == "Piecewise":
                return self.print_piecewise(x, env)
            if name in _RELATIONALS:
                a, b = x.args
                return f"({p(a)} {_RELATIONALS[name]} {p(b)})"
            if name in _LOGIC:
                parts = [p(a) for a in x.args]
                fn = _LOGIC[name]
                if name == "Not":
                    return f"{fn}({parts[0]})"
                out = parts[0]
                for q in parts[1:]:
                    out = f"{fn}({out}, {q})"
                return out
            if name in ("BooleanTrue", "BooleanFalse"):
                return "True" if name == "BooleanTrue" else "False"
            if name == "exp":  # SymPy's exp; symengine writes exp(x) as E**x
                return f"torch.exp({p(x.args[0])})"
            cls = type(x) if self.engine == "sympy" else None
            lookup(name, cls)
            fname = self.fn_name(name, cls)
            return f"{fname}({', '.join(p(a) for a in _args(x))})"

        return p(e)

    def fn_name(self, name: str, cls: type | None) -> str:
        key = f"F_{name}"
        self.functions[key] = lookup(name, cls).fn
        return key

    def _print_mul(self, x: Any, p: Callable[..., str]) -> str:
        num, den = [], []
        for a in x.args:
            if a.is_Pow and _is_numeric(a.args[1]) and not _is_numeric(a.args[0]):
                exp = _num(a.args[1])
                if exp < 0:
                    base = a.args[0]
                    den.append(p(base) if exp == -1 else self._pow_str(p(base), -exp))
                    continue
            num.append(p(a, True))
        text = " * ".join(num) if num else "1.0"
        if den:
            text = f"{text} / ({' * '.join(den)})" if len(den) > 1 else f"{text} / {den[0]}"
        return f"({text})"

    def _pow_str(self, base: str, exp: float) -> str:
        if exp == 0.5:
            return f"torch.sqrt({base})"
        if exp == 1.0:
            return base
        if exp == 2.0:
            return f"torch.square({base})"
        if exp == int(exp):
            return f"torch.pow({base}, {int(exp)})"
        return f"torch.pow({base}, {_literal(exp)})"

    def _print_pow(self, x: Any, p: Callable[..., str]) -> str:
        base, exp = x.args
        if _name(base) in ("Exp1", "E") or (_is_numeric(base) and _num(base) == math.e):
            return f"torch.exp({p(exp)})"
        if _is_numeric(exp):
            value = _num(exp)
            if value == -0.5:
                return f"torch.rsqrt({p(base)})"
            if value == -1.0:
                return f"torch.reciprocal({p(base)})"
            if value < 0:
                return f"torch.reciprocal({self._pow_str(p(base), -value)})"
            return self._pow_str(p(base), value)
        if _is_numeric(base):
            return f"torch.pow({_literal(_num(base))}, {p(exp)})"
        return f"torch.pow({p(base)}, {p(exp)})"

    def print_piecewise(self, x: Any, env: Callable[[Any], str]) -> str:
        pairs = _piecewise_pairs(x)
        conds: list[str] = []
        values: list[str] = []
        previous: list[str] = []
        for expr, cond in pairs:
            c = "True" if _name(cond) == "BooleanTrue" else self.print(cond, env)
            if c != "True":
                cname = self.prog.fresh("_c")
                self.prog.emit(f"{cname} = {c}")
                c = cname
            # The branch is selected where its condition holds and no earlier one did.
            active = c
            for prev in previous:
                active = (
                    f"torch.logical_and({active}, torch.logical_not({prev}))"
                    if active != "True"
                    else f"torch.logical_not({prev})"
                )
            if active == "True":
                guard_name = None
            else:
                guard_name = self.prog.fresh("_sel")
                self.prog.emit(f"{guard_name} = {active}")
            values.append(self._guarded(expr, env, guard_name))
            conds.append(c)
            if c != "True":
                previous.append(c)
            else:
                break
        out = (
            values[-1]
            if conds[-1] == "True"
            else "torch.full(_batch, math.nan, dtype=_dt, device=_dev)"
        )
        if conds[-1] == "True":
            conds, values = conds[:-1], values[:-1]
        for c, v in zip(reversed(conds), reversed(values)):
            out = f"torch.where({c}, {v}, {out})"
        return out

    def _guarded(self, expr: Any, env: Callable[[Any], str], selected: str | None) -> str:
        if _is_numeric(expr):
            return f"torch.full(_batch, {_literal(_num(expr))}, dtype=_dt, device=_dev)"
        if selected is None:
            return self.print(expr, env)
        guarded: dict[Any, str] = {}

        def genv(s: Any) -> str:
            if s not in guarded:
                name = self.prog.fresh("_s")
                base = env(s)
                self.prog.emit(f"{name} = torch.where({selected}, {base}, {base}.detach())")
                guarded[s] = name
            return guarded[s]

        text = self.print(expr, genv)
        return f"({text} + torch.zeros(_batch, dtype=_dt, device=_dev))"
