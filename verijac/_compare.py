"""Comparison of a path's result with the exact reference: errors, ULPs and the allowed bound.

Every entry is allowed ``atol + rtol·scale + cond``:

* ``scale`` is the result computed with absolute values everywhere (``|J|·|t|`` for a JVP),
  the size of the terms the path adds up, so that a sum that cancels is not held to a
  relative bound its own terms cannot meet;
* ``cond`` is how far the exact result moves when the inputs move by `COND_ULPS` units of
  roundoff of the path's dtype: the part of the error the conditioning of the derivative
  forces on any implementation working in that dtype.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ._tolerances import Tolerance


def spacing(expected: Any, dtype: Any) -> Any:
    """The ULP of ``dtype`` at each entry of ``expected``, as float64.

    ``spacing(e) = eps · 2**floor(log2 |e|)`` for normal numbers and the subnormal spacing
    ``eps · tiny`` below ``tiny`` (``torch.finfo(dtype)``).
    """
    import torch

    info = torch.finfo(dtype)
    e = expected.to(torch.float64).abs()
    _, exponent = torch.frexp(e)  # e = m·2**exponent with m in [0.5, 1)
    ulp = torch.ldexp(torch.full_like(e, info.eps), (exponent - 1).to(torch.float64))
    return torch.where(e < info.tiny, torch.full_like(e, info.eps * info.tiny), ulp)


def ulp_error(actual: Any, expected: Any, dtype: Any) -> Any:
    """``|actual - expected|`` in ULPs of ``dtype`` at ``expected`` (float64 tensor)."""
    import torch

    diff = (actual.to(torch.float64) - expected.to(torch.float64)).abs()
    return diff / spacing(expected, dtype)


@dataclass
class Comparison:
    """The outcome of comparing one result with its reference.

    Attributes:
        ok: no entry exceeds its allowed error and none is non-finite where a finite value
            was expected.
        max_abs / max_rel / max_ulp: the greatest absolute error, and the greatest relative
            and ULP errors over entries whose exact value exceeds ``atol`` in magnitude (below
            it the absolute error is the measure that means something).
        index: the worst entry (greatest error / allowed) in the result layout.
        expected / actual / allowed: at that entry.
        bad_rows: the rows (points) with at least one failing entry.
        checked: entries compared; entries whose exact value overflows the dtype are skipped.
        nonfinite: whether the worst entry is a NaN/inf where a finite value was expected.
    """

    ok: bool
    max_abs: float
    max_rel: float
    max_ulp: float
    index: list[int]
    expected: float
    actual: float
    allowed: float
    bad_rows: list[int]
    checked: int
    tolerance: Tolerance
    nonfinite: bool = False


def magnitude(computes: str, problem: Any, jac: Any, hess: Any = None) -> Any:
    """The result computed with absolute values of every factor: the ``scale`` of the bound."""
    from ._reference import expected

    p_abs = dataclasses.replace(
        problem, tangents=problem.tangents.abs(), cotangents=problem.cotangents.abs()
    )
    return expected(computes, p_abs, jac.abs(), None if hess is None else hess.abs())


def _f(x: Any) -> float:
    return float(x)


def compare(
    actual: Any,
    expected: Any,
    *,
    dtype: Any,
    tolerance: Tolerance,
    scale: Any = None,
    cond: Any = None,
) -> Comparison:
    """Compare ``actual`` (a path's result in ``dtype``) with the float64 ``expected``.

    Args:
        actual: the path's result, same shape as ``expected``; moved to its device.
        expected: the exact result (float64), finite.
        dtype: the path's dtype (for ULPs and overflow).
        tolerance: rtol and atol.
        scale: ``|·|`` magnitude of the terms (defaults to ``|expected|``).
        cond: conditioning slack per entry (defaults to 0).

    Returns:
        A `Comparison`; ``ok`` is False when an entry exceeds ``atol + rtol·scale + cond`` or
        is NaN/inf while the exact value is finite and representable in ``dtype``.
    """
    import torch

    e = expected.to(torch.float64)
    a = actual.detach().to(device=e.device, dtype=torch.float64)
    if a.shape != e.shape:
        raise ValueError(f"result has shape {tuple(a.shape)}, expected {tuple(e.shape)}")
    s = e.abs() if scale is None else scale.to(device=e.device, dtype=torch.float64)
    allowed = tolerance.atol + tolerance.rtol * s
    if cond is not None:
        allowed = allowed + cond.to(device=e.device, dtype=torch.float64)
    # An exact value the dtype cannot represent is not a defect of the path: skip it.
    in_range = e.abs() <= torch.finfo(dtype).max
    diff = (a - e).abs()
    finite = torch.isfinite(a)
    nonfinite = in_range & ~finite
    diff = torch.where(finite, diff, torch.full_like(diff, math.inf))
    diff = torch.where(in_range, diff, torch.zeros_like(diff))
    bad = (diff > allowed) | nonfinite
    ratio = torch.where(allowed > 0, diff / allowed, torch.where(diff > 0, math.inf, 0.0))
    ratio = torch.where(nonfinite, torch.full_like(ratio, math.inf), ratio)

    if e.numel() == 0:
        return Comparison(True, 0.0, 0.0, 0.0, [], 0.0, 0.0, 0.0, [], 0, tolerance)
    flat_worst = int(torch.argmax(torch.nan_to_num(ratio, nan=math.inf, posinf=1e308)))
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat_worst), e.shape)]
    finite_diff = torch.where(torch.isfinite(diff), diff, torch.zeros_like(diff))
    max_abs = _f(diff.max())
    # Relative and ULP errors only mean something where the exact value exceeds atol.
    nz = (e.abs() > max(tolerance.atol, torch.finfo(dtype).tiny)) & in_range
    rel = torch.where(nz, diff / torch.where(nz, e.abs(), torch.ones_like(e)), torch.zeros_like(e))
    ulps = torch.where(nz, finite_diff / spacing(e, dtype), torch.zeros_like(e))
    ulps = torch.where(torch.isfinite(diff), ulps, torch.full_like(ulps, math.inf))
    rows = bad.reshape(bad.shape[0], -1).any(dim=1) if bad.dim() else bad.reshape(1)
    return Comparison(
        ok=not bool(bad.any()),
        max_abs=max_abs,
        max_rel=_f(rel.max()),
        max_ulp=_f(ulps.max()),
        index=index,
        expected=_f(e[tuple(index)]),
        actual=_f(a[tuple(index)]),
        allowed=_f(allowed[tuple(index)]),
        bad_rows=[int(i) for i in rows.nonzero().flatten()],
        checked=int(in_range.sum()),
        tolerance=tolerance,
        nonfinite=bool(nonfinite[tuple(index)]),
    )


__all__ = ["Comparison", "compare", "magnitude", "spacing", "ulp_error"]
