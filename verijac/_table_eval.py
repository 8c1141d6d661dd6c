"""The values of a reference table: f, J and H of a case at a point, exact where they can be.

Every entry is evaluated on one tape of the case's shared subexpressions
(`verijac._table_program`). An entry that is a rational function with rational coefficients
(``x1*x3``, ``6*x4**5``) is evaluated at a rational point with `fractions.Fraction`: its value
is exact. Every other entry is evaluated with mpmath at ``digits + GUARD`` digits and again at
twice as many; when the two evaluations give the same ``digits``-digit decimal, the same
float64 and the same float32, that is the value, otherwise the precision doubles (up to
`verijac._precise.MAX_DIGITS`), the criterion of `verijac._precise`. Entries the tape has no
operation for (``Piecewise``, a user's function) are compiled as `verijac._precise` compiles
them. At points given exactly (known points, ``--rational`` points), an entry that is not
exact on the tape is also substituted into SymPy, which finds exact values such as
``sqrt(9/16) = 3/4`` and ``cos(0) = 1``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._errors import CaseError, TableError
from ._table_numbers import (
    FORMATS,
    bit_pattern,
    decimal_ratio,
    decimal_text,
    exact_text,
    mpf_ratio,
    round_binary,
    round_ratio,
    shortest_text,
)
from ._table_program import Program

if TYPE_CHECKING:
    import sympy

    from ._case import Case

#: Extra decimal digits the first mpmath evaluation carries beyond those printed.
GUARD = 10
#: Draws tried for each generated point before the case is reported as one that has none.
MAX_DRAWS = 200
#: Denominators of ``--rational`` points: the dyadic grid 1/16 (exact in every binary dtype).
RATIONAL_GRID = 16

#: A coordinate: an exact rational, or (known points only) a SymPy number such as ``pi/4``.
Coordinate = Any


@dataclass(frozen=True)
class Entry:
    """One value of a table: the exact text (or ``None``), the decimal and the two floats."""

    exact: str | None
    decimal: str
    float64: float
    float32: float

    def columns(self) -> dict[str, str | None]:
        """The entry as the table's columns (floats as shortest text and bit patterns)."""
        f64, f32 = FORMATS["float64"], FORMATS["float32"]
        return {
            "exact": self.exact,
            "decimal": self.decimal,
            "float64": shortest_text(self.float64, f64),
            "float64_hex": bit_pattern(self.float64, f64),
            "float32": shortest_text(self.float32, f32),
            "float32_hex": bit_pattern(self.float32, f32),
        }


def entry_from(value: Fraction, digits: int, *, exact: bool) -> Entry:
    """The columns of one value, each rounded once from ``value``."""
    return Entry(
        exact_text(value) if exact else None,
        decimal_text(value, digits),
        round_binary(value, FORMATS["float64"]),
        round_binary(value, FORMATS["float32"]),
    )


@dataclass(frozen=True)
class Point:
    """A point of a table: its id, where it comes from and its exact coordinates.

    ``coords`` maps each input to its elements in row-major order.
    """

    id: str
    source: str  # "known", "generated" or "rational"
    coords: dict[str, list[Coordinate]]

    @property
    def rational(self) -> bool:
        return all(isinstance(c, Fraction) for cs in self.coords.values() for c in cs)

    def flat(self) -> list[Coordinate]:
        return [c for cs in self.coords.values() for c in cs]


# -- mpmath ------------------------------------------------------------------------------------


def _compile_mpmath(case: Case, exprs: Sequence[sympy.Expr]) -> Callable[..., Any]:
    """``exprs`` as one mpmath function of the flattened inputs (as `verijac._precise`
    compiles a case: SymPy's ``lambdify`` with user functions renamed and evaluated through
    SymPy)."""
    import sympy

    from ._precise import _namespace, _through_evalf

    flat = [sympy.sympify(e) for e in exprs]
    namespace = _namespace()
    renamed: dict[Any, Any] = {}
    classes = {type(f) for e in flat for f in e.atoms(sympy.Function)}
    for i, cls in enumerate(sorted(classes, key=lambda c: str(c.__name__))):
        if str(getattr(cls, "__module__", "")).startswith("sympy."):
            continue
        alias = f"_verijac_user_function_{i}"
        namespace[alias] = _through_evalf(case, cls)
        renamed[cls] = sympy.Function(alias)
    if renamed:
        flat = [
            e.replace(lambda n: type(n) in renamed, lambda n: renamed[type(n)](*n.args))
            for e in flat
        ]
    try:
        fn: Callable[..., Any] = sympy.lambdify(
            list(case.in_symbols), flat, modules=[namespace, "mpmath"], dummify=True, cse=True
        )
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(
            f"case {case.name!r}: mpmath cannot evaluate its derivatives for a table: {first}"
        ) from None
    return fn


def _mp_value(c: Coordinate) -> Any:
    """A coordinate as an mpmath number at the working precision."""
    import mpmath

    if isinstance(c, Fraction):
        return mpmath.mpf(c.numerator) / c.denominator
    import sympy

    return mpmath.mpf(sympy.sympify(c).evalf(mpmath.mp.dps + 5)._mpf_)


def _columns(value: Any, digits: int) -> tuple[str, float, float] | None:
    """What a table prints of an mpmath value; ``None`` for a complex or undefined one."""
    import mpmath

    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
        try:
            value = mpmath.mpf(value)
        except (TypeError, ValueError):
            return None
        if not mpmath.isfinite(value):
            return None
    num, den = mpf_ratio(value)
    return (
        decimal_ratio(num, den, digits),
        round_ratio(num, den, FORMATS["float64"]),
        round_ratio(num, den, FORMATS["float32"]),
    )


# -- one case ----------------------------------------------------------------------------------


@dataclass
class CaseTerms:
    """The entries of f, J (and H) of a case, flat in row-major order, and their evaluators.

    Args:
        case: the case.
        hessian: whether H is part of the table.
    """

    case: Case
    hessian: bool
    quantities: dict[str, tuple[int, ...]] = field(init=False)
    native: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        case, d = self.case, self.case.derivatives
        m, n = case.n_out, case.n_in
        self.quantities = {"f": (m,), "J": (m, n)}
        self.native = list(d.native_exprs) + [e for row in d.jacobian_native for e in row]
        if self.hessian:
            self.quantities["H"] = (m, n, n)
            self.native += [e for out in d.hessian_native for row in out for e in row]

    @property
    def size(self) -> int:
        return len(self.native)

    @cached_property
    def program(self) -> Program:
        return Program(self.case.derivatives.native_symbols, self.native)

    @cached_property
    def uncovered(self) -> list[int]:
        """Positions of the entries the tape cannot evaluate (compiled with ``lambdify``)."""
        return [k for k, slot in enumerate(self.program.outputs) if slot is None]

    @cached_property
    def fallback(self) -> Callable[..., Any] | None:
        if not self.uncovered:
            return None
        d = self.case.derivatives
        return _compile_mpmath(self.case, [d.to_sympy(self.native[k]) for k in self.uncovered])

    @cached_property
    def exclude_program(self) -> Program | None:
        return Program(self.case.in_symbols, self.case.exclude) if self.case.exclude else None

    def evaluate(self, point: Point, digits: int) -> list[Entry] | str:
        """Every entry at ``point``; a reason (str) when one is not a finite real number."""
        entries: dict[int, Entry] = {}
        if point.rational:
            values = self.program.run_exact(point.flat())
            for pos, exact in enumerate(self.program.exact):
                if exact:
                    value = values[pos]
                    if value is None:
                        return f"{self.label(pos)} divides by zero"
                    entries[pos] = entry_from(value, digits, exact=True)
        todo = [k for k in range(self.size) if k not in entries]
        if todo and point.source != "generated":
            for pos in todo:
                found = self._sympy_exact(pos, point)
                if found is not None:
                    entries[pos] = entry_from(found, digits, exact=True)
            todo = [k for k in todo if k not in entries]
        if todo:
            settled = self._settle(point, digits, todo)
            if isinstance(settled, str):
                return settled
            entries.update(settled)
        return [entries[k] for k in range(self.size)]

    def _sympy_exact(self, pos: int, point: Point) -> Fraction | None:
        """The entry substituted into SymPy at an exactly given point, if SymPy finds it
        rational (``sqrt(9/16)``, ``cos(0)``)."""
        import sympy

        subs = {
            s: sympy.Rational(c.numerator, c.denominator) if isinstance(c, Fraction) else c
            for s, c in zip(self.case.in_symbols, point.flat(), strict=True)
        }
        try:
            value = self.case.derivatives.to_sympy(self.native[pos]).xreplace(subs)
        except Exception:  # SymPy could not evaluate it: not known to be exact
            return None
        if isinstance(value, sympy.Rational):
            return Fraction(int(value.p), int(value.q))
        return None

    def _settle(self, point: Point, digits: int, todo: list[int]) -> dict[int, Entry] | str:
        """The mpmath entries at ``point``, settled by two precisions that print alike."""
        from ._precise import _LOCK, MAX_DIGITS

        dps = digits + GUARD
        with _LOCK:
            low = self._at(point, dps, digits, todo)
            while True:
                high = self._at(point, 2 * dps, digits, todo)
                bad = [pos for pos in todo if high[pos] is None]
                if bad:
                    return f"{self.label(bad[0])} is not a finite real number"
                if all(_alike(low[p], high[p]) for p in todo):
                    break
                dps, low = 2 * dps, high
                if 2 * dps > MAX_DIGITS + 2 * GUARD:
                    raise TableError(
                        f"case {self.case.name!r}, point {point.id!r}: the value of "
                        f"{self.label(todo[0])} changes between {dps // 2} and {dps} digits "
                        "(severe cancellation); the table cannot settle it"
                    )
        out = {}
        for pos in todo:
            found = high[pos]
            assert found is not None
            out[pos] = Entry(None, found[0], found[1], found[2])
        return out

    def _at(
        self, point: Point, dps: int, digits: int, todo: list[int]
    ) -> dict[int, tuple[str, float, float] | None]:
        """The columns of the ``todo`` entries evaluated at ``dps`` digits."""
        import mpmath

        with mpmath.workdps(dps):
            args = [_mp_value(c) for c in point.flat()]
            values = self.program.run_mpmath(args)
            if self.fallback is not None:
                try:
                    extra = self.fallback(*args)
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    extra = [None] * len(self.uncovered)
                for pos, value in zip(self.uncovered, extra, strict=True):
                    values[pos] = value
            return {
                pos: None if values[pos] is None else _columns(values[pos], digits) for pos in todo
            }

    def label(self, pos: int) -> str:
        """``J[1,2]``: the quantity and flat index of an entry position."""
        for name, index in self.indices():
            if pos < len(index):
                return f"{name}[{','.join(map(str, index[pos]))}]"
            pos -= len(index)
        raise IndexError(pos)  # pragma: no cover

    def indices(self) -> list[tuple[str, list[tuple[int, ...]]]]:
        """Per quantity, the flat index of each of its entries in row-major order."""
        out = []
        for name, shape in self.quantities.items():
            idx: list[tuple[int, ...]] = [()]
            for s in shape:
                idx = [(*i, k) for i in idx for k in range(s)]
            out.append((name, idx))
        return out

    def inside(self, point: Point) -> bool:
        """Whether a generated point keeps clear of excluded points and zero sets."""
        import mpmath

        for v in self.case.variables:
            if not all(v.domain.keeps_clear(float(c)) for c in point.coords[v.name]):
                return False
        program = self.exclude_program
        if program is None:
            return True
        from ._precise import _LOCK

        with _LOCK, mpmath.workdps(30):
            args = [_mp_value(c) for c in point.flat()]
            values = program.run_mpmath(args)
            if any(slot is None for slot in program.outputs):
                try:
                    values = _compile_mpmath(self.case, list(self.case.exclude))(*args)
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    return False
        for g in values:
            if g is None or isinstance(g, mpmath.mpc) or not mpmath.isfinite(g):
                return False
            if abs(g) < self.case.margin:
                return False
        return True


def _alike(a: tuple[str, float, float] | None, b: tuple[str, float, float] | None) -> bool:
    """Whether two evaluations print the same decimal, float64 and float32."""
    return a is not None and b is not None and a[:3] == b[:3]


def _draw(rng: random.Random, lo: float, hi: float, rational: bool) -> Fraction:
    """A value in ``[lo, hi]``: float32-representable, or on the 1/16 grid when ``rational``."""
    x = rng.uniform(lo, hi)
    if rational:
        return Fraction(round(x * RATIONAL_GRID), RATIONAL_GRID)
    return Fraction(round_binary(Fraction(x), FORMATS["float32"]))


def generated_points(
    terms: CaseTerms,
    *,
    count: int,
    seed: int,
    rational: bool,
    digits: int,
    on_point: Callable[[], None] | None = None,
) -> list[tuple[Point, list[Entry]]]:
    """``count`` points drawn inside the domain (reproducibly from ``seed`` and the case name),
    each with its entries; points where an entry is not finite are drawn again.

    Raises:
        TableError: no valid point in `MAX_DRAWS` draws.
    """
    case = terms.case
    digest = hashlib.sha256(f"verijac-table/{seed}/{case.name}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    kind = "rational" if rational else "generated"
    out: list[tuple[Point, list[Entry]]] = []
    seen: set[tuple[Fraction, ...]] = set()
    draws = 0
    while len(out) < count:
        draws += 1
        if draws > MAX_DRAWS * max(count, 1):
            raise TableError(
                f"case {case.name!r}: found only {len(out)} of {count} points inside the domain "
                f"where every entry is finite in {draws - 1} draws; ask for fewer --points"
            )
        coords: dict[str, list[Coordinate]] = {}
        for v in case.variables:
            lo, hi = v.domain.sample_bounds()
            coords[v.name] = [_draw(rng, lo, hi, rational) for _ in range(v.size)]
        point = Point(f"{kind}-{len(out)}", kind, coords)
        key = tuple(point.flat())
        if key in seen or not terms.inside(point):
            continue
        entries = terms.evaluate(point, digits)
        if isinstance(entries, str):
            continue
        seen.add(key)
        out.append((point, entries))
        if on_point is not None:
            on_point()
    return out


def known_points(case: Case) -> list[Point]:
    """The case's known points with exact coordinates (floats as their exact binary value)."""
    import sympy

    from ._validate import _flatten

    out = []
    for k, kp in enumerate(case.known):
        coords: dict[str, list[Coordinate]] = {}
        for v in case.variables:
            values = _flatten(kp.at[v.name], v.shape, f"known point input {v.name!r}", case.name)
            coords[v.name] = [
                Fraction(int(x.p), int(x.q))
                if isinstance(x, sympy.Rational)
                else Fraction(float(x))
                if isinstance(x, sympy.Float)
                else x
                for x in values
            ]
        out.append(Point(f"known-{k}", "known", coords))
    return out


def coordinate_text(c: Coordinate) -> str:
    """A coordinate as a table prints it: ``3``, ``-7/3``, an exact decimal, or ``pi/4``."""
    if isinstance(c, Fraction):
        den = c.denominator
        if den & (den - 1) == 0 and den > RATIONAL_GRID:  # a float's value: exact decimal
            from ._table_numbers import dyadic_text

            return dyadic_text(c)
        return exact_text(c)
    import sympy

    return str(sympy.sstr(c))


__all__ = [
    "CaseTerms",
    "Entry",
    "Point",
    "coordinate_text",
    "entry_from",
    "generated_points",
    "known_points",
]
