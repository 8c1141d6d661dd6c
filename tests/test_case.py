"""The Case model: accepted forms, nesting, and a clear error for every defect."""

from __future__ import annotations

import pytest
import sympy

import verijac
from verijac import Case, CaseError, DomainError, Interval, KnownPoint, ShapeError, VerijacError

x, y = verijac.scalar("x"), verijac.scalar("y")


def test_minimum_constructor_and_shapes() -> None:
    case = Case("c_min", inputs={"x": x}, outputs=sympy.sin(x), domain={"x": (-1, 1)})
    assert case.scalar_output and not case.tuple_inputs and not case.tuple_outputs
    assert case.n_in == 1 and case.n_out == 1
    assert case.jacobian() == sympy.cos(x)
    assert case.hessian() == -sympy.sin(x)


def test_plain_symbols_become_real() -> None:
    a = sympy.Symbol("a")  # no assumptions: verijac checks real functions
    case = Case(
        "c_plain",
        inputs={"a": a},
        outputs=sympy.Abs(a),
        domain={"a": Interval(-1, 1, exclude=(0,))},
    )
    (sym,) = case.in_symbols
    assert sym.is_real
    assert case.jacobian() == sympy.sign(sym)


def test_tuple_and_array_nesting_matches_torch() -> None:
    A = verijac.array("A", (2, 3))
    case = Case(
        "c_nest",
        inputs={"A": A, "y": y},
        outputs=(A.applyfunc(lambda e: e * y), y**2),
        domain={"A": (-1, 1), "y": (-1, 1)},
    )
    jac = case.jacobian()
    assert len(jac) == 2 and len(jac[0]) == 2
    assert jac[0][0].shape == (2, 3, 2, 3) and jac[0][1].shape == (2, 3)
    assert jac[1][0].shape == (2, 3) and jac[1][1] == 2 * case.in_symbols[-1]
    hess = case.hessian()
    assert len(hess) == 2 and hess[1][1][1] == 2
    assert hess[0][0][1].shape == (2, 3, 2, 3)


def test_matrix_output_and_known_points_checked() -> None:
    M = verijac.array("M", (2, 2))
    det = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
    case = Case(
        "c_det",
        inputs={"M": M},
        outputs=det,
        domain={"M": (-5, 5)},
        known=[KnownPoint(at={"M": [[1, 2], [3, 4]]}, value=-2, jacobian=[[4, -3], [-2, 1]])],
    )
    assert case.jacobian().shape == (2, 2)


@pytest.mark.parametrize("at", [sympy.Rational(1, 2), sympy.Float("0.5")])
def test_known_derivatives_are_exact_at_rational_and_float_points(at: sympy.Expr) -> None:
    """Known Jacobians and Hessians are checked exactly (symengine at a rational point, SymPy
    at a float one): the true values pass, a value off in its 13th digit is refused."""
    u, v = verijac.scalar("u"), verijac.scalar("v")
    out = (sympy.sin(u) * v, sympy.exp(u * v))
    jac = ((sympy.cos(at) * 2, sympy.sin(at)), (2 * sympy.exp(2 * at), at * sympy.exp(2 * at)))
    hess = (
        ((-sympy.sin(at) * 2, sympy.cos(at)), (sympy.cos(at), 0)),
        (
            (4 * sympy.exp(2 * at), (1 + 2 * at) * sympy.exp(2 * at)),
            ((1 + 2 * at) * sympy.exp(2 * at), at**2 * sympy.exp(2 * at)),
        ),
    )
    kw = {"inputs": {"u": u, "v": v}, "outputs": out, "domain": {"u": (-1, 1), "v": (0, 3)}}
    point = {"u": at, "v": 2}
    case = Case("c_known_exact", **kw, known=[KnownPoint(at=point, jacobian=jac, hessian=hess)])
    assert case.derivatives.engine == "symengine"
    off = ((jac[0][0] * (1 + sympy.Rational(1, 10**10)), jac[0][1]), jac[1])
    with pytest.raises(CaseError, match=r"jacobian block 0 entry 0 is .* but the expressions give"):
        Case("c_known_off", **kw, known=[KnownPoint(at=point, jacobian=off)])
    off_h = (hess[0], ((hess[1][0][0], hess[1][0][1]), (hess[1][1][0], hess[1][1][1] + 1e-9)))
    with pytest.raises(CaseError, match="hessian block"):
        Case("c_known_off_h", **kw, known=[KnownPoint(at=point, hessian=off_h)])
    # A VJP with cotangent (1, 1): the column sums of the Jacobian.
    vjp = (jac[0][0] + jac[1][0], jac[0][1] + jac[1][1])
    Case("c_known_vjp", **kw, known=[KnownPoint(at=point, vjp=[((1, 1), vjp)])])
    with pytest.raises(CaseError, match="known point vjp entry 1 is"):
        Case("c_known_vjp_off", **kw, known=[KnownPoint(at=point, vjp=[((1, 1), (vjp[0], 1))])])


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"outputs": x + y}, CaseError, "not inputs"),
        ({"inputs": {"x": x, "z": x}}, CaseError, "appears twice"),
        ({"domain": {"x": (1, -1)}}, DomainError, "inverted"),
        (
            {"domain": {"x": (0.5, 0.5)}, "known": [KnownPoint(at={"x": 0}, value=0)]},
            CaseError,
            "outside",
        ),
        ({"domain": {}}, DomainError, "has no domain"),
        ({"domain": {"x": (-1, 1), "q": (0, 1)}}, DomainError, "unknown inputs"),
        ({"outputs": sympy.sqrt(x)}, CaseError, "not real"),
        ({"outputs": sympy.I * x}, CaseError, "not real"),
        ({"outputs": x > 0}, CaseError, "must be an expression"),
        ({"known": [KnownPoint(at={"x": 0}, value=1)]}, CaseError, "the expressions give"),
        ({"known": [KnownPoint(at={"x": 5}, value=125)]}, CaseError, "outside"),
        ({"known": [KnownPoint(at={"x": [1, 2]}, value=1)]}, ShapeError, "shape"),
        ({"name": "not a name"}, CaseError, "identifier"),
        ({"tolerances": {"float32": {"rtol": -1}}}, CaseError, "tolerances"),
        ({"exclude": [x - x]}, DomainError, "empty"),
    ],
)
def test_every_defect_has_a_clear_error(kwargs: dict, error: type, needle: str) -> None:
    args = {"name": "c_bad", "inputs": {"x": x}, "outputs": x**3, "domain": {"x": (-1, 1)}}
    args.update(kwargs)
    with pytest.raises(error, match=needle) as info:
        Case(args.pop("name"), **args)
    assert isinstance(info.value, VerijacError)


def test_excluded_kink_lets_the_case_build() -> None:
    case = Case(
        "c_abs", inputs={"x": x}, outputs=sympy.Abs(x), domain={"x": Interval(-1, 1, exclude=(0,))}
    )
    assert case.derivatives.engine == "sympy"


def test_get_case_and_listing() -> None:
    assert verijac.get_case("seed_tuple_io").name == "seed_tuple_io"
    names = [c.name for c in verijac.list_cases("seed_*")]
    assert names == sorted(names) and len(names) == 4
    assert all("seed" in c.tags for c in verijac.list_cases(tag="seed"))
    with pytest.raises(verijac.UnknownCaseError, match="did you mean 'seed_tuple_io'"):
        verijac.get_case("seed_tupl_io")


def test_domain_forms() -> None:
    with pytest.raises(DomainError, match="empty interval"):
        Interval.open(0, 0)
    assert Interval.from_sign("positive").left_open
    with pytest.raises(DomainError, match="unknown sign"):
        Interval.from_sign("posative")
    with pytest.raises(DomainError, match="NaN"):
        Interval(float("nan"), 1)
    assert str(Interval(-1, 1, exclude=(0,))) == "[-1, 1] \\ {0}"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"margin": "abc"}, "margin"),
        ({"tolerances": [1]}, "tolerances"),
        ({"tolerances": {"float128": {"rtol": 1.0}}}, "dtype"),
        ({"tags": "smooth"}, "tags"),
        ({"known": [KnownPoint(at={"x": "sqrt(-1)"})]}, "real numbers"),
        ({"known": [KnownPoint(at={"x": x})]}, "real numbers"),
        ({"exclude": [y]}, "not inputs"),
        ({"description": 5}, "description"),
    ],
)
def test_wrongly_typed_arguments_are_case_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(CaseError, match=needle):
        Case("c_typed", inputs={"x": x}, outputs=x**2, domain={"x": (-1, 1)}, **kwargs)


def test_exclusions_use_the_case_symbols() -> None:
    A = verijac.array("A", (2,))
    plain = sympy.Symbol("x")  # no real assumption: still the case's x
    case = Case(
        "c_excl", inputs={"x": x}, outputs=x**2, domain={"x": (-1, 1)}, exclude=[plain - 0.5]
    )
    assert case.exclude[0].free_symbols == {x}
    arr = Case(
        "c_excl_arr",
        inputs={"A": A},
        outputs=A[0] * A[1],
        domain={"A": (-1, 1)},
        exclude=["A[0] - A[1]"],
    )
    assert arr.exclude[0] == A[0] - A[1]


def test_tolerance_aliases_are_normalised() -> None:
    import torch

    case = Case("c_tol", inputs={"x": x}, outputs=x**2, domain={"x": (-1, 1)},
                tolerances={"float": {"rtol": 1e-3}, torch.float64: {"atol": 1e-9}})  # fmt: skip
    assert case.tolerances == {"float32": {"rtol": 1e-3}, "float64": {"atol": 1e-9}}


def test_array_takes_an_int_or_a_sequence_of_ints_and_says_so_otherwise() -> None:
    from verijac import ShapeError, array

    assert array("v", 3).shape == (3,)
    assert array("m", (2, 3)).shape == (2, 3)
    for bad in ("ab", 2.5, (2.0, 3), None, True):
        with pytest.raises(ShapeError, match="shape must be an int or a sequence of ints"):
            array("v", bad)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="every dimension must be >= 1"):
        array("v", (0,))
