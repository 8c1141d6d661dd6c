"""One generated callable: which values it computes, in which order, and how they are batched.

`_Generator` turns the entries of a function, Jacobian or Hessian into the lines of one
torch function returning a list of output blocks:

* common subexpressions are eliminated (symengine's ``cse`` when the case derives with
  symengine, `_trees.tree_cse` otherwise: ``sympy.cse`` re-evaluates what it rebuilds, which
  is quadratic on a long ``Max``);
* large linear combinations ``Σ c_j s_j + c_0`` (a dense ``W @ x``) become one matmul;
* expressions that differ only in their symbols and numeric coefficients (the 4,096 entries
  ``W_ij · t_i`` of a Jacobian, or an elementwise function over a matrix) are evaluated once
  on stacked vectors instead of once per entry;
* constants become tensors of the inputs' dtype and device (never Python numbers, which
  ``torch.func.vmap`` rejects as outputs).

The expressions themselves are printed by `_codegen_print._Printer`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._codegen_print import _args, _is_numeric, _literal, _name, _num, _Printer
from ._errors import InternalError
from ._trees import substitute, tree_cse

#: A sum with at least this many ``c·s`` terms is evaluated as part of a matmul.
LINEAR_MIN_TERMS = 8
#: Structurally equal expressions are evaluated together once there are at least this many.
GROUP_MIN = 2


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


class _Generator(_Printer):
    """Generate one callable returning a list of output blocks."""

    def __init__(
        self,
        engine: str,
        variables: Sequence[tuple[str, tuple[int, ...], Sequence[Any]]],
        blocks: Sequence[tuple[tuple[int, ...], Sequence[Any]]],
    ) -> None:
        super().__init__(engine)
        self.variables = variables
        self.blocks = blocks
        self.refs: dict[Any, _Ref] = {}
        self.scalar_cache: dict[tuple[str, int], str] = {}
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

    # -- printing (`_Printer`) ------------------------------------------------------------------
    def scalar_env(self, s: Any) -> str:
        if s in self.hoisted:
            s = self.hoisted[s]
        try:
            return self.scalar(self.refs[s])
        except KeyError:
            raise InternalError(f"symbol {s} has no value in the generated code") from None
