"""SymPy/symengine expressions → torch callables.

The generated code is batch-first and vectorised: `_codegen_program` decides what one
callable computes (common subexpressions once, large linear sums as one matmul, equal
structures on stacked vectors), `_codegen_print` writes each expression as torch code
(``Piecewise`` in the safe form that sends no NaN gradient back from a branch not
selected). This module compiles the source and gives a case its callables: `TorchCode`'s
``function``, ``jacobian`` and ``hessian``, nested as torch nests them (`verijac._layout`).

The source is generated from expression trees that verijac built and validated; no user text
reaches ``exec``. ``TorchCode.source`` shows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._codegen_program import _Generator

# Re-exported: the JAX benchmark reads the linear sums the same way.
from ._codegen_program import _is_big_linear as _is_big_linear
from ._codegen_program import _linear_terms as _linear_terms
from ._errors import ShapeError, UsageError

if TYPE_CHECKING:
    from ._case import Case


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
        native = list(self.case.derivatives.native_symbols)
        return [
            (v.name, v.shape, native[r.start : r.stop])
            for v, r in zip(self.case.variables, self.case.layout.in_ranges)
        ]

    def _program(self, flat: Sequence[Any], order: int) -> tuple[Callable[..., list[Any]], str]:
        """One callable returning the blocks of derivative ``order`` (`Layout.blocks`) of
        the flat entries ``flat``, and its source."""
        blocks = [(b.shape, b.take(flat)) for b in self.case.layout.blocks(order)]
        return compile_program(self.case.derivatives.engine, self._variables, blocks)

    def _nesting(self, flat_fn: Callable[..., list[Any]], order: int) -> Callable[..., Any]:
        layout = self.case.layout

        def call(*args: Any) -> Any:
            if len(args) != len(self.case.variables):
                raise ShapeError(
                    f"case {self.case.name!r} takes {len(self.case.variables)} tensors "
                    f"({', '.join(self.case.input_names)}), got {len(args)}"
                )
            return layout.nest(flat_fn(*args), order)

        call.__name__ = f"{self.case.name}"
        return call

    @cached_property
    def _function(self) -> tuple[Callable[..., list[Any]], str]:
        return self._program(self.case.derivatives.native_exprs, 0)

    @cached_property
    def _jacobian(self) -> tuple[Callable[..., list[Any]], str]:
        return self._program(self.case.derivatives.jacobian_native, 1)

    @cached_property
    def _hessian(self) -> tuple[Callable[..., list[Any]], str]:
        return self._program(self.case.derivatives.hessian_native, 2)

    @cached_property
    def function(self) -> Callable[..., Any]:
        """The function: one tensor per input (leading batch dimensions allowed)."""
        return self._nesting(self._function[0], 0)

    @cached_property
    def jacobian(self) -> Callable[..., Any]:
        """The exact Jacobian, nested like `torch.autograd.functional.jacobian`."""
        return self._nesting(self._jacobian[0], 1)

    @cached_property
    def hessian(self) -> Callable[..., Any]:
        """The exact Hessian, nested like `Case.hessian`."""
        return self._nesting(self._hessian[0], 2)

    def source(self, which: str = "function") -> str:
        """The generated Python source of ``function``, ``jacobian`` or ``hessian``."""
        table = {"function": "_function", "jacobian": "_jacobian", "hessian": "_hessian"}
        if which not in table:
            raise UsageError(f"which must be one of {sorted(table)}, got {which!r}")
        return str(getattr(self, table[which])[1])
