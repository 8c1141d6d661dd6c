"""The mpmath reference (``reference_digits``): agreement, correct rounding, plumbing, errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import mpmath
import pytest
import sympy
import torch
from verijac_cases.seeds import CASES as SEEDS
from verijac_cases.seeds import seed_grad_loop

from verijac import (
    Case,
    CaseError,
    UsageError,
    check,
    register_function,
    scalar,
    unregister_function,
)
from verijac._precise import check_digits, precise_hessian, precise_jacobian
from verijac._reference import exact_hessian, exact_jacobian
from verijac.strategies import valid_rows


def _inside(case: Case, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """``n`` points inside the case's sampling bounds and clear of its exclusions."""
    gen = torch.Generator().manual_seed(seed)
    cols = []
    for v in case.variables:
        lo, hi = v.domain.sample_bounds()
        lo, hi = max(lo, -5.0), min(hi, 5.0)
        cols.append(
            lo + (hi - lo) * torch.rand(4 * n, *v.shape, generator=gen, dtype=torch.float64)
        )
    keep = valid_rows(case, tuple(cols))
    return tuple(c[keep][:n] for c in cols)


@pytest.mark.parametrize("case", SEEDS, ids=lambda c: c.name)
def test_agrees_with_the_float64_reference_on_the_seeds(case: Case) -> None:
    pts = _inside(case, 16, 0)
    for precise, float64 in (
        (precise_jacobian(case, pts, 30), exact_jacobian(case, pts)),
        (precise_hessian(case, pts, 30), exact_hessian(case, pts)),
    ):
        assert precise.dtype == torch.float64 and precise.shape == float64.shape
        torch.testing.assert_close(precise, float64, rtol=1e-13, atol=1e-13)


def test_entries_are_correctly_rounded() -> None:
    """d/dx log1p(x) = 1/(1 + x): the float64 code rounds 1 + x first; the mpmath reference
    rounds the exact value once, which is what an independent 60-digit evaluation gives."""
    x = scalar("x")
    case = Case("log1p_precise", {"x": x}, sympy.log(1 + x), {"x": (-0.5, 1)})
    xs = torch.tensor([3e-16, 1e-9 / 3, 0.1, 0.7, -0.3], dtype=torch.float64)
    got = precise_jacobian(case, (xs,), 30).flatten().tolist()
    with mpmath.workdps(60):
        want = [float(1 / (1 + mpmath.mpf(v))) for v in xs.tolist()]
    assert got == want
    assert exact_jacobian(case, (xs,)).flatten().tolist()[0] != want[0]  # float64 is 1 ULP off


def test_user_function_evaluated_through_sympy() -> None:
    class cube(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return 3 * self.args[0] ** 2

        def _eval_evalf(self, prec: int) -> sympy.Float:
            return (self.args[0] ** 3)._eval_evalf(prec)

    register_function(cube, lambda t: t**3)
    try:
        x = scalar("x")
        case = Case("cube_user", {"x": x}, sympy.sin(cube(x)), {"x": (0.5, 1.5)})
        xs = torch.tensor([0.75, 1.25], dtype=torch.float64)
        got = precise_jacobian(case, (xs,), 30).flatten().tolist()
    finally:
        unregister_function(cube)
    with mpmath.workdps(60):
        want = [float(mpmath.cos(mpmath.mpf(v) ** 3) * 3 * mpmath.mpf(v) ** 2) for v in xs.tolist()]
    assert got == want


def test_a_function_without_numeric_evaluation_is_a_case_error() -> None:
    class opaque(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return opaque(self.args[0])

    register_function(opaque, torch.exp)
    try:
        x = scalar("x")
        case = Case("opaque_user", {"x": x}, opaque(x), {"x": (0, 1)})
        with pytest.raises(CaseError, match="cannot evaluate opaque"):
            precise_jacobian(case, (torch.tensor([0.5], dtype=torch.float64),), 30)
        report = check(case, paths="func.vmap_jacrev", dtypes="float64", devices="cpu", seed=0,
                       max_examples=1, batch_size=8, reference_digits=20)  # fmt: skip
    finally:
        unregister_function(opaque)
    (rec,) = report.records
    assert rec.status == "error" and "cannot evaluate opaque" in rec.reason


@pytest.mark.parametrize("bad", [16, 1001, 30.0, True, "30"])
def test_digits_are_validated(bad: object) -> None:
    with pytest.raises(UsageError, match="reference_digits"):
        check_digits(bad)
    with pytest.raises(UsageError, match="reference_digits"):
        check(seed_grad_loop, reference_digits=bad)  # type: ignore[arg-type]
    assert check_digits(None) is None and check_digits(17) == 17


def test_check_with_the_mpmath_reference() -> None:
    report = check(
        seed_grad_loop,
        paths=["func.vmap_jacrev", "func.hessian"],
        dtypes="float64",
        devices="cpu",
        seed=5,
        max_examples=2,
        batch_size=16,
        reference_digits=25,
    )
    assert report.passed, str(report)
    assert report.settings["reference"] == "mpmath at 25 digits, rounded to float64"
    assert "reference: mpmath at 25 digits" in report.summary()
    default = check(seed_grad_loop, paths="func.vmap_jacrev", dtypes="float64", devices="cpu",
                    seed=5, max_examples=1, batch_size=8)  # fmt: skip
    assert default.settings["reference"].startswith("float64")


def test_a_mismatch_reproduces_with_the_option() -> None:
    from verijac._runner import run
    from verijac.paths._base import Path as AutogradPath
    from verijac.paths._base import Problem, get_path

    def off(problem: Problem) -> torch.Tensor:
        return get_path("func.vmap_jacrev").run(problem) * (1 + 1e-5)

    path = AutogradPath("t.off", "func", "jacobian", "jacrev, 1e-5 off", off, batched=True)
    rep = run([seed_grad_loop], paths=[path], dtypes="float64", devices="cpu", seed=1,
              max_examples=1, batch_size=32, reference_digits=30)  # fmt: skip
    (rec,) = rep.records
    assert rec.status == "mismatch"
    assert rec.reproduce.endswith("--reference-digits 30")


def test_cli_option(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "verijac", "check", "--case", "seed_grad_loop", "--path",
           "func.vmap_jacrev", "--dtype", "float64", "--device", "cpu", "--seed", "1",
           "--max-examples", "1", "--batch-size", "8", "--reference-digits", "20",
           "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reference: mpmath at 20 digits" in done.stdout.splitlines()[0]
    assert json.loads(out.read_text())["settings"]["reference"].startswith("mpmath at 20")
    bad = subprocess.run([*cmd[:-4], "--reference-digits", "8"], capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert bad.returncode == 2 and "from 17 to 1000" in bad.stderr


def test_user_functions_named_like_mpmath_functions_keep_their_meaning() -> None:
    """A user's ``sinc`` (normalised, as torch.sinc) and one-argument ``psi`` are evaluated
    through SymPy, not by the mpmath functions of the same names."""

    class sinc(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            x = self.args[0]
            return (sympy.cos(sympy.pi * x) - sinc(x)) / x

        def _eval_evalf(self, prec: int) -> sympy.Float:
            x = self.args[0]
            return (sympy.sin(sympy.pi * x) / (sympy.pi * x))._eval_evalf(prec)

    class psi(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return 2 * self.args[0]

        def _eval_evalf(self, prec: int) -> sympy.Float:
            return (self.args[0] ** 2)._eval_evalf(prec)

    register_function(sinc, torch.sinc)
    register_function(psi, torch.square)
    try:
        x = scalar("x")
        case = Case("user_names", {"x": x}, sinc(x) + sympy.sin(psi(x)), {"x": (0.5, 1.5)})
        got = precise_jacobian(case, (torch.tensor([0.75], dtype=torch.float64),), 30).item()
    finally:
        unregister_function(sinc)
        unregister_function(psi)
    with mpmath.workdps(60):
        v = mpmath.mpf(0.75)
        normalised = mpmath.sin(mpmath.pi * v) / (mpmath.pi * v)
        want = float((mpmath.cos(mpmath.pi * v) - normalised) / v + mpmath.cos(v**2) * 2 * v)
    assert got == want


def test_cancellation_raises_the_precision_until_the_rounding_settles() -> None:
    """d/dx (exp(x) - x) = exp(x) - 1 loses 12 digits at x = 1e-12: asked for 17 digits, the
    reference still returns the correctly rounded value."""
    x = scalar("x")
    case = Case("expm1_by_hand", {"x": x}, sympy.exp(x) - x, {"x": (-1, 1)})
    xs = torch.tensor([1e-12, -3e-11, 0.5], dtype=torch.float64)
    got = precise_jacobian(case, (xs,), 17).flatten().tolist()
    with mpmath.workdps(80):
        want = [float(mpmath.expm1(mpmath.mpf(v))) for v in xs.tolist()]
    assert got == want


def test_concurrent_evaluations_keep_their_precision() -> None:
    import threading

    x = scalar("x")
    case = Case("expm1_threads", {"x": x}, sympy.exp(x) - x, {"x": (-1, 1)})
    xs = torch.full((200,), 1e-12, dtype=torch.float64)
    with mpmath.workdps(80):
        want = float(mpmath.expm1(mpmath.mpf(1e-12)))
    results: list[list[float]] = []

    def work(digits: int) -> None:
        results.append(precise_jacobian(case, (xs,), digits).flatten().tolist())

    threads = [threading.Thread(target=work, args=(d,)) for d in (17, 40, 17, 60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(v == want for r in results for v in r)
    assert mpmath.mp.dps == 15  # the process-wide precision is restored


def test_roundoff_noise_in_a_zero_entry_does_not_make_a_row_suspect() -> None:
    """An entry that is zero in truth and noise in float64 beside entries of order 1 is no
    reason to re-evaluate the row; a small entry that really moves still is."""
    from verijac._reference import suspect_rows

    value = torch.tensor([[1.0, 1e-17], [1.0, 1e-3], [2.0, float("nan")]], dtype=torch.float64)
    moved = torch.tensor([[1.0, 3e-17], [1.0, 2e-3], [2.0, 0.0]], dtype=torch.float64)
    assert suspect_rows(value, moved, value).tolist() == [False, True, True]
    # A single entry is measured against itself: sin(x)/x's removable singularity still shows.
    alone = torch.tensor([[1e-17]], dtype=torch.float64)
    noisy = torch.tensor([[3e-17]], dtype=torch.float64)
    assert suspect_rows(alone, noisy, alone).tolist() == [True]


def test_a_steep_small_entry_is_not_suspect_but_its_noise_is() -> None:
    """An entry of 1e-4 of its row's largest that changes by 1e-8 of itself under the moves,
    the same either way, is smooth, not noise (a one-sided change flagged it); the same entry
    with noise of that size (the two moves disagree) is suspect."""
    from verijac._reference import suspect_rows

    value = torch.tensor([[1.0, 1e-4]], dtype=torch.float64)
    up = torch.tensor([[1.0, 1e-4 + 1e-12]], dtype=torch.float64)
    down = torch.tensor([[1.0, 1e-4 - 1e-12]], dtype=torch.float64)
    assert suspect_rows(value, up, down).tolist() == [False]
    assert suspect_rows(value, up, up).tolist() == [True]
    assert suspect_rows(value, up, value).tolist() == [True]


def test_roundoff_at_float64_resolution_of_the_row_is_not_suspect() -> None:
    """network_attention's Hessian: an entry zero in truth is noise of ~1e-15 of its row's
    largest (1.2e-16 beside 0.12), the roundoff of any float64 evaluation of that row; it is
    not settled with mpmath (it cost seconds per row). Noise of 1e-12 of the row is."""
    from verijac._reference import suspect_rows

    value = torch.tensor([[0.12, 5e-17]], dtype=torch.float64)
    down = torch.tensor([[0.12, 5e-17 + 2.5e-16]], dtype=torch.float64)
    assert suspect_rows(value, value, down).tolist() == [False]
    down = torch.tensor([[0.12, 2.4e-13]], dtype=torch.float64)
    assert suspect_rows(value, value, down).tolist() == [True]


def test_a_jump_far_below_the_checked_dtype_is_not_settled_again() -> None:
    """A float64 value that moves in its ninth digit is settled for a float64 check and kept
    for a float32 one (a tenth of float32's epsilon), where it is exact enough; a jump that a
    float32 check could see, and NaN, are settled for both."""
    from verijac._reference import SUSPECT_RTOL, _Reference, suspect_rows

    value = torch.tensor([[1.0], [1.0], [float("nan")]], dtype=torch.float64)
    moved = torch.tensor([[1.0 + 3e-9], [1.0 + 1e-6], [1.0]], dtype=torch.float64)
    f32 = max(SUSPECT_RTOL, torch.finfo(torch.float32).eps / 10)
    assert suspect_rows(value, moved, value).tolist() == [True, True, True]
    assert suspect_rows(value, moved, value, f32).tolist() == [False, True, True]
    from verijac import Case, scalar

    x = scalar("x")
    case = Case("rel_rtol", {"x": x}, x**2, {"x": (-1, 1)})
    problem = None  # the threshold depends on the dtype alone
    assert _Reference(case, problem, torch.float64, 0).suspect_rtol == SUSPECT_RTOL  # type: ignore[arg-type]
    assert _Reference(case, problem, torch.float32, 0).suspect_rtol == f32  # type: ignore[arg-type]


def test_the_reference_is_the_same_in_one_call_or_three(monkeypatch: pytest.MonkeyPatch) -> None:
    """A point and its moves are evaluated in one call where the results are small, one call
    each where they are large (`ONE_CALL_ENTRIES`): the same values, the same rows settled."""
    from verijac import Case, _reference, scalar

    x = scalar("x")
    case = Case("c_sinc_calls", {"x": x}, sympy.sin(x) / x, {"x": (-2, 2)})
    at = (torch.tensor([1e-9, 0.5, 1.7, 0.0], dtype=torch.float64),)
    one = (_reference.exact_jacobian(case, at), _reference.exact_hessian(case, at))
    monkeypatch.setattr(_reference, "ONE_CALL_ENTRIES", 0)
    three = (_reference.exact_jacobian(case, at), _reference.exact_hessian(case, at))
    for a, b in zip(one, three, strict=True):
        assert torch.equal(a, b)
    assert float(one[1].flatten()[0]) == pytest.approx(-1 / 3, rel=1e-12)  # settled at 1e-9


def test_a_difference_made_of_its_own_roundoff_is_not_inconsistent() -> None:
    """A derivative that is zero where the function is ~1 (so its central difference is the
    function's roundoff divided by the step, ~1e-10) is consistent with it; a derivative that
    rounds to zero where the truth is -1/3 (sin(x)/x's second derivative near 0) is not, nor
    is a derivative off by 1 % of a difference that is far above that roundoff."""
    from verijac._reference import inconsistent_rows

    def lower(args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (x,) = args
        # 1 + one roundoff of 1 on one side: a flat function evaluated with float64 noise.
        bump = (x > 0.5).to(torch.float64) * torch.finfo(torch.float64).eps
        return (1.0 + bump).reshape(-1, 1)

    x = (torch.tensor([0.5], dtype=torch.float64),)
    assert inconsistent_rows(torch.zeros(1, 1, 1, dtype=torch.float64), x, lower).tolist() == [
        False
    ]

    def sinc_slope(args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (x,) = args  # d/dx sin(x)/x ≈ -x/3 near 0
        return (-x / 3).reshape(-1, 1)

    small = (torch.tensor([1e-9], dtype=torch.float64),)
    zero = torch.zeros(1, 1, 1, dtype=torch.float64)
    assert inconsistent_rows(zero, small, sinc_slope).tolist() == [True]
    third = torch.full((1, 1, 1), -1 / 3, dtype=torch.float64)
    assert inconsistent_rows(third, small, sinc_slope).tolist() == [False]
    assert inconsistent_rows(third * 1.01, small, sinc_slope).tolist() == [True]


def test_rows_far_below_atol_are_kept_as_float64_evaluates_them() -> None:
    """sin(x)/x's second derivative at 1e-9 is cancellation noise in float64 (truth -1/3):
    settled whatever ``negligible`` is below its size. Scaled by 1e-13, truth -3.3e-14 and
    float64 noise of ~3e-11: a thousandth of atol 1e-7 would not notice either, so with
    ``negligible`` = 1e-10 the row keeps float64's value (no mpmath), and with 0 it is
    settled."""
    from verijac import Case, _reference, scalar

    x = scalar("x")
    at = (torch.tensor([1e-9, 0.5], dtype=torch.float64),)
    sinc = Case("c_sinc_negligible", {"x": x}, sympy.sin(x) / x, {"x": (-2, 2)})
    hess = _reference.exact_hessian(sinc, at, negligible=1e-10).flatten()
    assert float(hess[0]) == pytest.approx(-1 / 3, rel=1e-12)
    tiny = Case("c_tiny_sinc", {"x": x}, sympy.sin(x) / x / sympy.Integer(10) ** 13, {"x": (-2, 2)})
    kept = _reference.exact_hessian(tiny, at, negligible=1e-10).flatten()
    settled = _reference.exact_hessian(tiny, at).flatten()
    assert 0 < abs(float(kept[0])) < 1e-10 and float(kept[0]) != float(settled[0])
    assert float(settled[0]) == pytest.approx(-1 / 3 * 1e-13, rel=1e-12)
    assert float(kept[1]) == float(settled[1])  # a regular row is the same either way


def test_the_runner_settles_every_suspect_row_when_atol_is_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The threshold comes from the tolerances the paths compare under: a thousandth of the
    smallest atol, and nothing at all for a case that allows no absolute error."""
    import verijac
    from verijac import _reference, scalar
    from verijac._tolerances import resolve_tolerance

    seen: list[float] = []
    real = _reference._settled

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append(float(args[6]) if len(args) > 6 else float(kwargs.get("negligible", 0.0)))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_reference, "_settled", spy)
    x = scalar("x")
    opts = {"seed": 0, "max_examples": 1, "batch_size": 4, "dtypes": "float64"}
    plain = verijac.Case("c_neg_default", {"x": x}, sympy.sin(x), {"x": (-1, 1)})
    verijac.check_op(torch.sin, plain, paths=["func.jacrev"], **opts)  # type: ignore[arg-type]
    atol = resolve_tolerance("float64", order=1).atol  # the jacobian's: 2 × 1e-7
    assert seen and all(v == pytest.approx(_reference.NEGLIGIBLE * atol) for v in seen)
    seen.clear()
    strict = verijac.Case(
        "c_neg_zero",
        {"x": x},
        sympy.sin(x),
        {"x": (-1, 1)},
        tolerances={"float64": {"atol": 0.0}},
    )
    verijac.check_op(torch.sin, strict, paths=["func.jacrev"], **opts)  # type: ignore[arg-type]
    assert seen and all(v == 0.0 for v in seen)


@pytest.mark.parametrize("wide", [False, True])
def test_the_conditioning_term_is_the_same_with_the_moves_stacked_or_one_by_one(
    monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    """`_Reference.cond` evaluates the moved points stacked along the batch (one call of the
    generated code for all of them where they fit in `COND_STACK_ENTRIES`): the same term
    as one reference per move, for a case moved one element at a time and for one wider
    than `COND_COORDINATES` (random signs), and at points a path moved."""
    from verijac import Case, _reference, array, scalar
    from verijac._reference import _Reference, make_problem

    size = _reference.COND_COORDINATES + 1 if wide else 3
    v, s = array("v", size), scalar("s")
    expr = sympy.sin(s * sum(v)) / (1 + sum(x**2 for x in v))
    case = Case(f"c_cond_stack_{size}", {"v": v, "s": s}, expr, {"v": (-1, 1), "s": (0.5, 2)})
    gen = torch.Generator().manual_seed(3)
    vs = torch.rand(6, size, generator=gen, dtype=torch.float64) * 2 - 1
    ss = torch.rand(6, generator=gen, dtype=torch.float64) + 0.5
    problem = make_problem(case, (vs, ss), generator=gen)

    def conds() -> list[torch.Tensor]:
        ref = _Reference(case, problem, torch.float32, 0)
        moved = ref.at((vs, ss[:1].expand_as(ss).clone()))  # s fixed at row 0, as a range path
        return [r.cond(k) for r in (ref, moved) for k in ("jacobian", "jvp", "hessian")]

    def unbatched() -> torch.Tensor:
        # s given without a batch dimension (one value for every point): the moves stack
        # along the batch of v, with s expanded to it.
        fixed = dataclasses.replace(problem, inputs=(vs, ss[2]))
        return _Reference(case, fixed, torch.float32, 0).cond("jacobian")

    stacked, alone = conds(), unbatched()
    monkeypatch.setattr(_reference, "COND_STACK_ENTRIES", 1)
    for a, b in zip([*stacked, alone], [*conds(), unbatched()], strict=True):
        assert torch.equal(a, b)
    assert all(bool((c > 0).any()) for c in [*stacked, alone])
