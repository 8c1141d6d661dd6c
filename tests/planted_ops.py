"""Planted-bug ops: custom autograd ops with realistic derivative bugs, each with a correct twin.

Every `Planted` entry pairs a `verijac.Case` (the exact math) with two implementations of it:
``buggy`` carries one derivative bug of a kind seen in real custom ops, ``correct`` is the same
op written right. ``tests/test_planted_bugs.py`` proves that `verijac.check_op` catches every
bug on every seed while passing every twin, and ``benchmarks/gradcheck_table.py`` measures
which bugs `torch.autograd.gradcheck` catches.

A plain module (not a test file): the tests and the benchmark import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy
import torch

from verijac import Case, scalar

x, y = scalar("x"), scalar("y")

Deriv = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Planted:
    """One planted bug.

    Attributes:
        name: short identifier, also the case's name (prefixed ``planted_``).
        bug: what is wrong, one line.
        case: the exact math both implementations must match.
        buggy / correct: the op with the bug, and its correct twin.
        require: capabilities the check declares required (``check_op(require=...)``).
        dtypes: the dtypes the check runs in.
        wrong_dtypes: the dtypes in which the bug shows (the others must pass).
    """

    name: str
    bug: str
    case: Case
    buggy: Callable[..., Any]
    correct: Callable[..., Any]
    require: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float64", "float32")
    wrong_dtypes: tuple[str, ...] = ("float64", "float32")


def unary_function(
    name: str,
    forward: Deriv,
    derivative: Deriv,
    *,
    tangent_derivative: Deriv | None = None,
) -> type[torch.autograd.Function]:
    """An elementwise `torch.autograd.Function` ``y = forward(x)`` with explicit rules.

    Args:
        name: the class name.
        forward: the value, elementwise.
        derivative: ``f'(x)`` used by ``backward`` (``grad · f'(x)``).
        tangent_derivative: ``f'(x)`` used by ``jvp`` (defaults to ``derivative``).

    The class uses ``setup_context`` and ``generate_vmap_rule = True``, so it works with every
    torch.func transform, forward mode and double backward (when ``derivative`` is made of
    differentiable torch operations).
    """
    jvp_derivative = tangent_derivative or derivative

    def fwd(x: torch.Tensor) -> torch.Tensor:
        return forward(x)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * derivative(x)

    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return tangent * jvp_derivative(x)

    body = {
        "generate_vmap_rule": True,
        "forward": staticmethod(fwd),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
        "jvp": staticmethod(jvp),
        "__doc__": f"Planted op {name}.",
    }
    return type(name, (torch.autograd.Function,), body)


def _pair(
    name: str, forward: Deriv, right: Deriv, wrong: Deriv, **kwargs: Any
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(buggy, correct) ``apply`` functions of two `unary_function`\\ s."""
    good = unary_function(f"{name}_correct", forward, right)
    bad = unary_function(f"{name}_buggy", forward, wrong, **kwargs)
    return bad.apply, good.apply


# -- 1. backward off by 0.1 % ------------------------------------------------------------------
def _xsin_d(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) + x * torch.cos(x)


scaled = Planted(
    "scaled_backward",
    "backward is 0.1 % too large (a stale normalisation constant)",
    Case("planted_scaled_backward", {"x": x}, x * sympy.sin(x), {"x": (-3, 3)}),
    *_pair("ScaledBackward", lambda x: x * torch.sin(x), _xsin_d, lambda x: 1.001 * _xsin_d(x)),
)


# -- 2. forward-mode rule wrong, backward right ------------------------------------------------
def _gauss_d(x: torch.Tensor) -> torch.Tensor:
    return (1 - x * x) * torch.exp(-0.5 * x * x)


_WrongJvp = unary_function(
    "WrongJvp",
    lambda x: x * torch.exp(-0.5 * x * x),
    _gauss_d,
    # jvp drops the product-rule term -x² e^{-x²/2}
    tangent_derivative=lambda x: torch.exp(-0.5 * x * x),
)
_RightJvp = unary_function("RightJvp", lambda x: x * torch.exp(-0.5 * x * x), _gauss_d)

wrong_jvp = Planted(
    "wrong_jvp",
    "the jvp rule drops a product-rule term; backward is right",
    Case("planted_wrong_jvp", {"x": x}, x * sympy.exp(-(x**2) / 2), {"x": (-3, 3)}),
    _WrongJvp.apply,
    _RightJvp.apply,
)


# -- 3. wrong in one region of the domain ------------------------------------------------------
region = Planted(
    "region_bug",
    "softplus backward switches to the asymptote e^x below x = -1 instead of far out",
    Case("planted_region_bug", {"x": x}, sympy.log(1 + sympy.exp(x)), {"x": (-3, 3)}),
    *_pair(
        "RegionBug",
        torch.nn.functional.softplus,
        torch.sigmoid,
        lambda x: torch.where(x < -1, torch.exp(x), torch.sigmoid(x)),
    ),
)


# -- 4. wrong only in float32 ------------------------------------------------------------------
_C = math.sqrt(2 / math.pi)
_K = 0.044715


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.tanh(_C * (x + _K * x**3)))


def _gelu_d(x: torch.Tensor, c: float = _C) -> torch.Tensor:
    t = torch.tanh(c * (x + _K * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * _K * x * x)


def _gelu_d_typo(x: torch.Tensor) -> torch.Tensor:
    # The float32 "fast kernel" has two digits of sqrt(2/π) = 0.79788… transposed.
    return _gelu_d(x, 0.79878 if x.dtype == torch.float32 else _C)


float32_only = Planted(
    "float32_only",
    "the float32 kernel of tanh-GELU's backward has a typo in sqrt(2/π)",
    Case(
        "planted_float32_only",
        {"x": x},
        x
        / 2
        * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (x + sympy.Rational(44715, 10**6) * x**3))),
        {"x": (-3, 3)},
    ),
    *_pair("Float32Only", _gelu, _gelu_d, _gelu_d_typo),
    wrong_dtypes=("float32",),
)


# -- 5. backward ignores the scale of the incoming gradient --------------------------------------
class _Log1pSquare(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x * x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * 2 * x / (1 + x * x)


class IgnoresScale(_Log1pSquare):
    """log(1 + x²) whose backward returns f'(x), forgetting to multiply by the incoming grad."""

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x / (1 + x * x) + 0 * grad  # right only when grad == 1 (.sum().backward())


ignores_scale = Planted(
    "ignores_scale",
    "backward returns f'(x) instead of grad · f'(x): right only for .sum().backward()",
    Case("planted_ignores_scale", {"x": x}, sympy.log(1 + x**2), {"x": (-3, 3)}),
    IgnoresScale.apply,
    _Log1pSquare.apply,
)


# -- 6. swapped partials of a two-input op -------------------------------------------------------
class _XExpY(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(y)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = ctx.saved_tensors
        ey = torch.exp(y)
        return grad * ey, grad * x * ey


class SwappedPartials(_XExpY):
    """x·e^y whose backward returns (∂f/∂y, ∂f/∂x) instead of (∂f/∂x, ∂f/∂y)."""

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = ctx.saved_tensors
        ey = torch.exp(y)
        return grad * x * ey, grad * ey


swapped = Planted(
    "swapped_partials",
    "a two-input op's backward returns its partials in the wrong order",
    Case(
        "planted_swapped_partials", {"x": x, "y": y}, x * sympy.exp(y), {"x": (-3, 3), "y": (-2, 2)}
    ),
    SwappedPartials.apply,
    _XExpY.apply,
)


# -- 7. double backward wrong: backward detaches its input ---------------------------------------
detached = Planted(
    "detached_backward",
    "backward computes 3·x.detach()², so the second derivative through it is lost",
    Case("planted_detached_backward", {"x": x}, x**3, {"x": (-3, 3)}),
    *_pair("Detached", lambda x: x**3, lambda x: 3 * x**2, lambda x: 3 * x.detach() ** 2),
    require=("double_backward",),
)


# -- 8. wrong only for large magnitudes ----------------------------------------------------------
def _hyp_d(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(1 + x * x)


large = Planted(
    "large_magnitude",
    "backward of sqrt(1 + x²) takes the asymptote sign(x) for |x| > 50, off by ~1/(2x²)",
    Case("planted_large_magnitude", {"x": x}, sympy.sqrt(1 + x**2), {"x": (-100, 100)}),
    *_pair(
        "LargeMagnitude",
        lambda x: torch.sqrt(1 + x * x),
        _hyp_d,
        lambda x: torch.where(x.abs() > 50, torch.sign(x), _hyp_d(x)),
    ),
)


# -- 9. wrong only when batched ------------------------------------------------------------------
def _xtanh_d(x: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(x)
    return t + x * (1 - t * t)


class _XTanh(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * _xtanh_d(x)


class MeanBackward(_XTanh):
    """x·tanh(x) whose backward divides by x.numel(), copied from a mean-reduced loss.

    Right for one point (numel 1), wrong for a batch of several.
    """

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * _xtanh_d(x) / x.numel()


batched_only = Planted(
    "batched_only",
    "backward divides by x.numel() (copied from a mean loss): right for one point only",
    Case("planted_batched_only", {"x": x}, x * sympy.tanh(x), {"x": (-3, 3)}),
    MeanBackward.apply,
    _XTanh.apply,
)


# -- 10. sign error in a small tail ---------------------------------------------------------------
def _cubic_d(x: torch.Tensor) -> torch.Tensor:
    return x * x - 1


tail = Planted(
    "tail_sign",
    "backward of x³/3 - x flips the sign for x > 2.5 (a tail branch written by symmetry)",
    Case("planted_tail_sign", {"x": x}, x**3 / 3 - x, {"x": (-3, 3)}),
    *_pair(
        "TailSign",
        lambda x: x**3 / 3 - x,
        _cubic_d,
        lambda x: torch.where(x > 2.5, -_cubic_d(x), _cubic_d(x)),
    ),
)


# -- 11. backward corrupts a cached tensor in place ------------------------------------------------
class _XExp(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (1 + x) * torch.exp(x)


class InplaceCache(_XExp):
    """x·eˣ whose backward caches f'(x) on ctx and multiplies the cache in place.

    The first backward is right; a second one (graph retained) uses grad · f'(x) as f'(x).
    """

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        if not hasattr(ctx, "cache"):
            (x,) = ctx.saved_tensors
            ctx.cache = ((1 + x) * torch.exp(x)).detach()
        return ctx.cache.mul_(grad)


inplace = Planted(
    "inplace_cache",
    "backward multiplies its cached f'(x) in place: a second backward is wrong",
    Case("planted_inplace_cache", {"x": x}, x * sympy.exp(x), {"x": (-3, 3)}),
    InplaceCache.apply,
    _XExp.apply,
)


# -- 12. custom vmap rule wrong ----------------------------------------------------------------------
class _Cosh(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.cosh(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.sinh(x)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, ...], x: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        return _Cosh.apply(x), in_dims[0] if in_dims[0] is not None else 0


class WrongVmapRule(_Cosh):
    """cosh(x) whose vmap rule evaluates the unbatched formula on the first sample only."""

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, ...], x: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        dim = in_dims[0] if in_dims[0] is not None else 0
        first = x.select(dim, 0).unsqueeze(dim)
        return WrongVmapRule.apply(first).expand_as(x).clone(), dim


vmap_rule = Planted(
    "wrong_vmap_rule",
    "a custom vmap rule broadcasts the first sample's result over the batch",
    Case("planted_wrong_vmap_rule", {"x": x}, sympy.cosh(x), {"x": (-3, 3)}),
    WrongVmapRule.apply,
    _Cosh.apply,
)


PLANTED: list[Planted] = [
    scaled,
    wrong_jvp,
    region,
    float32_only,
    ignores_scale,
    swapped,
    detached,
    large,
    batched_only,
    tail,
    inplace,
    vmap_rule,
]

BY_NAME: dict[str, Planted] = {p.name: p for p in PLANTED}


#: The seeds and paths of the planted-bug table (tests/test_planted_bugs.py and
#: benchmarks/gradcheck_table.py measure the same thing).
SEEDS = range(10)
PATHS = [
    "reverse.vjp_random",
    "reverse.accumulation",
    "forward.dual",
    "higher.double_backward",
    "contract",
]


def check_planted(planted: Planted, op: Any, seed: int) -> Any:
    """`verijac.check_op` of ``op`` (the buggy op or its correct twin) against the planted
    case, as the table runs it."""
    from verijac import check_op

    return check_op(
        op,
        planted.case,
        seed=seed,
        require=planted.require,
        dtypes=planted.dtypes,
        max_examples=2,
        batch_size=32,
        paths=PATHS,
    )
