"""Elementwise transcendental functions on scalars, 3-vectors and 2×3 matrices.

Each case applies one real function to every input element and is checked against the torch
function users call for it (``torch.sigmoid``, ``torch.nn.functional.softplus`` …). Domains
stay where the function is smooth and finite in float32 (``exp`` on ``[-10, 10]``, ``log``
on ``[0.01, 10]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import sympy
import torch
import torch.nn.functional as F

from verijac import Case, Interval, KnownPoint, array, scalar
from verijac._domain import DomainLike

_FAMILY = "elementwise"
_HALF = sympy.Rational(1, 2)


def _elementwise(
    name: str,
    f: Callable[[sympy.Expr], sympy.Expr],
    domain: DomainLike,
    torch_impl: Callable[..., Any],
    *,
    shape: Sequence[int] = (),
    known: Sequence[tuple[Any, Any, Any]] = (),
    description: str,
    note: str = "",
) -> Case:
    """A case applying ``f`` to every element of one input ``x`` of the given shape.

    ``known`` holds ``(x, f(x), f'(x))`` for one element value; for array inputs the point
    puts that value in every element, so the Jacobian is ``f'(x)`` on the diagonal.
    """
    shape = tuple(shape)
    x = scalar("x") if shape == () else array("x", shape)
    outputs = f(x) if shape == () else x.applyfunc(f)  # type: ignore[union-attr]
    points = []
    for at, value, slope in known:
        if shape == ():
            points.append(KnownPoint(at={"x": at}, value=value, jacobian=slope, note=note))
        else:
            full = sympy.MutableDenseNDimArray.zeros(*shape, *shape)
            n = math.prod(shape)
            flat_idx = [divmod(k, shape[-1]) if len(shape) == 2 else (k,) for k in range(n)]
            for idx in flat_idx:
                full[(*idx, *idx)] = slope
            points.append(
                KnownPoint(
                    at={"x": sympy.Array([at] * n, shape).tolist()},
                    value=sympy.Array([value] * n, shape).tolist(),
                    jacobian=full.tolist(),
                    note=note,
                )
            )
    tags = {_FAMILY, "smooth"}
    if shape == ():
        tags.add("scalar-output")
    elif len(shape) == 2:
        tags.add("matrix")
    return Case(
        name,
        inputs={"x": x},
        outputs=outputs,
        domain={"x": domain},
        known=points,
        tags=tags,
        torch_impl=torch_impl,
        description=description,
    )


def _sigmoid(e: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-e))


def _softplus(e: sympy.Expr) -> sympy.Expr:
    return sympy.log(1 + sympy.exp(e))


_VEC = (3,)
_MAT = (2, 3)
_S2 = sympy.sqrt(2)
_PI = sympy.pi

elementwise_exp = _elementwise(
    "elementwise_exp",
    sympy.exp,
    (-10, 10),
    torch.exp,
    shape=_VEC,
    known=[(0, 1, 1)],
    description="exp(x) on a 3-vector (torch.exp)",
)
elementwise_expm1 = _elementwise(
    "elementwise_expm1",
    lambda e: sympy.exp(e) - 1,
    (-10, 10),
    torch.special.expm1,
    known=[(0, 0, 1)],
    description="exp(x) - 1 (torch.special.expm1)",
)
elementwise_exp2 = _elementwise(
    "elementwise_exp2",
    lambda e: 2**e,
    (-10, 10),
    torch.exp2,
    known=[(3, 8, 8 * sympy.log(2))],
    description="2**x (torch.exp2)",
)
elementwise_log = _elementwise(
    "elementwise_log",
    sympy.log,
    (0.01, 10),
    torch.log,
    known=[(1, 0, 1), (sympy.E, 1, 1 / sympy.E)],
    description="log(x) on [0.01, 10] (torch.log)",
)
elementwise_log10 = _elementwise(
    "elementwise_log10",
    lambda e: sympy.log(e, 10),
    (0.01, 10),
    torch.log10,
    shape=_VEC,
    known=[(10, 1, 1 / (10 * sympy.log(10)))],
    description="log(x)/log(10) on a 3-vector (torch.log10)",
)
elementwise_log1p = _elementwise(
    "elementwise_log1p",
    lambda e: sympy.log(1 + e),
    (-0.9, 10),
    torch.special.log1p,
    known=[(0, 0, 1), (1, sympy.log(2), _HALF)],
    description="log(1 + x) on [-0.9, 10] (torch.special.log1p)",
)
elementwise_sin = _elementwise(
    "elementwise_sin",
    sympy.sin,
    (-10, 10),
    torch.sin,
    shape=_MAT,
    known=[(0, 0, 1)],
    description="sin(x) on a 2×3 matrix (torch.sin)",
)
elementwise_cos = _elementwise(
    "elementwise_cos",
    sympy.cos,
    (-10, 10),
    torch.cos,
    known=[(0, 1, 0), (_PI / 2, 0, -1)],
    description="cos(x) (torch.cos)",
)
elementwise_tan = _elementwise(
    "elementwise_tan",
    sympy.tan,
    Interval.open(-1.4, 1.4),
    torch.tan,
    known=[(0, 0, 1), (_PI / 4, 1, 2)],
    description="tan(x) on (-1.4, 1.4), clear of the poles at ±π/2 (torch.tan)",
)
elementwise_asin = _elementwise(
    "elementwise_asin",
    sympy.asin,
    (-0.99, 0.99),
    torch.asin,
    known=[(_HALF, _PI / 6, 2 / sympy.sqrt(3))],
    description="asin(x) on [-0.99, 0.99] (torch.asin)",
)
elementwise_acos = _elementwise(
    "elementwise_acos",
    sympy.acos,
    (-0.99, 0.99),
    torch.acos,
    known=[(0, _PI / 2, -1)],
    description="acos(x) on [-0.99, 0.99] (torch.acos)",
)
elementwise_atan = _elementwise(
    "elementwise_atan",
    sympy.atan,
    (-10, 10),
    torch.atan,
    shape=_VEC,
    known=[(1, _PI / 4, _HALF)],
    description="atan(x) on a 3-vector (torch.atan)",
)
elementwise_sinh = _elementwise(
    "elementwise_sinh",
    sympy.sinh,
    (-5, 5),
    torch.sinh,
    known=[(0, 0, 1)],
    description="sinh(x) (torch.sinh)",
)
elementwise_cosh = _elementwise(
    "elementwise_cosh",
    sympy.cosh,
    (-5, 5),
    torch.cosh,
    known=[(0, 1, 0)],
    description="cosh(x) (torch.cosh)",
)
elementwise_tanh = _elementwise(
    "elementwise_tanh",
    sympy.tanh,
    (-5, 5),
    torch.tanh,
    shape=_MAT,
    known=[(0, 0, 1)],
    description="tanh(x) on a 2×3 matrix (torch.tanh)",
)
elementwise_asinh = _elementwise(
    "elementwise_asinh",
    sympy.asinh,
    (-10, 10),
    torch.asinh,
    known=[(0, 0, 1)],
    description="asinh(x) (torch.asinh)",
)
elementwise_acosh = _elementwise(
    "elementwise_acosh",
    sympy.acosh,
    (1.01, 10),
    torch.acosh,
    known=[(2, sympy.log(2 + sympy.sqrt(3)), 1 / sympy.sqrt(3))],
    description="acosh(x) on [1.01, 10], clear of the branch point 1 (torch.acosh)",
)
elementwise_atanh = _elementwise(
    "elementwise_atanh",
    sympy.atanh,
    (-0.99, 0.99),
    torch.atanh,
    known=[(_HALF, sympy.log(3) / 2, sympy.Rational(4, 3))],
    description="atanh(x) on [-0.99, 0.99] (torch.atanh)",
)
elementwise_erf = _elementwise(
    "elementwise_erf",
    sympy.erf,
    (-3, 3),
    torch.special.erf,
    shape=_VEC,
    known=[(0, 0, 2 / sympy.sqrt(_PI))],
    description="erf(x) on a 3-vector (torch.special.erf)",
)
elementwise_erfc = _elementwise(
    "elementwise_erfc",
    sympy.erfc,
    (-3, 3),
    torch.special.erfc,
    known=[(0, 1, -2 / sympy.sqrt(_PI))],
    description="erfc(x) (torch.special.erfc)",
)
elementwise_softplus = _elementwise(
    "elementwise_softplus",
    _softplus,
    # torch's softplus switches to the identity above its threshold 20.
    (-10, 10),
    F.softplus,
    known=[(0, sympy.log(2), _HALF)],
    description="log(1 + exp(x)) (torch.nn.functional.softplus)",
)
elementwise_sigmoid = _elementwise(
    "elementwise_sigmoid",
    _sigmoid,
    (-10, 10),
    torch.sigmoid,
    known=[(0, _HALF, sympy.Rational(1, 4))],
    description="1 / (1 + exp(-x)) (torch.sigmoid)",
)
elementwise_expit = _elementwise(
    "elementwise_expit",
    _sigmoid,
    (-10, 10),
    torch.special.expit,
    shape=_MAT,
    known=[(0, _HALF, sympy.Rational(1, 4))],
    description="the logistic function on a 2×3 matrix (torch.special.expit)",
)
elementwise_logsigmoid = _elementwise(
    "elementwise_logsigmoid",
    lambda e: -_softplus(-e),
    (-10, 10),
    F.logsigmoid,
    known=[(0, -sympy.log(2), _HALF)],
    description="log(sigmoid(x)) = -log(1 + exp(-x)) (torch.nn.functional.logsigmoid)",
)
elementwise_logit = _elementwise(
    "elementwise_logit",
    lambda e: sympy.log(e / (1 - e)),
    (0.01, 0.99),
    torch.special.logit,
    known=[(_HALF, 0, 4)],
    description="log(x / (1 - x)) on [0.01, 0.99] (torch.special.logit)",
)
elementwise_gelu = _elementwise(
    "elementwise_gelu",
    lambda e: e * (1 + sympy.erf(e / _S2)) / 2,
    (-5, 5),
    # approximate='none' (the default) is exactly x·Φ(x) with Φ(x) = (1 + erf(x/√2))/2.
    F.gelu,
    known=[(0, 0, _HALF)],
    description="x·(1 + erf(x/√2))/2 (torch.nn.functional.gelu, approximate='none')",
)
elementwise_silu = _elementwise(
    "elementwise_silu",
    lambda e: e * _sigmoid(e),
    (-10, 10),
    F.silu,
    shape=_VEC,
    known=[(0, 0, _HALF)],
    description="x·sigmoid(x) on a 3-vector (torch.nn.functional.silu)",
)
elementwise_mish = _elementwise(
    "elementwise_mish",
    lambda e: e * sympy.tanh(_softplus(e)),
    # torch's mish uses softplus with threshold 20; stay below it.
    (-10, 10),
    F.mish,
    known=[(0, 0, sympy.tanh(sympy.log(2)))],
    description="x·tanh(log(1 + exp(x))) (torch.nn.functional.mish)",
)
elementwise_sqrt = _elementwise(
    "elementwise_sqrt",
    sympy.sqrt,
    (0.01, 100),
    torch.sqrt,
    shape=_VEC,
    known=[(4, 2, sympy.Rational(1, 4))],
    description="sqrt(x) on [0.01, 100], clear of the kink at 0 (torch.sqrt)",
)
elementwise_rsqrt = _elementwise(
    "elementwise_rsqrt",
    lambda e: 1 / sympy.sqrt(e),
    (0.01, 100),
    torch.rsqrt,
    known=[(4, _HALF, -sympy.Rational(1, 16))],
    description="1/sqrt(x) on [0.01, 100] (torch.rsqrt)",
)
elementwise_reciprocal = _elementwise(
    "elementwise_reciprocal",
    lambda e: 1 / e,
    Interval(-10, 10, exclude=(0,), margin=0.1),
    torch.reciprocal,
    known=[(2, _HALF, -sympy.Rational(1, 4)), (-1, -1, -1)],
    description="1/x on [-10, 10] kept 0.1 away from the pole at 0 (torch.reciprocal)",
)

CASES = [
    elementwise_exp,
    elementwise_expm1,
    elementwise_exp2,
    elementwise_log,
    elementwise_log10,
    elementwise_log1p,
    elementwise_sin,
    elementwise_cos,
    elementwise_tan,
    elementwise_asin,
    elementwise_acos,
    elementwise_atan,
    elementwise_sinh,
    elementwise_cosh,
    elementwise_tanh,
    elementwise_asinh,
    elementwise_acosh,
    elementwise_atanh,
    elementwise_erf,
    elementwise_erfc,
    elementwise_softplus,
    elementwise_sigmoid,
    elementwise_expit,
    elementwise_logsigmoid,
    elementwise_logit,
    elementwise_gelu,
    elementwise_silu,
    elementwise_mish,
    elementwise_sqrt,
    elementwise_rsqrt,
    elementwise_reciprocal,
]
