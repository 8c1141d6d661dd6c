"""Hostile and careless inputs: each gets a clear VerijacError, never a traceback, a hang or a
false pass (issue 10 items 1–3, 6–9; issue 14's pattern typos and plain-symbol speed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import torch

import verijac
from verijac import Case, CaseError, ParseError, UsageError, parse, scalar
from verijac._textcase import case_from_text

x, y = scalar("x"), scalar("y")

# -- item 1: a small batch always holds generic points --------------------------------------
XSINX = Case("hostile_xsinx", {"x": x}, x * sympy.sin(x), {"x": (-3, 3)})


@pytest.mark.parametrize("batch_size", [1, 2, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wrong_op_is_caught_in_the_smallest_batches(batch_size: int, seed: int) -> None:
    """zeros_like has the right derivative at the special value 0 only: every batch must hold
    points where it is wrong."""
    report = verijac.check_op(
        torch.zeros_like,
        XSINX,
        paths=["reverse.grad_batched"],
        dtypes=["float64"],
        devices=["cpu"],
        max_examples=1,
        batch_size=batch_size,
        seed=seed,
    )
    assert not report.passed
    assert [r.status for r in report.records] == ["mismatch"]


# -- item 2: a domain on a kink leaves nothing to check -------------------------------------
@pytest.mark.parametrize(
    ("inputs", "output", "domain", "node"),
    [
        ({"x": x}, sympy.Abs(x), {"x": (0, 0)}, "Abs(x)"),
        ({"x": x}, sympy.sign(x) * x, {"x": (0, 0)}, "sign(x)"),
        ({"x": x, "y": y}, sympy.Max(x, y), {"x": (1, 1), "y": (1, 1)}, "Max(x, y)"),
        ({"x": x}, sympy.floor(x) * x, {"x": (2, 2)}, "floor(x)"),
        ({"x": x, "y": y}, sympy.Abs(x) * y, {"x": (0, 0), "y": (-1, 1)}, "Abs(x)"),
        (
            {"x": x},
            sympy.Piecewise((x, x < 1), (x**2, True)),
            {"x": (1, 1)},
            "x < 1",
        ),
    ],
)
def test_a_domain_lying_on_a_kink_is_a_case_error(
    inputs: dict[str, sympy.Symbol], output: sympy.Expr, domain: dict[str, object], node: str
) -> None:
    with pytest.raises(CaseError, match="lies on the kink or jump of") as info:
        Case("hostile_kink", inputs, output, domain)  # type: ignore[arg-type]
    assert node in str(info.value) and "Widen the domain" in str(info.value)


def test_kinks_inside_a_wider_domain_and_smooth_single_points_are_fine() -> None:
    assert Case("hostile_abs", {"x": x}, sympy.Abs(x), {"x": (-1, 1)}).n_in == 1
    point = Case("hostile_point", {"x": x}, x**2, {"x": (0, 0)})
    assert point.jacobian() == 2 * x


# -- item 3: assumptions the domain does not honour ------------------------------------------
def test_an_assumption_the_domain_contradicts_is_refused() -> None:
    p = sympy.Symbol("x", positive=True)
    with pytest.raises(CaseError, match=r"assumes positive=True.*does not imply"):
        Case("hostile_pos", {"x": p}, sympy.sqrt(p**2), {"x": (-1, 1)})
    n = sympy.Symbol("x", integer=True)
    with pytest.raises(CaseError, match=r"assumes integer=True"):
        Case("hostile_int", {"x": n}, sympy.sin(sympy.pi * n) + n, {"x": (0, 2)})


def test_an_assumption_the_domain_honours_is_kept() -> None:
    p = sympy.Symbol("x", positive=True)
    case = Case("hostile_pos_ok", {"x": p}, sympy.sqrt(p**2), {"x": (0, 2)})
    # positive removes the point 0 of [0, 2], where sqrt(x**2) = x would be wrong to derive
    assert case.domain["x"].left_open and case.jacobian() == 1
    nz = sympy.Symbol("x", nonzero=True)
    case = Case("hostile_nonzero", {"x": nz}, 1 / nz, {"x": (-1, 1)})
    assert case.domain["x"].exclude == (0.0,)
    finite = sympy.Symbol("x", real=True, finite=True)
    assert Case("hostile_finite", {"x": finite}, finite**2, {"x": (-1, 1)}).n_in == 1


# -- item 6: Max/Min of many arguments -------------------------------------------------------
def test_max_of_many_arguments_is_built_without_pairwise_comparisons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def quadratic(*args: object, **kwargs: object) -> object:
        raise AssertionError("SymPy's pairwise Max/Min simplification was called")

    text = "Max({})".format(", ".join(f"x{i}" for i in range(16)))
    monkeypatch.setattr(sympy.Max, "_collapse_arguments", quadratic)
    value = parse(text)
    assert isinstance(value, sympy.Max) and len(value.args) == 16
    # duplicates are dropped and numbers folded, as SymPy would
    monkeypatch.undo()
    small = parse("Min(x, x, 3, 2, y, x, y, 5, 4, 1, x)")
    assert small == sympy.Min(parse("x"), parse("y"), 1)


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("Max({})".format(", ".join(f"x{i}" for i in range(100))), 100),
        ("Max({})".format(", ".join(f"x{i}" for i in range(300))), 300),
        # SymPy would flatten the nested calls into one Max of 16 × 16 arguments
        (
            "Max({})".format(
                ", ".join(
                    "Max({})".format(", ".join(f"x{16 * k + i}" for i in range(16)))
                    for k in range(16)
                )
            ),
            256,
        ),
    ],
)
def test_max_with_too_many_arguments_is_a_parse_error(text: str, got: int) -> None:
    with pytest.raises(ParseError, match=f"at most 16 arguments of Max .*got {got}"):
        parse(text)


def test_a_text_case_with_a_150_argument_max_is_refused_at_once() -> None:
    """150 arguments made `verijac list` hang past 60 s."""
    args = ", ".join(f"x[{i}]" for i in range(150))
    text = f'name = "hostile_max150"\noutputs = "Max({args})"\n[inputs]\nx = [150]\n'
    with pytest.raises(ParseError, match=r"^mine\.toml: .*got 150"):
        case_from_text(text + "[domain]\nx = [-1, 1]\n", source="mine.toml")
    args = ", ".join(f"x[{i}]" for i in range(16))
    text = f'name = "hostile_max16"\noutputs = "Max({args})"\n[inputs]\nx = [16]\n'
    case = case_from_text(text + "[domain]\nx = [-1, 1]\n")
    assert case.n_in == 16 and isinstance(case.out_exprs[0], sympy.Max)


# -- item 7: n-D array inputs in text cases --------------------------------------------------
def test_a_text_case_with_a_2d_array_input_works_end_to_end() -> None:
    text = """
name = "hostile_det2"
outputs = "x[0,0]*x[1,1] - x[0,1]*x[1,0]"
[inputs]
x = [2, 2]
[domain]
x = [-5, 5]
[[known]]
at = { x = [[1, 2], [3, 4]] }
value = -2
jacobian = [[4, -3], [-2, 1]]
"""
    case = case_from_text(text)
    assert case.variables[0].shape == (2, 2)
    a = torch.tensor([[[0.5, -1.0], [1.5, 0.25]]], dtype=torch.float64)
    expected = torch.func.vmap(torch.func.jacrev(torch.linalg.det))(a)
    assert torch.allclose(case.torch_jacobian()(a), expected)


def test_a_text_case_with_a_3d_array_input() -> None:
    text = 'name = "hostile_3d"\noutputs = "x[1,2,3] * x[0,0,0]"\n[inputs]\nx = [2, 3, 4]\n'
    case = case_from_text(text + "[domain]\nx = [-1, 1]\n")
    jac = case.jacobian()
    assert jac.shape == (2, 3, 4)
    a, b = case.variables[0].symbols[0], case.variables[0].symbols[-1]
    assert jac[0, 0, 0] == b and jac[1, 2, 3] == a and jac[1, 0, 0] == 0


# -- item 8: constants float64 cannot hold ---------------------------------------------------
@pytest.mark.parametrize(
    ("output", "needle"),
    [
        (x * sympy.oo, "not a finite number"),
        (sympy.gamma(1000) ** 3 * x, "does not fit float64"),
        (sympy.Pow(x, 10**300), "as an exponent exceeds"),
        (float("nan"), "not a finite number"),
        (sympy.factorial(3000) * x, "does not fit float64"),
        (sympy.Pow(x, sympy.Float("1e300")), "as an exponent exceeds"),
        (sympy.exp(sympy.Integer(1000), evaluate=False) * x, "overflows float64"),
        (sympy.Float("1e400") * x, "overflows float64"),
        (x + sympy.zoo, "not a finite number"),
    ],
)
def test_constants_float64_cannot_hold_are_case_errors(output: object, needle: str) -> None:
    with pytest.raises(CaseError, match=needle) as info:
        Case("hostile_const", {"x": x}, output, {"x": (-1, 1)})
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "output", ["x*oo", "x*inf", "gamma(1000)**3*x", "x**(10**300)", "x**1e300", "1e400*x"]
)
def test_text_outputs_with_such_constants_are_case_errors_naming_the_file(output: str) -> None:
    text = f'name = "hostile_text"\noutputs = "{output}"\n[inputs]\nx = []\n[domain]\nx = [-1, 1]\n'
    with pytest.raises(CaseError, match=r"^mine\.toml"):
        case_from_text(text, source="mine.toml")


# -- item 9 and item 4 (case modules): name the file and the item ----------------------------
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("CASES = 5\n", r"CASES must be a list of verijac.Case, got 5 of type int"),
        ("CASES = None\n", r"CASES must be a list of verijac.Case, got None"),
        ("CASES = ['str', 5]\n", r"CASES\[0\] must be a verijac.Case, got 'str'"),
        ("import sys\nsys.exit(0)\n", r"it called sys.exit\(0\) while being imported"),
        ("raise SystemExit\n", r"it called sys.exit\(None\)"),
        ("raise GeneratorExit\n", r"GeneratorExit"),
        ("import verijac\nverijac.Case('bad name', {}, 1, {})\n", r"mod\.py:2: a case name"),
    ],
)
def test_a_bad_case_module_is_a_case_error_naming_the_file(
    tmp_path: Path, body: str, needle: str
) -> None:
    (tmp_path / "mod.py").write_text(body, encoding="utf-8")
    with pytest.raises(CaseError, match=needle) as info:
        verijac.load_cases(tmp_path)
    assert str(tmp_path / "mod.py") in str(info.value)


def test_keyboard_interrupt_in_a_case_module_is_not_swallowed(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("raise KeyboardInterrupt\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        verijac.load_cases(tmp_path)


# -- issue 14: path patterns that select nothing ---------------------------------------------
def test_a_known_failure_pattern_that_selects_no_path_is_a_case_error() -> None:
    with pytest.raises(
        CaseError, match=r"'func\.hesian' selects no autograd path.*'func\.hessian'"
    ):
        Case("hostile_kf", {"x": x}, x**2, {"x": (-1, 1)}, known_failures={"func.hesian": "r"})
    with pytest.raises(CaseError, match="did you mean 'func'"):
        Case("hostile_kf", {"x": x}, x**2, {"x": (-1, 1)}, known_failures={"fnuc@float32": "r"})


def test_known_failure_patterns_that_select_paths_are_accepted() -> None:
    patterns = ["contract.*", "higher-order@float32", "*@float32", "func.jac*_jac*", "contract"]
    case = Case(
        "hostile_kf_ok",
        {"x": x},
        x**2,
        {"x": (-1, 1)},
        known_failures={p: "a torch defect" for p in patterns},
    )
    assert len(case.known_failures) == len(patterns)


def test_a_path_tolerance_pattern_that_selects_no_path_is_a_usage_error() -> None:
    from verijac._tolerances import normalise_path_tolerances

    with pytest.raises(
        UsageError, match=r"'func\.jacrve' selects no autograd path.*'func\.jacrev'"
    ):
        normalise_path_tolerances({"func.jacrve": {"rtol": 1e-3}})
    assert normalise_path_tolerances({"contract.values": {"rtol": 1e-3}})


# -- issue 14: plain-symbol input --------------------------------------------------------------
def test_plain_symbols_are_substituted_without_re_evaluating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Re-evaluating tanh of a sum asks SymPy's assumptions about every term (15 s for a
    dense 64×64 case); the substitution must rebuild the expression as it is."""
    xs = sympy.symbols("p0:8")
    weights = [[(i + 2 * j) % 5 - 2.5 for j in range(8)] for i in range(8)]
    rows = [sympy.tanh(sympy.Add(*[w * s for w, s in zip(row, xs)])) for row in weights]
    calls = []
    original = sympy.tanh.eval.__func__

    def counting(cls: type, arg: object) -> object:
        calls.append(arg)
        return original(cls, arg)

    monkeypatch.setattr(sympy.tanh, "eval", classmethod(counting))
    case = Case("hostile_plain", {"p": list(xs)}, rows, {"p": (-1, 1)})
    assert calls == []
    assert all(s.is_real for s in case.in_symbols)
    assert {s.name for e in case.out_exprs for s in e.free_symbols} <= {s.name for s in xs}
    assert all(s in case.in_symbols for e in case.out_exprs for s in e.free_symbols)
    point = torch.linspace(-0.9, 0.9, 8, dtype=torch.float64).reshape(1, 8)
    w = torch.tensor(weights, dtype=torch.float64)
    expected = torch.func.vmap(torch.func.jacrev(lambda v: torch.tanh(w @ v)))(point)
    assert torch.allclose(case.torch_jacobian()(point), expected)
