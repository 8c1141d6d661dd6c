"""The `Case` model: a function written once in SymPy, with its inputs, outputs and domain."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import sympy

from ._codegen import TorchCode
from ._domain import DomainLike, Interval
from ._errors import CaseError
from ._layout import Layout, Shape
from ._parts import KnownPoint as KnownPoint
from ._parts import Output as Output
from ._parts import Variable as Variable
from ._parts import array as array
from ._parts import scalar as scalar
from ._symbolic import Derivatives
from ._validate import (
    check_known_failures,
    check_margin,
    check_name,
    check_tags,
    check_tolerances,
    normalise_inputs,
)
from ._validate_domain import check_kinks, check_outputs_real
from ._validate_expr import as_expr, normalise_outputs
from ._validate_known import check_known


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
        self.tolerances: dict[str, dict[str, float]] = check_tolerances(self.name, tolerances)
        self.known_failures: dict[str, str] = check_known_failures(self.name, known_failures)
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
        return Derivatives(self.in_symbols, self.out_exprs)

    @cached_property
    def layout(self) -> Layout:
        """Where each output and input lies in the flat derivatives, and torch's nesting."""
        return Layout(
            tuple(o.shape for o in self.outputs),
            tuple(v.shape for v in self.variables),
            tuple_outputs=self.tuple_outputs,
            tuple_inputs=self.tuple_inputs,
        )

    def function(self) -> Any:
        """The outputs as SymPy: an expression, an Array, or a tuple of those."""
        return self._nested(self.out_exprs, 0)

    def jacobian(self) -> Any:
        """The exact Jacobian as SymPy, nested like `torch.autograd.functional.jacobian`.

        Each block for output ``o`` and input ``v`` has shape ``o.shape + v.shape`` (a plain
        expression when both are scalars).
        """
        return self._nested(self.derivatives.jacobian_sympy(), 1)

    def hessian(self) -> Any:
        """The exact Hessian as SymPy.

        For one scalar output this is nested like `torch.autograd.functional.hessian`: a
        block ``v_i.shape + v_j.shape`` per input pair (a tuple of tuples for several
        inputs). For other outputs, each output ``o`` gets blocks of shape
        ``o.shape + v_i.shape + v_j.shape``, nested [output][input i][input j] where
        outputs and inputs are tuples.
        """
        return self._nested(self.derivatives.hessian_sympy(), 2)

    def _nested(self, flat: Sequence[Any], order: int) -> Any:
        """The flat entries of derivative ``order`` as SymPy blocks in torch's nesting."""
        blocks = [_block(b.take(flat), b.shape) for b in self.layout.blocks(order)]
        return self.layout.nest(blocks, order)

    # -- generated torch code --------------------------------------------------------------
    @cached_property
    def torch_code(self) -> TorchCode:
        """The generated torch callables for this case."""
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


__all__ = ["Case", "KnownPoint", "Output", "Variable", "array", "scalar"]
