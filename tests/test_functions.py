"""One test per entry of the function map: value and derivative against SymPy's own numerics."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import torch

import verijac
from verijac import Case, scalar
from verijac._errors import UnsupportedFunctionError
from verijac._functions import FUNCTIONS, coverage_markdown
from verijac._symbolic import _almost_everywhere

x = verijac.scalar("x")

# SymPy class → (expression in x, a point, whether the exact derivative is expressible).
SAMPLES: dict[type, tuple[sympy.Expr, float]] = {
    sympy.sin: (sympy.sin(x), 0.7), sympy.cos: (sympy.cos(x), 0.7), sympy.tan: (sympy.tan(x), 0.7),
    sympy.cot: (sympy.cot(x), 0.7), sympy.sec: (sympy.sec(x), 0.7), sympy.csc: (sympy.csc(x), 0.7),
    sympy.asin: (sympy.asin(x), 0.3), sympy.acos: (sympy.acos(x), 0.3), sympy.atan: (sympy.atan(x), 0.7),
    sympy.acot: (sympy.acot(x), 0.7), sympy.atan2: (sympy.atan2(x, 2 - x), 0.7),
    sympy.sinh: (sympy.sinh(x), 0.7), sympy.cosh: (sympy.cosh(x), 0.7), sympy.tanh: (sympy.tanh(x), 0.7),
    sympy.coth: (sympy.coth(x), 0.7), sympy.sech: (sympy.sech(x), 0.7), sympy.csch: (sympy.csch(x), 0.7),
    sympy.asinh: (sympy.asinh(x), 0.7), sympy.acosh: (sympy.acosh(x), 1.7), sympy.atanh: (sympy.atanh(x), 0.3),
    sympy.acoth: (sympy.acoth(x), 1.7), sympy.exp: (sympy.exp(x), 0.7), sympy.log: (sympy.log(x, 2), 0.7),
    sympy.Abs: (sympy.Abs(x), -0.7), sympy.sign: (sympy.sign(x) * x, -0.7),
    sympy.floor: (sympy.floor(x) + x, 1.7), sympy.ceiling: (sympy.ceiling(x) * x, 1.7),
    sympy.Max: (sympy.Max(x, 0.3, x**2), 0.7), sympy.Min: (sympy.Min(x, 0.3), 0.7),
    sympy.Heaviside: (sympy.Heaviside(x) * x, 0.7), sympy.erf: (sympy.erf(x), 0.7),
    sympy.erfc: (sympy.erfc(x), 0.7), sympy.erfinv: (sympy.erfinv(x), 0.3),
    sympy.gamma: (sympy.gamma(x), -1.5), sympy.loggamma: (sympy.loggamma(x), 2.5),
    sympy.polygamma: (sympy.polygamma(1, x), 2.5),
    sympy.zeta: (sympy.zeta(2.5, x), 1.5), sympy.besselj: (sympy.besselj(1, x), 1.3),
    sympy.bessely: (sympy.bessely(1, x), 1.3), sympy.besseli: (sympy.besseli(1, x), 1.3),
    sympy.besselk: (sympy.besselk(1, x), 1.3), sympy.sinc: (sympy.sinc(x), 0.7),
}  # fmt: skip


LOOSER = {sympy.polygamma, sympy.zeta}


def test_every_mapping_has_a_sample() -> None:
    assert set(SAMPLES) == set(FUNCTIONS)


@pytest.mark.parametrize(
    "cls", sorted(FUNCTIONS, key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_mapping_value_and_derivative(cls: type) -> None:
    expr, point = SAMPLES[cls]
    assert expr.has(cls)
    lo, hi = point - 0.1, point + 0.1
    case = verijac.Case(
        f"fn_{cls.__name__.lower()}", inputs={"x": x}, outputs=expr, domain={"x": (lo, hi)}
    )
    t = torch.tensor([point], dtype=torch.float64)
    value = float(case.torch_function()(t)[0])
    deriv = float(case.torch_jacobian()(t)[0])
    exact_value = float(sympy.N(expr.subs(x, sympy.Float(point, 30)), 25))
    exact_deriv = float(
        sympy.N(_almost_everywhere(sympy.diff(expr, x)).subs(x, sympy.Float(point, 30)), 25)
    )
    # torch's float64 polygamma is accurate to ~1e-10 relative only (measured, torch 2.15):
    # the reference is as exact as torch's special functions in float64.
    rel = 1e-9 if cls in LOOSER else 1e-12
    assert value == pytest.approx(exact_value, rel=rel, abs=1e-14)
    assert deriv == pytest.approx(exact_deriv, rel=max(rel, 1e-9), abs=1e-12)


def test_sinc_is_sympys_unnormalised_sinc() -> None:
    case = verijac.Case(
        "fn_sinc_check", inputs={"x": x}, outputs=sympy.sinc(x), domain={"x": (0.5, 2)}
    )
    t = torch.tensor([1.0], dtype=torch.float64)
    assert float(case.torch_function()(t)[0]) == pytest.approx(float(torch.sin(t) / t))


def test_docs_table_is_generated_from_the_map() -> None:
    docs = Path(__file__).parent.parent / "docs" / "functions.md"
    assert coverage_markdown() in docs.read_text(encoding="utf-8"), (
        "docs/functions.md is out of date: regenerate with `python -m verijac functions`"
    )


def test_a_users_class_named_like_a_sympy_function_is_not_given_torchs_version() -> None:
    """A user's ``erf`` with other math must not be generated as torch.erf (a false pass)."""

    class erf(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return 3 * self.args[0] ** 2

    x = scalar("x")
    with pytest.raises(UnsupportedFunctionError, match="register_function"):
        Case("user_erf_shadow", {"x": x}, erf(x) + x, {"x": (-1, 1)})
