"""Strategies: points stay in the domain and off exclusions, structured values appear."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from verijac_cases.seeds import seed_batched_gradient, seed_matrix_square

from verijac import Case, Interval, UsageError, array, scalar
from verijac import strategies as vst

x, y = scalar("x"), scalar("y")
EXCL = Case(
    "strat_excl",
    {"x": x, "y": y},
    sympy.log(sympy.Abs(x - y)) + 1 / x,
    {"x": Interval(-2, 3, exclude=(0,)), "y": Interval.open(0, 5)},
    exclude=[x - y],
)
M = array("m", (3, 3))
MAT = Case("strat_matrix", {"m": M}, sympy.Add(*sympy.flatten(M.tolist())), {"m": (-2, 2)})
FAST = settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_points_stay_in_domain_and_avoid_exclusions(dtype: torch.dtype) -> None:
    @FAST
    @given(vst.points(EXCL, batch_size=50, dtype=dtype))
    def inner(pts: dict[str, Any]) -> None:
        xs, ys = pts["x"].double(), pts["y"].double()
        assert pts["x"].dtype == dtype and xs.shape == ys.shape and 1 <= len(xs) <= 50
        assert bool(((xs >= -2) & (xs <= 3) & (xs.abs() >= 1e-3)).all())
        assert bool(((ys > 0) & (ys < 5)).all())
        assert bool(((xs - ys).abs() >= EXCL.margin).all())

    inner()


def test_special_values_and_single_points_appear() -> None:
    seen_sizes: set[int] = set()
    values: list[float] = []

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(vst.points(seed_batched_gradient))
    def inner(pts: dict[str, Any]) -> None:
        seen_sizes.add(int(pts["x0"].shape[0]))
        values.extend(pts["x1"].tolist())

    inner()
    assert 1 in seen_sizes and len(seen_sizes) > 1
    assert 0.0 in values and 3.0 in values and -3.0 in values
    assert any(0 < abs(v) < 1e-5 for v in values)


def test_structured_matrices_appear() -> None:
    kinds: set[str] = set()

    @FAST
    @given(vst.points(MAT, batch_size=64))
    def inner(pts: dict[str, Any]) -> None:
        for m in pts["m"]:
            if torch.equal(m, torch.eye(3, dtype=m.dtype)):
                kinds.add("identity")
            elif not m.any():
                kinds.add("zero")
            elif torch.equal(m, torch.diag(torch.diagonal(m))):
                kinds.add("diagonal")
            elif torch.equal(m, m.T):
                kinds.add("symmetric")
            if torch.linalg.matrix_rank(m) < 3:
                kinds.add("rank_deficient")
            if bool((m == m.flatten()[0]).all()):
                kinds.add("repeated")

    inner()
    assert kinds >= {"identity", "zero", "diagonal", "symmetric", "rank_deficient", "repeated"}


def test_identity_is_filtered_when_the_domain_excludes_it() -> None:
    pos = Case("strat_pos", {"m": M}, sympy.Add(*sympy.flatten(M.tolist())), {"m": (2, 4)})

    @FAST
    @given(vst.points(pos, batch_size=32))
    def inner(pts: dict[str, Any]) -> None:
        assert bool((pts["m"] >= 2).all() & (pts["m"] <= 4).all())

    inner()


def test_batches_tangents_cotangents_shapes() -> None:
    @FAST
    @given(vst.batches(seed_matrix_square, batch_size=7, dtype="float32"))
    def inner(b: vst.Batch) -> None:
        assert b.size == 7 and b.inputs[0].shape == (7, 2, 2)
        assert b.tangents.shape == (7, 4) and b.cotangents.shape == (7, 4)
        assert b.tangents.dtype == torch.float64

    @FAST
    @given(
        vst.tangents(seed_matrix_square, batch_size=3),
        vst.cotangents(seed_batched_gradient, batch_size=3),
    )
    def vecs(t: torch.Tensor, c: torch.Tensor) -> None:
        assert t.shape == (3, 4) and c.shape == (3, 1)

    inner()
    vecs()


def test_profiles_are_registered() -> None:
    assert settings.get_profile("verijac-ci").max_examples == vst.PROFILES["ci"].max_examples
    assert vst.get_profile(None) == vst.PROFILES["dev"]
    assert vst.get_profile("thorough").batch_size == 1024
    with pytest.raises(UsageError, match="unknown profile"):
        vst.get_profile("warp-speed")


@pytest.mark.parametrize(
    "call",
    [
        lambda: vst.points(EXCL, batch_size=0),
        lambda: vst.points(EXCL, dtype="int8"),
        lambda: vst.points("strat_excl"),  # type: ignore[arg-type]
        lambda: vst.tangents(EXCL, batch_size=True),
    ],
)
def test_bad_arguments_raise_usage_error(call: Any) -> None:
    with pytest.raises(UsageError):
        call()


def test_valid_rows_checks_domain_and_exclude_expressions() -> None:
    xs = torch.tensor([1.0, 1.0, 0.0, 2.0], dtype=torch.float64)
    ys = torch.tensor([2.0, 1.0, 1.0, 6.0], dtype=torch.float64)
    assert vst.valid_rows(EXCL, (xs, ys)).tolist() == [True, False, False, False]


def test_large_batches_are_drawn_in_bulk_and_contiguous() -> None:
    sizes: list[int] = []

    @settings(max_examples=3, deadline=None, database=None)
    @given(vst.batches(EXCL, batch_size=10_000, dtype=torch.float32))
    def inner(b: vst.Batch) -> None:
        sizes.append(b.size)
        xs, ys = b.points["x"].double(), b.points["y"].double()
        assert all(t.is_contiguous() for t in b.inputs)
        assert bool(((xs >= -2) & (xs <= 3) & (xs.abs() >= 1e-3)).all())
        assert bool(((ys > 0) & (ys < 5) & ((xs - ys).abs() >= EXCL.margin)).all())
        assert len(set(xs.tolist())) > 1000  # the bulk is varied, not a few repeated values

    inner()
    assert sizes == [10_000] * 3


def test_valid_rows_without_exclusions_uses_the_quick_test_and_agrees() -> None:
    case = seed_batched_gradient  # no excluded points: column minima and maxima decide
    n = 64
    inside = tuple(torch.zeros(n, dtype=torch.float64) for _ in case.variables)
    assert vst.valid_rows(case, inside).tolist() == [True] * n
    lo, hi = case.variables[0].domain.sample_bounds()
    out = list(inside)
    out[0] = inside[0].clone()
    out[0][3], out[0][9] = hi + 1.0, math.nan
    assert vst.valid_rows(case, tuple(out)).nonzero().flatten().tolist() == [
        i for i in range(n) if i not in (3, 9)
    ]
    assert lo < 0.0 < hi


def test_bulk_values_mix_uniform_log_magnitude_and_special_kinds() -> None:
    """In the first `MIXED_ROWS` rows of a bulk draw, each element is uniform (~60 %),
    log-uniform in magnitude (~20 %) or one of the interval's special values (~20 %); rows
    beyond are uniform; all inside the sampling bounds."""
    x = scalar("x")
    case = Case("wide", {"x": x}, x**2, {"x": (-1000, 1000)})
    lo, hi = case.variables[0].domain.sample_bounds()
    gen = torch.Generator().manual_seed(3)
    from verijac.strategies import _fill

    drawn = _fill(case, vst.MIXED_ROWS + 20_000, gen, "float64").flatten()
    assert bool(((drawn >= lo) & (drawn <= hi)).all())
    tail = drawn[vst.MIXED_ROWS :]  # beyond the mixed rows: uniform in [lo, hi]
    assert float(tail.mean()) == pytest.approx(0.0, abs=2.0)
    assert float((tail.abs() < 1.0).double().mean()) == pytest.approx(0.01, abs=0.005)
    vals = torch.cat([_fill(case, vst.MIXED_ROWS, gen, "float64").flatten() for _ in range(16)])
    specials = torch.tensor(vst.specials(case.variables[0].domain), dtype=torch.float64)
    special = torch.isin(vals, specials)
    assert 0.17 < float(special.double().mean()) < 0.23
    # Log-uniform magnitudes in [1e-6, hi]: half of them below 1e-2 when hi = 100, where
    # uniform values almost never fall (0.01 %).
    tiny = (vals.abs() < 1e-2) & ~special
    assert 0.08 < float(tiny.double().mean()) < 0.12
    assert float((vals < 0).double().mean()) == pytest.approx(0.5, abs=0.05)


def test_structured_matrices_only_in_the_mixed_rows_of_a_large_draw() -> None:
    from verijac.strategies import _fill

    gen = torch.Generator().manual_seed(4)
    k = vst.MIXED_ROWS + 600
    mats = _fill(MAT, k, gen, "float64").reshape(k, 3, 3)

    def structured(m: torch.Tensor) -> bool:
        return bool(torch.equal(m, m.T) or (m == m.flatten()[0]).all() or not m.any())

    head = sum(structured(m) for m in mats[: vst.MIXED_ROWS])
    tail = sum(structured(m) for m in mats[vst.MIXED_ROWS :])
    assert head > vst.MIXED_ROWS // 10 and tail == 0


@pytest.mark.parametrize("batch_size", range(1, 9))
@pytest.mark.parametrize("seed", [0, 7, 123])
def test_every_batch_is_at_least_half_generic_with_row_0_generic(
    batch_size: int, seed: int
) -> None:
    """Special values (0, ±1, the ends …) are where a wrong derivative is often right by
    chance (0 for x·sin x), so they may never fill a batch: the even rows, row 0 among them,
    are uniform in the domain, in Hypothesis's simplest example too."""
    case = EXCL
    special = {
        name: set(vst.specials(v.domain, "float64")) for name, v in zip("xy", case.variables)
    }
    seen: list[dict[str, Any]] = []

    @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(vst.points(case, batch_size=batch_size, seed=seed))
    def inner(pts: dict[str, Any]) -> None:
        seen.append(pts)

    inner()
    for pts in seen:
        n = int(pts["x"].shape[0])
        assert n == batch_size
        generic = [
            i for i in range(n) if all(float(pts[k][i]) not in special[k] for k in ("x", "y"))
        ]
        assert 0 in generic and len(generic) >= (n + 1) // 2
