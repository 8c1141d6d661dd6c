"""SymPy/symengine expressions → torch callables.

The generated code is batch-first and vectorised:

* common subexpressions are eliminated (symengine's ``cse`` when the case derives with
  symengine, `_trees.tree_cse` otherwise: ``sympy.cse`` re-evaluates what it rebuilds, which
  is quadratic on a long ``Max``);
* large linear combinations ``Σ c_j s_j + c_0`` (a dense ``W @ x``) become one matmul;
* expressions that differ only in their symbols and numeric coefficients (the 4,096 entries
  ``W_ij · t_i`` of a Jacobian, or an elementwise function over a matrix) are evaluated once
  on stacked vectors instead of once per entry;
* constants become tensors of the inputs' dtype and device (never Python numbers, which
  ``torch.func.vmap`` rejects as outputs);
* ``Piecewise`` is generated in the safe form: every branch sees its inputs through
  ``where(cond, s, s.detach())``, so a branch that is not selected (``sqrt`` of a negative
  number, say) sends no NaN gradient back.

The source is generated from expression trees that verijac built and validated; no user text
reaches ``exec``. ``TorchCode.source`` shows it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._errors import InternalError, ShapeError, UnsupportedFunctionError, UsageError
from ._functions import lookup
from ._trees import substitute, tree_cse

if TYPE_CHECKING:
    from ._case import Case

#: A sum with at least this many ``c·s`` terms is evaluated as part of a matmul.
LINEAR_MIN_TERMS = 8
#: Structurally equal expressions are evaluated together once there are at least this many.
GROUP_MIN = 2


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


def _linear_terms(e: Any) -> tuple[list[tuple[float, Any]], float] | None:
    """``e`` as ``[(c_j, s_j)], c_0`` when it is a linear combination of symbols, else None."""
    if e.is_Symbol:
        return [(1.0, e)], 0.0
    if not e.is_Add:
        return None
    terms, const = [], 0.0
    for t in e.args:  # c·x first: asking whether the product itself is a number costs more
        if t.is_Symbol:
            terms.append((1.0, t))
        elif t.is_Mul and len(t.args) == 2:
            a, b = t.args
            if _is_numeric(a) and b.is_Symbol:
                terms.append((_num(a), b))
            elif _is_numeric(b) and a.is_Symbol:
                terms.append((_num(b), a))
            elif _is_numeric(t):
                const += _num(t)
            else:
                return None
        elif _is_numeric(t):
            const += _num(t)
        else:
            return None
    return terms, const


def _is_big_linear(e: Any) -> bool:
    lin = _linear_terms(e) if e.is_Add else None
    return lin is not None and len(lin[0]) >= LINEAR_MIN_TERMS


@dataclass
class _Ref:
    """Where a value lives: a scalar variable, an element of a vector, or a constant."""

    kind: str  # "scalar" | "vec" | "const"
    var: str = ""
    index: int = 0
    value: float = 0.0


@dataclass
class _Item:
    sym: Any
    expr: Any
    level: int = 0
    kind: str = "expr"  # "expr" | "linear" | "piecewise" | "const"


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


class _Generator:
    """Generate one callable returning a list of output blocks."""

    def __init__(
        self,
        engine: str,
        variables: Sequence[tuple[str, tuple[int, ...], Sequence[Any]]],
        blocks: Sequence[tuple[tuple[int, ...], Sequence[Any]]],
    ) -> None:
        self.engine = engine
        self.variables = variables
        self.blocks = blocks
        self.prog = _Program()
        self.refs: dict[Any, _Ref] = {}
        self.scalar_cache: dict[tuple[str, int], str] = {}
        self.hoisted: dict[Any, Any] = {}
        self.linear_cache: dict[Any, tuple[list[tuple[float, Any]], float] | None] = {}
        self.hoist_seen: set[Any] = set()

    def linear(self, e: Any) -> tuple[list[tuple[float, Any]], float] | None:
        """`_linear_terms`, memoised: every sum is asked several times on the way."""
        if not e.is_Add:
            return _linear_terms(e)
        if e not in self.linear_cache:
            self.linear_cache[e] = _linear_terms(e)
        return self.linear_cache[e]

    def big_linear(self, e: Any) -> bool:
        lin = self.linear(e) if e.is_Add else None
        return lin is not None and len(lin[0]) >= LINEAR_MIN_TERMS

    # -- references ---------------------------------------------------------------------------
    def scalar(self, ref: _Ref) -> str:
        if ref.kind == "scalar":
            return ref.var
        if ref.kind == "const":
            return _literal(ref.value)
        key = (ref.var, ref.index)
        if key not in self.scalar_cache:
            name = self.prog.fresh("_e")
            self.prog.emit(f"{name} = {ref.var}[..., {ref.index}]")
            self.scalar_cache[key] = name
        return self.scalar_cache[key]

    def tensor_scalar(self, ref: _Ref) -> str:
        """A scalar reference that is always a tensor of the batch shape."""
        if ref.kind == "const":
            return f"torch.full(_batch, {_literal(ref.value)}, dtype=_dt, device=_dev)"
        return self.scalar(ref)

    def gather(self, refs: Sequence[_Ref]) -> str:
        """A ``(*batch, len(refs))`` tensor holding the referenced values."""
        n = len(refs)
        if all(r.kind == "const" for r in refs):
            k = self.prog.const([r.value for r in refs])
            return f"{k}(_dt, _dev).expand(_batch + ({n},))"
        vars_ = {r.var for r in refs}
        if len(vars_) == 1 and refs[0].kind == "vec":
            var = refs[0].var
            idx = [r.index for r in refs]
            if idx == list(range(self.vec_sizes[var])):
                return var
            k = self.prog.const(idx, "long")
            return f"{var}[..., {k}(None, _dev)]"
        parts = ", ".join(self.tensor_scalar(r) for r in refs)
        return f"torch.stack(({parts},), dim=-1)"

    # -- the pipeline ---------------------------------------------------------------------------
    def generate(self) -> tuple[str, dict[str, tuple[list[Any], str]]]:
        self.vec_sizes: dict[str, int] = {}
        args = [f"a{i}" for i in range(len(self.variables))]
        p = self.prog
        p.lines.append(f"def _generated({', '.join(args)}):")
        p.emit(f"_dt, _dev = _check_inputs(({', '.join(args)},), _SHAPES)")
        batches = ", ".join(
            f"a{i}.shape[:a{i}.dim() - {len(shape)}]"
            for i, (_, shape, _) in enumerate(self.variables)
        )
        p.emit(f"_batch = torch.broadcast_shapes({batches})")
        for i, (_, shape, symbols) in enumerate(self.variables):
            var = f"_a{i}"
            size = len(symbols)
            if shape == ():
                p.emit(f"{var} = a{i}.to(_dt).expand(_batch)")
                self.refs[symbols[0]] = _Ref("scalar", var)
                continue
            p.emit(
                f"{var} = a{i}.to(_dt).expand(_batch + {tuple(shape)!r}).reshape(_batch + ({size},))"
            )
            self.vec_sizes[var] = size
            for j, s in enumerate(symbols):
                self.refs[s] = _Ref("vec", var, j)

        flat = [e for _, entries in self.blocks for e in entries]
        items, reduced = self.prepare(flat)
        self.emit_items(items)
        outs = []
        pos = 0
        for shape, entries in self.blocks:
            refs = [self.value_ref(e) for e in reduced[pos : pos + len(entries)]]
            pos += len(entries)
            name = p.fresh("_out")
            if shape == ():
                p.emit(f"{name} = {self.tensor_scalar(refs[0])}")
            else:
                p.emit(f"{name} = {self.gather(refs)}.reshape(_batch + {tuple(shape)!r})")
            outs.append(name)
        p.emit(f"return [{', '.join(outs)}]")
        return "\n".join(p.lines), p.consts

    def value_ref(self, e: Any) -> _Ref:
        if _is_numeric(e):
            return _Ref("const", value=_num(e))
        if e in self.refs:
            return self.refs[e]
        # An output expression that CSE left as a composite: evaluate it on its own.
        name = self.prog.fresh("_v")
        self.prog.emit(f"{name} = {self.print(e, self.scalar_env)}")
        ref = _Ref("scalar", name)
        self.refs[e] = ref
        return ref

    def prepare(self, flat: list[Any]) -> tuple[list[_Item], list[Any]]:
        """Extract Piecewise and big linear sums, eliminate common subexpressions.

        The big linear sums (evaluated as one matmul) leave before CSE: CSE compares every
        pair of sums in search of shared sub-sums, which is quadratic in their number (20 s
        for the 256 sums of a dense 256×256 ``tanh(W x)`` and its Jacobian).
        """
        pws: dict[Any, Any] = {}
        if self.engine == "sympy":
            import sympy

            for e in flat:
                for pw in e.atoms(sympy.Piecewise):
                    if not any(pw != o and o.has(pw) for o in e.atoms(sympy.Piecewise)):
                        pws.setdefault(pw, sympy.Dummy(f"pw{len(pws)}"))
        pre: list[_Item] = [_Item(s, pw, kind="piecewise") for pw, s in pws.items()]

        def take_out(node: Any) -> Any:
            hit = pws.get(node) if pws else None
            if hit is None and node.is_Add and self.big_linear(node):
                hit = self.hoisted[node] = self._dummy(f"lin{len(self.hoisted)}")
                pre.append(_Item(hit, node, kind="linear"))
            return hit

        flat = substitute(flat, take_out, self.engine)
        if self.engine == "sympy":
            replacements, reduced = tree_cse(flat, lambda: self._dummy("cse"))
        else:
            import symengine

            replacements, reduced = symengine.cse(flat)
        items = [_Item(s, e) for s, e in replacements]
        # Composite outputs become items too, so that equal structures are grouped.
        reduced = list(reduced)
        for k, e in enumerate(reduced):
            if not (e.is_Symbol or _is_numeric(e)):
                sym = self._dummy(f"out{k}")
                items.append(_Item(sym, e))
                reduced[k] = sym
        # Hoist large linear sums nested inside other expressions into their own items, each
        # just before the first item that uses it (it may sum the values of earlier items).
        ordered: list[_Item] = []
        for it in pre + items:
            self._hoist(it.expr, ordered)
            ordered.append(it)
        return ordered, reduced

    def _hoist(self, e: Any, out: list[_Item]) -> None:
        """Hoist the big linear sums strictly inside ``e`` into items of their own."""
        seen = self.hoist_seen
        stack = list(e.args)
        while stack:
            x = stack.pop()
            args = x.args
            if not args or x in seen:
                continue
            seen.add(x)
            if x.is_Add and len(args) >= LINEAR_MIN_TERMS and self.big_linear(x):
                if x not in self.hoisted:
                    sym = self._dummy(f"lin{len(self.hoisted)}")
                    self.hoisted[x] = sym
                    out.append(_Item(sym, x, kind="linear"))
                continue
            stack.extend(args)

    def _dummy(self, name: str) -> Any:
        if self.engine == "sympy":
            import sympy

            return sympy.Dummy(name)
        import symengine

        return symengine.Dummy(name)

    def deps(self, e: Any) -> set[Any]:
        out: set[Any] = set()
        stack = [e]
        while stack:
            x = stack.pop()
            if x in self.hoisted:
                out.add(self.hoisted[x])
            elif x.is_Symbol:
                out.add(x)
            else:
                stack.extend(x.args)
        return out

    def emit_items(self, items: list[_Item]) -> None:
        level: dict[Any, int] = {}
        exact: dict[Any, Any] = {}  # the items that are constants, as exact expressions
        pending = []
        for it in items:
            if it.kind == "expr" and self.big_linear(it.expr):
                it.kind = "linear"
            lin = self.linear(it.expr) if it.kind == "linear" else None
            d = self.deps(it.expr) if lin is None else {s for _, s in lin[0]}
            if lin is None and all(s in exact for s in d):
                # A constant, or a function of constants only (``1 + x0`` where CSE made
                # ``x0 = sqrt(2)``): printed, it would be a Python number, not a tensor.
                value = it.expr.xreplace({s: exact[s] for s in d}) if d else it.expr
                if _is_numeric(value):
                    exact[it.sym] = value
                    self.refs[it.sym] = _Ref("const", value=_num(value))
                    continue
            it.level = 1 + max((level.get(s, 0) for s in d), default=0)
            level[it.sym] = it.level
            pending.append(it)
        for lvl in sorted({it.level for it in pending}):
            batch = [it for it in pending if it.level == lvl]
            for it in batch:
                if it.kind == "piecewise":
                    self.emit_piecewise(it)
            linear = [it for it in batch if it.kind == "linear"]
            if linear:
                self.emit_linear(linear)
            groups: dict[str, list[tuple[_Item, list[Any], int]]] = {}
            for it in batch:
                if it.kind != "expr":
                    continue
                key, wild, nlift = self.template(it.expr)
                groups.setdefault(key, []).append((it, wild, nlift))
            for members in groups.values():
                self.emit_group(members)

    # -- templates: structure with symbols and coefficients abstracted -------------------------
    def template(self, e: Any) -> tuple[str, list[Any], int]:
        wild: list[Any] = []
        lifted = [0]

        def walk(x: Any, liftable: bool) -> str:
            if x in self.hoisted:
                x = self.hoisted[x]
            if x.is_Symbol:
                if x not in wild:
                    wild.append(x)
                return f"w{wild.index(x)}"
            if _is_numeric(x):
                if liftable:
                    lifted[0] += 1
                    return "c"
                return _literal(_num(x))
            name = _name(x)
            if x.is_Add:
                return "+(" + ",".join(walk(a, True) for a in x.args) + ")"
            if x.is_Mul:
                return "*(" + ",".join(walk(a, True) for a in x.args) + ")"
            return name + "(" + ",".join(walk(a, False) for a in _args(x)) + ")"

        key = walk(e, False)
        return f"{len(wild)}|{key}", wild, lifted[0]

    def emit_group(self, members: list[tuple[_Item, list[Any], int]]) -> None:
        first, wild0, nlift = members[0]
        if len(members) < GROUP_MIN:
            name = self.prog.fresh("t")
            self.prog.emit(f"{name} = {self.print(first.expr, self.scalar_env)}")
            self.refs[first.sym] = _Ref("scalar", name)
            return
        # Vectorised: wildcard k of the template is the vector of every member's k-th symbol.
        env: dict[Any, str] = {}
        for k, s in enumerate(wild0):
            vec = self.gather([self.refs[m[1][k]] for m in members])
            name = self.prog.fresh("_w")
            self.prog.emit(f"{name} = {vec}")
            env[s] = name
        lifts: list[list[float]] = [[] for _ in range(nlift)]
        for it, _, _ in members:
            for m, value in enumerate(self._lifted(it.expr)):
                lifts[m].append(value)
        lift_names = [self.prog.const(vals) + "(_dt, _dev)" for vals in lifts]
        counter = itertools.count()

        def lift(_: Any) -> str:
            return lift_names[next(counter)]

        name = self.prog.fresh("_g")
        self.prog.emit(f"{name} = {self.print(first.expr, lambda s: env[s], lift)}")
        self.vec_sizes[name] = len(members)
        for j, (it, _, _) in enumerate(members):
            self.refs[it.sym] = _Ref("vec", name, j)

    def _lifted(self, e: Any) -> list[float]:
        out: list[float] = []

        def walk(x: Any, liftable: bool) -> None:
            if x in self.hoisted or x.is_Symbol:
                return
            if _is_numeric(x):
                if liftable:
                    out.append(_num(x))
                return
            if x.is_Add or x.is_Mul:
                for a in x.args:
                    walk(a, True)
                return
            for a in _args(x):
                walk(a, False)

        walk(e, False)
        return out

    def emit_linear(self, items: list[_Item]) -> None:
        atoms: list[Any] = []
        index: dict[Any, int] = {}
        columns = []
        for it in items:
            terms, const = self.linear(it.expr)  # type: ignore[misc]
            for _, s in terms:
                if s not in index:
                    index[s] = len(atoms)
                    atoms.append(s)
            columns.append((terms, const))
        k, n = len(atoms), len(items)
        matrix = [[0.0] * n for _ in range(k)]
        for j, (terms, _) in enumerate(columns):
            for c, s in terms:
                matrix[index[s]][j] += c
        bias = [const for _, const in columns]
        src = self.gather([self.refs[s] for s in atoms])
        mat = self.prog.const(matrix)
        name = self.prog.fresh("_l")
        expr = f"{src} @ {mat}(_dt, _dev)"
        if any(bias):
            expr += f" + {self.prog.const(bias)}(_dt, _dev)"
        self.prog.emit(f"{name} = {expr}")
        self.vec_sizes[name] = n
        for j, it in enumerate(items):
            self.refs[it.sym] = _Ref("vec", name, j)

    def emit_piecewise(self, it: _Item) -> None:
        name = self.prog.fresh("_pw")
        self.prog.emit(f"{name} = {self.print_piecewise(it.expr, self.scalar_env)}")
        self.refs[it.sym] = _Ref("scalar", name)

    # -- printing -----------------------------------------------------------------------------
    def scalar_env(self, s: Any) -> str:
        if s in self.hoisted:
            s = self.hoisted[s]
        try:
            return self.scalar(self.refs[s])
        except KeyError:
            raise InternalError(f"symbol {s} has no value in the generated code") from None

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

    @cached_property
    def functions(self) -> dict[str, Callable[..., Any]]:
        return {}

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


def _args(x: Any) -> tuple[Any, ...]:
    return tuple(x.args)


def _piecewise_pairs(x: Any) -> list[tuple[Any, Any]]:
    args = list(x.args)
    if args and hasattr(args[0], "cond"):  # SymPy: ExprCondPair objects
        return [(a.expr, a.cond) for a in args]
    return [(args[i], args[i + 1]) for i in range(0, len(args), 2)]


class _Consts:
    """Constant tensors of a generated callable, made once per dtype and device."""

    def __init__(self, data: dict[str, tuple[list[Any], str]]) -> None:
        self.data = data
        self.cache: dict[tuple[str, Any, Any], Any] = {}

    def getter(self, name: str) -> Callable[[Any, Any], Any]:
        values, kind = self.data[name]

        def get(dtype: Any, device: Any) -> Any:
            import torch

            key = (name, dtype, device)
            t = self.cache.get(key)
            if t is None:
                dt = torch.long if kind == "long" else dtype
                t = torch.tensor(values, dtype=dt, device=device)
                self.cache[key] = t
            return t

        return get


def _check_inputs_factory(names: Sequence[str]) -> Callable[..., Any]:
    def check(args: tuple[Any, ...], shapes: Sequence[tuple[int, ...]]) -> tuple[Any, Any]:
        import torch

        dtype = None
        for name, a, shape in zip(names, args, shapes):
            if not isinstance(a, torch.Tensor):
                raise ShapeError(f"input {name!r} must be a torch.Tensor, got {type(a).__name__}")
            if not (a.is_floating_point()):
                raise ShapeError(
                    f"input {name!r} must be a floating-point tensor, got dtype={a.dtype}; "
                    "convert with .double() or .float()"
                )
            if a.dim() < len(shape) or tuple(a.shape[a.dim() - len(shape) :]) != tuple(shape):
                raise ShapeError(
                    f"input {name!r} must have shape (*batch, {', '.join(map(str, shape))}) "
                    f"ending in {tuple(shape)}, got {tuple(a.shape)}"
                )
            dtype = a.dtype if dtype is None else torch.promote_types(dtype, a.dtype)
            if a.device != args[0].device:
                raise ShapeError(
                    f"input {name!r} is on {a.device}, but input {names[0]!r} is on "
                    f"{args[0].device}; put every input on one device"
                )
        return dtype, args[0].device

    return check


def compile_program(
    engine: str,
    variables: Sequence[tuple[str, tuple[int, ...], Sequence[Any]]],
    blocks: Sequence[tuple[tuple[int, ...], Sequence[Any]]],
) -> tuple[Callable[..., list[Any]], str]:
    """Generate and compile one callable; returns it and its source."""
    import torch

    gen = _Generator(engine, variables, blocks)
    source, consts = gen.generate()
    store = _Consts(consts)
    namespace: dict[str, Any] = {
        "torch": torch,
        "math": math,
        "_SHAPES": [tuple(shape) for _, shape, _ in variables],
        "_check_inputs": _check_inputs_factory([name for name, _, _ in variables]),
    }
    namespace.update(gen.functions)
    for name in consts:
        namespace[name] = store.getter(name)
    code = compile(source, "<verijac generated>", "exec")
    exec(code, namespace)
    return namespace["_generated"], source


class TorchCode:
    """The generated torch callables of a case: function, Jacobian, Hessian (lazily)."""

    def __init__(self, case: Case) -> None:
        self.case = case

    @cached_property
    def _variables(self) -> list[tuple[str, tuple[int, ...], list[Any]]]:
        d = self.case.derivatives
        native = list(d.native_symbols)
        out, pos = [], 0
        for v in self.case.variables:
            out.append((v.name, v.shape, native[pos : pos + v.size]))
            pos += v.size
        return out

    def _nesting(
        self, flat_fn: Callable[..., list[Any]], nest: Callable[[list[Any]], Any]
    ) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if len(args) != len(self.case.variables):
                raise ShapeError(
                    f"case {self.case.name!r} takes {len(self.case.variables)} tensors "
                    f"({', '.join(self.case.input_names)}), got {len(args)}"
                )
            return nest(flat_fn(*args))

        call.__name__ = f"{self.case.name}"
        return call

    @cached_property
    def _function(self) -> tuple[Callable[..., list[Any]], str]:
        d = self.case.derivatives
        blocks, pos = [], 0
        native = list(d.native_exprs)
        for o in self.case.outputs:
            blocks.append((o.shape, native[pos : pos + o.size]))
            pos += o.size
        return compile_program(d.engine, self._variables, blocks)

    @cached_property
    def _jacobian(self) -> tuple[Callable[..., list[Any]], str]:
        d = self.case.derivatives
        rows = d.jacobian_native
        blocks = []
        r0 = 0
        for o in self.case.outputs:
            c0 = 0
            for v in self.case.variables:
                entries = [
                    rows[r][c] for r in range(r0, r0 + o.size) for c in range(c0, c0 + v.size)
                ]
                blocks.append((o.shape + v.shape, entries))
                c0 += v.size
            r0 += o.size
        return compile_program(d.engine, self._variables, blocks)

    @cached_property
    def _hessian(self) -> tuple[Callable[..., list[Any]], str]:
        d = self.case.derivatives
        h = d.hessian_native
        blocks = []
        r0 = 0
        for o in self.case.outputs:
            ci = 0
            for vi in self.case.variables:
                cj = 0
                for vj in self.case.variables:
                    entries = [
                        h[r][a][b]
                        for r in range(r0, r0 + o.size)
                        for a in range(ci, ci + vi.size)
                        for b in range(cj, cj + vj.size)
                    ]
                    blocks.append((o.shape + vi.shape + vj.shape, entries))
                    cj += vj.size
                ci += vi.size
            r0 += o.size
        return compile_program(d.engine, self._variables, blocks)

    @cached_property
    def function(self) -> Callable[..., Any]:
        case = self.case

        def nest(blocks: list[Any]) -> Any:
            return tuple(blocks) if case.tuple_outputs else blocks[0]

        return self._nesting(self._function[0], nest)

    @cached_property
    def jacobian(self) -> Callable[..., Any]:
        from ._case import _nest

        case = self.case

        def nest(blocks: list[Any]) -> Any:
            return _nest(blocks, case.tuple_outputs, case.tuple_inputs, len(case.variables))

        return self._nesting(self._jacobian[0], nest)

    @cached_property
    def hessian(self) -> Callable[..., Any]:
        case = self.case
        n = len(case.variables)

        def nest(blocks: list[Any]) -> Any:
            per_output = []
            for k in range(len(case.outputs)):
                chunk = blocks[k * n * n : (k + 1) * n * n]
                grid = tuple(tuple(chunk[i * n : (i + 1) * n]) for i in range(n))
                per_output.append(grid if case.tuple_inputs else grid[0][0])
            return tuple(per_output) if case.tuple_outputs else per_output[0]

        return self._nesting(self._hessian[0], nest)

    def source(self, which: str = "function") -> str:
        """The generated Python source of ``function``, ``jacobian`` or ``hessian``."""
        table = {"function": "_function", "jacobian": "_jacobian", "hessian": "_hessian"}
        if which not in table:
            raise UsageError(f"which must be one of {sorted(table)}, got {which!r}")
        return str(getattr(self, table[which])[1])
