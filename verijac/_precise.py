"""The exact reference in higher precision: the symbolic derivatives evaluated with mpmath.

By default the reference is the generated torch code run in float64, whose own rounding
(a few ULPs of float64, more where the derivative is ill-conditioned) is far below any float32
tolerance but comparable to float64's. Asked for ``digits`` decimal digits, verijac instead
evaluates the SymPy Jacobian and Hessian with mpmath at that precision, point by point, and
rounds each entry once to float64: a correctly rounded reference (error at most half a float64
ULP), at the price of a Python-level evaluation per point.

The expressions are compiled with SymPy's ``lambdify`` (mpmath printer, dummy argument names,
common subexpressions shared): code printed from the case's SymPy expressions, never from text
a user wrote.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import CaseError, UsageError

if TYPE_CHECKING:
    from ._case import Case

#: The precision range ``reference_digits`` accepts: above float64's 15.95 digits, and small
#: enough that one evaluation stays fast.
MIN_DIGITS = 17
MAX_DIGITS = 1000

_COMPILED: weakref.WeakKeyDictionary[Any, dict[str, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def check_digits(digits: Any) -> int | None:
    """``digits`` validated: ``None`` (float64 reference) or an int in [17, 1000].

    Raises:
        UsageError: anything else.
    """
    if digits is None:
        return None
    if (
        isinstance(digits, bool)
        or not isinstance(digits, int)
        or not (MIN_DIGITS <= digits <= MAX_DIGITS)
    ):
        raise UsageError(
            f"reference_digits must be None (float64 reference) or an int from {MIN_DIGITS} "
            f"to {MAX_DIGITS} (decimal digits for the mpmath reference), got {digits!r}"
        )
    return digits


def describe(digits: int | None) -> str:
    """How the reference is computed, for reports."""
    if digits is None:
        return "float64 (generated torch code)"
    return f"mpmath at {digits} digits, rounded to float64"


def _namespace() -> dict[str, Any]:
    """Functions the derivatives may contain that mpmath names differently or lacks."""
    import mpmath

    def heaviside(x: Any, h0: Any = 0.5) -> Any:
        return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(h0)

    def sinc(x: Any) -> Any:  # SymPy's sinc is the unnormalised sin(x)/x
        return mpmath.mpf(1) if x == 0 else mpmath.sin(x) / x

    return {"Heaviside": heaviside, "sinc": sinc, "DiracDelta": lambda *a: mpmath.mpf(0)}


def _compile(case: Case, which: str) -> Callable[..., Any]:
    """The flat Jacobian (``[out][in]``) or Hessian (``[out][in][in]``) as one mpmath
    function of the flattened inputs, compiled once per case."""
    import mpmath
    import sympy

    with _LOCK:
        per_case = _COMPILED.setdefault(case, {})
        if which in per_case:
            return per_case[which]
        d = case.derivatives
        exprs = d.jacobian_sympy() if which == "jacobian" else d.hessian_sympy()
        flat = [sympy.sympify(e) for e in _leaves(exprs)]
        namespace = _namespace()
        for cls in {type(f) for e in flat for f in e.atoms(sympy.Function)}:
            name = cls.__name__
            if name not in namespace and not hasattr(mpmath, name):
                # A function the mpmath printer does not know is printed by its class name:
                # evaluate it through SymPy's own numeric evaluation.
                namespace[name] = _through_evalf(case, cls)
        try:
            fn = sympy.lambdify(
                list(case.in_symbols),
                flat,
                modules=[namespace, "mpmath"],
                dummify=True,
                cse=True,
            )
        except Exception as exc:  # e.g. an unevaluated Derivative of an undefined function
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CaseError(
                f"case {case.name!r}: the mpmath reference cannot evaluate its {which}: {first}; "
                "use the float64 reference (reference_digits=None)"
            ) from None
        per_case[which] = fn
        return fn


def _through_evalf(case: Case, cls: type) -> Callable[..., Any]:
    """``cls`` evaluated by SymPy at the working precision, or a `CaseError` saying that
    SymPy has no numeric evaluation for it."""
    import mpmath
    import sympy

    def evaluate(*args: Any) -> Any:
        dps = mpmath.mp.dps
        value = cls(*(sympy.Float(a, dps) for a in args)).evalf(dps)
        if not isinstance(value, sympy.Float):
            raise CaseError(
                f"case {case.name!r}: the mpmath reference cannot evaluate {cls.__name__}: SymPy "
                f"gives no number for {value} (define _eval_evalf on the function class, or use "
                "the float64 reference: reference_digits=None)"
            )
        return mpmath.mpf(value._mpf_)

    return evaluate


def _leaves(nested: Any) -> Any:
    if isinstance(nested, list | tuple):
        for item in nested:
            yield from _leaves(item)
    else:
        yield nested


def _evaluate(
    case: Case, which: str, inputs: Sequence[Any], digits: int, shape: tuple[int, ...]
) -> Any:
    import mpmath
    import torch

    fn = _compile(case, which)
    dev = inputs[0].device
    n_points = int(inputs[0].shape[0])
    rows = torch.cat(
        [x.detach().to("cpu", torch.float64).reshape(n_points, -1) for x in inputs], dim=1
    ).tolist()
    out = []
    with mpmath.workdps(digits):
        for row in rows:
            values = fn(*(mpmath.mpf(v) for v in row))
            out.append([_to_float(v) for v in values])
    return torch.tensor(out, dtype=torch.float64).reshape(n_points, *shape).to(dev)


def _to_float(v: Any) -> float:
    """An mpmath value rounded once to float64; NaN for a complex or undefined value."""
    import mpmath

    if isinstance(v, mpmath.mpc):
        return float(v.real) if v.imag == 0 else math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def precise_jacobian(case: Case, inputs: Sequence[Any], digits: int) -> Any:
    """The Jacobian at ``inputs`` evaluated at ``digits`` digits, ``(N, m, n)`` float64."""
    return _evaluate(case, "jacobian", inputs, digits, (case.n_out, case.n_in))


def precise_hessian(case: Case, inputs: Sequence[Any], digits: int) -> Any:
    """The Hessian at ``inputs`` evaluated at ``digits`` digits, ``(N, m, n, n)`` float64."""
    return _evaluate(case, "hessian", inputs, digits, (case.n_out, case.n_in, case.n_in))
