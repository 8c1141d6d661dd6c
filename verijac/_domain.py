"""Domains of case inputs: intervals with open or closed ends and excluded points."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from ._errors import DomainError

#: Where an unbounded side of a domain is sampled up to (magnitude). Generated points stay
#: within ``±SAMPLE_LIMIT`` so that values remain finite in every dtype verijac checks.
SAMPLE_LIMIT = 100.0

_SIGNS: dict[str, tuple[float, float, bool, bool]] = {
    "real": (-math.inf, math.inf, True, True),
    "positive": (0.0, math.inf, True, True),
    "negative": (-math.inf, 0.0, True, True),
    "nonnegative": (0.0, math.inf, False, True),
    "nonpositive": (-math.inf, 0.0, True, False),
}


def _as_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DomainError(
            f"expected a real number for {what}, got {value!r}; give an int, float or a "
            "real SymPy number"
        ) from None
    if math.isnan(out):
        raise DomainError(f"{what} is NaN; give a real number or ±inf")
    return out


@dataclass(frozen=True)
class Interval:
    """The set of values one input element may take.

    Args:
        lo: lower bound (may be ``-inf``).
        hi: upper bound (may be ``inf``).
        left_open: whether ``lo`` itself is excluded.
        right_open: whether ``hi`` itself is excluded.
        exclude: isolated points that must be avoided (singularities, kinks).
        margin: how far generated points keep from excluded points and open ends, relative to
            ``max(1, |point|)``.

    Raises:
        DomainError: the interval is empty or inverted, or a bound is not a real number.
    """

    lo: float
    hi: float
    left_open: bool = False
    right_open: bool = False
    exclude: tuple[float, ...] = field(default=())
    margin: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", _as_float(self.lo, "the lower bound"))
        object.__setattr__(self, "hi", _as_float(self.hi, "the upper bound"))
        excl = tuple(sorted(_as_float(p, "an excluded point") for p in self.exclude))
        object.__setattr__(self, "exclude", excl)
        if math.isinf(self.lo):
            object.__setattr__(self, "left_open", True)
        if math.isinf(self.hi):
            object.__setattr__(self, "right_open", True)
        if self.lo > self.hi:
            raise DomainError(
                f"inverted interval: lo={self.lo!r} > hi={self.hi!r}; swap the bounds"
            )
        if self.lo == self.hi and (self.left_open or self.right_open):
            raise DomainError(
                f"empty interval: lo == hi == {self.lo!r} with an open end; close both ends "
                "for a single point or widen the interval"
            )
        if self.lo == self.hi and self.lo in self.exclude:
            raise DomainError(f"empty domain: its only point {self.lo!r} is excluded")
        if not self.margin >= 0:
            raise DomainError(f"margin must be >= 0, got margin={self.margin!r}")

    @classmethod
    def open(cls, lo: float, hi: float, **kwargs: Any) -> Interval:
        """The open interval (lo, hi)."""
        return cls(lo, hi, left_open=True, right_open=True, **kwargs)

    @classmethod
    def from_sign(cls, sign: str) -> Interval:
        """One of ``real``, ``positive``, ``negative``, ``nonnegative``, ``nonpositive``."""
        try:
            lo, hi, lopen, ropen = _SIGNS[sign]
        except KeyError:
            raise DomainError(
                f"unknown sign domain {sign!r}; expected one of {sorted(_SIGNS)}"
            ) from None
        return cls(lo, hi, left_open=lopen, right_open=ropen)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval and is not an excluded point."""
        if value < self.lo or value > self.hi:
            return False
        if (self.left_open and value == self.lo) or (self.right_open and value == self.hi):
            return False
        return value not in self.exclude

    def sample_bounds(self) -> tuple[float, float]:
        """Finite bounds that sampling uses: open and infinite ends pulled inside."""
        lo = max(self.lo, -SAMPLE_LIMIT)
        hi = min(self.hi, SAMPLE_LIMIT)
        if lo > hi:  # e.g. [200, inf): sample upward from lo instead
            lo, hi = (
                (self.lo, self.lo + SAMPLE_LIMIT)
                if self.lo > 0
                else (self.hi - SAMPLE_LIMIT, self.hi)
            )
        if self.left_open or lo != self.lo:
            lo = lo + self.margin * max(1.0, abs(lo)) if lo != hi else lo
        if self.right_open or hi != self.hi:
            hi = hi - self.margin * max(1.0, abs(hi)) if lo != hi else hi
        return lo, hi

    def keeps_clear(self, value: float) -> bool:
        """Whether ``value`` is inside the sampling bounds and clear of every excluded point."""
        lo, hi = self.sample_bounds()
        if not lo <= value <= hi:
            return False
        return all(abs(value - p) >= self.margin * max(1.0, abs(p)) for p in self.exclude)

    def __str__(self) -> str:
        left = "(" if self.left_open else "["
        right = ")" if self.right_open else "]"
        text = f"{left}{self.lo:g}, {self.hi:g}{right}"
        if self.exclude:
            text += " \\ {" + ", ".join(f"{p:g}" for p in self.exclude) + "}"
        return text


DomainLike = Union[Interval, str, tuple[Any, Any], list[Any]]  # noqa: UP007 (runtime alias on 3.10)


def as_interval(spec: DomainLike, *, name: str) -> Interval:
    """Normalise a user's domain spec for input ``name`` into an `Interval`.

    Accepts an `Interval`, a sign name (``"positive"`` …) or a ``(lo, hi)`` pair (closed).

    Raises:
        DomainError: the spec has another form, or describes an empty set.
    """
    if isinstance(spec, Interval):
        return spec
    if isinstance(spec, str):
        return Interval.from_sign(spec)
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        try:
            return Interval(spec[0], spec[1])
        except DomainError as exc:
            raise DomainError(f"domain of input {name!r}: {exc}") from None
    raise DomainError(
        f"domain of input {name!r}: expected (lo, hi), a verijac.Interval or one of "
        f"{sorted(_SIGNS)}, got {spec!r}"
    )


def domain_points(interval: Interval, count: int = 5) -> list[float]:
    """A few deterministic points spread across the sampling bounds, clear of exclusions."""
    lo, hi = interval.sample_bounds()
    if count <= 1 or lo == hi:
        candidates: Iterable[float] = [0.5 * (lo + hi)]
    else:
        candidates = [lo + (hi - lo) * k / (count - 1) for k in range(count)]
    out = []
    for c in candidates:
        if not interval.keeps_clear(c):
            # Step off an excluded point by twice the margin, staying inside the bounds.
            for p in interval.exclude:
                step = 2 * interval.margin * max(1.0, abs(p))
                for alt in (c + step, c - step):
                    if interval.keeps_clear(alt):
                        c = alt
                        break
        if interval.keeps_clear(c):
            out.append(c)
    return out
