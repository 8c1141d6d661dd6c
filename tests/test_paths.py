"""The autograd path catalogue: every path against the exact reference on the seed cases."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path as FsPath
from typing import Any

import pytest
import sympy
import torch

from cases.seeds import (
    CASES,
    SEED_003_TABLE,
    seed_batched_gradient,
    seed_grad_loop,
    seed_matrix_square,
    seed_tuple_io,
)
from verijac import Case, UsageError, array, scalar
from verijac._kinds import KINDS
from verijac._reference import exact_hessian, exact_jacobian, expected, make_problem
from verijac.paths import (
    CAPABILITIES,
    AutogradPath,
    BehaviourMismatch,
    PathResult,
    Problem,
    Unsupported,
    get_path,
    list_paths,
)
from verijac.paths._catalogue import BUILTIN_FAMILIES, TABLE_END, TABLE_START, catalogue_table

DOCS = FsPath(__file__).resolve().parents[1] / "docs" / "paths.md"
BUILTIN = list_paths(family=BUILTIN_FAMILIES)
PATHS = [p for p in BUILTIN if not p.opt_in]
SECOND_ORDER = {k.name for k in KINDS if k.second_order}
DTYPES = [torch.float64, torch.float32]
N_POINTS = 3


def _points(case: Case, dtype: torch.dtype, n: int = N_POINTS, seed: int = 0) -> list[torch.Tensor]:
    """Random points inside the case's domain (every seed domain is a closed interval)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in case.variables:
        lo, hi = max(float(v.domain.lo), -3.0), min(float(v.domain.hi), 3.0)
        u = torch.rand(n, *v.shape, generator=gen, dtype=torch.float64)
        out.append((lo + (hi - lo) * u).to(dtype))
    return out


def _problem(case: Case, inputs: Sequence[torch.Tensor], **kw: Any) -> Problem:
    return make_problem(case, inputs, generator=torch.Generator().manual_seed(1), **kw)


def _run(path: AutogradPath, problem: Problem) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The path's value and the points it was computed at."""
    result = path.run(problem)
    if isinstance(result, PathResult):
        return result.value, result.inputs or problem.inputs
    return result, problem.inputs


def _reference(
    path: AutogradPath, case: Case, problem: Problem, points: Sequence[torch.Tensor]
) -> Any:
    jac = exact_jacobian(case, points)
    hess = exact_hessian(case, points) if path.computes in SECOND_ORDER else None
    return expected(path.computes, problem, jac, hess)


def _assert_matches(actual: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    __tracebackhide__ = True
    assert actual.dtype == dtype, f"result dtype {actual.dtype}, inputs are {dtype}"
    assert not actual.requires_grad, "a path's result must be detached"
    assert actual.shape == want.shape, f"shape {tuple(actual.shape)}, expected {tuple(want.shape)}"
    scale = max(1.0, float(want.abs().max()))
    if dtype == torch.float64:
        rtol, atol = 1e-10, 1e-12 * scale
    else:
        rtol, atol = 1e-5, 1e-5 * scale
    torch.testing.assert_close(actual.double(), want, rtol=rtol, atol=atol)


def _why_unsupported(path: AutogradPath, problem: Problem) -> str | None:
    """The reason a reader expects this path to be unsupported on this problem, if any."""
    if "scalar_output" in path.requires and not problem.scalar_output:
        return "one scalar output"
    if "unused_input" in path.requires and not any(problem.unused_inputs):
        return "no output depends on"
    return None


# -- every path on every seed case, float64 and float32 ------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_path_matches_exact_reference(path: AutogradPath, case: Case, dtype: torch.dtype) -> None:
    problem = _problem(case, _points(case, dtype))
    reason = _why_unsupported(path, problem)
    if reason is not None:
        with pytest.raises(Unsupported, match=reason):
            path.run(problem)
        return
    if path.computes == "behaviour":
        assert path.run(problem) is None
        return
    value, points = _run(path, problem)
    _assert_matches(value, _reference(path, case, problem, points), dtype)


# -- the seeds' printed values, exactly ----------------------------------------------------------
JACOBIAN_PATHS = [p for p in PATHS if p.computes == "jacobian"]


def _known_problem(case: Case, index: int = 0) -> Problem:
    point = case.known[index].at
    inputs = [
        torch.tensor(point[v.name], dtype=torch.float64).reshape(1, *v.shape)
        for v in case.variables
    ]
    return _problem(case, inputs)


@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: c.name)
@pytest.mark.parametrize("path", JACOBIAN_PATHS, ids=lambda p: p.name)
def test_seed_jacobians_exact(path: AutogradPath, case: Case) -> None:
    problem = _known_problem(case)
    value, _ = _run(path, problem)
    want = exact_jacobian(case, problem.inputs)
    assert torch.equal(value, want), f"{path.name} on {case.name}: {value} != {want}"


def _seed_003_problem(spoil_rows: bool) -> Problem:
    """x0 = 1…9 and the others 1 (rows after the first spoiled when asked)."""
    x0 = torch.arange(1.0, 10.0, dtype=torch.float64)
    others = [torch.ones(9, dtype=torch.float64) for _ in range(4)]
    if spoil_rows:
        for x in others:
            x[1:] = 7.0
    return _problem(seed_batched_gradient, [x0, *others])


TABLE = torch.tensor(SEED_003_TABLE, dtype=torch.float64)


@pytest.mark.parametrize(
    "name",
    [
        "functional.jacobian",
        "func.vmap_jacrev",
        "func.vmap_jacfwd",
        "reverse.grad_loop",
        "forward.dual",
        "func.vmap_in_dims",
    ],
)
def test_seed_003_table(name: str) -> None:
    value, _ = _run(get_path(name), _seed_003_problem(spoil_rows=False))
    assert torch.equal(value[:, 0, :], TABLE)


@pytest.mark.parametrize("name", ["func.grad", "func.vmap_grad"])
def test_seed_003_table_by_gradient(name: str) -> None:
    value, _ = _run(get_path(name), _seed_003_problem(spoil_rows=False))
    assert torch.equal(value, TABLE)


def test_seed_003_range_paths_fix_the_other_inputs_at_row_0() -> None:
    problem = _seed_003_problem(spoil_rows=True)
    result = get_path("func.vmap_in_dims").run(problem)
    assert isinstance(result, PathResult) and result.inputs is not None
    assert torch.equal(result.value[:, 0, :], TABLE)
    assert torch.equal(result.inputs[0], problem.inputs[0])
    for x in result.inputs[1:]:
        assert torch.equal(x, torch.ones(9, dtype=torch.float64))


def test_seed_003_jvp_range_gives_table_times_v() -> None:
    problem = _seed_003_problem(spoil_rows=True)
    v = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    problem.tangents = v.expand(9, 5).clone()
    result = get_path("func.jvp_range").run(problem)
    assert isinstance(result, PathResult)
    assert torch.equal(result.value[:, 0], TABLE @ v)


# -- seed 001: gradient accumulation -------------------------------------------------------------
def _seed_001_problem(cotangent: float) -> Problem:
    x = torch.eye(2, dtype=torch.float64).reshape(1, 2, 2)
    problem = _problem(seed_matrix_square, [x])
    problem.cotangents = torch.full((1, 4), cotangent, dtype=torch.float64)
    return problem


def test_seed_001_backward_with_ones() -> None:
    value = get_path("reverse.vjp_random").run(_seed_001_problem(1.0))
    assert torch.equal(value, torch.tensor([[4.0, 2.0, 2.0, 4.0]], dtype=torch.float64))


@pytest.mark.parametrize("pointwise", [True, False])
def test_seed_001_two_backward_passes_accumulate(pointwise: bool) -> None:
    problem = _seed_001_problem(1.0)
    problem.pointwise = pointwise
    value = get_path("reverse.accumulation").run(problem)
    assert torch.equal(value, torch.tensor([[8.0, 4.0, 4.0, 8.0]], dtype=torch.float64))


def _square_plus_one(backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Any:
    """Seed 001's (x + 1)² as an autograd.Function with the given ``backward(x, g)``."""

    class SquarePlusOne(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return (x + 1) ** 2

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return backward(x, g)

    return SquarePlusOne.apply


_calls = [0]


def _noisy(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    _calls[0] += 1
    return 2 * (x + 1) * g * (1 + 1e-3 * _calls[0])


CORRECT = _square_plus_one(lambda x, g: 2 * (x + 1) * g)
#: A backward 0.1% too large.
OFF_BY_A_TENTH_PERCENT = _square_plus_one(lambda x, g: 2.002 * (x + 1) * g)
#: A backward that keeps only the sign of its incoming gradient.
IGNORES_GRAD_SCALE = _square_plus_one(lambda x, g: 2 * (x + 1) * torch.sign(g))
#: A backward that differs from one pass to the next.
NOISY = _square_plus_one(_noisy)


def test_accumulation_reports_inconsistent_passes() -> None:
    problem = _problem(seed_matrix_square, _points(seed_matrix_square, torch.float64))
    problem.func = NOISY
    with pytest.raises(BehaviourMismatch, match="accumulate"):
        get_path("reverse.accumulation").run(problem)


# -- broken and crashing functions ---------------------------------------------------------------
REVERSE = [
    "reverse.backward_onehot",
    "reverse.grad_loop",
    "reverse.vjp_random",
    "functional.jacobian",
]


def _mismatch(path: AutogradPath, problem: Problem, case: Case) -> bool:
    value, points = _run(path, problem)
    want = _reference(path, case, problem, points)
    return not torch.allclose(value, want, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", REVERSE)
def test_backward_off_by_a_tenth_of_a_percent_is_a_mismatch(name: str) -> None:
    case = seed_matrix_square
    problem = _problem(case, _points(case, torch.float64))
    problem.func = CORRECT
    assert not _mismatch(get_path(name), problem, case)
    problem.func = OFF_BY_A_TENTH_PERCENT
    assert _mismatch(get_path(name), problem, case)


def test_random_cotangents_catch_a_backward_that_ignores_the_gradient_scale() -> None:
    case = seed_matrix_square
    problem = _problem(case, _points(case, torch.float64))
    problem.func = IGNORES_GRAD_SCALE
    # One-hot cotangents have scale 1: the broken backward slips through them ...
    assert not _mismatch(get_path("reverse.backward_onehot"), problem, case)
    # ... and random cotangents catch it.
    assert _mismatch(get_path("reverse.vjp_random"), problem, case)


def _crash(*args: Any) -> Any:
    raise ValueError("the function under test crashed")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_a_crashing_function_propagates(path: AutogradPath) -> None:
    case = seed_batched_gradient
    problem = _problem(case, _points(case, torch.float64), func=_crash)
    if path.computes == "behaviour":
        pytest.skip("needs a case with an unused input; see the strict tests")
    with pytest.raises(ValueError, match="crashed"):
        path.run(problem)


# -- capability errors become Unsupported with torch's message --------------------------------------
class _OldStyle(torch.autograd.Function):
    """x² as an old-style Function: no setup_context, no jvp, so no torch.func or forward AD."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * g


def _data_dependent(x: torch.Tensor) -> torch.Tensor:
    return x**2 if bool(x.sum() > -100) else x


def _vector_problem(func: Callable[..., Any]) -> Problem:
    case = seed_grad_loop
    problem = _problem(case, _points(case, torch.float64))
    problem.func = func
    return problem


@pytest.mark.parametrize(
    ("name", "func", "message"),
    [
        ("forward.dual", _OldStyle.apply, "jvp function"),
        ("functional.jacobian_forward", _OldStyle.apply, "jvp function"),
        ("func.vjp", _OldStyle.apply, "setup_context"),
        ("func.vmap_jacrev", _data_dependent, "vmap"),
        ("func.vmap_in_dims", _data_dependent, "vmap"),
    ],
)
def test_missing_capability_is_unsupported(
    name: str, func: Callable[..., Any], message: str
) -> None:
    with pytest.raises(Unsupported, match=message):
        get_path(name).run(_vector_problem(func))


def test_data_dependent_control_flow_is_fine_outside_vmap() -> None:
    case = seed_grad_loop
    problem = _vector_problem(_data_dependent)
    problem.pointwise = False
    value, points = _run(get_path("reverse.grad_loop"), problem)
    _assert_matches(
        value, _reference(get_path("reverse.grad_loop"), case, problem, points), torch.float64
    )


def _margin_loss(x: torch.Tensor) -> torch.Tensor:
    target = torch.tensor([[1, -1, 0, 0]])
    return torch.nn.functional.multilabel_margin_loss(x.reshape(1, 4), target)


@pytest.mark.parametrize("name", ["higher.double_backward", "functional.hessian"])
def test_not_twice_differentiable_is_unsupported(name: str) -> None:
    # multilabel_margin_loss has a backward but no double backward in torch.
    x = torch.tensor([[0.5, 0.1, 0.3, 0.2]], dtype=torch.float64)
    problem = Problem(
        func=_margin_loss,
        inputs=(x,),
        in_shapes=((4,),),
        out_shapes=((),),
        tuple_inputs=False,
        tuple_outputs=False,
        tangents=torch.ones(1, 4, dtype=torch.float64),
        cotangents=torch.ones(1, 1, dtype=torch.float64),
        pointwise=False,
    )
    assert get_path("reverse.grad_loop").run(problem).shape == (1, 1, 4)
    with pytest.raises(Unsupported, match="not implemented"):
        get_path(name).run(problem)


# -- strict=True and unused inputs -----------------------------------------------------------------
x_s, y_s = scalar("x"), scalar("y")
UNUSED = Case(
    "test_unused_input",
    inputs={"x": x_s, "y": array("y", (2,))},
    outputs=(x_s**2, sympy.sin(x_s)),
    domain={"x": (-2, 2), "y": (-2, 2)},
    description="outputs depend on x only",
)


def test_strict_raises_the_documented_error_on_an_unused_input() -> None:
    problem = _problem(UNUSED, _points(UNUSED, torch.float64))
    assert problem.unused_inputs == (False, True)
    assert get_path("functional.jacobian_strict").run(problem) is None


def test_strict_without_an_unused_input_is_unsupported() -> None:
    problem = _problem(seed_matrix_square, _points(seed_matrix_square, torch.float64))
    with pytest.raises(Unsupported, match="no output depends on"):
        get_path("functional.jacobian_strict").run(problem)


def test_strict_not_raising_is_a_behaviour_mismatch() -> None:
    problem = _problem(UNUSED, _points(UNUSED, torch.float64))
    # An implementation that does touch y: torch rightly does not raise, and the path says so.
    problem.func = lambda x, y: (x**2 + 0 * y.sum(), torch.sin(x) + 0 * y.sum())
    with pytest.raises(BehaviourMismatch, match="did not raise"):
        get_path("functional.jacobian_strict").run(problem)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_unused_input_gets_zero_derivatives(path: AutogradPath) -> None:
    problem = _problem(UNUSED, _points(UNUSED, torch.float64))
    if _why_unsupported(path, problem) is not None or path.computes == "behaviour":
        pytest.skip("covered by the strict and scalar-output tests")
    value, points = _run(path, problem)
    _assert_matches(value, _reference(path, UNUSED, problem, points), torch.float64)


# -- pointwise: the summed-output trick versus the loop over points --------------------------------
GROUPED = [
    p
    for p in PATHS
    if p.batched
    and not p.name.startswith(("func.vmap", "func.jac", "func.hessian", "higher.j"))
    and p.name not in {"higher.grad_of_jvp", "func.jvp_range"}
]


@pytest.mark.parametrize("path", GROUPED, ids=lambda p: p.name)
def test_pointwise_false_loops_and_agrees(path: AutogradPath) -> None:
    case = seed_tuple_io
    inputs = _points(case, torch.float64)
    batched, _ = _run(path, _problem(case, inputs, pointwise=True))
    looped, _ = _run(path, _problem(case, inputs, pointwise=False))
    torch.testing.assert_close(looped, batched, rtol=1e-13, atol=1e-13)


v2 = array("x", (2,))
COUPLED = Case(
    "test_not_pointwise",
    inputs={"x": v2},
    outputs=v2.applyfunc(lambda e: e**2 * (v2[0] + v2[1]) / 2),
    domain={"x": (-2, 2)},
    # Correct for one point only: under a batch, mean() mixes the points.
    torch_impl=lambda x: x**2 * x.mean(),
)


@pytest.mark.parametrize("name", ["reverse.grad_loop", "reverse.vjp_random", "forward.dual"])
def test_not_pointwise_function_needs_the_loop(name: str) -> None:
    path = get_path(name)
    inputs = _points(COUPLED, torch.float64)
    looped = _problem(COUPLED, inputs, pointwise=False)
    value, points = _run(path, looped)
    _assert_matches(value, _reference(path, COUPLED, looped, points), torch.float64)
    # The summed-output trick is only valid for pointwise functions: here it is wrong.
    trick = _problem(COUPLED, inputs, pointwise=True)
    wrong, _ = _run(path, trick)
    assert not torch.allclose(wrong, value)


# -- registry and documentation ------------------------------------------------------------------
def test_catalogue_metadata() -> None:
    names = [p.name for p in BUILTIN]
    assert len(names) == len(set(names))
    for p in BUILTIN:
        assert p.description and p.call and p.cost, p.name
        assert set(p.uses) <= set(CAPABILITIES)
        assert ("scalar_output" in p.requires) == (
            p.name
            in {
                "functional.hessian",
                "functional.hvp",
                "functional.vhp",
                "func.grad",
                "func.vmap_grad",
                "func.hessian",
            }
        ), p.name
    assert {p.name for p in BUILTIN if p.opt_in} == {
        "compiled.jacrev",
        "compiled.forward_backward",
    }


def test_every_path_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [p.name for p in BUILTIN if f"`{p.name}`" not in text]
    assert not missing, f"docs/paths.md lacks {missing}"


def test_docs_table_is_generated_from_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(re.escape(TABLE_START) + r"\n(.*?)\n" + re.escape(TABLE_END), text, re.S)
    assert found, "docs/paths.md lacks the catalogue markers"
    assert found.group(1) == catalogue_table(), (
        "docs/paths.md is stale: regenerate with `python -m verijac.paths._catalogue`"
    )


def test_path_decorator_registers_the_function_as_its_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``@path(...)`` registers an `AutogradPath` with the given fields and the decorated
    function as its run, at the end of the catalogue, and returns the function unchanged."""
    from verijac.paths import _base, path

    monkeypatch.setattr(_base, "_PATHS", dict(_base._PATHS))
    fields: dict[str, Any] = {
        "name": "myorg.vjp",
        "family": "reverse",
        "computes": "vjp",
        "call": "torch.autograd.grad(out, x, grad_outputs=c)",
        "description": "a user's path",
    }

    @path(**fields, cost="1 f, 1 backward", batched=False)
    def run(problem: Problem) -> Any:
        return problem.cotangents

    found = get_path("myorg.vjp")
    assert found.run is run
    assert list_paths()[-1] is found
    assert (found.family, found.computes, found.call, found.description) == (
        "reverse",
        "vjp",
        "torch.autograd.grad(out, x, grad_outputs=c)",
        "a user's path",
    )
    assert (found.cost, found.batched, found.opt_in) == ("1 f, 1 backward", False, False)
    with pytest.raises(UsageError, match="already registered; pass replace=True"):
        path(**fields)(run)
    assert path(**fields, replace=True)(run) is run
    assert get_path("myorg.vjp").cost == ""


def test_path_decorator_rejects_an_unknown_field() -> None:
    from verijac.paths import path

    with pytest.raises(UsageError, match=r"unknown fields \['requirs'\].*'requires'"):
        path(
            name="myorg.typo",
            family="reverse",
            computes="vjp",
            call="c",
            description="d",
            requirs=frozenset({"pointwise"}),
        )


def test_importing_paths_does_not_import_torch() -> None:
    code = "import sys, verijac.paths; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- compiled paths (slow, opt-in) -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["compiled.jacrev", "compiled.forward_backward"])
def test_compiled_paths(name: str) -> None:
    path = get_path(name)
    case = seed_matrix_square
    problem = _problem(case, _points(case, torch.float64))
    try:
        value, points = _run(path, problem)
    except Unsupported as exc:
        pytest.skip(f"torch.compile is unavailable here: {exc}")
    _assert_matches(value, _reference(path, case, problem, points), torch.float64)


def test_path_is_the_old_name_of_autograd_path() -> None:
    """Code written against ``verijac.Path`` keeps working: it is the same class."""
    import verijac
    import verijac.paths

    assert verijac.Path is verijac.AutogradPath is verijac.paths.Path
    assert verijac.paths.AutogradPath is AutogradPath
