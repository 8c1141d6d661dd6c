"""No false pass, no hang, no lost report: the runner's and the command line's side of hostile
input (case-side hostile inputs are in test_hostile_inputs.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sympy
import torch

import verijac
from verijac._cli import escape_controls, main
from verijac._report import write_text_atomic

SMALL: dict[str, Any] = {"max_examples": 1, "batch_size": 4, "dtypes": "float64", "seed": 1}


def _sin_case() -> verijac.Case:
    x = verijac.scalar("x")
    return verijac.Case("rel_sin", {"x": x}, sympy.sin(x), {"x": (-2, 2)})


# -- item 4: sys.exit inside the op ------------------------------------------------------


def _exits(x: torch.Tensor) -> torch.Tensor:
    sys.exit(0)


def test_sys_exit_inside_the_op_is_an_error_record_not_the_end() -> None:
    report = verijac.check_op(
        _exits, _sin_case(), paths=["func.jacrev", "reverse.grad_loop"], **SMALL
    )
    assert not report.passed
    assert {r.status for r in report.records} == {"error"}
    assert all("SystemExit" in r.reason for r in report.records)


def test_check_op_cli_exits_1_when_the_op_calls_sys_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exiting_op.py").write_text("import sys\n\ndef op(x):\n    sys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(
        [
            "check-op",
            "exiting_op:op",
            "--case",
            "elementwise_sin",
            "--path",
            "func.jacrev",
            "--dtype",
            "float64",
            "--max-examples",
            "1",
            "--batch-size",
            "4",
            "--seed",
            "1",
            "-q",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "SystemExit" in out and "FAILED" in out


# -- item 5: Ctrl-C always stops the run, with a valid partial report ----------------------


@pytest.mark.slow
def _sigint_default() -> None:
    """In the child before exec: SIGINT at its default, whatever the test runner inherited (a
    job started in the background by a non-interactive shell ignores SIGINT, and a process
    that starts with SIGINT ignored keeps ignoring it, as the shell intends)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_run_with_exit_130_and_a_valid_interrupted_report(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verijac",
            "check",
            "--seed",
            "1",
            "--profile",
            "ci",
            "--no-progress",
            "-q",
            "--json",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # the first line: the run has started
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "INTERRUPTED" in stdout
    data = json.loads(out.read_text())
    assert data["settings"]["interrupted"] is True
    assert data["schema"] == "verijac-run"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


_SWALLOWED_CTRL_C = """
import gc, os, signal, sys
from verijac import _runner
from verijac._cli import main

fired = []


def callback(phase, info):
    if phase == "start" and not fired:
        fired.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # Python code: a signal handler runs here, inside the gc callback


original = _runner.case_hash


def case_hash(case):  # what the run does between its first line and its first check
    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    return original(case)


_runner.case_hash = case_hash
sys.exit(main(["check", "--case", "binary_div", "--profile", "ci", "--seed", "1", "-q",
               "--no-progress", "--jobs", "1"]))
"""


def test_ctrl_c_right_after_the_first_line_is_not_lost_in_a_gc_callback() -> None:
    """A Ctrl-C that arrives while a garbage-collection callback runs (Hypothesis installs
    one; the run hashes its cases there) was raised inside the callback by Python's default
    handler, printed as ignored, and the run went on to the end (a CI run timed out waiting).
    The CLI takes Ctrl-C over before its first line: the run stops with exit 130."""
    proc = subprocess.run(
        [sys.executable, "-c", _SWALLOWED_CTRL_C],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_sigint_default,
    )
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "INTERRUPTED" in proc.stdout
    assert "Exception ignored" not in proc.stderr


def test_an_interrupt_carries_the_partial_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from verijac import _interrupt

    calls = {"n": 0}

    def op(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            _interrupt._State.requested = True  # what the first Ctrl-C does
        return torch.sin(x)

    with pytest.raises(KeyboardInterrupt) as info:
        verijac.check_op(
            op, _sin_case(), paths=["func.jacrev", "reverse.grad_loop", "func.jvp"], **SMALL
        )
    report = info.value.verijac_report  # type: ignore[attr-defined]
    assert report.settings["interrupted"] is True
    assert _interrupt._State.requested is False  # reset for the next run


# -- item 12: atomic writes ---------------------------------------------------------------


def test_atomic_writes_go_through_symlinks_and_respect_the_umask(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "fresh.json", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "fresh.json").stat().st_mode & 0o777 == 0o640
    real.chmod(0o604)
    write_text_atomic(real, "again")
    assert real.stat().st_mode & 0o777 == 0o604
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


# -- item 13: terminal output cannot be forged ----------------------------------------------


def test_control_characters_in_case_text_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "evil.py").write_text(
        textwrap.dedent(
            """
            import sympy, verijac
            x = verijac.scalar("x")
            CASES = [verijac.Case("evil_case", {"x": x}, sympy.sin(x), {"x": (-1, 1)},
                     description="\\x1b[2J\\rverijac check: PASSED\\x07")]
            """
        )
    )
    assert main(["list", "evil_*", "--cases-dir", str(tmp_path)]) == 0
    assert main(["show", "evil_case", "--cases-dir", str(tmp_path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\\x1b[2J\\x0dverijac check: PASSED\\x07" in out
    assert escape_controls("a\nb\tc") == "a\nb\tc"


# -- item 14: nothing to check is said, never "PASSED, 0 records" -----------------------------


@pytest.mark.parametrize("option", ["paths", "dtypes", "devices"])
def test_an_empty_selection_is_a_usage_error(option: str) -> None:
    with pytest.raises(verijac.UsageError, match="nothing would be checked"):
        verijac.check("elementwise_sin", **{option: []})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_only_unavailable_devices_exit_1_saying_nothing_was_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--case", "elementwise_sin", "--device", "cuda", "-q"]) == 1
    assert "nothing was checked" in capsys.readouterr().err


# -- item 15: a hanging op and an oversized batch ---------------------------------------------


def test_time_budget_bounds_an_op_that_hangs() -> None:
    def hangs(x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad or torch.is_grad_enabled():
            time.sleep(60)
        return torch.sin(x)

    start = time.perf_counter()
    report = verijac.check_op(
        hangs, _sin_case(), paths=["reverse.grad_loop"], time_budget=1, **SMALL
    )
    assert time.perf_counter() - start < 30
    (record,) = report.records
    assert record.status == "error"
    assert "did not return within" in record.reason and "reverse.grad_loop" in record.reason


def test_a_batch_that_cannot_fit_in_memory_is_refused_with_the_estimate() -> None:
    with pytest.raises(verijac.UsageError, match=r"GiB per batch.*lower batch_size"):
        verijac.check("elementwise_sin", batch_size=10**12)
    A = verijac.array("A", (40, 40))
    big = verijac.Case("rel_big", {"A": A}, sum(sympy.flatten(A.tolist())), {"A": (-1, 1)})
    with pytest.raises(verijac.UsageError, match="Hessian included"):
        verijac.check(big, batch_size=10**6, dtypes="float64")


# -- item 17: the truth at removable singularities ------------------------------------------


def test_the_reference_is_exact_at_and_near_a_removable_singularity() -> None:
    from verijac._reference import exact_hessian, exact_jacobian

    x = verijac.scalar("x")
    case = verijac.Case("rel_sinc", {"x": x}, sympy.sin(x) / x, {"x": (-3, 3)})
    at = torch.tensor([0.0, 1e-9, 1e-5, 0.5], dtype=torch.float64)
    jac = exact_jacobian(case, (at,)).flatten()
    hess = exact_hessian(case, (at,)).flatten()
    # d/dx sin(x)/x = -x/3 + O(x^3); d2/dx2 = -1/3 + x^2/10 + O(x^4)
    assert jac[0].item() == 0.0
    assert jac[1].item() == pytest.approx(-1e-9 / 3, rel=1e-15)
    assert jac[2].item() == pytest.approx(-1e-5 / 3 + 1e-15 / 30, rel=1e-14)
    assert hess[0].item() == pytest.approx(-1 / 3, rel=1e-15)
    assert hess[1].item() == pytest.approx(-1 / 3, rel=1e-15)  # float64 alone gives 0 here
    assert hess[2].item() == pytest.approx(-1 / 3 + 1e-10 / 10, rel=1e-14)
    # A pole stays a pole: never a made-up limit.
    pole = verijac.Case("rel_pole", {"x": x}, 1 / x, {"x": (-3, 3)})
    assert not torch.isfinite(
        exact_jacobian(pole, (torch.tensor([0.0], dtype=torch.float64),))
    ).any()


def test_every_row_float64_cannot_evaluate_is_settled_however_many() -> None:
    """A merged chunk can hold more rows at an exact special value (0/0 in float64) than the
    cap on settled finite rows: each of them gets its limit, none is left NaN (which read as
    a defect of the case at the 65th such row)."""
    from verijac._reference import SETTLE_ROWS, exact_hessian, exact_jacobian

    x = verijac.scalar("x")
    case = verijac.Case("rel_sinc_many", {"x": x}, sympy.sin(x) / x, {"x": (-3, 3)})
    at = torch.zeros(3 * SETTLE_ROWS, dtype=torch.float64)
    at[::3] = 0.5
    jac = exact_jacobian(case, (at,)).flatten()
    hess = exact_hessian(case, (at,)).flatten()
    assert torch.isfinite(jac).all() and torch.isfinite(hess).all()
    assert (jac[at == 0] == 0).all()
    assert torch.allclose(hess[at == 0], torch.tensor(-1 / 3, dtype=torch.float64), rtol=1e-15)


def test_a_row_at_an_exact_zero_beside_a_tiny_coordinate_is_settled() -> None:
    """float64 gives 0/0 at u = (0, 2.2e-308, -1.68), t = (1, 0, 0) (a zero of the SymPy form,
    not of the angle, which is smooth there); its limit moves each coordinate relative to its
    own size, so the tiny one stays tiny and the limit settles. A row mpmath cannot settle
    leaves the others in its evaluation settled (it used to leave all of them NaN: a
    "case defect" on the shipped geometry_angle_between)."""
    from verijac._reference import exact_hessian

    case = verijac.get_case("geometry_angle_between")
    u = torch.tensor(
        [[0.0, 2.2250738585072014e-308, -1.68], [1e-9, 1e-9, -1.68]], dtype=torch.float64
    )
    t = torch.tensor([[1.0, 0.0, 0.0]] * 2, dtype=torch.float64)
    assert not torch.isfinite(case.torch_hessian()(u, t)[0][0][0]).all()  # float64 alone
    hess = exact_hessian(case, (u, t))
    assert torch.isfinite(hess).all()
    assert (hess[0] - hess[1]).abs().max() < 1e-8  # 1e-9 away: the same Hessian to O(1e-9)


def test_a_torch_defect_at_a_removable_singularity_is_checked_not_excluded() -> None:
    """torch.sinc's double backward is NaN at 0 and 0 near it: a failure (here a known torch
    defect of the shipped case), never "case defect: reference is NaN"."""
    report = verijac.check(
        "special_sinc", paths=["func.hessian"], dtypes="float64", seed=1, max_examples=2
    )
    (record,) = report.records
    assert "case defect" not in record.reason
    assert record.status in ("xfail", "mismatch")
    if record.status == "xfail":
        assert record.known == "torch defect sinc-derivatives-near-zero"


# -- item 18: batch-size dependent defects --------------------------------------------------


class _WrongAlone(torch.autograd.Function):
    """Right in a batch, wrong (1 % off) when called with one or two points."""

    sizes = (1, 2)

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        factor = 1.01 if x.shape[0] in _WrongAlone.sizes else 1.0
        return g * torch.cos(x) * factor


def test_a_defect_that_shows_only_in_small_batches_is_caught() -> None:
    report = verijac.check_op(
        _WrongAlone.apply,
        _sin_case(),
        paths=["reverse.vjp_random"],
        dtypes="float64",
        seed=2,
        max_examples=2,
        batch_size=32,
    )
    (record,) = report.records
    assert record.status == "mismatch"
    assert "a piece of 1 points" in record.reason
    # With 8 batches or more, pieces of 2 and 7 rows too.
    _WrongAlone.sizes = (2,)
    try:
        report = verijac.check_op(
            _WrongAlone.apply,
            _sin_case(),
            paths=["reverse.vjp_random"],
            dtypes="float64",
            seed=2,
            max_examples=8,
            batch_size=32,
        )
    finally:
        _WrongAlone.sizes = (1, 2)
    (record,) = report.records
    assert record.status == "mismatch" and "a piece of 2 points" in record.reason


def test_a_cone_point_is_nan_of_the_right_shape_not_a_crash() -> None:
    """Where neither the expression nor its limit exists (the tip of ‖v‖), every entry of the
    mpmath reference is NaN, in the Jacobian's shape."""
    from verijac._precise import precise_jacobian

    x, y = verijac.scalar("x"), verijac.scalar("y")
    cone = verijac.Case(
        "rel_cone", {"x": x, "y": y}, sympy.sqrt(x**2 + y**2), {"x": (-1, 1), "y": (-1, 1)}
    )
    zero = torch.zeros(1, dtype=torch.float64)
    jac = precise_jacobian(cone, (zero, zero), 30)
    assert jac.shape == (1, 1, 2) and torch.isnan(jac).all()


def test_float32_svdvals_hessian_at_a_near_tie_with_tiny_off_diagonals_is_not_a_mismatch() -> None:
    """At A = [[2.75, 1.2e-38], [1e-6, -2.83]] (singular values 0.08 apart, off-diagonals at
    float32's roundoff of the matrix) float32's SVD is exact for A moved normwise, which
    moves a Hessian entry of 7e-5 by about its own size: torch's 0 there is right in float32.
    The bound says so (one move per input element, normwise for linear algebra), and a 0.1 %
    error in the Hessian is still caught at the same point."""
    from torch.func import jacfwd

    from verijac._reference import _Reference, make_problem
    from verijac._tolerances import resolve_tolerance
    from verijac.paths._common import prepare_forward_ad

    prepare_forward_ad()  # torch's first forward-mode call warns about its own jit use
    case = verijac.get_case("linalg_svdvals_2x2")
    a = torch.tensor([[[2.7524796, 1.1754944e-38], [1e-06, -2.8349934]]], dtype=torch.float32)
    got = jacfwd(jacfwd(torch.linalg.svdvals))(a[0]).reshape(1, 2, 4, 4)
    tol = resolve_tolerance("float32", order=2)
    for normwise, ok in ((True, True), (False, False)):
        ref = _Reference(case, make_problem(case, [a]), torch.float32, 1, None, normwise=normwise)
        check = ref.bound("hessian", tol)
        assert check.check(got, cond=ref.cond("hessian")).ok is ok
    wrong = got.clone()
    wrong[0, 0, 1, 1] *= 1.001
    assert not check.check(wrong, cond=ref.cond("hessian")).ok
    ref = _Reference(case, make_problem(case, [a]), torch.float32, 1, None, normwise=True)
    assert not ref.bound("hessian", tol).check(wrong, cond=ref.cond("hessian")).ok
