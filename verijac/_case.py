"""The `Case` model: a function written once in SymPy, with its inputs, outputs and domain."""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sympy

from ._domain import DomainLike, Interval
from ._errors import CaseError, ShapeError

if TYPE_CHECKING:
    from ._codegen import TorchCode
    from ._symbolic import Derivatives

Shape = tuple[int, ...]


def scalar(name: str) -> sympy.Symbol:
    """A real scalar input symbol called ``name``."""
    return sympy.Symbol(name, real=True)


def array(name: str, shape: Sequence[int]) -> sympy.Array:
    """An array of real input symbols ``name[i,j,…]`` with the given shape."""
    shape = tuple(int(s) for s in shape)
    if any(s <= 0 for s in shape):
        raise ShapeError(f"array input {name!r}: every dimension must be >= 1, got shape={shape}")
    idx: list[tuple[int, ...]] = [()]
    for s in shape:
        idx = [(*i, k) for i in idx for k in range(s)]
    syms = [sympy.Symbol(f"{name}[{','.join(map(str, i))}]", real=True) for i in idx]
    return sympy.Array(syms, shape)


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


def _nest(items: Sequence[Any], outer: bool, inner: bool, n_inner: int) -> Any:
    """Nest a flat [out][in] list like torch.autograd.functional.jacobian does."""
    rows = [items[k * n_inner : (k + 1) * n_inner] for k in range(len(items) // n_inner)]
    rows_n = [tuple(r) if inner else r[0] for r in rows]
    return tuple(rows_n) if outer else rows_n[0]


class Case:
    """A function written once in SymPy, with named inputs, outputs and a domain.

    Args:
        name: unique identifier (letters, digits, underscores).
        inputs: input name → a real `sympy.Symbol` or an array of them (`verijac.array`, a
            SymPy Array or Matrix). The order is the argument order of the function. Symbols
            without assumptions become real ones; any other assumption (``positive``,
            ``integer`` …) must follow from the domain.
        outputs: one expression, a tuple of expressions/arrays, or an Array/Matrix.
        domain: input name → ``(lo, hi)`` (closed), a `verijac.Interval` or a sign name
            (``"positive"``, …). Every input needs one.
        exclude: expressions whose zero sets are excluded (kinks, singularities that involve
            several inputs); points with ``|expr| < margin`` are never generated.
        known: `KnownPoint`s with exact values, checked against the expressions now.
        tags: family and property labels used for selection (``smooth``, ``piecewise`` …).
        tolerances: per dtype name, ``{"rtol": …, "atol": …}`` overrides.
        known_failures: torch defects this case shows, each expected to fail:
            ``"PATH_GLOB"`` or ``"PATH_GLOB@DTYPE"`` (a path name, family or glob, optionally
            one dtype) → the reason, a sentence naming the torch behaviour. A matching
            mismatch is reported as ``xfail``, a matching pass as ``xpass``. A pattern that
            selects no registered path is refused (a typo would silently match nothing).
        torch_impl: the torch implementation under test, called with one tensor per input;
            defaults to the function generated from the expressions.
        description: one line for listings.

    Raises:
        CaseError: the case is malformed; the message says what and how to fix it. Among
            the defects: a domain lying on a kink of the expressions (``Abs(x)`` on
            ``[0, 0]``), a symbol assumption the domain does not imply, a constant float64
            cannot hold (``oo``, ``gamma(1000)**3``).
    """

    def __init__(
        self,
        name: str,
        inputs: Mapping[str, Any],
        outputs: Any,
        domain: Mapping[str, DomainLike],
        *,
        exclude: Iterable[Any] = (),
        known: Iterable[KnownPoint] = (),
        tags: Iterable[str] = (),
        tolerances: Mapping[str, Mapping[str, float]] | None = None,
        torch_impl: Callable[..., Any] | None = None,
        description: str = "",
        margin: float = 1e-3,
        known_failures: Mapping[str, str] | None = None,
    ) -> None:
        from ._validate import (
            as_expr,
            check_kinks,
            check_known,
            check_margin,
            check_name,
            check_outputs_real,
            check_tags,
            normalise_inputs,
            normalise_outputs,
        )

        self.name = check_name(name)
        self.variables: tuple[Variable, ...] = normalise_inputs(self.name, inputs, domain)
        self.outputs, self.tuple_outputs = normalise_outputs(self.name, outputs, self.variables)
        if isinstance(exclude, (str, sympy.Basic)):
            exclude = [exclude]
        self.exclude: tuple[sympy.Expr, ...] = tuple(
            as_expr(self.name, e, f"exclude[{k}]", self.variables) for k, e in enumerate(exclude)
        )
        self.margin = check_margin(self.name, margin)
        self.tags: frozenset[str] = check_tags(self.name, tags)
        self.tolerances: dict[str, dict[str, float]] = _check_tolerances(self.name, tolerances)
        self.known_failures: dict[str, str] = _check_known_failures(self.name, known_failures)
        if not isinstance(description, str):
            raise CaseError(
                f"case {self.name!r}: description must be a string, got {description!r}"
            )
        if torch_impl is not None and not callable(torch_impl):
            raise CaseError(f"case {self.name!r}: torch_impl must be callable, got {torch_impl!r}")
        self.torch_impl = torch_impl
        self.description = description
        self.known: tuple[KnownPoint, ...] = tuple(known) if known is not None else ()
        check_kinks(self, check_outputs_real(self))
        for point in self.known:
            check_known(self, point)

    # -- shape information -------------------------------------------------------------
    @property
    def tuple_inputs(self) -> bool:
        """Whether the function takes several tensors (torch then nests per input)."""
        return len(self.variables) > 1

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @property
    def domain(self) -> dict[str, Interval]:
        return {v.name: v.domain for v in self.variables}

    @property
    def n_in(self) -> int:
        """Total number of scalar input elements."""
        return sum(v.size for v in self.variables)

    @property
    def n_out(self) -> int:
        """Total number of scalar output elements."""
        return sum(o.size for o in self.outputs)

    @property
    def scalar_output(self) -> bool:
        """Whether the function has exactly one scalar output (Hessian and grad apply)."""
        return not self.tuple_outputs and self.outputs[0].shape == ()

    @property
    def in_symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(s for v in self.variables for s in v.symbols)

    @property
    def out_exprs(self) -> tuple[sympy.Expr, ...]:
        return tuple(e for o in self.outputs for e in o.exprs)

    # -- exact derivatives ---------------------------------------------------------------
    @cached_property
    def derivatives(self) -> Derivatives:
        """The exact flat Jacobian (and, lazily, Hessian), computed once and cached."""
        from ._symbolic import Derivatives

        return Derivatives(self.in_symbols, self.out_exprs)

    def function(self) -> Any:
        """The outputs as SymPy: an expression, an Array, or a tuple of those."""
        outs = [
            o.exprs[0] if o.shape == () else sympy.Array(list(o.exprs), o.shape)
            for o in self.outputs
        ]
        return tuple(outs) if self.tuple_outputs else outs[0]

    def jacobian(self) -> Any:
        """The exact Jacobian as SymPy, nested like `torch.autograd.functional.jacobian`.

        Each block for output ``o`` and input ``v`` has shape ``o.shape + v.shape`` (a plain
        expression when both are scalars).
        """
        flat = self.derivatives.jacobian_sympy()
        blocks = []
        row0 = 0
        for o in self.outputs:
            col0 = 0
            for v in self.variables:
                entries = [
                    flat[r][c]
                    for r in range(row0, row0 + o.size)
                    for c in range(col0, col0 + v.size)
                ]
                blocks.append(_block(entries, o.shape + v.shape))
                col0 += v.size
            row0 += o.size
        return _nest(blocks, self.tuple_outputs, self.tuple_inputs, len(self.variables))

    def hessian(self) -> Any:
        """The exact Hessian as SymPy.

        For one scalar output this is nested like `torch.autograd.functional.hessian`: a
        block ``v_i.shape + v_j.shape`` per input pair (a tuple of tuples for several
        inputs). For other outputs, each output ``o`` gets blocks of shape
        ``o.shape + v_i.shape + v_j.shape``, nested [output][input i][input j] where
        outputs and inputs are tuples.
        """
        flat = self.derivatives.hessian_sympy()  # [out][in][in]
        per_output = []
        row0 = 0
        for o in self.outputs:
            pairs = []
            ci = 0
            for vi in self.variables:
                cj = 0
                for vj in self.variables:
                    entries = [
                        flat[r][a][b]
                        for r in range(row0, row0 + o.size)
                        for a in range(ci, ci + vi.size)
                        for b in range(cj, cj + vj.size)
                    ]
                    pairs.append(_block(entries, o.shape + vi.shape + vj.shape))
                    cj += vj.size
                ci += vi.size
            n = len(self.variables)
            grid = [tuple(pairs[i * n : (i + 1) * n]) for i in range(n)]
            per_output.append(tuple(grid) if self.tuple_inputs else grid[0][0])
            row0 += o.size
        return tuple(per_output) if self.tuple_outputs else per_output[0]

    # -- generated torch code --------------------------------------------------------------
    @cached_property
    def torch_code(self) -> TorchCode:
        """The generated torch callables for this case."""
        from ._codegen import TorchCode

        return TorchCode(self)

    def torch_function(self) -> Callable[..., Any]:
        """The function as torch code: one tensor per input (leading batch dims allowed)."""
        return self.torch_code.function

    def torch_jacobian(self) -> Callable[..., Any]:
        """The exact Jacobian as torch code, nested like `torch.autograd.functional.jacobian`,
        with the batch dimensions in front."""
        return self.torch_code.jacobian

    def torch_hessian(self) -> Callable[..., Any]:
        """The exact Hessian as torch code, nested like `Case.hessian`, batch dims in front."""
        return self.torch_code.hessian

    def implementation(self) -> Callable[..., Any]:
        """The torch function under test: ``torch_impl`` if given, else the generated one."""
        return self.torch_impl if self.torch_impl is not None else self.torch_function()

    def __repr__(self) -> str:
        ins = ", ".join(f"{v.name}{list(v.shape) if v.shape else ''}" for v in self.variables)
        return f"Case({self.name!r}, inputs=({ins}), n_out={self.n_out})"


def _block(entries: list[Any], shape: Shape) -> Any:
    if shape == ():
        return entries[0]
    return sympy.Array(entries, shape)


def _check_tolerances(
    case: str, tolerances: Mapping[str, Mapping[str, float]] | None
) -> dict[str, dict[str, float]]:
    from ._errors import UsageError
    from ._tolerances import dtype_name

    if tolerances is not None and not isinstance(tolerances, Mapping):
        raise CaseError(
            f"case {case!r}: tolerances must map a dtype name to {{'rtol': …, 'atol': …}}, got "
            f"{tolerances!r}"
        )
    out: dict[str, dict[str, float]] = {}
    for dtype, tol in (tolerances or {}).items():
        try:
            name = dtype_name(dtype)
        except UsageError as exc:
            raise CaseError(f"case {case!r}: tolerances: {exc}") from None
        if not isinstance(tol, Mapping) or not set(tol) <= {"rtol", "atol"}:
            raise CaseError(
                f"case {case!r}: tolerances[{dtype!r}] must be a mapping with keys 'rtol' and/or "
                f"'atol', got {tol!r}"
            )
        clean = {}
        for key, val in tol.items():
            if (
                isinstance(val, bool)
                or not isinstance(val, (int, float))
                or not math.isfinite(val)
                or val < 0
            ):
                raise CaseError(
                    f"case {case!r}: tolerances[{dtype!r}][{key!r}] must be a finite number >= 0, "
                    f"got {val!r}"
                )
            clean[key] = float(val)
        out[name] = clean
    return out


def _check_known_failures(case: str, known: Mapping[str, str] | None) -> dict[str, str]:
    from ._errors import UsageError
    from ._tolerances import check_path_pattern, dtype_name

    if known is None:
        return {}
    if not isinstance(known, Mapping):
        raise CaseError(
            f"case {case!r}: known_failures must map 'PATH_GLOB' or 'PATH_GLOB@DTYPE' to a "
            f"reason, got {known!r}; e.g. {{'functional.hessian@float32': 'torch … because …'}}"
        )
    out: dict[str, str] = {}
    for key, reason in known.items():
        pattern, at, dtype = key.partition("@") if isinstance(key, str) else ("", "", "")
        if not pattern.strip():
            raise CaseError(
                f"case {case!r}: known_failures keys must be 'PATH_GLOB' or 'PATH_GLOB@DTYPE' "
                f"strings, got {key!r}"
            )
        try:
            check_path_pattern(pattern, f"known_failures[{key!r}]")
        except UsageError as exc:
            raise CaseError(f"case {case!r}: {exc}") from None
        if at:
            try:
                dtype = dtype_name(dtype)
            except UsageError:
                raise CaseError(
                    f"case {case!r}: known_failures[{key!r}]: the part after '@' must be a dtype "
                    f"name (float64, float32, float16, bfloat16), got {dtype!r}"
                ) from None
        if not isinstance(reason, str) or not reason.strip():
            raise CaseError(
                f"case {case!r}: known_failures[{key!r}] must be a non-empty reason naming the "
                f"torch behaviour, got {reason!r}"
            )
        out[f"{pattern}@{dtype}" if at else pattern] = reason.strip()
    return out


def is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


__all__ = ["Case", "KnownPoint", "Output", "Variable", "array", "scalar"]
