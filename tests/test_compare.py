"""Tolerance table, overrides, ULP errors and the comparison bound."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from verijac import UsageError
from verijac._compare import compare, spacing, ulp_error
from verijac._tolerances import (
    VALUE_TOLERANCES,
    Tolerance,
    base_tolerance,
    dtype_name,
    normalise_path_tolerances,
    resolve_tolerance,
)

PATH = SimpleNamespace(name="func.vmap_jacrev", family="func")


def test_table_is_torch_testing_defaults() -> None:
    assert VALUE_TOLERANCES == {
        "float64": (1e-7, 1e-7),
        "float32": (1.3e-6, 1e-5),
        "float16": (1e-3, 1e-5),
        "bfloat16": (1.6e-2, 1e-5),
    }
    assert base_tolerance("float32", order=0) == Tolerance(1.3e-6, 1e-5)
    first, second = base_tolerance(torch.float32, order=1), base_tolerance("float", order=2)
    assert first.rtol == pytest.approx(2.6e-6) and second.rtol == pytest.approx(5.2e-6)


def test_dtype_names() -> None:
    assert dtype_name(torch.float64) == dtype_name("double") == "float64"
    assert dtype_name("half") == "float16"
    with pytest.raises(UsageError, match="dtype must be one of"):
        dtype_name(torch.int32)


def test_case_and_path_overrides() -> None:
    case_tol = {"float32": {"rtol": 1e-4}}
    tol = resolve_tolerance("float32", order=1, case_tolerances=case_tol)
    assert (tol.rtol, tol.atol, tol.source) == (1e-4, 2e-5, "case")
    assert resolve_tolerance("float64", order=1, case_tolerances=case_tol).source == "table"
    for pattern in ("func.vmap_jacrev", "func", "func.*"):
        over = normalise_path_tolerances({pattern: {"float32": {"atol": 1e-3}}})
        tol = resolve_tolerance(
            "float32", order=1, case_tolerances=case_tol, path=PATH, path_tolerances=over
        )
        assert (tol.rtol, tol.atol, tol.source) == (1e-4, 1e-3, "path")
    every = normalise_path_tolerances({"func": {"rtol": 0.5}})
    assert resolve_tolerance("float16", order=2, path=PATH, path_tolerances=every).rtol == 0.5
    other = normalise_path_tolerances({"reverse.*": {"rtol": 0.5}})
    assert resolve_tolerance("float16", order=2, path=PATH, path_tolerances=other).source == "table"


@pytest.mark.parametrize(
    "bad",
    [
        ["rtol"],
        {"p": {"rtol": -1.0}},
        {"p": {"float32": {"tol": 1.0}}},
        {"p": {"int8": {"rtol": 1}}},
    ],
)
def test_bad_overrides(bad: object) -> None:
    with pytest.raises(UsageError):
        normalise_path_tolerances(bad)  # type: ignore[arg-type]


def test_ulp_spacing() -> None:
    one = torch.tensor([1.0, 1.5, 2.0, -4.0], dtype=torch.float64)
    assert spacing(one, torch.float32).tolist() == [2**-23, 2**-23, 2**-22, 2**-21]
    assert spacing(one, torch.float64)[0] == 2**-52
    assert spacing(one, torch.float16)[0] == 2**-10
    assert spacing(one, torch.bfloat16)[0] == 2**-7
    tiny = torch.finfo(torch.float32)
    assert spacing(torch.zeros(1, dtype=torch.float64), torch.float32)[0] == tiny.eps * tiny.tiny
    for dt in (torch.float32, torch.float16):
        x = torch.tensor([1.25, 3.0, 1000.0], dtype=dt)
        nxt = torch.nextafter(x, torch.full_like(x, math.inf))
        assert ulp_error(nxt, x.double(), dt).tolist() == [1.0, 1.0, 1.0]
    actual = torch.tensor([1 + 3 * 2**-23], dtype=torch.float32)
    assert ulp_error(actual, torch.ones(1, dtype=torch.float64), torch.float32).item() == 3.0


def test_compare_reports_worst_entry() -> None:
    exp = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    act = exp.clone().float()
    act[1, 0] *= 1.001
    cmp = compare(act, exp, dtype=torch.float32, tolerance=base_tolerance("float32"))
    assert not cmp.ok
    assert cmp.index == [1, 0] and cmp.bad_rows == [1]
    assert cmp.expected == 3.0 and cmp.actual == pytest.approx(3.003)
    assert cmp.max_rel == pytest.approx(1e-3, rel=1e-3)
    assert cmp.max_abs == pytest.approx(3e-3, rel=1e-3)
    assert cmp.max_ulp == pytest.approx(3e-3 / 2**-22, rel=1e-3)
    ok = compare(exp.float(), exp, dtype=torch.float32, tolerance=base_tolerance("float32"))
    assert ok.ok and ok.max_abs == 0.0


def test_scale_and_cond_widen_the_bound() -> None:
    exp = torch.tensor([[1e-3]], dtype=torch.float64)
    act = torch.tensor([[1e-3 + 5e-5]], dtype=torch.float32)
    tol = base_tolerance("float32")
    assert not compare(act, exp, dtype=torch.float32, tolerance=tol).ok
    assert compare(
        act, exp, dtype=torch.float32, tolerance=tol, scale=torch.full_like(exp, 100.0)
    ).ok
    assert compare(act, exp, dtype=torch.float32, tolerance=tol, cond=torch.full_like(exp, 1e-4)).ok


def test_non_finite_results() -> None:
    exp = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    for bad in (math.nan, math.inf):
        cmp = compare(
            torch.tensor([[1.0, bad]]),
            exp,
            dtype=torch.float32,
            tolerance=base_tolerance("float32"),
        )
        assert not cmp.ok and cmp.nonfinite and cmp.index == [0, 1]
    # An exact value beyond float16's range is not the path's defect.
    huge = torch.tensor([[1e6, 1.0]], dtype=torch.float64)
    cmp = compare(
        torch.tensor([[math.inf, 1.0]]),
        huge,
        dtype=torch.float16,
        tolerance=base_tolerance("float16"),
    )
    assert cmp.ok and cmp.checked == 1


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        compare(
            torch.zeros(2, 3),
            torch.zeros(2, 2),
            dtype=torch.float32,
            tolerance=base_tolerance("float32"),
        )


def test_weight_scales_atol_and_unrepresentable_entries_are_skipped() -> None:
    from verijac._compare import bound, unravel

    exp = torch.zeros(1, 2, dtype=torch.float64)
    act = torch.tensor([[3e-5, 3e-5]])
    tol = base_tolerance("float32")  # atol 2e-5 for first derivatives
    assert not bound(exp, dtype=torch.float32, tolerance=tol).check(act).ok
    # A VJP entry summing two Jacobian entries with cotangent weights 1 and 1 may be off by
    # twice the atol of one entry.
    weight = torch.full_like(exp, 2.0)
    assert bound(exp, dtype=torch.float32, tolerance=tol, weight=weight).check(act).ok
    # No exact value (NaN) or one beyond the dtype: skipped, whatever the path returns.
    odd = torch.tensor([[math.nan, 1e300]], dtype=torch.float64)
    cmp = bound(odd, dtype=torch.float32, tolerance=tol).check(torch.tensor([[1.0, math.inf]]))
    assert cmp.ok and cmp.checked == 0
    assert unravel(7, (2, 3, 2)) == [1, 0, 1]


def test_power_of_two_from_the_exponent_bits() -> None:
    from verijac._compare import _power_of_two

    gen = torch.Generator().manual_seed(0)
    e = torch.exp(torch.empty(2000, dtype=torch.float64).uniform_(-700, 700, generator=gen))
    e = torch.cat(
        [e, torch.tensor([1.0, 2.0, 0.75, 2.0**-1022, 1.5 * 2.0**1023], dtype=torch.float64)]
    )
    mantissa, _ = torch.frexp(e)
    assert torch.equal(_power_of_two(e), e / (2 * mantissa))
    assert _power_of_two(torch.tensor([math.inf], dtype=torch.float64)).item() == math.inf


def test_unlocated_comparison_reports_the_same_errors() -> None:
    from verijac._compare import bound

    gen = torch.Generator().manual_seed(1)
    exp = torch.randn(50, 3, 4, dtype=torch.float64, generator=gen)
    exp[0, 0, 0] = 0.0  # below atol: no relative or ULP error there
    exp[7, 1, 2] = 2.0
    act = (exp * (1 + 1e-7 * torch.randn(exp.shape, dtype=torch.float64, generator=gen))).float()
    b = bound(exp, dtype=torch.float32, tolerance=base_tolerance("float32"))
    full, quick = b.check(act), b.check(act, locate=False)
    assert full.ok and quick.ok
    assert (quick.max_abs, quick.max_rel, quick.max_ulp) == (
        full.max_abs,
        full.max_rel,
        full.max_ulp,
    )
    assert full.index and quick.index == [] and math.isnan(quick.expected)
    bad = act.clone()
    bad[7, 1, 2] *= 1.001
    miss = b.check(bad, locate=False)  # a failure is always located
    assert not miss.ok and miss.index == [7, 1, 2] and miss.bad_rows == [7]
    # ... unless the caller only asks whether it fails (it then widens the bound and asks
    # again): the same verdict, nothing described.
    verdict = b.check(bad, locate=False, describe=False)
    assert not verdict.ok and verdict.index == [] and math.isnan(verdict.max_abs)
    assert b.check(act, locate=False, describe=False) == quick


def test_weights_broadcast_to_the_weighted_sums() -> None:
    """``weights`` equals the result computed with every derivative entry 1 and absolute
    tangents and cotangents (the sum of the weights each entry combines)."""
    from verijac_cases.seeds import seed_tuple_io

    from verijac._compare import weights
    from verijac._kinds import KINDS
    from verijac._reference import exact_hessian, exact_jacobian, expected, make_problem

    gen = torch.Generator().manual_seed(2)
    pts = [
        torch.rand(6, *v.shape, dtype=torch.float64, generator=gen) for v in seed_tuple_io.variables
    ]
    problem = make_problem(seed_tuple_io, pts, generator=gen)
    jac, hess = exact_jacobian(seed_tuple_io, pts), exact_hessian(seed_tuple_io, pts)
    ones = dataclasses.replace(
        problem, tangents=problem.tangents.abs(), cotangents=problem.cotangents.abs()
    )
    weighted = [k.name for k in KINDS if k.weight is not None]
    assert weighted == ["jvp", "vjp", "vjp_accumulated", "hvp", "vhp", "chvp"]
    for kind in weighted:
        want = expected(kind, ones, torch.ones_like(jac), torch.ones_like(hess))
        got = weights(kind, problem, jac.device)
        assert torch.allclose(got.expand_as(want), want), kind
    for plain in (k.name for k in KINDS if k.plain):
        assert weights(plain, problem, jac.device) is None


def test_power_of_two_at_zero_subnormals_and_nan() -> None:
    """0 and subnormals give 0 (callers mask them: `spacing` takes the subnormal spacing
    there), inf stays inf, NaN gives inf (its ULP error stays NaN)."""
    from verijac._compare import _power_of_two

    special = torch.tensor([0.0, 5e-324, 2.0**-1030, math.inf, math.nan], dtype=torch.float64)
    assert _power_of_two(special).tolist() == [0.0, 0.0, 0.0, math.inf, math.inf]
    tiny64 = torch.finfo(torch.float64)
    assert spacing(special[:3], torch.float64).tolist() == [tiny64.eps * tiny64.tiny] * 3
    assert math.isnan(ulp_error(torch.ones(1), torch.tensor([math.nan]), torch.float32).item())


def test_unlocated_comparison_edge_cases() -> None:
    from verijac._compare import bound

    f32 = base_tolerance("float32")
    exp = torch.tensor([[1.0, 2.0, 1e6]], dtype=torch.float64)
    b = bound(exp, dtype=torch.float32, tolerance=f32)
    for bad in (math.nan, math.inf, -math.inf):
        cmp = b.check(torch.tensor([[1.0, bad, 1e6]]), locate=False)
        assert not cmp.ok and cmp.nonfinite and cmp.index == [0, 1]
    # beyond float16's range: skipped, so an inf there passes and is not counted
    b16 = bound(exp, dtype=torch.float16, tolerance=base_tolerance("float16"))
    cmp = b16.check(torch.tensor([[1.0, 2.0, math.inf]]), locate=False)
    assert cmp.ok and cmp.checked == 2 and cmp.max_abs == 0.0
    # an unbounded entry (allowed = inf, e.g. a row outside the domain) passes whatever it is
    b.allowed = b.allowed.clone()
    b.allowed[0, 1] = math.inf
    assert b.check(torch.tensor([[1.0, math.inf, 1e6]]), locate=False).ok
    # cond widens the bound; an empty result passes
    act = torch.tensor([[1.0 + 1e-4, 2.0, 1e6]])
    assert not b.check(act, locate=False).ok
    assert b.check(act, cond=torch.full_like(exp, 1e-3), locate=False).ok
    empty = bound(torch.zeros(0, 3, dtype=torch.float64), dtype=torch.float32, tolerance=f32)
    assert empty.check(torch.zeros(0, 3), locate=False).ok


def test_ulp_error_stays_defined_for_tiny_exact_values_with_zero_atol() -> None:
    exp = torch.tensor([[1e-300, 1.0]], dtype=torch.float64)
    tol = Tolerance(rtol=1e-7, atol=0.0, source="test")
    from verijac._compare import bound

    cmp = bound(exp, dtype=torch.float64, tolerance=tol).check(exp.clone(), locate=False)
    assert cmp.ok and cmp.max_ulp == 0.0 and cmp.max_rel == 0.0
