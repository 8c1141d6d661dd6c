"""Points as reports show them: each coordinate the shortest decimal that rounds to the same
number in the dtype it was checked in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ._case import Case


def _point_dict(case: Case, inputs: Sequence[torch.Tensor], row: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v, x in zip(case.variables, inputs, strict=True):
        value = x[row].detach().cpu()
        out[v.name] = _short_tree(value.tolist(), x.dtype)
    return out


def _short(value: float, dtype: torch.dtype) -> float:
    """The shortest decimal that rounds to the same ``dtype`` number as ``value``."""
    import torch

    if not math.isfinite(value):
        return value
    target = torch.tensor(value, dtype=torch.float64).to(dtype)
    for digits in range(18):
        cand = float(f"{value:.{digits}g}") if digits else round(value)
        if torch.tensor(cand, dtype=torch.float64).to(dtype) == target:
            return float(cand)
    return float(value)


def _short_tree(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, list):
        return [_short_tree(v, dtype) for v in value]
    return _short(float(value), dtype)
