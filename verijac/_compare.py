"""Comparison of a path's result with the exact reference: errors, ULPs and the allowed bound.

Every entry is allowed ``atol·weight + rtol·scale + cond``:

* ``weight`` is the sum of the absolute weights with which the entry combines derivative
  entries (``Σ|c_k|`` for a VJP, ``Σ|t_j|`` for a JVP, 1 for a Jacobian or Hessian entry):
  ``atol`` bounds the error of one derivative entry, and a weighted sum of entries carries
  the weighted sum of their errors;

* ``scale`` is the result computed with absolute values everywhere (``|J|·|t|`` for a JVP),
  the size of the terms the path adds up, so that a sum that cancels is not held to a
  relative bound its own terms cannot meet;
* ``cond`` is how far the exact result moves when the inputs move by `COND_ULPS` units of
  roundoff of the path's dtype: the part of the error the conditioning of the derivative
  forces on any implementation working in that dtype.

Everything that depends on the reference alone (the bound without ``cond``, the relative and
ULP denominators) is a `Bound`, built once per batch and result kind and reused by every path
that computes that kind; ``cond`` only widens the bound, so the runner computes it only for a
result that exceeds the bound without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import InternalError, ShapeError
from ._kinds import BY_NAME
from ._tolerances import Tolerance

if TYPE_CHECKING:
    import torch

    from .paths._base import Problem


def spacing(expected: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The ULP of ``dtype`` at each entry of ``expected``, as float64.

    ``spacing(e) = eps · 2**floor(log2 |e|)`` for normal numbers and the subnormal spacing
    ``eps · tiny`` below ``tiny`` (``torch.finfo(dtype)``).
    """
    import torch

    info = torch.finfo(dtype)
    e = expected.to(torch.float64).abs()
    return torch.where(e < info.tiny, info.eps * info.tiny, info.eps * _power_of_two(e))


def _power_of_two(e: torch.Tensor) -> torch.Tensor:
    """``2**floor(log2 e)`` for float64 ``e >= 2**-1022`` (normal numbers): ``e`` with its
    mantissa bits cleared, one bitwise operation on the IEEE 754 representation. ``inf``
    stays ``inf``; 0 and subnormals give 0 (callers mask them)."""
    import torch

    bits = e.to(torch.float64).contiguous().view(torch.int64)
    return torch.bitwise_and(bits, _EXPONENT_BITS).view(torch.float64)


#: The exponent field of an IEEE 754 double.
_EXPONENT_BITS = 0x7FF0000000000000


def ulp_error(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
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


def unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    """The index of entry ``flat`` of a row-major tensor of ``shape`` (integer arithmetic)."""
    out = []
    for size in reversed(shape):
        flat, rem = divmod(flat, size) if size else (flat, 0)
        out.append(rem)
    return out[::-1]


@dataclass
class Bound:
    """The allowed error of every entry of one exact result, without the ``cond`` term.

    Built by `bound`; `Bound.check` compares a path's result against it. One bound serves
    every path computing the same kind of result on the same points with the same tolerance.

    Attributes:
        expected: the exact result (float64).
        allowed: ``atol + rtol·scale`` per entry.
        dtype / tolerance: the path's dtype and tolerance.
        in_range: entries whose exact value the dtype can represent, or ``None`` when all are.
        inv_rel / inv_ulp: ``1/|expected|`` and ``1/spacing(expected)`` where relative and ULP
            errors mean something (``|expected| > max(atol, tiny)``), else 0.
    """

    expected: torch.Tensor
    allowed: torch.Tensor
    dtype: torch.dtype
    tolerance: Tolerance
    in_range: torch.Tensor | None
    inv_rel: torch.Tensor
    inv_ulp: torch.Tensor

    def check(
        self,
        actual: torch.Tensor,
        *,
        cond: torch.Tensor | None = None,
        locate: bool = True,
        describe: bool = True,
    ) -> Comparison:
        """Compare ``actual`` (a path's result in ``dtype``) with the bound widened by ``cond``.

        A passing result costs a handful of passes over the entries: ``|a - e|``, its excess
        over the bound (whose maximum decides), and the three maxima the report shows. Only
        an inconclusive or failing result takes the entry-by-entry route of `_failure`.

        Args:
            locate: whether a passing comparison finds its worst entry (``index``,
                ``expected``, ``actual``, ``allowed``); the runner, which keeps only the
                maxima of passing comparisons, skips it (``index`` is then ``[]`` and the
                three values NaN). A failing comparison always locates its worst entry,
                unless ``describe`` is false.
            describe: whether a failing comparison is described (its maxima, worst entry and
                failing rows); ``False`` returns ``ok=False`` with NaN figures, for a caller
                that only decides whether to compare again with a wider bound.

        Raises:
            ShapeError: ``actual`` has another shape than the expected result (a `ValueError`).
        """
        import torch

        e = self.expected
        a = actual.detach()
        if a.dtype != torch.float64 or a.device != e.device:
            a = a.to(device=e.device, dtype=torch.float64)
        if a.shape != e.shape:
            raise ShapeError(
                f"result has shape {tuple(a.shape)}, expected {tuple(e.shape)} (the shape of "
                "the exact result)"
            )
        if e.numel() == 0:
            return Comparison(True, 0.0, 0.0, 0.0, [], 0.0, 0.0, 0.0, [], 0, self.tolerance)
        allowed = self.allowed
        if cond is not None:
            allowed = allowed + cond.to(device=e.device, dtype=torch.float64)
        diff = torch.sub(a, e).abs_()
        if self.in_range is not None:
            # An exact value the dtype cannot represent is not a defect of the path: skip it.
            diff.masked_fill_(~self.in_range, 0.0)
        # The largest excess over the bound decides. NaN propagates through the maximum, and
        # inf - inf (an unbounded entry) is NaN: both take the careful route below.
        scratch = torch.sub(diff, allowed)
        if not float(scratch.max()) <= 0.0 and not bool((diff <= allowed).all()):
            if not describe:
                nan = math.nan
                return Comparison(False, nan, nan, nan, [], nan, nan, nan, [], 0, self.tolerance)
            return self._failure(a, diff, allowed)
        maxima = [diff.max()]
        for inverse in (self.inv_rel, self.inv_ulp):
            maxima.append(torch.mul(diff, inverse, out=scratch).max())
        stats = torch.stack(maxima).tolist()
        if not locate:
            return Comparison(
                ok=True,
                max_abs=stats[0],
                max_rel=stats[1],
                max_ulp=stats[2],
                index=[],
                expected=math.nan,
                actual=math.nan,
                allowed=math.nan,
                bad_rows=[],
                checked=e.numel() if self.in_range is None else int(self.in_range.sum()),
                tolerance=self.tolerance,
            )
        worst = int(torch.argmax(diff))
        return self._outcome(True, stats, worst, a, allowed, [], nonfinite=False)

    def _outcome(
        self,
        ok: bool,
        stats: list[float],
        worst: int,
        a: torch.Tensor,
        allowed: torch.Tensor,
        bad_rows: list[int],
        *,
        nonfinite: bool,
    ) -> Comparison:
        e = self.expected
        index = unravel(worst, tuple(e.shape))
        at = tuple(index)
        checked = e.numel() if self.in_range is None else int(self.in_range.sum())
        return Comparison(
            ok=ok,
            max_abs=stats[0],
            max_rel=stats[1],
            max_ulp=stats[2],
            index=index,
            expected=float(e[at]),
            actual=float(a[at]),
            allowed=float(allowed[at]),
            bad_rows=bad_rows,
            checked=checked,
            tolerance=self.tolerance,
            nonfinite=nonfinite,
        )

    def _failure(self, a: torch.Tensor, diff: torch.Tensor, allowed: torch.Tensor) -> Comparison:
        import torch

        finite = torch.isfinite(a)
        nonfinite = ~finite if self.in_range is None else self.in_range & ~finite
        diff = diff.masked_fill(nonfinite, math.inf)
        bad = (diff > allowed) | nonfinite
        ratio = torch.where(allowed > 0, diff / allowed, torch.where(diff > 0, math.inf, 0.0))
        ratio = ratio.masked_fill(nonfinite, math.inf)
        worst = int(torch.argmax(torch.nan_to_num(ratio, nan=math.inf, posinf=1e308)))
        finite_diff = diff.masked_fill(~torch.isfinite(diff), 0.0)
        ulps = (finite_diff * self.inv_ulp).masked_fill(~torch.isfinite(diff), math.inf)
        stats = [float(diff.max()), float((diff * self.inv_rel).nan_to_num(nan=math.inf).max())]
        stats.append(float(ulps.max()))
        rows = bad.reshape(bad.shape[0], -1).any(dim=1) if bad.dim() else bad.reshape(1)
        bad_rows = [int(i) for i in rows.nonzero().flatten()]
        flag = bool(nonfinite.reshape(-1)[worst])
        return self._outcome(False, stats, worst, a, allowed, bad_rows, nonfinite=flag)


def weights(computes: str, problem: Problem, device: torch.device) -> torch.Tensor | None:
    """The sum of the absolute weights with which each entry of the result combines
    derivative entries (``Σ_k |c_k|`` for a VJP, ``Σ_j |t_j|`` for a JVP, 1 for a Jacobian):
    ``atol`` is an error per derivative entry, so a weighted sum is allowed ``atol`` times that.

    Every entry of one point has the same weight, so the result is ``(N, 1)`` on ``device``,
    which broadcasts to the result's shape (``None`` for kinds whose weight is 1). Each kind's
    weight is its `verijac._kinds.Kind.weight`.
    """
    import torch

    kind = BY_NAME.get(computes)
    if kind is not None and kind.plain:
        return None
    dev = device
    t = problem.tangents.to(device=dev, dtype=torch.float64).abs().sum(dim=1, keepdim=True)
    c = problem.cotangents.to(device=dev, dtype=torch.float64).abs().sum(dim=1, keepdim=True)
    if kind is None or kind.weight is None:
        raise InternalError(f"no weights for computes={computes!r}, which paths validate")
    return kind.weight(t, c)


def bound(
    expected: torch.Tensor,
    *,
    dtype: torch.dtype,
    tolerance: Tolerance,
    scale: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> Bound:
    """The `Bound` for the exact result ``expected`` (float64) of a path working in ``dtype``.

    Args:
        expected: the exact result, finite.
        dtype: the path's dtype (for ULPs and overflow).
        tolerance: rtol and atol.
        scale: ``|·|`` magnitude of the terms (defaults to ``|expected|``).
        weight: per entry, the multiplier of ``atol`` (`weights`; defaults to 1); any shape
            that broadcasts to ``expected``'s.
    """
    import torch

    e = expected.to(torch.float64)
    mag = e.abs()
    s = mag if scale is None else scale.to(device=e.device, dtype=torch.float64)
    allowed = torch.mul(s, tolerance.rtol)
    if weight is None:
        allowed.add_(tolerance.atol)
    else:
        allowed.add_(weight.to(device=e.device, dtype=torch.float64), alpha=tolerance.atol)
    info = torch.finfo(dtype)
    # An exact value the dtype cannot represent (or none at all: NaN) is not the path's to
    # match: such entries are skipped, allowed any error.
    in_range = None
    if mag.numel() and not float(mag.max()) <= info.max:
        in_range = mag <= info.max
        allowed.masked_fill_(~in_range, math.inf)
    # Relative and ULP errors only mean something where the exact value exceeds atol; the
    # other entries get the inverse of inf, 0.
    nz = mag > max(tolerance.atol, info.tiny)
    if in_range is not None:
        nz &= in_range
    inv_rel = torch.where(nz, mag, math.inf).reciprocal_()
    # Where nz, |e| >= tiny, so its ULP is eps·2**floor(log2 |e|) (a power of two: exact).
    inv_ulp = torch.where(nz, _power_of_two(mag), math.inf).reciprocal_().mul_(1 / info.eps)
    # Below float64's 2**-971 (reachable with atol = 0) that overflows; a finite cap keeps
    # 0 · inv_ulp at 0 instead of NaN.
    inv_ulp.clamp_(max=torch.finfo(torch.float64).max)
    return Bound(e, allowed, dtype, tolerance, in_range, inv_rel, inv_ulp)


def compare(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    dtype: torch.dtype,
    tolerance: Tolerance,
    scale: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
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

    Raises:
        ShapeError: ``actual`` has another shape than ``expected`` (a `ValueError`).
    """
    return bound(expected, dtype=dtype, tolerance=tolerance, scale=scale).check(actual, cond=cond)


__all__ = [
    "Bound",
    "Comparison",
    "bound",
    "compare",
    "spacing",
    "ulp_error",
    "unravel",
    "weights",
]
