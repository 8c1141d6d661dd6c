"""Helpers shared by the newer case modules: batching, constant weights, SymPy building blocks.

A case's ``torch_impl`` receives every input with leading batch dimensions (or none), while
many torch calls take one sample (`F.linear` a 2-D weight, `F.conv1d` one weight, `F.cross_entropy`
``(N, C)``). These helpers call the torch op a user would call on an unbatched input and fold
batches in the way the op's own batching works otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy
import torch
import torch.nn.functional as F

_R = sympy.Rational


def weights(rows: int, cols: int, *, salt: int = 0) -> list[list[sympy.Rational]]:
    """A fixed, well-scaled matrix of rationals in [-3/4, 3/4] (no randomness, no floats)."""
    return [[_R((3 * i + 5 * j + salt) % 7 - 3, 4) for j in range(cols)] for i in range(rows)]


def const(values: Any, like: torch.Tensor) -> torch.Tensor:
    """``values`` (nested lists of SymPy or Python numbers) as a tensor like ``like``."""

    def num(v: Any) -> Any:
        return [num(e) for e in v] if isinstance(v, (list, tuple)) else float(v)

    return torch.tensor(num(values), dtype=like.dtype, device=like.device)


def linear(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, *, vector: bool = False
) -> torch.Tensor:
    """`F.linear` for one sample; a broadcasting matmul when the weight has batch dimensions.

    ``vector``: the weight is one row ``[in]`` (a dot product), not a matrix ``[out, in]``.
    """
    if w.dim() == (1 if vector else 2):
        return F.linear(x, w, b)
    out = (w * x).sum(-1) if vector else (w @ x.unsqueeze(-1)).squeeze(-1)
    return out if b is None else out + b


def per_sample(
    fn: Callable[..., torch.Tensor], args: Sequence[torch.Tensor], event_dims: Sequence[int]
) -> torch.Tensor:
    """Apply ``fn`` (one sample: each arg without batch dims) to a batch by `torch.vmap`.

    ``event_dims[k]`` is the number of trailing dimensions of ``args[k]`` that belong to one
    sample. Without batch dimensions ``fn`` is called directly, so the op itself is what runs.
    """
    batch = args[0].shape[: args[0].dim() - event_dims[0]]
    if not batch:
        return fn(*args)
    flat = [a.reshape(-1, *a.shape[a.dim() - e :]) for a, e in zip(args, event_dims, strict=True)]
    out = torch.vmap(fn)(*flat)
    return out.reshape(*batch, *out.shape[1:])


def mean(xs: Sequence[sympy.Expr]) -> sympy.Expr:
    return sympy.Add(*xs) / len(xs)


def sigmoid(z: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-z))


def softmax(zs: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    total = sympy.Add(*[sympy.exp(z) for z in zs])
    return [sympy.exp(z) / total for z in zs]


def log_softmax(zs: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    lse = sympy.log(sympy.Add(*[sympy.exp(z) for z in zs]))
    return [z - lse for z in zs]


def gelu(z: sympy.Expr) -> sympy.Expr:
    """The exact (erf) GELU of `torch.nn.functional.gelu`."""
    return z * (1 + sympy.erf(z / sympy.sqrt(2))) / 2


def matvec(w: Sequence[Sequence[Any]], x: Sequence[Any]) -> list[sympy.Expr]:
    return [sympy.Add(*[wij * xj for wij, xj in zip(row, x, strict=True)]) for row in w]


def rows(a: sympy.Array) -> list[list[sympy.Expr]]:
    """A 2-D SymPy Array as a list of rows."""
    out: list[list[sympy.Expr]] = a.tolist()
    return out


def inverse(m: sympy.Matrix) -> sympy.Matrix:
    """The symbolic inverse adj(M)/det(M): what ``M.inv(method="ADJ")`` returns, without its
    check that det(M) is not identically zero (``det.equals(0)``, seconds on a 3×3 of symbols;
    the case's domain keeps the matrix invertible)."""
    return m.adjugate() / m.det(method="berkowitz")


def sq_norm(xs: Sequence[sympy.Expr]) -> sympy.Expr:
    return sympy.Add(*[e**2 for e in xs])


def grid(shape: tuple[int, ...], entry: Callable[..., Any]) -> list[Any]:
    """A nested list of the given shape whose element at ``idx`` is ``entry(*idx)``."""
    if len(shape) == 1:
        return [entry(i) for i in range(shape[0])]
    return [grid(shape[1:], lambda *rest, i=i: entry(i, *rest)) for i in range(shape[0])]
