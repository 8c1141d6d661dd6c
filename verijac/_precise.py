"""The exact reference in higher precision: the symbolic derivatives evaluated with mpmath.

By default the reference is the generated torch code run in float64, whose own rounding
(a few ULPs of float64, more where the derivative is ill-conditioned) is far below any float32
tolerance but comparable to float64's. Asked for ``digits`` decimal digits, verijac instead
evaluates the SymPy Jacobian and Hessian with mpmath, point by point, and rounds each entry
once to float64, at the price of a Python-level evaluation per point.

mpmath gives no error bound, and an expression that cancels loses digits. So every point is
evaluated at ``digits`` and again at twice as many; where the two differ once rounded to
float64, the precision doubles until they agree (up to `MAX_DIGITS`, beyond which the case is
reported as one the reference cannot settle). An entry that two precisions round to the same
float64 is, in practice, the correctly rounded value.

The expressions are compiled with SymPy's ``lambdify`` (mpmath printer, plain argument names,
repeated subexpressions computed once): code printed from the case's SymPy expressions, never from text
a user wrote. Function classes defined outside SymPy (a user's, registered with
`verijac.register_function`) are renamed before printing, so a name that mpmath also uses
(``sinc``, ``psi``) never picks up mpmath's function; they are evaluated through SymPy's
``evalf``. mpmath's working precision is one setting for the whole process, so evaluations
hold a lock.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import CaseError, UsageError, VerijacError
from ._trees import rewrite, tree_cse

if TYPE_CHECKING:
    import torch

    from ._case import Case

#: The precision range ``reference_digits`` accepts: above float64's 15.95 digits, and small
#: enough that one evaluation stays fast.
MIN_DIGITS = 17
MAX_DIGITS = 1000

_COMPILED: weakref.WeakKeyDictionary[Any, dict[str, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()  # compiling, and mpmath's process-wide working precision


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
    function of the flattened inputs, compiled once per case (call with `_LOCK` held)."""
    import sympy

    per_case = _COMPILED.setdefault(case, {})
    if which in per_case:
        return per_case[which]
    d = case.derivatives
    exprs = d.jacobian_sympy() if which == "jacobian" else d.hessian_sympy()
    flat = [sympy.sympify(e) for e in _leaves(exprs)]
    namespace = _namespace()
    renamed: dict[Any, Any] = {}
    for i, cls in enumerate(sorted(_function_classes(flat), key=lambda c: str(c.__name__))):
        if str(getattr(cls, "__module__", "")).startswith("sympy."):
            continue  # SymPy's own: the mpmath printer knows it (or prints it by class name)
        # Another class (a user's): a fresh name nothing else uses, evaluated through SymPy.
        alias = f"_verijac_user_function_{i}"
        namespace[alias] = _through_evalf(case, cls)
        renamed[cls] = sympy.Function(alias)
    if renamed:
        flat = [
            e.replace(
                lambda node: type(node) in renamed, lambda node: renamed[type(node)](*node.args)
            )
            for e in flat
        ]
    # The inputs renamed to plain identifiers here, by one walk that visits each shared
    # subtree once: lambdify's own renaming (``dummify``, or any name such as ``x[0]`` that
    # is not an identifier) substitutes into every expression as a tree, every shared
    # subexpression again.
    args = [sympy.Symbol(f"_verijac_x{i}") for i in range(len(case.in_symbols))]
    plain = dict(zip(case.in_symbols, args, strict=True))
    flat = rewrite(flat, lambda node, new_args: None if new_args else plain.get(node), "sympy")
    try:
        fn = sympy.lambdify(
            args,
            flat,
            modules=[namespace, "mpmath"],
            dummify=False,
            # SymPy's own CSE searches every pair of sums and products for shared terms and
            # rebuilds with evaluation (11 s for a 24-input attention Hessian); lambdify's
            # search for implemented functions walks the trees. Neither changes the values.
            cse=_shared_subexpressions,
            use_imps=False,
        )
    except Exception as exc:  # e.g. an unevaluated Derivative of an undefined function
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(
            f"case {case.name!r}: the mpmath reference cannot evaluate its {which}: {first}; "
            "use the float64 reference (reference_digits=None)"
        ) from None
    per_case[which] = fn
    return fn


def _function_classes(exprs: Sequence[Any]) -> set[type]:
    """The classes of the function nodes in ``exprs``, each shared subexpression walked once
    (``Basic.atoms`` walks the tree: exponential in the depth of a derivative's sharing)."""
    import sympy

    seen: set[int] = set()
    found: set[type] = set()
    stack = list(exprs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, sympy.Function):
            found.add(type(node))
        stack.extend(node.args)
    return found


def _shared_subexpressions(exprs: Any) -> tuple[Any, Any]:
    """``sympy.cse``'s result form from `tree_cse` (each repeated subtree named once)."""
    import itertools

    import sympy

    names = (sympy.Symbol(f"_verijac_c{i}") for i in itertools.count())
    return tree_cse(list(exprs), lambda: next(names))


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
    case: Case, which: str, inputs: Sequence[torch.Tensor], digits: int, shape: tuple[int, ...]
) -> torch.Tensor:
    """The derivative ``which`` at each point of ``inputs``, correctly rounded to float64.

    Raises:
        CaseError: at a point where it does not settle below `MAX_DIGITS`.
    """
    values, _ = settle(case, which, inputs, digits, shape, strict=True)
    return values


def settle(
    case: Case,
    which: str,
    inputs: Sequence[torch.Tensor],
    digits: int,
    shape: Sequence[int],
    *,
    strict: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, settled)``: `_evaluate` point by point, where ``settled`` (``(N,)`` bool)
    marks the points whose value settled; the others are NaN (``strict``: a `CaseError`)."""
    import mpmath
    import torch

    dev = inputs[0].device
    n_points = int(inputs[0].shape[0])
    rows = torch.cat(
        [x.detach().to("cpu", torch.float64).reshape(n_points, -1) for x in inputs], dim=1
    ).tolist()
    count = math.prod(shape)
    out: list[list[float]] = []
    settled: list[bool] = []
    with _LOCK:
        fn = _compile(case, which)
        for row in rows:
            args = [mpmath.mpf(v) for v in row]  # exact: every float64 is an mpf
            found, prec = _rounded(fn, args, digits, count), digits
            while True:
                finer = _rounded(fn, args, 2 * prec, count)
                if _same(found, finer):
                    break
                found, prec = finer, 2 * prec
                if prec > MAX_DIGITS:
                    break
            if prec > MAX_DIGITS and strict:
                raise CaseError(
                    f"case {case.name!r}: the mpmath reference of its {which} at {row} "
                    f"changes between {prec // 2} and {prec} digits (severe cancellation); "
                    "use the float64 reference (reference_digits=None)"
                )
            settled.append(prec <= MAX_DIGITS)
            out.append(found if settled[-1] else [math.nan] * count)
    values = torch.tensor(out, dtype=torch.float64).reshape(n_points, *shape).to(dev)
    return values, torch.tensor(settled, dtype=torch.bool, device=dev)


def _rounded(fn: Callable[..., Any], args: list[Any], digits: int, count: int) -> list[float]:
    """``fn(*args)`` at ``digits`` digits, each entry rounded once to float64.

    At a removable singularity (0/0 in the expression, e.g. the derivative of sin(x)/x at 0)
    an entry is the limit: the mean of the values at the point moved by ±10^-(digits/4)
    relative, which the doubling of digits then settles like any other value.
    """
    import mpmath

    with mpmath.workdps(digits):
        try:
            values = [_to_float(v) for v in fn(*args)]
        except VerijacError:  # the case cannot be evaluated at all: say so
            raise
        except (ZeroDivisionError, ValueError, OverflowError):
            values = [math.nan] * count
        if all(math.isfinite(v) for v in values):
            return values
        # A quarter of the digits: the expression may cancel like 1/h**3 there, and the
        # doubling of digits shrinks h with it, so the mean converges like h**2.
        h = mpmath.mpf(10) ** (-(digits // 4))
        # Each coordinate moves relative to itself; a zero one relative to the row's smallest
        # nonzero magnitude (at most 1): a step of h absolute would move a coordinate of
        # 1e-308 by orders of magnitude, to another point, and the limit would never settle.
        zero = min([abs(a) for a in args if a] + [mpmath.mpf(1)])
        steps = [h * (abs(a) if a else zero) for a in args]
        try:
            up = [_to_float(v) for v in fn(*[a + s for a, s in zip(args, steps, strict=True)])]
            down = [_to_float(v) for v in fn(*[a - s for a, s in zip(args, steps, strict=True)])]
        except VerijacError:
            raise
        except (ZeroDivisionError, ValueError, OverflowError):
            return values
        # A limit only where both sides agree: at a pole they do not (1/x: ±10^15).
        return [
            v
            if math.isfinite(v)
            else (u + d) / 2
            if math.isfinite(u)
            and math.isfinite(d)
            and abs(u - d) <= max(1e-6 * max(abs(u), abs(d)), 1e3 * float(h))
            else math.nan
            for v, u, d in zip(values, up, down, strict=True)
        ]


def _same(a: list[float], b: list[float]) -> bool:
    """Equal entry by entry, NaN equal to NaN."""
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def _to_float(v: Any) -> float:
    """An mpmath value rounded once to float64; NaN for a complex or undefined value."""
    import mpmath

    if isinstance(v, mpmath.mpc):
        return float(v.real) if v.imag == 0 else math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def precise_jacobian(case: Case, inputs: Sequence[torch.Tensor], digits: int) -> torch.Tensor:
    """The Jacobian at ``inputs`` evaluated at ``digits`` digits, ``(N, m, n)`` float64."""
    return _evaluate(case, "jacobian", inputs, digits, (case.n_out, case.n_in))


def precise_hessian(case: Case, inputs: Sequence[torch.Tensor], digits: int) -> torch.Tensor:
    """The Hessian at ``inputs`` evaluated at ``digits`` digits, ``(N, m, n, n)`` float64."""
    return _evaluate(case, "hessian", inputs, digits, (case.n_out, case.n_in, case.n_in))
