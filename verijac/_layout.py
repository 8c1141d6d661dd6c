"""Where each block of a value, Jacobian or Hessian lies, and how torch nests the blocks.

A case's exact derivatives are flat: the Jacobian is ``m × n`` (output element × input
element) and the Hessian ``m × n × n``, with the elements of each output and of each input in
row-major order, outputs and inputs one after another. torch hands them out in blocks, one
per output ``o`` and input ``v`` (and input ``w``), of shape ``o.shape + v.shape``
(``+ w.shape``), nested [output][input][input] as ``torch.autograd.functional.jacobian`` and
``hessian`` nest them: the output level is present only where the function returns a tuple,
the input levels only where it takes several tensors. For one scalar output that is exactly
the nesting of ``torch.autograd.functional.hessian``.

This module holds that index arithmetic once, for every walk over the blocks: the SymPy
derivatives of a `Case`, the generated torch code and the paths' flat layout. It imports no
other verijac module and neither torch nor SymPy: callers bring the entries and tensors.

The *order* of a layout's blocks is the derivative order: 0 for the function's value (one
block per output), 1 for the Jacobian, 2 for the Hessian.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]


def size(shape: Iterable[int]) -> int:
    """The number of elements of an array of ``shape`` (1 for a scalar)."""
    return math.prod(shape)


def ranges(shapes: Iterable[Iterable[int]]) -> tuple[range, ...]:
    """The flat indices of each of ``shapes`` laid out one after another."""
    out, pos = [], 0
    for shape in shapes:
        k = size(shape)
        out.append(range(pos, pos + k))
        pos += k
    return tuple(out)


@dataclass(frozen=True)
class Block:
    """One block: output ``position[0]`` × input ``position[1]`` (× input ``position[2]``).

    Attributes:
        position: the index of the output, then of each input.
        dims: the shape of that output, then of each input; the block's shape is their
            concatenation.
        ranges: the flat indices the block covers: the output's rows, then each input's
            columns.
    """

    position: tuple[int, ...]
    dims: tuple[Shape, ...]
    ranges: tuple[range, ...]

    @property
    def shape(self) -> Shape:
        """The block's shape: ``o.shape + v.shape (+ w.shape)``."""
        return tuple(d for dim in self.dims for d in dim)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The block as a matrix (or a 3-index array): one flat axis per output and input."""
        return tuple(len(r) for r in self.ranges)

    def take(self, flat: Sequence[Any]) -> list[Any]:
        """The block's entries in row-major order, from the flat layout ``flat[r][c]…``."""
        if len(self.ranges) == 1:
            (rows,) = self.ranges
            return [flat[r] for r in rows]
        if len(self.ranges) == 2:
            rows, cols = self.ranges
            return [flat[r][c] for r in rows for c in cols]
        rows, cols_i, cols_j = self.ranges
        return [flat[r][a][b] for r in rows for a in cols_i for b in cols_j]


@dataclass(frozen=True)
class Layout:
    """The shapes of a function's outputs and inputs, and whether torch sees tuples.

    Attributes:
        out_shapes / in_shapes: the per-point shape of each output and each input.
        tuple_outputs: whether the function returns a tuple (an output level in the nesting).
        tuple_inputs: whether it takes several tensors (input levels in the nesting).
    """

    out_shapes: tuple[Shape, ...]
    in_shapes: tuple[Shape, ...]
    tuple_outputs: bool
    tuple_inputs: bool

    def __post_init__(self) -> None:
        # Callers pass lists and torch.Size objects; a layout holds plain tuples.
        object.__setattr__(self, "out_shapes", tuple(tuple(s) for s in self.out_shapes))
        object.__setattr__(self, "in_shapes", tuple(tuple(s) for s in self.in_shapes))

    @property
    def m(self) -> int:
        """The number of scalar output elements."""
        return sum(size(s) for s in self.out_shapes)

    @property
    def n(self) -> int:
        """The number of scalar input elements."""
        return sum(size(s) for s in self.in_shapes)

    @property
    def out_ranges(self) -> tuple[range, ...]:
        """The flat rows of each output."""
        return ranges(self.out_shapes)

    @property
    def in_ranges(self) -> tuple[range, ...]:
        """The flat columns of each input."""
        return ranges(self.in_shapes)

    def blocks(self, order: int) -> list[Block]:
        """The blocks of derivative ``order``, output by output, then input by input
        (row-major over the pairs of inputs for a Hessian): the order of `nest`'s items."""
        ins = list(zip(self.in_shapes, self.in_ranges))
        found = []
        for o, (o_shape, rows) in enumerate(zip(self.out_shapes, self.out_ranges)):
            for combo in itertools.product(range(len(ins)), repeat=order):
                found.append(
                    Block(
                        (o, *combo),
                        (o_shape, *(ins[v][0] for v in combo)),
                        (rows, *(ins[v][1] for v in combo)),
                    )
                )
        return found

    def grid(self, items: Sequence[Any], order: int) -> list[Any]:
        """Items in `blocks` order → nested lists [output][input]…, every level present.

        Raises:
            ValueError: ``items`` is not one item per block.
        """
        n = len(self.in_shapes)
        per_out = n**order
        if len(items) != len(self.out_shapes) * per_out:
            raise ValueError(
                f"expected {len(self.out_shapes) * per_out} blocks of order {order} "
                f"({len(self.out_shapes)} outputs, {n} inputs), got {len(items)}"
            )

        def level(part: Sequence[Any], depth: int) -> Any:
            if depth == 0:
                return part[0]
            step = n ** (depth - 1)
            return [level(part[k * step : (k + 1) * step], depth - 1) for k in range(n)]

        return [
            level(items[k * per_out : (k + 1) * per_out], order)
            for k in range(len(self.out_shapes))
        ]

    def nest(self, items: Sequence[Any], order: int) -> Any:
        """Items in `blocks` order → torch's nesting: a tuple level for the outputs only
        where the function returns a tuple, ``order`` tuple levels for the inputs only where
        it takes several tensors (a bare item where there is neither).

        Raises:
            ValueError: ``items`` is not one item per block.
        """

        def drop(value: Any, depth: int) -> Any:
            if depth == 0:
                return value
            if not self.tuple_inputs:
                return drop(value[0], depth - 1)
            return tuple(drop(v, depth - 1) for v in value)

        per_output = [drop(g, order) for g in self.grid(items, order)]
        return tuple(per_output) if self.tuple_outputs else per_output[0]

    def leaves(self, nested: Any, order: int) -> list[Any]:
        """torch's nesting → its blocks in `blocks` order (the inverse of `nest`).

        Raises:
            ValueError: a level holds more or fewer entries than there are outputs / inputs.
        """
        out: list[Any] = []

        def walk(value: Any, depth: int) -> None:
            if depth == 0:
                out.append(value)
                return
            level = value if self.tuple_inputs else (value,)
            for _, item in zip(self.in_shapes, level, strict=True):
                walk(item, depth - 1)

        per_output = nested if self.tuple_outputs else (nested,)
        for _, value in zip(self.out_shapes, per_output, strict=True):
            walk(value, order)
        return out


__all__ = ["Block", "Layout", "Shape", "ranges", "size"]
