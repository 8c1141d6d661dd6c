"""The runner: outcomes per record, seeds, reproduction, TF32 and option validation.

The path catalogue is written elsewhere; these tests use small throwaway paths so they do not
depend on it.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from typing import Any

import pytest
import sympy
import torch
from verijac_cases.seeds import CASES, seed_batched_gradient, seed_grad_loop, seed_tuple_io

from verijac import Case, CaseError, UsageError, array, scalar
from verijac._resolve import resolve_devices, resolve_dtypes
from verijac._runner import check, run
from verijac.paths._base import AutogradPath, BehaviourMismatch, Problem, Unsupported

FAST: dict[str, Any] = {"max_examples": 2, "batch_size": 32, "devices": "cpu"}


# -- throwaway paths -------------------------------------------------------------------------
def _vjp(problem: Problem) -> torch.Tensor:
    xs = [x.detach().clone().requires_grad_(True) for x in problem.inputs]
    flat = problem.flat_outputs(problem.func(*xs))
    grads = torch.autograd.grad((flat * problem.cotangents).sum(), xs, allow_unused=True)
    return problem.flat_inputs(
        [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads, strict=True)]
    )


def _jacobian(problem: Problem) -> torch.Tensor:
    def one(flat: torch.Tensor) -> torch.Tensor:
        ins = [t[0] for t in problem.split_inputs(flat.unsqueeze(0))]
        out = problem.func(*ins)
        outs = out if problem.tuple_outputs else (out,)
        return torch.cat([o.reshape(-1) for o in outs])

    return torch.func.vmap(torch.func.jacrev(one))(problem.flat_inputs(problem.inputs))


def _hvp(problem: Problem) -> torch.Tensor:
    flat = problem.flat_inputs(problem.inputs).detach().requires_grad_(True)
    out = problem.func(*problem.split_inputs(flat))
    (g,) = torch.autograd.grad(out.sum(), flat, create_graph=True)
    (h,) = torch.autograd.grad((g * problem.tangents).sum(), flat)
    return h


VJP = AutogradPath("t.vjp", "reverse", "vjp", "autograd.grad", _vjp)
JAC = AutogradPath("t.jacrev", "func", "jacobian", "vmap(jacrev)", _jacobian, batched=True)
HVP = AutogradPath(
    "t.hvp", "higher-order", "hvp", "grad of grad", _hvp, requires=frozenset({"scalar_output"})
)
PATHS = [VJP, JAC, HVP]


def planted(path: AutogradPath, factor: float = 1.001) -> AutogradPath:
    """``path`` with a relative error of ``factor - 1`` in every entry."""

    def bad(problem: Problem) -> Any:
        return path.run(problem) * factor

    return dataclasses.replace(path, name=f"{path.name}.planted", run=bad)


def _raises(exc: Exception, **kw: Any) -> AutogradPath:
    def go(problem: Problem) -> Any:
        raise exc

    return AutogradPath(f"t.raises_{type(exc).__name__}", "reverse", "vjp", "raise", go, **kw)


# -- correctness of outcomes -----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(10))
def test_correct_paths_pass_on_every_seed(seed: int) -> None:
    report = run(CASES, paths=PATHS, seed=seed, **FAST)
    assert report.passed, str(report)
    assert {r.status for r in report.records} == {"pass", "unsupported"}


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_planted_tenth_percent_error_is_caught(seed: int, dtype: str) -> None:
    paths = [planted(VJP), planted(JAC), planted(HVP)]
    report = run(
        [seed_tuple_io, seed_batched_gradient], paths=paths, seed=seed, dtypes=dtype, **FAST
    )
    statuses = {(r.case, r.path): r.status for r in report.records}
    assert statuses[("seed_batched_gradient", "t.hvp.planted")] == "mismatch"
    assert statuses[("seed_tuple_io", "t.hvp.planted")] == "unsupported"
    for key, status in statuses.items():
        if key[1] != "t.hvp.planted":
            assert status == "mismatch", key
    for r in report.failures:
        assert r.max_rel is not None and r.max_rel > 9e-4


def test_records_cover_the_matrix_and_stream() -> None:
    seen: list[str] = []
    report = run(
        [seed_tuple_io, seed_grad_loop],
        paths=[VJP, JAC],
        dtypes=["float64", "float32"],
        seed=3,
        on_record=lambda r: seen.append(r.path),
        **FAST,
    )
    assert len(report.records) == 2 * 2 * 2 == len(seen)
    keys = {(r.case, r.path, r.device, r.dtype) for r in report.records}
    assert len(keys) == 8
    assert all(r.points > 0 for r in report.records)


def test_unbatched_path_gets_a_few_points() -> None:
    slow = dataclasses.replace(VJP, name="t.slow", batched=False)
    report = run([seed_tuple_io], paths=[slow, VJP], seed=1, dtypes="float64", **FAST)
    by = {r.path: r for r in report.records}
    assert by["t.slow"].points == 2 * 4
    assert by["t.vjp"].points == 2 * 32


def test_costly_paths_see_their_share_of_points() -> None:
    """A second-order path and a tracing path see the profile's ``costly_points`` (the first
    chunks), a wide case's second-order path fewer but at least the per-point share, and a
    first-order path every point drawn; a planted second-order error is still caught."""
    from verijac._evaluate import COSTLY_WORK, _point_cap

    x = scalar("x")
    case = Case("t_costly", {"x": x}, sympy.sin(x) ** 2, {"x": (-2, 2)})
    traced = dataclasses.replace(VJP, name="t.traced", traces=True)
    report = run(
        [case],
        paths=[VJP, HVP, traced, planted(HVP)],
        seed=1,
        dtypes="float64",
        devices="cpu",
        max_examples=8,
        batch_size=256,
    )
    by = {r.path: r for r in report.records}
    assert by["t.vjp"].points == 8 * 256
    from verijac.strategies import PROFILES

    assert by["t.hvp"].points == by["t.traced"].points == PROFILES["dev"].costly_points
    assert by["t.hvp"].status == "pass"
    assert by["t.hvp.planted"].status == "mismatch"
    # 36 outputs × 12 inputs: 15,552 evaluations per point, so a quarter of the share.
    wide = Case("t_wide", {"a": array("a", (12,))}, sympy.Array([0] * 36), {"a": (-1, 1)})
    assert COSTLY_WORK < 36 * 12 * 36
    assert _point_cap(HVP, wide, 1024, 40) == 1024 * COSTLY_WORK // (36 * 12 * 36)
    assert _point_cap(HVP, wide, 64, 40) == 40  # never fewer than a per-point path
    assert _point_cap(HVP, case, 1024, 40) == 1024
    assert _point_cap(JAC, wide, 1024, 40) is None
    assert _point_cap(dataclasses.replace(JAC, batched=False), wide, 1024, 40) == 40


def test_ci_checks_each_chunk_in_one_call_and_dev_cuts_one_row_off() -> None:
    """The ci profile runs a batched path once on its chunk (`Profile.pieces = ()`); without
    a profile the first chunk also goes through alone as one row, so that a defect at batch
    size one shows. A path wrong only for one row is caught there and passes in ci."""
    sizes: list[int] = []

    def vjp(problem: Problem) -> Any:
        sizes.append(problem.N)
        out = VJP.run(problem)
        return out * 2 if problem.N == 1 else out

    seen = AutogradPath("t.sizes", "reverse", "vjp", "autograd.grad", vjp)
    x = scalar("x")
    case = Case("t_pieces", {"x": x}, sympy.sin(x), {"x": (-2, 2)})
    report = run([case], paths=[seen], seed=1, dtypes="float64", devices="cpu", profile="ci")
    assert sizes == [4 * 64] and report.records[0].status == "pass"
    sizes.clear()
    report = run([case], paths=[seen], seed=1, dtypes="float64", **FAST)
    assert sizes[:2] == [2 * 32 - 1, 1] and report.records[0].status == "mismatch"


def test_unsupported_error_and_behaviour_outcomes() -> None:
    paths = [
        HVP,
        _raises(Unsupported("no forward-mode rule"), uses=frozenset({"forward_ad"})),
        _raises(RuntimeError("boom")),
        _raises(BehaviourMismatch("grads did not accumulate")),
        VJP,
    ]
    report = run([seed_tuple_io], paths=paths, seed=0, dtypes="float64", **FAST)
    by = {r.path: r for r in report.records}
    assert by["t.hvp"].status == "unsupported"
    assert "requires a scalar output" in by["t.hvp"].reason
    assert by["t.raises_Unsupported"].status == "unsupported"
    assert by["t.raises_Unsupported"].reason == "no forward-mode rule"
    assert by["t.raises_RuntimeError"].status == "error"
    assert by["t.raises_RuntimeError"].reason.startswith("RuntimeError: boom (raised at ")
    assert "test_runner.py:" in by["t.raises_RuntimeError"].reason  # the line that raised
    assert by["t.raises_BehaviourMismatch"].status == "mismatch"
    assert "did not accumulate" in by["t.raises_BehaviourMismatch"].reason
    assert by["t.vjp"].status == "pass"  # an error never stops the others

    required = run(
        [seed_tuple_io], paths=paths[1:2], seed=0, dtypes="float64", require=["forward_ad"], **FAST
    )
    (rec,) = required.records
    assert rec.status == "mismatch"
    assert rec.reason.startswith("required capability forward_ad: no forward-mode rule")


def test_nan_result_is_a_mismatch() -> None:
    def nan_at_zero(problem: Problem) -> Any:
        out = _vjp(problem)
        return torch.where(problem.flat_inputs(problem.inputs) > 0, out, torch.nan)

    path = AutogradPath("t.nan", "reverse", "vjp", "nan", nan_at_zero)
    report = run([seed_grad_loop], paths=[path], seed=0, dtypes="float64", **FAST)
    (rec,) = report.records
    assert rec.status == "mismatch"
    assert rec.actual is not None and rec.actual != rec.actual  # NaN
    assert "NaN/inf" in rec.reason


def test_nan_reference_is_a_case_defect() -> None:
    x = scalar("x")
    case = Case("sqrt_closed", {"x": x}, sympy.sqrt(x), {"x": (0, 4)})
    report = run([case], paths=[VJP], seed=0, dtypes="float64", **FAST)
    (rec,) = report.records
    assert rec.status == "error"
    assert rec.reason.startswith("case defect: reference is inf at")
    assert rec.point == {"x": 0.0}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_skipped() -> None:
    report = run([seed_tuple_io], paths=[VJP], devices=["cpu", "cuda"], dtypes="float64", seed=0)
    by = {r.device: r for r in report.records}
    assert by["cpu"].status == "pass"
    assert by["cuda"].status == "skipped"
    assert "CUDA is not available" in by["cuda"].reason
    assert report.passed
    assert resolve_devices(["cuda:1"])[0][1]


def test_tf32_is_off_during_the_check_and_restored() -> None:
    seen = []

    def spy(problem: Problem) -> Any:
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return _vjp(problem)

    path = AutogradPath("t.spy", "reverse", "vjp", "spy", spy)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        report = run([seed_grad_loop], paths=[path], seed=0, dtypes="float64", **FAST)
        assert seen and not any(seen)
        assert report.settings["tf32"] is False
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def test_same_seed_same_points_independent_of_other_paths() -> None:
    def recorder(store: list[torch.Tensor]) -> AutogradPath:
        def rec(problem: Problem) -> Any:
            store.append(problem.flat_inputs(problem.inputs).clone())
            return _vjp(problem)

        return AutogradPath(f"t.rec{id(store)}", "reverse", "vjp", "rec", rec)

    a: list[torch.Tensor] = []
    b: list[torch.Tensor] = []
    c: list[torch.Tensor] = []
    run([seed_batched_gradient], paths=[recorder(a)], seed=11, dtypes="float32", **FAST)
    run([seed_batched_gradient], paths=[JAC, recorder(b)], seed=11, dtypes="float32", **FAST)
    run([seed_batched_gradient], paths=[recorder(c)], seed=12, dtypes="float32", **FAST)
    # Two batches, drawn apart and evaluated together: the path sees them in two pieces, the
    # rest first, then one row alone.
    assert len(a) == len(b) == 2
    assert [x.shape[0] for x in a] == [2 * FAST["batch_size"] - 1, 1]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert sum(x.shape[0] for x in a) == 2 * FAST["batch_size"]
    assert not torch.equal(a[0], c[0])


def test_random_seed_is_stated() -> None:
    report = run([seed_grad_loop], paths=[VJP], dtypes="float64", **FAST)
    assert isinstance(report.seed, int)
    assert f"seed {report.seed}" in report.summary()


# -- a wrong custom backward, reproduced from its command line ---------------------------------
class _WrongSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x + 1) ** 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * 2 * (x + 1) * torch.where(x > 2.5, 1.01, 1.0)  # wrong above 2.5


X = array("x", (2, 2))
WRONG = Case(
    "wrong_square_backward",
    {"x": X},
    X.applyfunc(lambda e: (e + 1) ** 2),
    {"x": (-10, 10)},
    torch_impl=_WrongSquare.apply,
)


def _parse(command: str) -> dict[str, Any]:
    words = shlex.split(command)
    assert words[:2] == ["verijac", "check"]
    opts: dict[str, Any] = {}
    it = iter(words[2:])
    for flag in it:
        key = flag.removeprefix("--").replace("-", "_")
        if key == "tf32":
            opts[key] = True
            continue
        value = next(it)
        opts[key] = int(value) if key in ("seed", "max_examples", "batch_size") else value
    return opts


def test_wrong_backward_mismatch_reproduces_from_its_command() -> None:
    report = run([WRONG], paths=[VJP, JAC], seed=5, dtypes="float32", **FAST)
    assert not report.passed
    rec = next(r for r in report.records if r.path == "t.vjp")
    assert rec.status == "mismatch"
    assert rec.point is not None and any(v > 2.5 for row in rec.point["x"] for v in row)
    opts = _parse(rec.reproduce)
    cases = {WRONG.name: WRONG}
    paths = {p.name: p for p in (VJP, JAC)}
    again = check(
        cases=cases[opts.pop("case")],
        paths=paths[opts.pop("path")],
        devices=opts.pop("device"),
        dtypes=opts.pop("dtype"),
        **opts,
    )
    (rec2,) = again.records
    assert rec2.status == "mismatch"
    assert (rec2.point, rec2.expected, rec2.actual) == (rec.point, rec.expected, rec.actual)


def test_shrinks_toward_simple_values() -> None:
    report = run([WRONG], paths=[VJP], seed=2, dtypes="float64", **FAST)
    (rec,) = report.records
    assert rec.point is not None
    flat = [v for row in rec.point["x"] for v in row]
    # Only the entry that triggers the bug stays off the simplest values.
    assert sum(v in (0.0, 1.0, -1.0) for v in flat) >= 3
    assert any(v > 2.5 for v in flat)


# -- option validation ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"max_examples": 0},
        {"batch_size": "big"},
        {"dtypes": "int32"},
        {"devices": "tpu?"},
        {"profile": "nope"},
        {"require": ["teleport"]},
        {"time_budget": 0},
        {"tolerances": {"t.vjp": {"rtol": -1}}},
    ],
)
def test_bad_options_raise_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        run([seed_grad_loop], paths=[VJP], **kwargs)


def test_check_accepts_case_objects_and_lists() -> None:
    report = check([seed_grad_loop, seed_grad_loop], paths=[VJP], dtypes="float64", seed=0, **FAST)
    assert [r.case for r in report.records] == ["seed_grad_loop"]
    assert resolve_dtypes(None) == ["float64", "float32"]
    assert resolve_dtypes([torch.float16, "bfloat16"]) == ["float16", "bfloat16"]


def test_half_precision_on_request() -> None:
    report = run([seed_grad_loop], paths=[VJP], dtypes=["float16", "bfloat16"], seed=0, **FAST)
    assert report.passed, str(report)


def test_time_budget_still_checks_one_batch() -> None:
    report = run(
        [seed_grad_loop],
        paths=[VJP],
        dtypes="float64",
        seed=0,
        time_budget=1e-9,
        max_examples=50,
        batch_size=8,
        devices="cpu",
    )
    (rec,) = report.records
    assert rec.status == "pass" and rec.points == 8


# -- known failures ------------------------------------------------------------------------
def _with_known(known: dict[str, str]) -> Case:
    return Case(
        "known_square",
        {"x": X},
        X.applyfunc(lambda e: (e + 1) ** 2),
        {"x": (-10, 10)},
        known_failures=known,
    )


def test_known_failure_is_xfail_and_a_fixed_one_is_xpass() -> None:
    reason = "torch.square's backward is off by 0.1 % (planted)."
    case = _with_known({"t.vjp.planted@float32": reason, "t.jacrev": "never fails."})
    report = run([case], paths=[planted(VJP), JAC], seed=3, dtypes=["float32", "float64"], **FAST)
    by = {(r.path, r.dtype): r for r in report.records}
    xfail = by[("t.vjp.planted", "float32")]
    assert xfail.status == "xfail"
    assert reason in xfail.reason and "t.vjp.planted@float32" in xfail.reason
    assert "expected" in xfail.reason and xfail.max_rel is not None and xfail.max_rel > 9e-4
    assert "shown at the worst point of the batch" in xfail.reason  # known: not shrunk
    assert xfail.reproduce.startswith("verijac check --case known_square")
    # The key names float32 only: the same defect in float64 is an ordinary failure.
    assert by[("t.vjp.planted", "float64")].status == "mismatch"
    assert [(r.path, r.dtype) for r in report.failures] == [("t.vjp.planted", "float64")]
    assert by[("t.jacrev", "float32")].status == "xpass"
    assert "did not show" in by[("t.jacrev", "float64")].reason
    assert report.counts()["xpass"] == 2


@pytest.mark.parametrize(
    "known",
    [
        ["func.*"],
        {3: "reason"},
        {"": "reason"},
        {"@float32": "reason"},
        {"func.*@int8": "reason"},
        {"func.*": ""},
        {"func.*": None},
    ],
)
def test_known_failures_are_validated(known: Any) -> None:
    with pytest.raises(CaseError, match="known_failures"):
        _with_known(known)


def test_known_failure_keys_are_normalised() -> None:
    case = _with_known({"func.hessian@float": " torch … . ", "higher-order": "x."})
    assert case.known_failures == {"func.hessian@float32": "torch … .", "higher-order": "x."}


def test_per_point_paths_stop_at_the_profile_budget() -> None:
    slow = dataclasses.replace(VJP, name="t.slow", batched=False)
    report = run(
        [seed_tuple_io], paths=[slow, VJP], seed=1, dtypes="float64", profile="ci", devices="cpu"
    )
    by = {r.path: r for r in report.records}
    assert by["t.slow"].points == 8  # PROFILES["ci"].unbatched_points
    assert by["t.vjp"].points == 4 * 64


def test_warnings_inside_a_path_are_kept_on_its_record() -> None:
    import warnings

    import verijac
    from verijac._runner import run
    from verijac.paths import AutogradPath, get_path

    jacrev = get_path("func.vmap_jacrev")

    def noisy(problem: Any) -> Any:
        warnings.warn("torch said something", UserWarning, stacklevel=1)
        return jacrev.run(problem)

    path = AutogradPath("test.noisy", "func", "jacobian", "torch.func.vmap(jacrev(f))", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape to the user
        report = run(
            [verijac.get_case("seed_grad_loop")], paths=[], extra_paths=[path],
            devices=["cpu"], dtypes=["float64"], seed=0, max_examples=1,
        )  # fmt: skip
    (record,) = report.records
    assert record.status == "pass"
    assert record.warnings == ["UserWarning: torch said something"]
    assert verijac.Report.from_json(report.to_json()).records[0].warnings == record.warnings


def test_a_defective_reference_is_evaluated_once_and_stops_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import verijac._reference as reference

    calls: list[int] = []
    original = reference.exact_jacobian

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reference, "exact_jacobian", counting)
    x = scalar("x")
    case = Case("log_closed", {"x": x}, sympy.log(x), {"x": (0, 4)})
    paths = [dataclasses.replace(VJP, name=f"t.vjp{i}") for i in range(8)]
    report = run([case], paths=paths, seed=0, dtypes="float64", **FAST)
    assert all(r.status == "error" and r.reason.startswith("case defect") for r in report.records)
    assert len(calls) == 1


def test_warnings_of_other_threads_stay_out_of_path_records() -> None:
    import threading
    import warnings

    def with_a_thread(problem: Problem) -> torch.Tensor:
        warnings.warn("from the path", UserWarning, stacklevel=1)
        other = threading.Thread(
            target=lambda: warnings.warn("elsewhere", UserWarning, stacklevel=1)
        )
        other.start()
        other.join()
        return _vjp(problem)

    shown: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        path = AutogradPath("t.threads", "reverse", "vjp", "vjp", with_a_thread)
        report = run([seed_tuple_io], paths=[path], seed=0, dtypes="float64", **FAST)
    (rec,) = report.records
    assert rec.status == "pass" and rec.warnings == ["UserWarning: from the path"]
    assert shown and set(shown) == {"elsewhere"}  # shown as usual


def test_a_result_of_the_wrong_shape_is_an_error() -> None:
    wrong = AutogradPath("t.wrong_shape", "reverse", "vjp", "vjp[:, :1]", lambda p: _vjp(p)[:, :1])
    report = run([seed_tuple_io], paths=[wrong, VJP], seed=0, dtypes="float64", **FAST)
    bad, good = report.records
    assert bad.status == "error" and "ShapeError: result has shape" in bad.reason
    assert good.status == "pass"


def test_rows_a_path_moved_outside_the_domain_are_not_compared() -> None:
    """A path that reports other points (``PathResult.inputs``) may leave the domain there;
    whatever it gives at those rows, NaN included, is not compared."""
    from verijac.paths._base import PathResult

    x = scalar("x")
    case = Case("log_moved", {"x": x}, sympy.log(x), {"x": (0.5, 4)})

    def moved(problem: Problem) -> PathResult:
        (xs,) = problem.inputs
        shifted = xs.clone()
        shifted[::2] = -1.0  # every other row leaves the domain
        value = torch.where(shifted > 0, 1 / shifted, torch.nan).reshape(-1, 1, 1)
        return PathResult(value, inputs=(shifted,))

    path = AutogradPath("t.moved", "func", "jacobian", "moved", moved, batched=True)
    report = run([case], paths=[path], seed=0, dtypes="float64", **FAST)
    (rec,) = report.records
    assert rec.status == "pass", rec.reason
    assert rec.max_abs is not None and math.isfinite(rec.max_abs)


def test_a_group_that_ends_early_is_not_a_flaky_hypothesis_failure() -> None:
    """A group ends when every path has an outcome; that end, raised through Hypothesis,
    made it replay the last example, which (a chunk is evaluated only once enough batches
    are drawn) did not end alike: 'FlakyFailure while generating points' on special_sinc in
    float32, an error record for 8 paths that had nothing wrong."""
    report = check("special_sinc", dtypes="float32", devices="cpu", seed=1, jobs=1)
    assert not [r for r in report.records if r.status == "error"], [
        r.reason[:200] for r in report.records if r.status == "error"
    ]
